"""`bench run` and `bench status`: the run stage (`benchmark.run`)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer
from rich.table import Table as RichTable

from benchmark.cli.common import console, error_console, friendly_errors, whole_column
from benchmark.cli.options import (
    ACCOUNT,
    ARRAY,
    CPUS,
    EXECUTOR,
    GPUS,
    LAUNCHER,
    MEM,
    NODES,
    PARTITION,
    SBATCH,
    TIME,
    WAIT,
    Launcher,
    SlurmExecutor,
    int_list,
    pred_len_list,
    run_overrides,
    slurm_options,
)
from benchmark.core.errors import BenchError

_STATE_STYLES = {"finished": "green", "running": "cyan", "pending": "blue", "submitted": "blue", "stale": "red",
                 "failed": "red", "corrupt": "red", "incomplete": "yellow", "not started": "dim"}


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
    launcher: Launcher = LAUNCHER,
    partition: str | None = PARTITION,
    time_: str | None = TIME,
    gpus_per_node: int | None = GPUS,
    nodes: int | None = NODES,
    cpus_per_task: int | None = CPUS,
    mem: str | None = MEM,
    account: str | None = ACCOUNT,
    sbatch: list[str] = SBATCH,
    array_parallelism: int | None = ARRAY,
    wait: bool = WAIT,
    slurm_executor: SlurmExecutor = EXECUTOR,
) -> None:
    """Train and evaluate models on a dataset; finished runs are skipped, broken ones resumed."""
    import json

    from benchmark.run.runner import execute_sweep, plan_runs, plan_sweep

    slurm = slurm_options(launcher, slurm_executor, partition, time_, gpus_per_node, nodes, cpus_per_task, mem,
                           account, sbatch, array_parallelism, wait)
    if slurm is not None and jobs is not None:
        raise BenchError("--jobs sets how many runs execute at once here; with --launcher slurm every run is a job "
                         "of its own (--array-parallelism N caps how many run at once).")
    overrides = run_overrides(set_, epochs, eval_at, data_root)
    seed_list = int_list(seeds, "--seeds") or [0]
    length_list = None if pred_lens is None else pred_len_list(pred_lens)
    configs = plan_runs(models, dataset, profile, seed_list, overrides, pred_lens=length_list)
    if dry_run:
        from benchmark.run.runner import DataCache, describe_plan

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
        from benchmark.cli.reproduce import submit_and_report

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

    from benchmark.run.status import run_states, summary

    planned = None
    if suite is not None:
        from benchmark.run.reproduce import load_suite, plan_suite

        planned = plan_suite(load_suite(suite), profile or "quick", int_list(seeds, "--seeds") or [0], dataset,
                             models)
    elif any(v is not None for v in (profile, models, dataset, seeds, eval_at, pred_lens)) or set_:
        from benchmark.run.runner import plan_runs

        planned = plan_runs(models or "all", dataset or "synthetic-weather", profile or "quick",
                            int_list(seeds, "--seeds") or [0], run_overrides(set_, eval_at=eval_at),
                            pred_lens=None if pred_lens is None else pred_len_list(pred_lens))
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
        whole_column(rich_table, header, [c[i] for c in cells], justify="right" if header in ("seed", "T_out")
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
