"""`bench`: the command line. It parses, calls one library function, and renders with rich.

Heavy imports (torch, Lightning, the models) happen inside the commands so that `bench --help`
answers at once.
"""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Any

import typer
from rich.table import Table as RichTable
from typer.core import TyperGroup

from benchmark.cli_common import check_test, console, error_console, friendly_errors
from benchmark.cli_data import data_app
from benchmark.errors import BenchError


class _PluginOptionAnywhere(TyperGroup):
    """Takes the global `--plugin` after the command name too: `bench run --plugin my_model.py ...`."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        return super().parse_args(ctx, _plugin_options_first(args))


def _plugin_options_first(args: list[str]) -> list[str]:
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(args):
        if args[i] == "--":
            rest += args[i:]
            break
        if args[i] == "--plugin" and i + 1 < len(args):
            front += args[i:i + 2]
            i += 2
            continue
        (front if args[i].startswith("--plugin=") else rest).append(args[i])
        i += 1
    return front + rest


app = typer.Typer(
    name="bench",
    help="diffuma-bench: train, evaluate and tabulate spatio-temporal prediction models.",
    cls=_PluginOptionAnywhere,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(data_app, name="data")


@app.callback()
@friendly_errors
def _global_options(
    plugin: list[str] = typer.Option(
        [], "--plugin", metavar="FILE_OR_MODULE",
        help="A .py file or importable module that registers models or datasets when imported (repeatable, "
             "before or after the command name). Kept in $DIFFUMA_BENCH_PLUGINS, which --jobs workers read."),
) -> None:
    if plugin:
        from benchmark.plugins import use_plugins

        use_plugins(plugin)


def _int_list(text: str | None, what: str) -> list[int]:
    if not text:
        return []
    try:
        return [int(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise BenchError(f"{what} must be comma-separated integers such as 1,10,20 (got {text!r}).") from None


def _pred_len_list(text: str) -> list[int]:
    """`--pred-lens 3,6,12` as `[3, 6, 12]`; a ConfigError for anything but comma-separated whole numbers
    (`plan_runs` checks that they are positive and distinct)."""
    from benchmark.errors import ConfigError

    try:
        return [int(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise ConfigError(f"--pred-lens must be comma-separated prediction lengths in frames, such as 3,6,12 "
                          f"(got {text!r}).") from None


class TableFormat(str, Enum):
    csv = "csv"
    latex = "latex"
    markdown = "markdown"
    all = "all"


class Space(str, Enum):
    normalized = "normalized"
    physical = "physical"


class Launcher(str, Enum):
    local = "local"
    slurm = "slurm"


class SlurmExecutor(str, Enum):
    slurm = "slurm"
    local = "local"


# The SLURM options of `bench run` and `bench reproduce` (one definition, used by both commands)
_SLURM = "SLURM (with --launcher slurm)"
_LAUNCHER = typer.Option(Launcher.local, "--launcher",
                         help="local: run here; slurm: one SLURM job per run via submitit (pip install -e .\\[slurm]).")
_PARTITION = typer.Option(None, "--partition", help="The partition the jobs go to.", rich_help_panel=_SLURM)
_TIME = typer.Option(None, "--time", help="Wall-clock limit of each job (required): minutes, or HH:MM:SS.",
                     rich_help_panel=_SLURM)
_GPUS = typer.Option(None, "--gpus-per-node", help="GPUs per node (default: train.devices; 0 for runs with "
                                                   "train.accelerator=cpu).", rich_help_panel=_SLURM)
_NODES = typer.Option(None, "--nodes", help="Nodes per job (default: train.num_nodes, which it must equal).",
                      rich_help_panel=_SLURM)
_CPUS = typer.Option(None, "--cpus-per-task", help="CPU cores per task (a job has train.devices tasks per node).",
                     rich_help_panel=_SLURM)
_MEM = typer.Option(None, "--mem", help="Memory per node, e.g. 64G.", rich_help_panel=_SLURM)
_ACCOUNT = typer.Option(None, "--account", help="The account the jobs are charged to.", rich_help_panel=_SLURM)
_SBATCH = typer.Option([], "--sbatch", metavar="KEY=VALUE", rich_help_panel=_SLURM,
                       help="An extra #SBATCH option (repeatable): --sbatch qos=high, --sbatch exclusive.")
_ARRAY = typer.Option(None, "--array-parallelism", metavar="N", rich_help_panel=_SLURM,
                      help="Submit the pending runs as one job array, N of them running at once (default: one "
                           "job per run).")
_WAIT = typer.Option(False, "--wait", rich_help_panel=_SLURM,
                     help="Wait for the jobs and report like a local run (exit 1 if one failed); by default "
                          "return once they are submitted.")
_EXECUTOR = typer.Option(SlurmExecutor.slurm, "--slurm-executor", rich_help_panel=_SLURM,
                         help="slurm: sbatch. local: submitit's LocalExecutor runs the same jobs as subprocesses "
                              "of this machine (no SLURM; for tests).")


def _slurm_options(launcher: Launcher, executor: SlurmExecutor, partition: str | None, time: str | None,
                   gpus_per_node: int | None, nodes: int | None, cpus_per_task: int | None, mem: str | None,
                   account: str | None, sbatch: list[str], array_parallelism: int | None, wait: bool) -> Any:
    """The `SlurmOptions` of `--launcher slurm`; None with `--launcher local`, which takes none of them."""
    from benchmark.errors import ConfigError
    from benchmark.launchers import SlurmOptions

    if launcher is Launcher.slurm:
        return SlurmOptions.from_cli(executor.value, partition, time, gpus_per_node, nodes, cpus_per_task, mem,
                                     account, sbatch, array_parallelism)
    given = [flag for flag, value in (("--partition", partition), ("--time", time), ("--gpus-per-node", gpus_per_node),
                                      ("--nodes", nodes), ("--cpus-per-task", cpus_per_task), ("--mem", mem),
                                      ("--account", account), ("--sbatch", sbatch or None),
                                      ("--array-parallelism", array_parallelism), ("--wait", wait or None),
                                      ("--slurm-executor", None if executor is SlurmExecutor.slurm else executor))
             if value is not None]
    if given:
        raise ConfigError(f"{', '.join(given)} only apply to SLURM jobs: add --launcher slurm, or leave "
                          f"{'it' if len(given) == 1 else 'them'} out to run here.")
    return None


def _run_overrides(set_: list[str], epochs: int | None = None, eval_at: str | None = None,
                   data_root: Path | None = None) -> dict[str, dict[str, Any]]:
    """The command-line layer of a run's configuration: `--set`, then `--epochs`, `--eval-at`, `--data-root`."""
    from benchmark.config import parse_overrides

    overrides = parse_overrides(set_)
    if epochs is not None:
        overrides.setdefault("train", {})["epochs"] = epochs
    if eval_at is not None:
        overrides.setdefault("train", {})["eval_at"] = _int_list(eval_at, "--eval-at")
    if data_root is not None:
        overrides.setdefault("data", {})["root"] = str(data_root)
    return overrides


