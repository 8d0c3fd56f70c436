"""`bench data`: download datasets and show what is on disk.

    bench data download weatherbench --root DIR [--source wb2|wb2-hourly|wb1-zip] [--variables t2m,tcc,r,u10,v10]
                                     [--years 2010-2018] [--levels 1000,850]
                                     [--store URL] [--chunk-steps N]      (wb2, wb2-hourly)
                                     [--url URL] [--keep-zip]             (wb1-zip)
    bench data info weatherbench [--root DIR]

Sources of `download weatherbench` (volumes and times in `benchmark.data.wb2` and `benchmark.data.wb1_zip`):

- `wb2` (default): WeatherBench 2's 6-hourly ERA5 store on the 64 x 32 grid (`--store` for another).
- `wb2-hourly`: the hourly 0.25-degree ARCO-ERA5 store, regridded conservatively to 32 x 64, read
  `--chunk-steps` hours at a time (default 24); no `r` (the store has no relative humidity).
- `wb1-zip`: the original hourly WeatherBench 1 zips from a mirror (`--url`, required).

Only typer and rich are imported here; the work happens in `benchmark.data.wb2`, `benchmark.data.wb1_zip`
and `benchmark.data.inventory`, imported inside the commands so that `bench --help` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich import box
from rich.table import Table

from benchmark.cli.common import console, friendly_errors
from benchmark.core.errors import BenchError

data_app = typer.Typer(help="Download datasets and show what is on disk.", no_args_is_help=True)
DATASETS = ("weatherbench",)
SOURCES = {
    "wb2": "WeatherBench 2's 6-hourly ERA5 store at 64x32",
    "wb2-hourly": "the hourly 0.25-degree ARCO-ERA5 store, regridded to 32x64",
    "wb1-zip": "the original hourly WeatherBench 1 zips from a mirror given by --url",
}


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


def _check_source(source: str, url: str | None, store: str | None, keep_zip: bool, chunk_steps: int | None) -> None:
    """BenchError for an unknown source or an option the source does not take."""
    if source not in SOURCES:
        choices = "; ".join(f"{name} ({text})" for name, text in SOURCES.items())
        raise BenchError(f"Unknown --source {source!r}; choose one of: {choices}.")
    if source == "wb1-zip":
        if not url:
            raise BenchError("--source wb1-zip needs --url: the address of a mirror of the WeatherBench 1 zips "
                             "(a base URL the zip names such as 2m_temperature_5.625deg.zip are appended to, or a "
                             "template with {name} and {folder}).")
        unused = [flag for flag, given in (("--store", store), ("--chunk-steps", chunk_steps)) if given is not None]
        if unused:
            verb = "does" if len(unused) == 1 else "do"
            raise BenchError(f"{' and '.join(unused)} {verb} not apply to --source wb1-zip (it reads zips from --url).")
        return
    if url is not None:
        raise BenchError(f"--url is for --source wb1-zip only; --source {source} reads a zarr store (use --store "
                         "to give another store).")
    if keep_zip:
        raise BenchError(f"--keep-zip is for --source wb1-zip only; --source {source} downloads no zip.")


def _run_download(source: str, root: Path, variables: str | None, years: str, levels: list[float] | None,
                  store: str | None, url: str | None, keep_zip: bool, chunk_steps: int | None,
                  progress: Any) -> Any:
    """The report of the download from `source` (options already checked by `_check_source`)."""
    from benchmark.data import wb2

    if source == "wb1-zip":
        from benchmark.data.wb1_zip import download_wb1_zips

        return download_wb1_zips(root, url or "", variables=variables or wb2.DEFAULT_VARIABLES, years=years,
                                 levels=levels, keep_zip=keep_zip, progress=progress)
    if source == "wb2-hourly":
        store = store or wb2.WB2_HOURLY_STORE
        variables = variables or ",".join(wb2.HOURLY_DEFAULT_VARIABLES)
        chunk_steps = chunk_steps or wb2.HOURLY_CHUNK_STEPS
    return wb2.download_weatherbench(root, store=store or wb2.WB2_STORE, variables=variables or wb2.DEFAULT_VARIABLES,
                                     years=years, levels=levels, progress=progress, chunk_steps=chunk_steps)


@data_app.command()
@friendly_errors
def download(
    dataset: str = typer.Argument(..., help="Dataset to download: weatherbench."),
    root: Path = typer.Option(..., "--root", help="Folder that receives 5.625deg/ (the WeatherBench 1 layout)."),
    source: str = typer.Option("wb2", "--source",
                               help="wb2 (6-hourly, WeatherBench 2's 64x32 store), wb2-hourly (hourly, ARCO-ERA5 "
                                    "0.25 deg regridded to 32x64; ~36 GB read per variable-year) or wb1-zip (hourly, "
                                    "the original WeatherBench 1 zips from a mirror given by --url)."),
    variables: str | None = typer.Option(None, "--variables",
                                         help="Comma-separated: t2m, tcc, r, u10, v10 (uv10 = u10,v10). Default: "
                                              "all five; t2m,tcc,u10,v10 for wb2-hourly (its store has no r)."),
    years: str = typer.Option("2010-2018", "--years", help="Years such as 2010-2018 or 2010,2016."),
    store: str | None = typer.Option(None, "--store",
                                     help="zarr store for wb2/wb2-hourly: gs://, http(s):// URL or local path "
                                          "(default: the public store of the source)."),
    url: str | None = typer.Option(None, "--url",
                                   help="wb1-zip only: base URL of the zips (their names, e.g. "
                                        "2m_temperature_5.625deg.zip, are appended), a template with {name} "
                                        "and {folder}, or a local folder."),
    keep_zip: bool = typer.Option(False, "--keep-zip", help="wb1-zip only: keep the zips after unpacking."),
    chunk_steps: int | None = typer.Option(None, "--chunk-steps", min=1,
                                           help="wb2/wb2-hourly: time steps read from the store at once (bounds "
                                                "memory; default 24 for wb2-hourly, ~100 MB at 0.25 deg)."),
    levels: str | None = typer.Option(None, "--levels",
                                      help="Pressure levels (hPa) of r to keep, e.g. 1000,850 (default: all)."),
) -> None:
    """Write WeatherBench 1 files from a WeatherBench 2 / ARCO-ERA5 zarr store or the original WeatherBench 1
    zips; verified files are skipped, interrupted downloads resume."""
    _require_dataset(dataset, "download")
    _check_source(source, url, store, keep_zip, chunk_steps)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as bar:
        task = bar.add_task(f"opening {source}", total=None)

        def on_progress(done: int, total: int, text: str) -> None:
            bar.update(task, completed=done, total=total, description=text)

        report = _run_download(source, root, variables, years, _levels(levels), store, url, keep_zip, chunk_steps,
                               on_progress)
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
