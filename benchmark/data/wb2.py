"""WeatherBench 1 files from a WeatherBench 2 / ARCO-ERA5 zarr store (the original WeatherBench 1 server is gone).

`download_weatherbench` reads ERA5 from a zarr store and writes the WeatherBench 1 layout that
`benchmark.data.weatherbench` reads: one netCDF file per variable and year, WB1 short names
(`t2m`, `tcc`, `r`, `u10`, `v10`) and units (K, (0 - 1), %, m s**-1), dims `time, lat, lon` (plus
`level` for `r`), latitude ascending -87.1875 .. 87.1875, longitude 0 .. 354.375. The files keep
the store's time step: 6-hourly from `WB2_STORE`, hourly (as WeatherBench 1 itself) from
`WB2_HOURLY_STORE`.

Two stores are known by name (`bench data download weatherbench --source ...`); volumes are for
the default variables and years 2010-2018, computed from the grids (float32), not measured:

- `wb2` (default, `WB2_STORE`): WeatherBench 2's 6-hourly ERA5 already on the 64 x 32 grid. About
  12 MB per single-level variable and year (r: 13 levels, ~155 MB), ~1.8 GB read and written in
  all; minutes on a usual connection.
- `wb2-hourly` (`WB2_HOURLY_STORE`): the hourly 0.25-degree ARCO-ERA5 store (721 x 1440), regridded
  here conservatively to 32 x 64. It is read at full resolution: ~4 MB per variable and hour before
  compression, ~36 GB per variable-year, ~1.3 TB for t2m, tcc, u10 and v10 over 9 years (the
  transfer is smaller by the store's compression), for ~2.6 GB written. Bandwidth-bound: hours
  inside Google Cloud (us-central1), a day or more over a home connection. It has no
  `relative_humidity` (its pressure-level humidity is `specific_humidity`), so `r` is not in its
  default variables; take `r` from `--source wb1-zip` or `--source wb2`.

Details:

- The store is a URL or a path: `gs://...` (opened anonymously through gcsfs), `http(s)://...` or
  any other fsspec URL, or a local folder. All go through one `xarray.open_zarr` call.
- Store names and dims are WeatherBench 2's and ARCO-ERA5's (the same): `2m_temperature`,
  `total_cloud_cover`, `relative_humidity` (with `level`), `10m_u_component_of_wind`,
  `10m_v_component_of_wind`; dims `time`, `longitude`, `latitude` in any order, latitude in either
  direction, longitude in 0..360 or -180..180. A store's `valid_time_start` / `valid_time_stop`
  attributes (ARCO-ERA5 has them; its time axis runs past the data) limit the years offered.
- Units are converted when the store's `units` attribute names other units than WB1 uses (degC ->
  K, fraction <-> %, km/h -> m s**-1). Without a `units` attribute, `tcc` and `r` are judged
  fraction or percent from their values (the two differ by a factor 100); other variables are
  taken to be in WB1 units.
- A store on another grid (e.g. 0.25 degree, 721 x 1440) is regridded to the 32 x 64 WeatherBench
  grid by conservative (area-weighted) averaging, see `benchmark.data.regrid.conservative_regrid`.
- Bounded memory: the store is read `chunk_steps` time steps at a time (default: as many as fit
  16 M values, i.e. 16 hours of a 0.25-degree field); only the 32 x 64 result of a year is kept.
  `progress` advances once per block read.
- Resumable per (variable, year): a file that exists and verifies is skipped; one that does not
  (damaged, partial year) is rewritten, through a temporary file renamed into place. Every written
  file is read back and verified.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from benchmark.core.errors import ConfigError, DataError
from benchmark.data.regrid import GridMapper
from benchmark.data.units import guess_fraction_units, unit_conversion
from benchmark.data.wb1_files import (
    GRID_FOLDER,
    VARIABLES,
    WB1_LAT,
    WB1_LON,
    WB2_STORE,
    Variable,
    format_years,
    netcdf_engine,
    parse_years,
    variable_file,
    write_variable_year,
)

# The hourly 0.25-degree ERA5 store of ARCO-ERA5 (1940 onwards, 37 levels, chunked one hour per
# chunk), the full-resolution store WeatherBench 2 builds on. Its address is documented in the
# "Analysis Ready Data" section of https://github.com/google-research/arco-era5 (README.md);
# WeatherBench 2's data guide names its own older copy,
# gs://weatherbench2/datasets/era5/1959-2022-full_37-1h-0p25deg-chunk-1.zarr-v2.
WB2_HOURLY_STORE = "gs://gcp-public-data-arco-era5/ar/full_37-1h-0p25deg-chunk-1.zarr-v3"
DEFAULT_VARIABLES = ("t2m", "tcc", "r", "u10", "v10")
HOURLY_DEFAULT_VARIABLES = ("t2m", "tcc", "u10", "v10")  # the hourly ARCO store has no relative humidity
HOURLY_CHUNK_STEPS = 24  # hours read at once from the hourly store: ~100 MB per block at 0.25 degrees
DEFAULT_YEARS = "2010-2018"
VARIABLE_GROUPS = {"uv10": ("u10", "v10")}
_BLOCK_VALUES = 1 << 24  # values read from the store at once by default: bounds memory for fine grids
_LISTED_NAMES = 30  # store variables named in a "no variable" error

ProgressCallback = Callable[[int, int, str], None]


@dataclass(frozen=True)
class FileResult:
    """What happened to one variable-year file: `written`, `skipped` (verified) or `rewritten`."""

    variable: str
    year: int
    path: Path
    status: str
    reason: str = ""


@dataclass
class DownloadReport:
    """The outcome of one `download_weatherbench` call."""

    store: str
    root: Path
    files: list[FileResult] = field(default_factory=list)
    source_grid: tuple[int, int] | None = None
    regridded: bool = False
    conversions: dict[str, str] = field(default_factory=dict)

    def count(self, status: str) -> int:
        """Number of files with `status` (`written`, `skipped` or `rewritten`)."""
        return sum(1 for f in self.files if f.status == status)


# --- opening the store ---------------------------------------------------------------------------


def storage_options(store: str) -> dict[str, Any] | None:
    """fsspec options for `store`: anonymous access for `gs://`, none for anything else."""
    return {"token": "anon"} if store.startswith("gs://") else None


@contextlib.contextmanager
def _quiet_gcsfs() -> Any:
    """Silence gcsfs's own log lines while the store is read: it logs each failed request with a
    traceback, and the DataError raised here already says what failed."""
    logger = logging.getLogger("gcsfs")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def open_store(store: str) -> xr.Dataset:
    """The zarr store at `store` (URL or path), lazily, with dims renamed to `time, lat, lon`."""
    if store.startswith("gs://"):
        # gcsfs's experimental file system first asks the storage-control API for the bucket type,
        # which anonymous users may not query (a warning per bucket, or timeouts); the plain one is
        # all a public WeatherBench 2 bucket needs. Read when gcsfs is first imported.
        os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
    try:
        dataset = xr.open_zarr(str(store), storage_options=storage_options(str(store)), chunks=None)
    except ImportError as err:
        raise DataError(
            f"Cannot open the zarr store {store}: a package is missing ({err}). Install the download "
            "dependencies with `pip install zarr gcsfs` (http stores also need aiohttp)."
        ) from err
    except Exception as err:  # zarr and fsspec raise many types for an unreachable or malformed store
        raise DataError(
            f"Cannot open the zarr store {store} ({type(err).__name__}: {err}). Check the URL or path and "
            f"your network; the public WeatherBench 2 store is {WB2_STORE}."
        ) from err
    renames = {old: new for old, new in (("latitude", "lat"), ("longitude", "lon")) if old in dataset.variables}
    dataset = dataset.rename(renames)
    for dim in ("time", "lat", "lon"):
        if dim not in dataset.dims:
            raise DataError(
                f"The zarr store {store} has no `{dim}` dimension (its dims: {', '.join(map(str, dataset.dims))}); "
                "a WeatherBench 2 store has time, latitude and longitude."
            )
    return dataset


def within_valid_time(dataset: xr.Dataset) -> xr.Dataset:
    """`dataset` limited to its `valid_time_start` .. `valid_time_stop` attributes (inclusive) when it
    has them: ARCO-ERA5's time axis runs past the data, which is NaN there."""
    start, stop = dataset.attrs.get("valid_time_start"), dataset.attrs.get("valid_time_stop")
    if not start or not stop:
        return dataset
    try:
        low, high = np.datetime64(str(start), "ns"), np.datetime64(str(stop), "ns")
    except ValueError:  # unparsable attributes: keep the whole time axis
        return dataset
    stamps = np.asarray(dataset["time"].values).astype("datetime64[ns]")
    first, last = int(np.searchsorted(stamps, low, "left")), int(np.searchsorted(stamps, high, "right"))
    return dataset.isel(time=slice(first, max(first, last)))