@app.command()
@friendly_errors
def run(
    models: str = typer.Option("all", "--models", "-m", help="'all' or a comma-separated list of model names."),
    dataset: str = typer.Option("synthetic-weather", "--dataset", "-d",
                                help="NAME or NAME:task, comma-separated; a bare name means its default tasks."),
    profile: str = typer.Option("quick", "--profile", "-p", help="smoke | quick | paper, or a YAML file."),
    epochs: int | None = typer.Option(None, "--epochs", help="Override train.epochs."),
    eval_at: str | None = typer.Option(None, "--eval-at", help="Also score the test split after these epochs."),
    seeds: str = typer.Option("0", "--seeds", help="Comma-separated seeds; one run per seed."),
    pred_lens: str | None = typer.Option(None, "--pred-lens",
                                         help="Comma-separated prediction lengths (data.t_out), e.g. 3,6,12; one "
                                              "run per length (the runs of --set data.t_out=L; not with it)."),
    results: Path = typer.Option(Path("results"), "--results", help="Folder of run records."),
    data_root: Path | None = typer.Option(None, "--data-root", help="Override data.root (dataset folder)."),
    set_: list[str] = typer.Option([], "--set", help="Override any key: section.key=value (train/data/model)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print every run's resolved config and stop."),
    progress: bool | None = typer.Option(None, "--progress/--no-progress", help="Per-epoch progress bars."),
    jobs: int | None = typer.Option(None, "--jobs", "-j",
                                    help="Runs at once, each in its own process (default: 1 with CUDA, "
                                         "else one per CPU core)."),
    launcher: Launcher = _LAUNCHER,
    partition: str | None = _PARTITION,
    time_: str | None = _TIME,
    gpus_per_node: int | None = _GPUS,
    nodes: int | None = _NODES,
    cpus_per_task: int | None = _CPUS,
    mem: str | None = _MEM,
    account: str | None = _ACCOUNT,
    sbatch: list[str] = _SBATCH,
    array_parallelism: int | None = _ARRAY,
    wait: bool = _WAIT,
    slurm_executor: SlurmExecutor = _EXECUTOR,
) -> None:
    """Train and evaluate models on a dataset; finished runs are skipped, broken ones resumed."""
    import json

    from benchmark.runner import execute_sweep, plan_runs, plan_sweep

    slurm = _slurm_options(launcher, slurm_executor, partition, time_, gpus_per_node, nodes, cpus_per_task, mem,
                           account, sbatch, array_parallelism, wait)
    if slurm is not None and jobs is not None:
        raise BenchError("--jobs sets how many runs execute at once here; with --launcher slurm every run is a job "
                         "of its own (--array-parallelism N caps how many run at once).")
    overrides = _run_overrides(set_, epochs, eval_at, data_root)
    seed_list = _int_list(seeds, "--seeds") or [0]
    length_list = None if pred_lens is None else _pred_len_list(pred_lens)
    configs = plan_runs(models, dataset, profile, seed_list, overrides, pred_lens=length_list)
    if dry_run:
        from benchmark.runner import DataCache, describe_plan

        cache = DataCache()
        for config in configs:
            console.rule(f"[bold]{config.run_id}")
            console.print_json(json.dumps({**config.to_dict(), "plan": describe_plan(config, cache)}, default=str))
        return

    def on_event(kind: str, index: int, config: Any, payload: Any) -> None:
        length = f", T_out {config.t_out}" if length_list is not None else ""
        where = f"[{index + 1}/{len(configs)}] {config.model} on {config.dataset} (seed {config.seed}{length})"
        if kind == "start":
            console.print(f"[bold cyan]>[/] {where} ...")
        elif kind == "done" and payload is not None:  # (None: a non-first DDP process, which stores nothing)
            test = payload.test.normalized  # payload: the run's RunRecord
            console.print(f"[green]✓[/] {where}: test MSE {test.mse:.4g}, SSIM {test.ssim:.4f} "
                          f"(normalized), trained in {payload.cost.train_seconds:.1f} s")
        elif kind == "fail":
            error_console.print(f"[red]✗[/] {where} failed: {payload}", highlight=False)

    if slurm is not None:
        from benchmark.cli_reproduce import submit_and_report

        submitted, report = submit_and_report(configs, results, slurm, wait, on_event)
        if report is None:
            if any(entry.action != "finished" for entry in submitted):
                console.print(f"`bench status --results {results}` shows how they are doing; run this command "
                              "again to submit what is still missing.", highlight=False)
            return
    else:
        plan = plan_sweep(configs, results, jobs)
        if not plan.pending:
            console.print(f"All {len(configs)} runs are already finished in {results}/. Nothing to do "
                          "(`bench table` renders them).")
            return
        console.print(f"{len(configs)} runs planned, {len(plan.skipped)} already finished, {len(plan.pending)} to "
                      f"run{f', {plan.jobs} at a time' if plan.jobs > 1 else ''}. Records go to {results}/.")
        # per-epoch bars of parallel runs would interleave: only the one-line events are shown then
        show_progress = (sys.stdout.isatty() if progress is None else progress) and plan.jobs == 1
        report = execute_sweep(plan, results, progress=show_progress, on_event=on_event)
    console.print(f"Finished {len(report.finished)}, skipped {len(report.skipped)} (already done), "
                  f"failed {len(report.failed)}.")
    if report.failed:
        raise typer.Exit(code=1)


