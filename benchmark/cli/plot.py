"""`bench plot`: the paper's figures from the stored run records (`benchmark.present.plots`, imported only when run)."""


from __future__ import annotations

from pathlib import Path

import typer

from benchmark.cli.common import (
    console,
    friendly_errors,
    require_run_records,
)
from benchmark.core.errors import BenchError


def parse_formats(text: str, known: tuple[str, ...]) -> tuple[str, ...]:
    """`png,pdf` as ("png", "pdf"): lower-cased, duplicates dropped; BenchError naming an unknown one."""
    wanted = tuple(dict.fromkeys(part.strip().lower().lstrip(".") for part in text.split(",") if part.strip()))
    unknown = [fmt for fmt in wanted if fmt not in known]
    if not wanted or unknown:
        raise BenchError(f"Unknown figure format(s) {', '.join(unknown) or repr(text)}; choose from "
                         f"{', '.join(known)} (comma-separated, e.g. --format png,pdf).")
    return wanted


def plot_command(results: Path, out: Path, formats: str) -> None:
    """Draw every figure from the records under `results` into `out` and print each file written."""
    results, out = Path(results), Path(out)
    require_run_records(results, "the figures are drawn from their records")
    from benchmark.present.figures import plot_all
    from benchmark.present.plots import KNOWN_FORMATS

    wanted = parse_formats(formats, KNOWN_FORMATS)
    with console.status(f"drawing the figures from {results}/ ..."):
        written = plot_all(results, out, wanted)
    if not any(written.values()):
        raise BenchError(f"No figure could be drawn from the records in {results}/: none of them is finished "
                         "and readable, or they hold no curves, scores or stored predictions. Re-run them with "
                         "this version of diffuma-bench (bench run, or bench reproduce).")
    for name, paths in written.items():
        if not paths:
            console.print(f"{name}: skipped (the records have nothing to draw it from)")
        for path in paths:
            console.print(f"{name}: {path}", highlight=False, soft_wrap=True)


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
    from benchmark.cli.plot import plot_command

    plot_command(results, out, format_)