def _year_slices(dataset: xr.Dataset, store: str) -> dict[int, slice]:
    """Contiguous index range of each calendar year on the store's (increasing) time axis."""
    times = np.asarray(dataset["time"].values)
    if times.dtype.kind != "M" or not np.all(np.diff(times) > np.timedelta64(0)):
        raise DataError(f"The time coordinate of {store} must hold increasing dates; found {times.dtype} values.")
    if not len(times):
        return {}
    years = times.astype("datetime64[Y]").astype(int) + 1970
    first = np.flatnonzero(np.r_[True, np.diff(years) != 0])
    bounds = np.r_[first, len(years)]
    return {int(years[start]): slice(int(start), int(stop))
            for start, stop in zip(bounds[:-1], bounds[1:], strict=True)}


# --- choosing what to download -------------------------------------------------------------------


def resolve_variables(variables: str | Iterable[str]) -> list[str]:
    """WB1 short names from names such as "t2m,uv10" or ["r", "2m_temperature"]; ConfigError if unknown."""
    items = variables.split(",") if isinstance(variables, str) else list(variables)
    by_folder = {v.folder: name for name, v in VARIABLES.items()}
    names: list[str] = []
    for item in (str(i).strip() for i in items):
        if not item:
            continue
        expanded = VARIABLE_GROUPS.get(item) or (by_folder.get(item, item),)
        unknown = [n for n in expanded if n not in VARIABLES]
        if unknown:
            raise ConfigError(
                f"Unknown WeatherBench variable {item!r}; choose from {', '.join(VARIABLES)} (or uv10 for "
                "u10 and v10), comma-separated."
            )
        names.extend(n for n in expanded if n not in names)
    if not names:
        raise ConfigError(f"No variables given; choose from {', '.join(VARIABLES)}.")
    return names


