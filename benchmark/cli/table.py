"""`bench table` and `bench claims`: the analysis stage (`benchmark.analysis`) rendered."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table as RichTable

from benchmark.cli.common import check_test, console, friendly_errors, plain_width, whole_column
from benchmark.cli.options import (
    Space,
    TableFormat,
)
from benchmark.core.errors import BenchError


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
                                              "--metrics score from the same seeds' runs in fp32, and whether it "
                                              "is equivalent within 2% (TOST on the per-window errors)."),
    components: bool = typer.Option(False, "--components",
                                    help="Main table: add a row for each part forecast a run recorded (DIFFUMA's "
                                         "y_mamba, its Mamba path inside the full model), beside the model."),
    sweep_dataset: str | None = typer.Option(None, "--sweep-dataset",
                                             help="With --compare: the paper's dataset taken for its Tables 3-5, "
                                                  "which do not state one (default weatherbench:r; see "
                                                  "benchmark/paper/numbers.py)."),
) -> None:
    """Render the paper's tables from the stored run records (Table 1 from the data itself)."""
    from benchmark.analysis import tables
    from benchmark.results.records import components_to_frame, load_records, records_to_frame

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
    from benchmark.analysis import precision_drift
    from benchmark.analysis.tables import METRIC_LABELS

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
    from benchmark.analysis.precision_drift import compact
    from benchmark.analysis.tables import usual_seeds

    text = compact(drift)
    usual = usual_seeds(drift.rows[["ref_n", "n"]])
    rich_table = RichTable(title=f"{title}, {usual} seed{'s' if usual > 1 else ''} each")
    whole_column(rich_table, "model", list(text.index), justify="left", style="cyan")
    for header in text.columns:
        whole_column(rich_table, header, text[header], justify="right")
    for label, row in text.iterrows():
        cells = [*row.iloc[:-1], "[bold red]NO[/]" if row["equiv."] == "NO" else row["equiv."]]
        rich_table.add_row(label, *cells)
    return rich_table


def _compare_table(against: str, built: Any, space: str, out: Path, formats: tuple[str, ...],
                   sweep_dataset: str | None = None) -> None:
    from benchmark.analysis import compare

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
    from benchmark.analysis.dataset_table import DEFAULT_SELECTION, dataset_table, render_dataset_table

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
        whole_column(rich_table, column, [row[i] for row in rows], justify="left" if i == 0 else "right")
    for i, row in enumerate(rows):
        rich_table.add_row(*row, style="dim" if i % 2 else None, end_section=bool(i % 2) and i < len(rows) - 1)
    console.print(rich_table)
    for r in text:  # free text: wrapped below the table, not folded into a column
        if r["note"]:
            console.print(f"[cyan]{r['dataset']}[/]: {r['note']}", highlight=False)
    for path in render_dataset_table(frame, out, formats, profile):
        console.print(f"wrote {path}")


def _print_table(built: Any) -> None:
    """The table at the console's width: a column group that does not fit goes to a table of its own."""
    from benchmark.analysis.tables import formatted

    text = formatted(built, bold=("[bold]", "[/bold]"))
    title = built.name.replace("_", " ")
    index_names = [n or "model" for n in text.index.names]
    keys = [index if isinstance(index, tuple) else (index,) for index in text.index]
    index_width = sum(plain_width([k[i] for k in keys], n) + 3 for i, n in enumerate(index_names)) + 1
    groups: dict[tuple[str, ...], list[Any]] = {}
    for column in text.columns:
        groups.setdefault(tuple(map(str, column[:-1])), []).append(column)
    chunks: list[list[tuple[str, ...]]] = [[]]
    width = index_width
    for prefix, columns in groups.items():
        label = " ".join(prefix)
        need = sum(max(len(label), plain_width(text[c], str(c[-1]))) + 3 for c in columns)
        if chunks[-1] and width + need > console.width:
            chunks.append([])
            width = index_width
        chunks[-1].append(prefix)
        width += need
    for chunk in chunks:
        single = len(chunk) == 1 and any(chunk[0])
        rich_table = RichTable(title=f"{title}: {' '.join(chunk[0])}" if single else title)
        for i, name in enumerate(index_names):
            whole_column(rich_table, name, [k[i] for k in keys], style="cyan")
        columns = [c for prefix in chunk for c in groups[prefix]]
        for column in columns:
            label = str(column[-1]) if single else "\n".join(map(str, column))
            cells = [*text[column], *(label.split("\n") if not single else [])]
            rich_table.add_column(label, justify="right", min_width=plain_width(cells, str(column[-1])),
                                  no_wrap=True)
        for key, (_, row) in zip(keys, text[columns].iterrows(), strict=True):
            rich_table.add_row(*map(str, key), *map(str, row.tolist()))
        console.print(rich_table)
    if built.caption:  # below the last table, wrapped to the console rather than to the table's width
        console.print(built.caption, highlight=False)


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
    from benchmark.analysis.claims import FORMATS, claims_table, render_claims
    from benchmark.analysis.tables import significance_by_axis
    from benchmark.results.records import load_records, records_to_frame

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