@app.command()
@friendly_errors
def table(
    results: Path = typer.Option(Path("results"), "--results", help="Folder of run records."),
    out: Path = typer.Option(Path("tables"), "--out", help="Folder the tables are written to."),
    format_: TableFormat = typer.Option(TableFormat.all, "--format", "-f", help="Output format."),
    space: Space = typer.Option(Space.normalized, "--space", help="Metrics in normalized or physical units."),
    metrics: str = typer.Option("mse,mae,ssim", "--metrics",
                                help="Comma-separated: mse,mae,rmse,rmse_wb2,ssim,psnr,lat_rmse,acc,detail_ratio "
                                     "(rmse_wb2: WeatherBench 2's, root after the mean over samples; lat_rmse: "
                                     "WeatherBench 1's, root per sample; acc: anomaly correlation against the "
                                     "training climatology; detail_ratio: fine-scale power / the truth's, 1 = as "
                                     "sharp)."),
    profile: str | None = typer.Option(None, "--profile",
                                       help="Only runs of this profile (with --datasets: whose data settings; "
                                            "default paper)."),
    epoch_sweep: bool = typer.Option(False, "--epoch-sweep", help="The epoch-sweep table (runs with --eval-at)."),
    length_sweep: bool = typer.Option(False, "--length-sweep", help="The prediction-length sweep table."),
    datasets_: bool = typer.Option(False, "--datasets",
                                   help="Table 1: the datasets as loaded (counts, shapes) beside the paper's."),
    dataset: str | None = typer.Option(None, "--dataset", "-d",
                                       help="With --datasets: which datasets (default: weatherbench, chdl "
                                            "and their generated stand-ins)."),
    data_root: Path | None = typer.Option(None, "--data-root", help="With --datasets: override data.root."),
    significance: bool = typer.Option(False, "--significance",
                                      help="Mark the table's cells where DIFFUMA is significantly better (▲) "
                                           "or worse (▼) than that model, and bold a best mean only where it "
                                           "beats the runner-up: paired tests on the same test windows (--test), "
                                           "the table's tests adjusted as one family (--adjust); the numbers go "
                                           "to significance*.csv."),
    test: str = typer.Option("hac-ewc", "--test",
                             help="With --significance: hac-ewc (default; autocorrelation-robust t-test), "
                                  "stationary-bootstrap or dm-hg (Diebold-Mariano)."),
    adjust: str = typer.Option("holm", "--adjust", help="With --significance: holm (family-wise error) or bh "
                                                        "(Benjamini-Hochberg false discovery rate)."),
    compare: str | None = typer.Option(None, "--compare",
                                       help="'paper': ours beside the paper's Table 2 (main), 3-4 (--epoch-sweep) "
                                            "or 5 (--length-sweep), with relative differences and Kendall's tau."),
    precision_drift: bool = typer.Option(False, "--precision-drift",
                                         help="Per model: how far training in bf16-mixed (or 16-mixed) moved each "
                                              "--metrics score from the same runs in fp32, against the seed-to-seed "
                                              "spread."),
    components: bool = typer.Option(False, "--components",
                                    help="Main table: add a row for each part forecast a run recorded (DIFFUMA's "
                                         "y_mamba, its Mamba path inside the full model), beside the model."),
    sweep_dataset: str | None = typer.Option(None, "--sweep-dataset",
                                             help="With --compare: the paper's dataset taken for its Tables 3-5, "
                                                  "which do not state one (default weatherbench:r; see "
                                                  "benchmark/paper/numbers.py)."),
) -> None:
    """Render the paper's tables from the stored run records (Table 1 from the data itself)."""
    from benchmark import tables
    from benchmark.records import components_to_frame, load_records, records_to_frame

    formats = tables.FORMATS if format_ is TableFormat.all else (format_.value,)
    if datasets_:
        _dataset_table(dataset, profile or "paper", data_root, out, formats)
        return
    if not results.is_dir():
        raise BenchError(f"There is no results folder {results}/. Run `bench run` first, or pass --results DIR.")
    records = load_records(results)
    frame = records_to_frame(records)
    if components:
        others = [flag for flag, given in (("--epoch-sweep", epoch_sweep), ("--length-sweep", length_sweep),
                                           ("--significance", significance), ("--compare", compare is not None),
                                           ("--precision-drift", precision_drift)) if given]
        if others:
            raise BenchError(f"--components adds rows to the main table only; leave out {', '.join(others)}.")
        import pandas as pd

        frame = pd.concat([frame, components_to_frame(records)], ignore_index=True)
    if frame.empty:
        unreadable = len(list(results.glob("*/record.json")))
        raise BenchError(f"No finished run records in {results}/"
                         + (f" ({unreadable} record files could not be read: see the warnings above)"
                            if unreadable else "")
                         + ". Run `bench run --models all --dataset synthetic-weather --profile quick` first.")
    wanted = [m.strip() for m in metrics.split(",") if m.strip()]
    unknown = sorted(set(wanted) - set(tables.METRICS))
    if unknown:
        raise BenchError(f"Unknown metric(s) {', '.join(unknown)}; choose from {', '.join(tables.METRICS)}.")
    if precision_drift:
        others = [flag for flag, given in (("--epoch-sweep", epoch_sweep), ("--length-sweep", length_sweep),
                                           ("--significance", significance), ("--compare", compare is not None))
                  if given]
        if others:
            raise BenchError(f"--precision-drift is a table of its own (the best-checkpoint scores at the main "
                             f"length); leave out {', '.join(others)}.")
        _precision_drift_tables(frame, results, wanted, space.value, profile, out, formats)
        return
    builder = (tables.epoch_sweep_table if epoch_sweep else
               tables.length_sweep_table if length_sweep else tables.main_table)
    built = builder(frame, space=space.value, metrics=wanted, profile=profile)
    if built.empty:
        what = "--eval-at scores (run with --eval-at 1,5,10)" if epoch_sweep else "matching runs"
        raise BenchError(f"No {what} in {results}/ for this table.")
    if significance:
        check_test(test, adjust)
        with console.status("paired tests of DIFFUMA against each baseline ..."):
            built, marks = tables.mark_significance(built, frame, results, metrics=wanted, profile=profile,
                                                    method=test, adjustment=adjust)
        if marks.empty:
            raise BenchError(f"No DIFFUMA and baseline runs with per-sample errors and a seed in common in {results}/ "
                             "for this table (only mse, mae and ssim are stored per sample; the epoch sweep needs "
                             "runs that stored them at their --eval-at epochs).")
        for path in tables.render_significance(marks, out, formats, stem=tables.significance_stem(built)):
            console.print(f"wrote {path}")
    if compare is not None:
        _compare_table(compare, built, space.value, out, formats, sweep_dataset)
        return
    written = tables.render(built, out, formats, suffix=f"_{space.value}")
    _print_table(built)
    for path in written:
        console.print(f"wrote {path}")


def _precision_drift_tables(frame: Any, results: Path, metrics: list[str], space: str, profile: str | None,
                            out: Path, formats: tuple[str, ...]) -> None:
    from benchmark import precision_drift
    from benchmark.tables import METRIC_LABELS

    for metric in metrics:
        drift = precision_drift.precision_drift(frame, metric=metric, space=space, profile=profile,
                                                results_dir=results)
        if drift.empty:
            raise BenchError(f"No model in {results}/ has runs of one setting in 32-true and in another precision. "
                             "Run the same sweep twice, the second time with --set train.precision=bf16-mixed.")
        console.print(_drift_rich_table(drift, f"Precision drift: test {METRIC_LABELS.get(metric, metric)} ({space})"))
        console.print(drift.caption, highlight=False)
        for path in precision_drift.render(drift, out, formats):
            console.print(f"wrote {path}")


