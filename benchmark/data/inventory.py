"""What a WeatherBench 1 folder holds: per variable folder, the years, time steps, grid and gaps.

Only metadata (coordinates) is read, so an inventory of decades of files takes seconds; values
are not checked for NaN here (the loader and the downloader do that).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xarray as xr

from benchmark.core.errors import DataError
from benchmark.data.wb1_files import GRID_FOLDER, VARIABLES, format_years, netcdf_engine, year_files
from benchmark.data.weatherbench import find_grid_folder


@dataclass
class FileInfo:
    """Coordinates of one readable variable-year file."""

    year: int
    variable: str
    times: np.ndarray
    grid: tuple[int, int]
    levels: list[float] | None


@dataclass
class FolderInventory:
    """One variable folder: what is there and what is wrong with it."""

    folder: str
    variable: str | None = None
    years: list[int] = field(default_factory=list)
    steps: dict[int, int] = field(default_factory=dict)
    step_hours: float | None = None
    grids: list[tuple[int, int]] = field(default_factory=list)
    levels: list[float] | None = None
    missing_years: list[int] = field(default_factory=list)
    short_years: dict[int, tuple[int, int]] = field(default_factory=dict)
    irregular: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    unreadable: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the folder has readable years without gaps or problems."""
        return bool(self.years) and not self.issues()

    def issues(self) -> list[str]:
        """Every gap and problem, one line each: missing and incomplete years, irregular time steps,
        inconsistent grids or levels, unreadable files."""
        lines = [f"missing years: {format_years(self.missing_years)}"] if self.missing_years else []
        if self.short_years:
            lines.append("incomplete years: " + ", ".join(f"{y} ({n} of {full} steps)"
                                                          for y, (n, full) in self.short_years.items()))
        lines += self.irregular + self.problems
        lines += [f"unreadable: {name} ({reason})" for name, reason in self.unreadable]
        return lines

    def summary(self) -> str:
        """The issues in a few words, e.g. "1 missing year, 2 incomplete years"."""
        counts = (("missing year", len(self.missing_years)), ("incomplete year", len(self.short_years)),
                  ("irregular step", len(self.irregular)), ("inconsistency", len(self.problems)),
                  ("unreadable file", len(self.unreadable)))
        return ", ".join(f"{n} {what}{'s' if n > 1 else ''}" for what, n in counts if n)


@dataclass
class Inventory:
    """All variable folders of one `5.625deg` folder."""

    grid_dir: Path
    folders: list[FolderInventory]


def _hours(step: np.timedelta64) -> float:
    return float(step / np.timedelta64(1, "h"))


def _read_file_info(path: Path, year: int, folder: str) -> FileInfo:
    expected = next((v.name for v in VARIABLES.values() if v.folder == folder), None)
    with xr.open_dataset(path, engine=netcdf_engine(), cache=False) as dataset:
        names = list(dataset.data_vars)
        name = expected if expected in names else (names[0] if names else None)
        if name is None:
            raise ValueError("no data variable")
        array = dataset[name]
        lat = "lat" if "lat" in array.dims else "latitude"
        lon = "lon" if "lon" in array.dims else "longitude"
        times = np.asarray(array["time"].values)
        if times.dtype.kind != "M":
            raise ValueError(f"time is not a date ({times.dtype})")
        levels = None
        if "level" in array.dims:
            levels = [float(v) for v in np.asarray(array["level"].values)]
        return FileInfo(year, str(name), times.astype("datetime64[ns]"), (array.sizes[lat], array.sizes[lon]),
                        levels)


def _year_length_steps(year: int, step: np.timedelta64) -> int:
    start = np.datetime64(f"{year}-01-01", "ns")
    end = np.datetime64(f"{year + 1}-01-01", "ns")
    return int((end - start) // step)


def _check_times(entry: FolderInventory, infos: list[FileInfo]) -> None:
    """Set the folder's time step (the most common one) and note irregular steps, incomplete years
    and jumps between consecutive complete years."""
    counts: Counter = Counter()
    for info in infos:
        counts.update(np.diff(info.times).tolist())
    if not counts:
        return
    step = np.timedelta64(counts.most_common(1)[0][0], "ns")
    entry.step_hours = _hours(step)
    for previous, info in zip([None, *infos[:-1]], infos, strict=True):
        other = sorted({_hours(s) for s in np.unique(np.diff(info.times)) if s != step})
        if other:
            entry.irregular.append(f"{info.year}: irregular time steps ({', '.join(f'{h:g}' for h in other)} h "
                                   f"besides {entry.step_hours:g} h)")
        expected = _year_length_steps(info.year, step)
        if len(info.times) < expected and not other:
            entry.short_years[info.year] = (len(info.times), expected)
        complete = previous is not None and not ({previous.year, info.year} & set(entry.short_years))
        if complete and previous.year + 1 == info.year and info.times[0] - previous.times[-1] != step:
            jump = _hours(info.times[0] - previous.times[-1])
            entry.irregular.append(f"{previous.year}->{info.year}: {jump:g} h between the years")


def _inventory_folder(folder_dir: Path) -> FolderInventory:
    entry = FolderInventory(folder_dir.name)
    files = year_files(folder_dir)
    infos = []
    for year, path in files:
        try:
            infos.append(_read_file_info(path, year, folder_dir.name))
        except Exception as err:  # netCDF4/HDF5 raise many exception types for a damaged file
            entry.unreadable.append((path.name, f"{type(err).__name__}: {err}"))
    if not infos:
        return entry
    entry.variable = Counter(i.variable for i in infos).most_common(1)[0][0]
    entry.years = [i.year for i in infos]
    entry.steps = {i.year: len(i.times) for i in infos}
    entry.grids = sorted({i.grid for i in infos})
    level_sets = sorted({tuple(i.levels) for i in infos if i.levels is not None})
    entry.levels = list(level_sets[0]) if len(level_sets) == 1 else None
    if len(level_sets) > 1:
        entry.problems.append(f"levels differ between files: {len(level_sets)} different sets")
    if len(entry.grids) > 1:
        entry.problems.append("grids differ between files: " + ", ".join(f"{a}x{b}" for a, b in entry.grids))
    present = {year for year, _ in files}  # unreadable files are listed as such, not as missing
    entry.missing_years = sorted(set(range(min(present), max(present) + 1)) - present)
    _check_times(entry, infos)
    return entry


def inventory(root: str | Path | None) -> Inventory:
    """What the WeatherBench 1 folder at `root` (the folder holding `5.625deg/`, or that folder itself;
    None: the loader's default locations) holds, per variable folder. Unreadable files are listed,
    not raised; DataError when there is no WeatherBench folder at all."""
    try:
        grid_dir = find_grid_folder(None if root is None else str(root))
    except DataError:
        if root is None:
            raise
        raise DataError(
            f"No WeatherBench data under {root}: expected {Path(root) / GRID_FOLDER}/<variable>/"
            f"<variable>_<year>_{GRID_FOLDER}.nc files. Fetch them with `bench data download weatherbench "
            f"--root {root}`, or pass the folder that contains `{GRID_FOLDER}/`."
        ) from None
    folders = [_inventory_folder(p) for p in sorted(grid_dir.iterdir()) if p.is_dir() and not p.name.startswith(".")]
    return Inventory(grid_dir, folders)


def describe_years(entry: FolderInventory) -> str:
    """The folder's years as text, e.g. "2010-2012, 2014"."""
    return format_years(entry.years) or "none"