def resolve_years(years: Any) -> list[int]:
    """Sorted years from text such as "2010-2018" or "2010,2012" (or a list); ConfigError otherwise."""
    try:
        return parse_years(years, "years")
    except ConfigError:
        raise ConfigError(
            f"years = {years!r} is not a list of years: write it as text such as 2010-2018 or 2010,2012."
        ) from None


def resolve_root(root: str | Path) -> Path:
    """The folder that receives `5.625deg/`; the `5.625deg` folder itself is accepted too."""
    root = Path(root).expanduser()
    return root.parent if root.name == GRID_FOLDER else root


def _source_array(dataset: xr.Dataset, name: str) -> xr.DataArray | None:
    variable = VARIABLES[name]
    for candidate in (variable.folder, variable.name):
        if candidate in dataset.data_vars:
            return dataset[candidate]
    return None


def _select_levels(array: xr.DataArray, variable: Variable, levels: Sequence[float] | None,
                   store: str) -> xr.DataArray:
    """`(time, level, lat, lon)` for a levelled variable, `(time, lat, lon)` otherwise."""
    extra = sorted(set(array.dims) - {"time", "lat", "lon", "level"})
    if extra or ("level" not in array.dims and variable.levelled):
        raise DataError(
            f"{array.name} in {store} has dims {array.dims}; expected time, latitude, longitude"
            f"{' and level' if variable.levelled else ''}."
        )
    if not variable.levelled:
        if "level" in array.dims:
            if array.sizes["level"] != 1:
                raise DataError(f"{array.name} in {store} has {array.sizes['level']} levels; expected one.")
            array = array.isel(level=0, drop=True)
        return array.transpose("time", "lat", "lon")
    available = np.asarray(array["level"].values, dtype=np.float64)
    if levels is not None:
        wanted = np.asarray(list(levels), dtype=np.float64)
        missing = [f"{v:g}" for v in wanted if not np.isclose(available, v).any()]
        if missing:
            raise ConfigError(
                f"Level(s) {', '.join(missing)} hPa are not in {array.name} of {store}; its levels are "
                f"{', '.join(f'{v:g}' for v in available)} hPa."
            )
        array = array.isel(level=[int(np.flatnonzero(np.isclose(available, v))[0]) for v in wanted])
    return array.transpose("time", "level", "lat", "lon")