def _drift_rich_table(drift: Any, title: str) -> RichTable:
    """`precision_drift.compact(drift)` as a rich table; a NO (not shown equivalent) in bold red."""
    from benchmark.precision_drift import compact
    from benchmark.tables import usual_seeds

    text = compact(drift)
    usual = usual_seeds(drift.rows[["ref_n", "n"]])
    rich_table = RichTable(title=f"{title}, {usual} seed{'s' if usual > 1 else ''} each")
    _whole_column(rich_table, "model", list(text.index), justify="left", style="cyan")
    for header in text.columns:
        _whole_column(rich_table, header, text[header], justify="right")
    for label, row in text.iterrows():
        cells = [*row.iloc[:-1], "[bold red]NO[/]" if row["equiv."] == "NO" else row["equiv."]]
        rich_table.add_row(label, *cells)
    return rich_table


def _compare_table(against: str, built: Any, space: str, out: Path, formats: tuple[str, ...],
                   sweep_dataset: str | None = None) -> None:
    from benchmark import compare

    if against != "paper":
        raise BenchError(f"--compare {against!r}: only 'paper' is known. Pass --compare paper (ours beside the "
                         "paper's numbers), or leave --compare out.")
    sweep_dataset = sweep_dataset or compare.DEFAULT_SWEEP_DATASET
    comparison = compare.compare_with_paper(built, space=space, sweep_dataset=sweep_dataset)
    if comparison.empty:
        raise BenchError(f"None of the {built.name.replace('_', ' ')} cells has a number in the paper beside it "
                         "(no shared dataset, epoch or length; the paper's Tables 3-5 are taken to be on "
                         f"{sweep_dataset}: pass --sweep-dataset to change it).")
    console.print(comparison.caption)
    console.print(compare.formatted(comparison).to_string())
    for path in compare.render(comparison, out, formats, suffix=f"_{space}"):
        console.print(f"wrote {path}")


def _dataset_table(selection: str | None, profile: str, data_root: Path | None, out: Path,
                   formats: tuple[str, ...]) -> None:
    from benchmark.dataset_table import DEFAULT_SELECTION, dataset_table, render_dataset_table

    overrides = {"data": {"root": str(data_root)}} if data_root is not None else None
    with console.status("loading the datasets ..."):
        frame = dataset_table(selection or DEFAULT_SELECTION, profile, overrides)
    text = frame.astype(str).to_dict("records")
    rows = []  # two rows a dataset, ours then the paper's, so that 13 columns become 6 that fit 80 characters
    for r in text:
        rows.append((r["dataset"], r["train"], r["val"], r["test"], r["(C, H, W)"], f"{r['T_in']}→{r['T_out']}"))
        rows.append(("  paper", r["paper train"], "–", r["paper test"], r["paper (C, H, W)"],
                     f"{r['paper T_in']}→{r['paper T_out']}"))
    rich_table = RichTable(title=f"Datasets ({profile} profile) beside the paper's Table 1")
    for i, column in enumerate(("dataset", "train", "val", "test", "(C, H, W)", "T_in→T_out")):
        _whole_column(rich_table, column, [row[i] for row in rows], justify="left" if i == 0 else "right")
    for i, row in enumerate(rows):
        rich_table.add_row(*row, style="dim" if i % 2 else None, end_section=bool(i % 2) and i < len(rows) - 1)
    console.print(rich_table)
    for r in text:  # free text: wrapped below the table, not folded into a column
        if r["note"]:
            console.print(f"[cyan]{r['dataset']}[/]: {r['note']}", highlight=False)
    for path in render_dataset_table(frame, out, formats, profile):
        console.print(f"wrote {path}")


def _plain_width(cells: Any, header: str = "") -> int:
    """Width a column needs so that no cell folds: its longest cell, its header's longest word."""
    from rich.text import Text

    widths = [Text.from_markup(str(c)).cell_len for c in cells]
    return max([*widths, *(len(word) for word in header.split()), 1])


def _whole_column(table: RichTable, header: str, cells: Any, **kwargs: Any) -> None:
    """A column of names or numbers: as wide as its content, never folded or cut."""
    table.add_column(header, min_width=_plain_width(cells, header), no_wrap=True, **kwargs)


def _print_table(built: Any) -> None:
    """The table at the console's width: a column group that does not fit goes to a table of its own."""
    from benchmark.tables import formatted

    text = formatted(built, bold=("[bold]", "[/bold]"))
    title = built.name.replace("_", " ")
    index_names = [n or "model" for n in text.index.names]
    keys = [index if isinstance(index, tuple) else (index,) for index in text.index]
    index_width = sum(_plain_width([k[i] for k in keys], n) + 3 for i, n in enumerate(index_names)) + 1
    groups: dict[tuple[str, ...], list[Any]] = {}
    for column in text.columns:
        groups.setdefault(tuple(map(str, column[:-1])), []).append(column)
    chunks: list[list[tuple[str, ...]]] = [[]]
    width = index_width
    for prefix, columns in groups.items():
        label = " ".join(prefix)
        need = sum(max(len(label), _plain_width(text[c], str(c[-1]))) + 3 for c in columns)
        if chunks[-1] and width + need > console.width:
            chunks.append([])
            width = index_width
        chunks[-1].append(prefix)
        width += need
    for chunk in chunks:
        single = len(chunk) == 1 and any(chunk[0])
        rich_table = RichTable(title=f"{title}: {' '.join(chunk[0])}" if single else title)
        for i, name in enumerate(index_names):
            _whole_column(rich_table, name, [k[i] for k in keys], style="cyan")
        columns = [c for prefix in chunk for c in groups[prefix]]
        for column in columns:
            label = str(column[-1]) if single else "\n".join(map(str, column))
            cells = [*text[column], *(label.split("\n") if not single else [])]
            rich_table.add_column(label, justify="right", min_width=_plain_width(cells, str(column[-1])),
                                  no_wrap=True)
        for key, (_, row) in zip(keys, text[columns].iterrows(), strict=True):
            rich_table.add_row(*map(str, key), *map(str, row.tolist()))
        console.print(rich_table)
    if built.caption:  # below the last table, wrapped to the console rather than to the table's width
        console.print(built.caption, highlight=False)


