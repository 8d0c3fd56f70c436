"""`bench data`: download datasets and show what is on disk.

    bench data download weatherbench --root DIR [--variables t2m,tcc,r,u10,v10] [--years 2010-2018]
                                     [--store URL] [--levels 1000,850]
    bench data info weatherbench [--root DIR]

Only typer and rich are imported here; the work happens in `benchmark.data.wb2` and
`benchmark.data.inventory`, imported inside the commands so that `bench --help` stays fast.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich import box
from rich.table import Table

from benchmark.cli_common import console, friendly_errors
from benchmark.errors import BenchError

data_app = typer.Typer(help="Download datasets and show what is on disk.", no_args_is_help=True)
DATASETS = ("weatherbench",)


def _require_dataset(name: str, command: str) -> None:
    if name not in DATASETS:
        raise BenchError(f"Unknown dataset {name!r} for `bench data {command}`; available: {', '.join(DATASETS)}.")


def _levels(text: str | None) -> list[float] | None:
    if not text:
        return None
    try:
        return [float(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise BenchError(f"--levels must be comma-separated pressure levels in hPa such as 1000,850 "
                         f"(got {text!r}).") from None


@data_app.command()
@friendly_errors
def download(
    dataset: str = typer.Argument(..., help="Dataset to download: weatherbench."),
    root: Path = typer.Option(..., "--root", help="Folder that receives 5.625deg/ (the WeatherBench 1 layout)."),
    variables: str = typer.Option("t2m,tcc,r,u10,v10", "--variables",
                                  help="Comma-separated: t2m, tcc, r, u10, v10 (uv10 = u10,v10)."),
    years: str = typer.Option("2010-2018", "--years", help="Years such as 2010-2018 or 2010,2016."),
    store: str | None = typer.Option(None, "--store",
                                     help="WeatherBench 2 zarr store: gs://, http(s):// URL or local path "
                                          "(default: the public ERA5 64x32 store)."),
    levels: str | None = typer.Option(None, "--levels",
                                      help="Pressure levels (hPa) of r to keep, e.g. 1000,850 (default: all)."),
) -> None:
    """Write WeatherBench 1 files from a WeatherBench 2 zarr store; verified files are skipped."""
    _require_dataset(dataset, "download")
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from benchmark.data.wb2 import WB2_STORE, download_weatherbench

    store = store or WB2_STORE
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as bar:
        task = bar.add_task(f"opening {store}", total=None)

        def on_progress(done: int, total: int, text: str) -> None:
            bar.update(task, completed=done, total=total, description=text)

        report = download_weatherbench(root, store=store, variables=variables, years=years,
                                       levels=_levels(levels), progress=on_progress)
    if report.regridded:
        console.print(f"Regridded from the store's {report.source_grid[0]} x {report.source_grid[1]} grid to 32 x 64 "
                      "(conservative).")
    for name, conversion in report.conversions.items():
        console.print(f"Converted {name}: {conversion}.")
    for result in report.files:
        if result.status == "rewritten":
            console.print(f"[yellow]rewrote[/] {result.path} ({result.reason})", highlight=False)
    console.print(f"[green]✓[/] {report.count('written')} written, {report.count('rewritten')} rewritten, "
                  f"{report.count('skipped')} already complete, in {report.root}/.", highlight=False)
    console.print(f"Inspect with `bench data info weatherbench --root {report.root}`; train with "
                  f"`bench run --dataset weatherbench:t2m --data-root {report.root}`.", highlight=False)


def _levels_text(levels: list[float] | None) -> str:
    if not levels:
        return "–"
    if len(levels) <= 3:
        return ", ".join(f"{v:g}" for v in levels)
    return f"{len(levels)} ({min(levels):g}-{max(levels):g} hPa)"


def _steps_text(steps: dict[int, int]) -> str:
    if not steps:
        return "–"
    low, high = min(steps.values()), max(steps.values())
    return f"{low}" if low == high else f"{low}-{high}"


@data_app.command()
@friendly_errors
def info(
    dataset: str = typer.Argument(..., help="Dataset to inspect: weatherbench."),
    root: Path | None = typer.Option(None, "--root", help="Folder holding 5.625deg/ (default: where the loader "
                                                          "looks: $DIFFUMA_BENCH_DATA or ./data/weatherbench)."),
) -> None:
    """Show per variable: years, time steps per year, time step, grid, levels, gaps and unreadable files."""
    _require_dataset(dataset, "info")
    from benchmark.data.inventory import describe_years, inventory

    found = inventory(root)
    table = Table(title=f"WeatherBench in {found.grid_dir}", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for column in ("folder", "var", "years", "steps/yr", "step h", "grid", "levels", "issues"):
        table.add_column(column, justify="right" if column in ("steps/yr", "step h") else "left",
                         no_wrap=column in ("folder", "var", "years", "grid"))
    for entry in found.folders:
        table.add_row(
            entry.folder, entry.variable or "–", describe_years(entry), _steps_text(entry.steps),
            f"{entry.step_hours:g}" if entry.step_hours else "–",
            ", ".join(f"{a}x{b}" for a, b in entry.grids) or "–", _levels_text(entry.levels),
            f"[red]{entry.summary()}[/]" if entry.issues() else "[green]none[/]",
        )
    console.print(table)
    if not found.folders:
        console.print(f"No variable folders in {found.grid_dir}.")
    for entry in found.folders:
        for line in entry.issues():
            console.print(f"[bold]{entry.folder}[/]: {line}", highlight=False)