# --- verifying and writing -----------------------------------------------------------------------


def _same(coordinate: np.ndarray, expected: np.ndarray) -> bool:
    return coordinate.shape == expected.shape and bool(np.allclose(coordinate, expected, atol=1e-3))


def _times_reason(found: np.ndarray, times: np.ndarray | None, year: int | None) -> str | None:
    """Why the file's time stamps `found` do not fit: exactly `times` when given, else a regular,
    increasing axis of at least two steps inside `year`."""
    if found.dtype.kind != "M":
        return f"time values of type {found.dtype}, expected dates"
    found = found.astype("datetime64[ns]")
    if times is not None:
        if len(found) != len(times):
            return f"{len(found)} time steps, expected {len(times)}"
        return None if np.array_equal(found, times.astype("datetime64[ns]")) else "time stamps differ from the store's"
    if len(found) < 2:
        return f"{len(found)} time step(s), expected at least two"
    if len(np.unique(np.diff(found))) != 1 or found[1] <= found[0]:
        return "irregular or decreasing time steps"
    years = set((found[[0, -1]].astype("datetime64[Y]").astype(int) + 1970).tolist())
    return None if year is None or years == {year} else f"time stamps outside {year}"


def verify_file(path: Path, variable: Variable, times: np.ndarray | None = None, levels: np.ndarray | None = None,
                year: int | None = None) -> str | None:
    """None when `path` is a complete WB1 file of `variable` on the WB1 grid (latitude either way)
    with the `levels` (a subset is enough), no NaN and exactly `times` (when `times` is None: a
    regular time axis inside `year`); otherwise the reason it is not."""
    if not path.is_file():
        return "missing"
    try:
        with xr.open_dataset(path, engine=netcdf_engine(), cache=False) as dataset:
            if variable.name not in dataset.data_vars:
                return f"no variable {variable.name!r}"
            array = dataset[variable.name]
            dims = ("time", "level", "lat", "lon") if variable.levelled else ("time", "lat", "lon")
            if array.dims != dims:
                return f"dims {array.dims}, expected {dims}"
            reason = _times_reason(np.asarray(array["time"].values), times, year)
            if reason is not None:
                return reason
            if not (_same(np.sort(array["lat"].values), WB1_LAT) and _same(array["lon"].values, WB1_LON)):
                return f"grid {array.sizes['lat']} x {array.sizes['lon']} is not the WeatherBench grid"
            if levels is not None:
                present = np.asarray(array["level"].values, dtype=np.float64)
                if not all(np.isclose(present, v).any() for v in levels):
                    return "levels differ from those requested"
            values = array.values
    except Exception as err:  # netCDF4/HDF5 raise many exception types for a damaged file
        return f"unreadable ({type(err).__name__})"
    bad = int(np.count_nonzero(~np.isfinite(values)))
    return f"{bad} NaN or infinite values" if bad else None