@app.command()
@friendly_errors
def models(
    shape: str = typer.Option("12,1,32,64", "--shape", help="T_in,C,H,W or T_in,T_out,C,H,W."),
    profile: str = typer.Option("paper", "--profile", help="Whose model sizes to count (smoke/quick/paper)."),
    dataset: str = typer.Option("weatherbench:t2m", "--dataset", help="Dataset whose profile entries apply."),
    wide: bool = typer.Option(False, "--wide", help="Add each model's summary (wrapped) however narrow the terminal."),
) -> None:
    """List the registered models with their parameter count at a shape."""
    from benchmark.config import resolve_run
    from benchmark.model_api import count_parameters
    from benchmark.registry import create_model, get_model_spec, list_models
    from benchmark.shapes import DataShape

    data_shape = DataShape.parse(shape)
    overrides = {"data": {"t_in": data_shape.t_in, "t_out": data_shape.t_out}}
    key = ",".join(str(v) for v in (data_shape.t_in, *data_shape[2:]))
    rows = []
    for name in list_models():
        spec = get_model_spec(name)
        config = resolve_run(profile, name, dataset, 0, overrides)
        count = count_parameters(create_model(name, data_shape, **config.model_args))
        if key in spec.reference_params:
            reference = f"{spec.reference_params[key] / 1e6:.2f}M"
        else:  # a reference published at another shape only (PastNet: its original 64x64 setting)
            reference = ", ".join(f"{v / 1e6:.2f}M at {k}" for k, v in spec.reference_params.items()) or "–"
        rows.append((name, spec.family, spec.paper_name, f"{count / 1e6:.2f}M" if count else "0", reference,
                     spec.summary))
    rich_table = RichTable(title=f"Registered models at shape {shape} ({profile} profile)")
    headers = ("name", "family", "paper name", "parameters", "reference", "summary")
    needs = [_plain_width([r[i] for r in rows], h) + 3 for i, h in enumerate(headers)]
    needs[4] = max(len(word) for r in rows for word in [*r[4].split(), "reference"]) + 3  # wraps at its spaces
    room = console.width - 1 - sum(needs[i] for i in (0, 2, 3, 4))
    shown = [0, *([1] if room >= needs[1] else []), 2, 3, 4]
    room -= needs[1] if 1 in shown else 0
    if not wide and room >= 27:  # the summary is free text: cut to one line; --wide lists it in full below
        shown.append(5)
    for i in shown:
        justify = "right" if headers[i] in ("parameters", "reference") else "left"
        if i == 4:
            rich_table.add_column("reference", justify=justify, min_width=needs[4] - 3)
        elif i == 5:  # a fixed width: rich never squeezes the other columns to make room for it
            rich_table.add_column("summary", no_wrap=True, overflow="ellipsis", width=min(60, room - 3))
        else:
            _whole_column(rich_table, headers[i], [r[i] for r in rows], justify=justify)
    for row in rows:
        rich_table.add_row(*(row[i] for i in shown))
    console.print(rich_table)
    if wide:
        for row in rows:
            console.print(f"[cyan]{row[0]}[/] ({row[1]}): {row[5]}", highlight=False)
    elif len(shown) < len(headers):
        hidden = " and ".join(headers[i] for i in range(len(headers)) if i not in shown)
        console.print(f"({hidden} left out at this width: `bench models --wide` adds them)", highlight=False)


@app.command()
@friendly_errors
def profile(
    models_: str = typer.Option("all", "--models", "-m", help="'all' or a comma-separated list of model names."),
    shape: str = typer.Option("12,1,32,64", "--shape", help="T_in,C,H,W or T_in,T_out,C,H,W."),
    profile_name: str = typer.Option("paper", "--profile", help="Whose model sizes to measure."),
    dataset: str = typer.Option("weatherbench:t2m", "--dataset", help="Dataset whose profile entries apply."),
    batch: int = typer.Option(16, "--batch", help="Batch size of the timed steps."),
    warmup: int = typer.Option(1, "--warmup", help="Untimed repetitions first."),
    repeats: int = typer.Option(3, "--repeats", help="Timed repetitions (the median is reported)."),
    device: str = typer.Option("auto", "--device", help="auto | cpu | cuda."),
    precision: str = typer.Option("32-true", "--precision",
                                  help="Comma-separated training precisions to measure side by side: 32-true, "
                                       "bf16-mixed, 16-mixed (CUDA); with two or more, the speed ratios too."),
    out: Path = typer.Option(Path("tables"), "--out", help="Folder for profile.csv."),
    set_: list[str] = typer.Option([], "--set", help="Override a model setting: model.key=value."),
    against: list[str] = typer.Option([], "--against",
                                      help="Also measure each model with these settings on top of --set "
                                           "(model.key=value, repeatable), e.g. an old backend, and print how "
                                           "many times faster and leaner the --set version is, in the same run."),
) -> None:
    """Measure parameters, FLOPs, step time, throughput and peak memory of each model."""
    import pandas as pd

    from benchmark.config import PRECISIONS, parse_overrides, resolve_run
    from benchmark.profiling import profile_model
    from benchmark.registry import resolve_model_names
    from benchmark.shapes import DataShape

    precisions = list(dict.fromkeys(p.strip() for p in precision.split(",") if p.strip()))
    unknown = [p for p in precisions if p not in PRECISIONS]
    if unknown or not precisions:
        raise BenchError(f"--precision {precision!r}: choose from {', '.join(PRECISIONS)} (comma-separated, "
                         "e.g. --precision 32-true,bf16-mixed).")
    data_shape = DataShape.parse(shape)
    overrides = parse_overrides(set_)
    overrides.setdefault("data", {}).update(t_in=data_shape.t_in, t_out=data_shape.t_out)
    against_overrides = parse_overrides(against)
    if set(against_overrides) - {"model"}:
        raise BenchError(f"--against {' '.join(against)!r}: only model settings can be compared "
                         "(--against model.key=value).")
    variants = {"": {}, **({"against": against_overrides["model"]} if against else {})}
    rows: list[dict[str, Any]] = []
    failures: dict[tuple[str, str, str], str] = {}
    path = out / "profile.csv"
    for name in resolve_model_names(models_):
        config = resolve_run(profile_name, name, dataset, 0, overrides)
        for mode in precisions:
            for variant, settings in variants.items():
                label = f"{name} ({mode}{', against' if variant else ''})"
                with console.status(f"profiling {label} ..."):
                    try:  # one model that does not fit (memory, shape) must not lose the others' numbers
                        measured = profile_model(name, {**config.model_args, **settings}, data_shape, batch, warmup,
                                                 repeats, device, precision=mode)
                    except BenchError as error:
                        failures[(name, mode, variant)] = str(error).split(" failed: ")[-1]
                        error_console.print(f"[red]✗[/] {label}: {failures[(name, mode, variant)]}", highlight=False)
                        rows.append({"model": name, "precision": mode, "variant": variant,
                                     "note": failures[(name, mode, variant)]})
                        continue
                rows.append({**vars(measured), "variant": variant, "note": ""})
                console.print(f"{label}: {measured.train_step_seconds:.3f} s/step, "
                              f"peak {measured.peak_memory_mib:.0f} MiB")
                _write_csv_atomic(pd.DataFrame(rows), path)  # after every model: an interrupted profile keeps rows
    if len(failures) == len(rows):
        raise BenchError(f"No model could be profiled at shape {shape}: " +
                         "; ".join(f"{k[0]} ({k[1]}): {v}" for k, v in failures.items()))
    _write_csv_atomic(pd.DataFrame(rows), path)
    _print_profile(rows, shape, batch, profile_name, precisions, bool(failures))
    if len(precisions) > 1:
        _print_precision_ratios([r for r in rows if not r["variant"]], precisions)
    if against:
        _print_against_ratios(rows, against)
    first = next(r for r in rows if not r["note"])
    console.print(f"memory: {first['memory_kind']}; wrote {path}")


