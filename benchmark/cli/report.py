"""`bench report`: the front end of `benchmark.present.report` (figures by `benchmark.present.plots`, then the
report)."""


from __future__ import annotations

from pathlib import Path

import typer

from benchmark.cli.common import (
    console,
    friendly_errors,
    require_run_records,
)


def report_command(results: Path, out: Path, plots: bool = True) -> None:
    """Write `out/report.html` (self-contained) and `out/report.md` from the run records in `results`;
    with `plots`, the figures of `benchmark.present.figures.plot_all` first (into `out/figures/`) and in the report.
    Raises BenchError when `results` is missing or holds no run record."""
    from benchmark.present.report import build_report

    results, out = Path(results), Path(out)
    require_run_records(results, "the report is made of their records")
    figures = _plot(results, out) if plots else {}
    html_path, markdown_path = build_report(results, out, figures)
    console.print(f"Report: {html_path} (self-contained HTML)", highlight=False)
    console.print(f"Markdown: {markdown_path}", highlight=False)


def _plot(results: Path, out: Path) -> dict[str, list[Path]]:
    """The figures of `benchmark.present.figures.plot_all`, drawn into `out/figures/`."""
    from benchmark.present.figures import plot_all

    with console.status(f"drawing the figures from {results}/ ..."):
        return plot_all(results, out / "figures")


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
    from benchmark.cli.report import report_command

    report_command(results, out, plots)