@dataclass
class _Source:
    """One variable of the store, ready to be read year by year, `block` time steps at a time."""

    name: str
    array: xr.DataArray
    mapper: GridMapper
    scale: float
    offset: float
    levels: np.ndarray | None
    block: int


def block_count(steps: int, block: int) -> int:
    """Reads needed for `steps` time steps, `block` at a time."""
    return -(-steps // block)


def _read_year(source: _Source, index: slice, on_block: Callable[[int], None]) -> np.ndarray:
    """One year of `source` on the WB1 grid in WB1 units, read `source.block` time steps at a time
    (only one block of the store's grid is in memory); `on_block(k)` after the k-th block."""
    out: np.ndarray | None = None
    for k, start in enumerate(range(index.start, index.stop, source.block), start=1):
        stop = min(start + source.block, index.stop)
        values = source.mapper(np.asarray(source.array.isel(time=slice(start, stop)).values))
        if (source.scale, source.offset) != (1.0, 0.0):
            values = values * source.scale + source.offset
        if out is None:
            out = np.empty((index.stop - index.start, *values.shape[1:]), dtype=np.float32)
        out[start - index.start:stop - index.start] = values
        on_block(k)
    assert out is not None  # a year slice is never empty
    return out


def _block_steps(array: xr.DataArray, chunk_steps: int | None) -> int:
    """Time steps per read: `chunk_steps`, or as many as fit `_BLOCK_VALUES` values."""
    if chunk_steps is not None:
        return chunk_steps
    return max(1, _BLOCK_VALUES // int(np.prod(array.shape[1:])))


def _names_text(names: Iterable[Any]) -> str:
    names = sorted(map(str, names))
    if len(names) > _LISTED_NAMES:
        return f"{', '.join(names[:_LISTED_NAMES])} and {len(names) - _LISTED_NAMES} more"
    return ", ".join(names) or "none"


def _missing_variables(dataset: xr.Dataset, missing: list[str], store: str) -> DataError:
    hint = ""
    if VARIABLES["r"].folder in missing and "specific_humidity" in dataset.data_vars:
        hint = (" This store has specific_humidity but no relative humidity (as the hourly ARCO-ERA5 store): take r "
                "from --source wb1-zip (hourly) or --source wb2 (6-hourly).")
    return DataError(
        f"The zarr store {store} has no variable {', '.join(missing)}. It has: {_names_text(dataset.data_vars)}."
        f"{hint} Choose other --variables or another store."
    )


def _prepare_sources(dataset: xr.Dataset, names: list[str], levels: Sequence[float] | None, store: str,
                     report: DownloadReport, chunk_steps: int | None) -> list[_Source]:
    """Every requested variable checked (presence, dims, levels, units) before anything is written."""
    arrays = {name: _source_array(dataset, name) for name in names}
    missing = [VARIABLES[n].folder for n, a in arrays.items() if a is None]
    if missing:
        raise _missing_variables(dataset, missing, store)
    sources = []
    for name in names:
        variable = VARIABLES[name]
        array = _select_levels(arrays[name], variable, levels, store)
        units = str(array.attrs.get("units", "") or "") or guess_fraction_units(name, array, store)
        scale, offset = unit_conversion(name, units)
        if (scale, offset) != (1.0, 0.0):
            guessed = "" if array.attrs.get("units") else " (no units attribute; judged from the values)"
            report.conversions[name] = f"{units} -> {variable.units}{guessed}"
        mapper = GridMapper(array["lat"].values, array["lon"].values)
        report.source_grid, report.regridded = mapper.source_shape, not mapper.native
        level_values = np.asarray(array["level"].values, dtype=np.float64) if variable.levelled else None
        sources.append(_Source(name, array, mapper, scale, offset, level_values, _block_steps(array, chunk_steps)))
    return sources


def _download_one(root: Path, source: _Source, year: int, index: slice, store: str,
                  on_block: Callable[[int], None]) -> FileResult:
    variable = VARIABLES[source.name]
    path = variable_file(root / GRID_FOLDER, variable.folder, year)
    times = np.asarray(source.array["time"].values[index], dtype="datetime64[ns]")
    existed = path.exists()
    reason = verify_file(path, variable, times, source.levels)
    if reason is None:
        return FileResult(source.name, year, path, "skipped")
    try:
        values = _read_year(source, index, on_block)
    except Exception as err:  # network and decoding errors of many types
        raise DataError(
            f"Reading {source.array.name} for {year} from {store} failed ({type(err).__name__}: {err}). "
            "Files written so far are kept: run the same command again to resume."
        ) from err
    bad = int(np.count_nonzero(~np.isfinite(values)))
    if bad:
        raise DataError(f"{source.array.name} for {year} in {store} has {bad} NaN or infinite values; "
                        "WeatherBench files may not have gaps. Check the store.")
    level = source.levels if variable.levelled else None
    write_variable_year(root, variable.folder, variable.name, year, values, times, WB1_LAT, WB1_LON,
                        variable.units, level)
    after = verify_file(path, variable, times, source.levels)
    if after is not None:
        raise DataError(f"{path} was written but does not read back correctly ({after}). Check the disk "
                        "(space, permissions) and run the command again.")
    return FileResult(source.name, year, path, "rewritten" if existed else "written", reason if existed else "")


def _chunk_steps(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(f"chunk_steps = {value!r} must be a whole number of time steps of at least 1 (e.g. 24).")
    return int(value)


def download_weatherbench(
    root: str | Path,
    store: str = WB2_STORE,
    variables: str | Iterable[str] = DEFAULT_VARIABLES,
    years: Any = DEFAULT_YEARS,
    levels: Sequence[float] | None = None,
    progress: ProgressCallback | None = None,
    chunk_steps: int | None = None,
) -> DownloadReport:
    """Write the WeatherBench 1 files of `variables` and `years` under `<root>/5.625deg/` from the
    zarr `store` (URL or path; `WB2_STORE` 6-hourly, `WB2_HOURLY_STORE` hourly); `levels` (hPa)
    limits the levels of `r` (default: all in the store); `chunk_steps` time steps are read at once
    (default: 16 M values). Files that already verify are skipped. `progress(done, total, text)`
    counts blocks read: called before each file, after each block and once at the end. Raises
    DataError/ConfigError for bad input."""
    root = resolve_root(root)
    names = resolve_variables(variables)
    wanted = resolve_years(years)
    steps = _chunk_steps(chunk_steps)
    store = str(store)
    with _quiet_gcsfs():
        return _download(root, store, names, wanted, levels, progress, steps)


def _download(root: Path, store: str, names: list[str], wanted: list[int], levels: Sequence[float] | None,
              progress: ProgressCallback | None, chunk_steps: int | None) -> DownloadReport:
    dataset = within_valid_time(open_store(store))
    slices = _year_slices(dataset, store)
    absent = [y for y in wanted if y not in slices]
    if absent:
        raise DataError(
            f"Year(s) {format_years(absent)} are not in the zarr store {store}; it holds "
            f"{format_years(sorted(slices)) or 'no dates'}. Choose --years within that range."
        )
    report = DownloadReport(store=store, root=root)
    sources = _prepare_sources(dataset, names, levels, store, report, chunk_steps)
    jobs = [(s, y, block_count(slices[y].stop - slices[y].start, s.block)) for s in sources for y in wanted]
    total = sum(blocks for _, _, blocks in jobs)
    done = 0
    for source, year, blocks in jobs:
        text = f"{source.name} {year}"

        def on_block(k: int, first: int = done, text: str = text) -> None:
            if progress is not None:
                progress(first + k, total, text)

        on_block(0)
        report.files.append(_download_one(root, source, year, slices[year], store, on_block))
        done += blocks
    if progress is not None:
        progress(total, total, "done")
    return report