def _print_profile(rows: list[dict[str, Any]], shape: str, batch: int, profile_name: str, precisions: list[str],
                   failed: bool) -> None:
    """The profile as a table whose names and numbers stay whole at 80 columns (headers wrap instead)."""
    from rich import box

    first = next(r for r in rows if not r["note"])
    several = len(precisions) > 1
    cells: dict[str, list[str]] = {"model": [], "precision": [], "params": [], "GFLOP": [], "step s": [],
                                   "infer/s": [], "MiB": []}
    for row in rows:
        cells["model"].append(row["model"] + (" (against)" if row.get("variant") else ""))
        cells["precision"].append(row.get("precision", ""))
        numbers = ("–",) * 5 if row["note"] else (
            f"{row['parameters'] / 1e6:.2f}M", f"{row['gflops_per_sample']:.2f}", f"{row['train_step_seconds']:.3f}",
            f"{row['inference_samples_per_second']:.1f}", f"{row['peak_memory_mib']:.0f}")
        for header, text in zip(list(cells)[2:], numbers, strict=True):
            cells[header].append(text)
    if not several:
        del cells["precision"]
    rich_table = RichTable(title=f"Cost at shape {shape}, batch {batch}, {profile_name} sizes, {first['device']}, "
                                 f"{first['threads']} threads", box=box.SIMPLE_HEAD)
    for header, column in cells.items():
        _whole_column(rich_table, header, column, justify="left" if header in ("model", "precision") else "right")
    if failed:
        rich_table.add_column("note", overflow="fold")
    for i, row in enumerate(rows):
        rich_table.add_row(*(column[i] for column in cells.values()),
                           *([f"[red]{row['note']}[/]" if row["note"] else ""] if failed else []))
    console.print(rich_table)
    console.print("GFLOP: forward pass of one sample; step s: one training step (median); infer/s: samples per "
                  "second at inference; MiB: peak memory.", highlight=False)


def _print_precision_ratios(rows: list[dict[str, Any]], precisions: list[str]) -> None:
    """Per model: how many times faster each precision trains and infers than the first one listed."""
    reference = precisions[0]
    measured = {(r["model"], r["precision"]): r for r in rows if not r["note"]}
    rich_table = RichTable(title=f"Speed relative to {reference} (measured in this run; > 1 = faster)")
    rich_table.add_column("model", no_wrap=True)
    for mode in precisions[1:]:
        rich_table.add_column(f"{mode} train", justify="right", no_wrap=True)
        rich_table.add_column(f"{mode} infer", justify="right", no_wrap=True)
    for model in dict.fromkeys(r["model"] for r in rows):
        base = measured.get((model, reference))
        cells = []
        for mode in precisions[1:]:
            other = measured.get((model, mode))
            if base is None or other is None:
                cells += ["–", "–"]
                continue
            train = (f"{base['train_step_seconds'] / other['train_step_seconds']:.2f}x"
                     if other["train_step_seconds"] > 0 and base["train_step_seconds"] > 0 else "–")
            infer = f"{other['inference_samples_per_second'] / base['inference_samples_per_second']:.2f}x"
            cells += [train, infer]
        rich_table.add_row(model, *cells)
    console.print(rich_table)


def _print_against_ratios(rows: list[dict[str, Any]], against: list[str]) -> None:
    """Per model and precision: how many times faster (step, inference) and leaner the --set version is."""
    measured = {(r["model"], r["precision"], r["variant"]): r for r in rows if not r["note"]}
    rich_table = RichTable(title=f"Relative to --against {' '.join(against)} (measured in this run; > 1 = better)")
    for header in ("model", "precision", "train speed-up", "infer speed-up", "memory ratio"):
        rich_table.add_column(header, justify="left" if header in ("model", "precision") else "right", no_wrap=True)
    for model, mode in dict.fromkeys((r["model"], r["precision"]) for r in rows):
        new, old = measured.get((model, mode, "")), measured.get((model, mode, "against"))
        if new is None or old is None:
            rich_table.add_row(model, mode, "–", "–", "–")
            continue
        rich_table.add_row(model, mode, _ratio(old["train_step_seconds"], new["train_step_seconds"]),
                           _ratio(new["inference_samples_per_second"], old["inference_samples_per_second"]),
                           _ratio(old["peak_memory_mib"], new["peak_memory_mib"]))
    console.print(rich_table)


def _ratio(numerator: float, denominator: float) -> str:
    """`numerator / denominator` as "1.23x", or "–" when either is not positive."""
    return f"{numerator / denominator:.2f}x" if numerator > 0 and denominator > 0 else "–"


def _write_csv_atomic(frame: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    frame.to_csv(temporary, index=False)
    temporary.replace(path)


@app.command("check-model")
@friendly_errors
def check_model(
    name: str = typer.Argument(..., metavar="NAME", help="A registered model name (with --plugin: yours too)."),
    shape: list[str] = typer.Option([], "--shape", help="T_in,C,H,W or T_in,T_out,C,H,W; repeatable "
                                                       "(default: 3->5 and 4->2 frames, C=1 and 2, 16x32)."),
    profile: str = typer.Option("smoke", "--profile", help="Whose model sizes to build (smoke/quick/paper or YAML)."),
    dataset: str = typer.Option("synthetic-weather:t2m", "--dataset", help="Dataset whose profile entries apply."),
) -> None:
    """Check a model against the contract (output shape, gradients, determinism); exit 1 if it fails."""
    from benchmark.config import resolve_run
    from benchmark.contract import DEFAULT_SHAPES, run_contract
    from benchmark.shapes import DataShape

    shapes = [DataShape.parse(s) for s in shape] or list(DEFAULT_SHAPES)
    overrides = {"data": {"t_in": shapes[0].t_in, "t_out": shapes[0].t_out}}
    model_args = resolve_run(profile, name, dataset, 0, overrides).model_args
    with console.status(f"checking {name} ..."):
        results = run_contract(name, model_args, shapes)
    rich_table = RichTable(title=f"Model contract of {name} ({profile} sizes)")
    rich_table.add_column("check", no_wrap=True)
    rich_table.add_column("result", no_wrap=True)
    rich_table.add_column("what fails", overflow="fold")
    for check, failures in results:
        rich_table.add_row(check.label, "[red]FAIL[/]" if failures else "[green]pass[/]", "\n".join(failures))
    console.print(rich_table)
    failed = [(check, failures) for check, failures in results if failures]
    if not failed:
        console.print(f"[green]✓[/] {name} passes all {len(results)} checks of the model contract.")
        return
    error_console.print(f"[red]✗[/] {name} fails {len(failed)} of {len(results)} checks of the model contract:",
                        highlight=False)
    for check, failures in failed:
        error_console.print(f"  {check.label}: {'; '.join(failures)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code=1)


@app.command()
@friendly_errors
def datasets() -> None:
    """List the registered datasets and their tasks."""
    from benchmark.data.registry import list_datasets

    rich_table = RichTable(title="Registered datasets")
    for column in ("name", "tasks", "default tasks", "summary"):
        rich_table.add_column(column)
    for spec in list_datasets():
        rich_table.add_row(spec.name, ", ".join(spec.tasks) or "–", ", ".join(spec.default_tasks) or "–", spec.summary)
    console.print(rich_table)


@app.command()
@friendly_errors
def claims(
    results: Path = typer.Option(Path("results"), "--results", help="Folder of run records (may be absent)."),
    out: Path = typer.Option(Path("tables"), "--out", help="Folder claims.{csv,md,tex} are written to."),
    format_: TableFormat = typer.Option(TableFormat.all, "--format", "-f", help="Output format."),
    significance: bool = typer.Option(True, "--significance/--no-significance",
                                      help="Test the 'significantly' claims on the runs' per-window errors "
                                           "(the tables' paired test, --test; seconds)."),
    test: str = typer.Option("hac-ewc", "--test", help="hac-ewc (default), stationary-bootstrap or dm-hg."),
    adjust: str = typer.Option("holm", "--adjust", help="holm (default) or bh, over each table's tests."),
) -> None:
    """Each quantitative claim of the paper, recomputed from its own tables and from our runs."""
    from benchmark.claims import FORMATS, claims_table, render_claims
    from benchmark.records import load_records, records_to_frame
    from benchmark.tables import significance_by_axis

    frame = records_to_frame(load_records(results) if results.is_dir() else [])
    tests = {}
    if significance and not frame.empty:
        check_test(test, adjust)
        with console.status("paired tests of DIFFUMA against each baseline ..."):
            tests = significance_by_axis(frame, results, method=test, adjustment=adjust)
    built = claims_table(frame, significance=tests)
    _print_claims(built)
    for path in render_claims(built, out, FORMATS if format_ is TableFormat.all else (format_.value,)):
        console.print(f"wrote {path}")


def _print_claims(built: Any) -> None:
    """One block per claim (its text wraps at word boundaries), so it reads at any terminal width."""
    from rich.rule import Rule
    from rich.text import Text

    labels = {"paper_figure": "figure", "recomputed": "recomputed", "verdict": "verdict",
              "our_runs": "our runs", "our_verdict": "our verdict"}
    console.print(Rule("The paper's claims"))
    for row in built.to_dict("records"):
        console.print(Text(f"{row['claim']}  ({row['where']})", style="bold"))
        for key, label in labels.items():
            line = Text(f"  {label}: ", style="cyan")
            line.append(str(row[key]))
            console.print(line)
        console.print()


@app.command()
@friendly_errors
def reproduce(
    suite: str = typer.Argument("diffuma-paper", help="A shipped suite (diffuma-paper) or a suite YAML file."),
    profile: str = typer.Option("quick", "--profile", "-p", help="smoke | quick | paper."),
    seeds: str = typer.Option("0", "--seeds", help="Comma-separated seeds."),
    dataset: str | None = typer.Option(None, "--dataset", "-d", help="Replace the profile's datasets."),
    models: str | None = typer.Option(None, "--models", "-m", help="Only these of the suite's models."),
    results: Path = typer.Option(Path("results"), "--results", help="Folder of run records."),
    out: Path | None = typer.Option(None, "--out", help="Tables folder (default tables/<suite>/)."),
    data_root: Path | None = typer.Option(None, "--data-root", help="Override data.root (dataset folder)."),
    jobs: int | None = typer.Option(None, "--jobs", "-j", help="Runs at once (as bench run)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="List the runs, their cost and the bench run commands."),
    launcher: Launcher = _LAUNCHER,
    partition: str | None = _PARTITION,
    time_: str | None = _TIME,
    gpus_per_node: int | None = _GPUS,
    nodes: int | None = _NODES,
    cpus_per_task: int | None = _CPUS,
    mem: str | None = _MEM,
    account: str | None = _ACCOUNT,
    sbatch: list[str] = _SBATCH,
    array_parallelism: int | None = _ARRAY,
    wait: bool = _WAIT,
    slurm_executor: SlurmExecutor = _EXECUTOR,
) -> None:
    """Every run a paper's tables need (shared with `bench run`, finished ones skipped), then all its tables.

    With --launcher slurm the missing runs are submitted as SLURM jobs; the tables follow with --wait,
    or when the same command is run again once `bench status` shows the runs finished.
    """
    from benchmark.cli_reproduce import reproduce_command

    slurm = _slurm_options(launcher, slurm_executor, partition, time_, gpus_per_node, nodes, cpus_per_task, mem,
                           account, sbatch, array_parallelism, wait)
    if slurm is not None and jobs is not None:
        raise BenchError("--jobs sets how many runs execute at once here; with --launcher slurm every run is a job "
                         "of its own (--array-parallelism N caps how many run at once).")
    reproduce_command(suite, profile, _int_list(seeds, "--seeds") or [0], dataset, models, results, out,
                      data_root, jobs, dry_run, slurm=slurm, wait=wait)


@app.command()
@friendly_errors
def status(
    results: Path = typer.Option(Path("results"), "--results", help="Folder of run records."),
    wide: bool = typer.Option(False, "--wide", help="Add each run's id (and a failed job's log) to the table."),
    suite: str | None = typer.Option(None, "--suite", help="Also list the runs `bench reproduce SUITE` plans "
                                                           "(with --profile, --seeds, --models, --dataset)."),
    profile: str | None = typer.Option(None, "--profile", "-p",
                                       help="Also list the runs `bench run` plans with these options (the same "
                                            "defaults) that were never started."),
    models: str | None = typer.Option(None, "--models", "-m", help="As bench run (for the planned runs)."),
    dataset: str | None = typer.Option(None, "--dataset", "-d", help="As bench run (for the planned runs)."),
    seeds: str | None = typer.Option(None, "--seeds", help="As bench run (for the planned runs)."),
    eval_at: str | None = typer.Option(None, "--eval-at", help="As bench run (for the planned runs)."),
    pred_lens: str | None = typer.Option(None, "--pred-lens", help="As bench run (for the planned runs)."),
    set_: list[str] = typer.Option([], "--set", help="As bench run (for the planned runs)."),
) -> None:
    """Which runs are finished, running, queued on SLURM, failed (and why), crashed or not started yet."""
    import warnings

    from benchmark.status import run_states, summary

    planned = None
    if suite is not None:
        from benchmark.reproduce import load_suite, plan_suite

        planned = plan_suite(load_suite(suite), profile or "quick", _int_list(seeds, "--seeds") or [0], dataset,
                             models)
    elif any(v is not None for v in (profile, models, dataset, seeds, eval_at, pred_lens)) or set_:
        from benchmark.runner import plan_runs

        planned = plan_runs(models or "all", dataset or "synthetic-weather", profile or "quick",
                            _int_list(seeds, "--seeds") or [0], _run_overrides(set_, eval_at=eval_at),
                            pred_lens=None if pred_lens is None else _pred_len_list(pred_lens))
    if planned is None and not results.is_dir():
        raise BenchError(f"There is no results folder {results}/. Run `bench run` first, or pass --results DIR.")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rows = run_states(results, planned)
    for warning in caught:
        error_console.print(f"[yellow]warning:[/] {warning.message}", highlight=False)
    if not rows:
        console.print(f"No runs in {results}/ yet: `bench run` or `bench reproduce` starts them.", highlight=False)
        return
    _print_status(rows, results, wide)
    console.print(summary(rows), highlight=False)


_STATE_STYLES = {"finished": "green", "running": "cyan", "pending": "blue", "submitted": "blue", "stale": "red",
                 "failed": "red", "corrupt": "red", "incomplete": "yellow", "not started": "dim"}


def _print_status(rows: list[Any], results: Path, wide: bool) -> None:
    """The status rows as one table: names, seeds and states whole, the detail folded into what is left."""
    from rich import box

    rich_table = RichTable(title=f"Runs in {results}/", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False,
                           collapse_padding=True, title_justify="left")
    headers = ("run id", "model", "dataset", "seed", "T_out", "state") if wide else ("model", "dataset", "seed",
                                                                                        "state")
    cells = [[*([r.run_id] if wide else []), r.model or "?", r.dataset or "?", _or_dash(r.seed),
              *([_or_dash(r.t_out)] if wide else []), r.state] for r in rows]
    for i, header in enumerate(headers):
        _whole_column(rich_table, header, [c[i] for c in cells], justify="right" if header in ("seed", "T_out")
                      else "left")
    rich_table.add_column("detail", overflow="fold", ratio=1)
    for row, cell in zip(rows, cells, strict=True):
        style = _STATE_STYLES.get(row.state, "")
        rich_table.add_row(*cell[:-1], f"[{style}]{row.state}[/]" if style else row.state, _status_detail(row, wide))
    console.print(rich_table)


def _or_dash(value: Any) -> str:
    return "–" if value is None else str(value)


def _status_detail(row: Any, wide: bool) -> str:
    """A row's detail as plain text: cut to 100 characters at the terminal's width, whole with --wide (and the log)."""
    from rich.markup import escape

    detail = row.detail
    if wide and row.log:
        detail += f"\nlog: {row.log}"
    elif not wide and len(detail) > 100:
        detail = detail[:99] + "…"
    return escape(detail)


@app.command()
@friendly_errors
def plot(
    results: Path = typer.Option(Path("results"), "--results", help="Folder of run records."),
    out: Path = typer.Option(Path("figures"), "--out", help="Folder the figures are written to."),
    format_: str = typer.Option("png,pdf", "--format", "-f", help="Comma-separated: png, pdf, svg."),
) -> None:
    """The paper's figures from the stored runs (grids, curves, spectra with detail ratios).

    Prediction grids (inputs, truth, each model and its error), learning curves, the epoch sweep beside
    the paper's, per-lead curves and power spectra; PNG and PDF.
    """
    from benchmark.cli_plot import plot_command

    plot_command(results, out, format_)


@app.command()
@friendly_errors
def predict(
    run_id: str = typer.Argument(..., help="The run's id (its folder under --results)."),
    results: Path = typer.Option(Path("results"), "--results", help="Folder of run records."),
    out: Path | None = typer.Option(None, "--out", help="The netCDF file (default: <results>/<run_id>/forecasts.nc)."),
    accelerator: str = typer.Option("auto", "--accelerator", help="auto (CUDA when present), cpu or gpu."),
) -> None:
    """A finished run's forecasts of the whole test split as netCDF (WeatherBench 2 layout; CHDL as frames).

    Loads the run's best checkpoint, the weights its test metrics were computed with; physical units.
    """
    from benchmark.cli_predict import predict_command

    predict_command(run_id, results, out, accelerator)


@app.command()
@friendly_errors
def ensemble(
    run_id: str = typer.Argument(..., help="The run's id (its folder under --results)."),
    results: Path = typer.Option(Path("results"), "--results", help="Folder of run records."),
    members: int = typer.Option(8, "--members", "-n", help="Ensemble size N (at least 2)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the members' noise."),
    ensemble_t: int | None = typer.Option(None, "--ensemble-t", help="Noise level (diffusion step) the single pass "
                                          "is noised to (default: the model's ensemble_t)."),
    ensemble_steps: int | None = typer.Option(None, "--ensemble-steps", help="DDIM steps back to a clean forecast "
                                              "(default: the model's ensemble_steps)."),
    accelerator: str = typer.Option("auto", "--accelerator", help="auto (CUDA when present), cpu or gpu."),
) -> None:
    """Score a finished DIFFUMA run's test split as an ensemble: fair CRPS, spread/skill, rank histogram.

    The members differ only in diffusion noise (`DIFFUMA.sample_ensemble`); the scores go into the run's
    record under `ensemble` (the run id does not change) and reach `bench table --metrics crps,spread_skill`.
    """
    from benchmark.cli_predict import ensemble_command

    ensemble_command(run_id, results, members, seed, ensemble_t, ensemble_steps, accelerator)


@app.command()
@friendly_errors
def report(
    results: Path = typer.Option(Path("results"), "--results", help="Folder of run records."),
    out: Path = typer.Option(Path("report"), "--out", help="Folder for report.html, report.md and figures/."),
    plots: bool = typer.Option(True, "--plots/--no-plots", help="Draw the figures into the report."),
) -> None:
    """One self-contained HTML report of the stored runs, and the same as Markdown.

    Every table the runs support beside the paper's, significance, claims, figures, the runs' data and
    environment, and what was not run.
    """
    from benchmark.cli_report import report_command

    report_command(results, out, plots)


def main() -> None:
    """Entry point for `python -m benchmark`."""
    app()
