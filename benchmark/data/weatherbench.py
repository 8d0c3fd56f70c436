"""WeatherBench 1 (Rasp et al. 2020) at 5.625 degrees, read from its on-disk layout.

Layout (one netCDF4 file per variable and year, float32, dims `time, lat (32, ascending), lon (64)`)::

    <root>/5.625deg/2m_temperature/2m_temperature_<year>_5.625deg.nc                    t2m  K
    <root>/5.625deg/total_cloud_cover/total_cloud_cover_<year>_5.625deg.nc              tcc  0-1
    <root>/5.625deg/relative_humidity/relative_humidity_<year>_5.625deg.nc              r    %  (+ level)
    <root>/5.625deg/10m_u_component_of_wind/10m_u_component_of_wind_<year>_5.625deg.nc  u10  m/s
    <root>/5.625deg/10m_v_component_of_wind/10m_v_component_of_wind_<year>_5.625deg.nc  v10  m/s

Tasks: `t2m`, `tcc`, `r` (one pressure level, chosen by value) with C=1, and `uv10` with u10 then
v10 stacked as C=2 (or their speed as C=1, see `uv10_channels`).

Config keys (the run's `data` section; defaults in `DEFAULTS` below):

- `root`: the folder that contains `5.625deg/` (the `5.625deg` folder itself is accepted too).
  Unset: `$DIFFUMA_BENCH_DATA/weatherbench` or `$DIFFUMA_BENCH_DATA` when that variable is set,
  else `./data/weatherbench`.
- `t_in`, `t_out`: input and target frames per sample (12, 12).
- `train_years`, `val_years`, `test_years`: lists of years or strings such as "2010-2015"
  (2010-2015, 2016, 2017-2018: OpenSTL's splits). Splits may not share a year.
- `frame_interval`: keep every k-th time step as a frame (1; 6 turns hourly data into 6-hourly).
- `frame_hours`: hours between frames (unset). When set it decides instead of `frame_interval`,
  from the files' own time step: 6 gives 6-hourly frames from hourly WeatherBench 1 files and from
  6-hourly WeatherBench 2 downloads alike; asking for finer frames than the files hold is an error.
- `sample_stride`: frames between the first frames of consecutive windows (1).
- `level`: pressure level in hPa for `r`, matched by value (1000).
- `uv10_channels`: "uv" (u10 and v10, C=2) or "speed" (wind speed, C=1) for task `uv10` ("uv").
- `coarsen`: average k x k blocks of grid cells (1: the native 32 x 64 grid; 2: 16 x 32, i.e.
  11.25 degrees). Conservative (area-mean in index space) regridding for cheap CPU runs; k must
  divide 32.

Each split is its own array of frames; a window never crosses a split, nor a gap in time inside a
split (non-adjacent years). Normalization statistics come from the training split only and are
applied to all three splits.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from benchmark.data.base import ForecastData
from benchmark.data.normalization import fit_normalizer, normalize_inplace
from benchmark.data.registry import register_dataset
from benchmark.data.settings import whole_number
from benchmark.data.windows import WindowDataset, window_starts
from benchmark.errors import ConfigError, DataError
from benchmark.shapes import DataShape

GRID_FOLDER = "5.625deg"
GRID_SHAPE = (32, 64)
ROOT_ENV = "DIFFUMA_BENCH_DATA"
SPLITS = ("train", "val", "test")
WB2_STORE = "gs://weatherbench2/datasets/era5/1959-2023_01_10-6h-64x32_equiangular_conservative.zarr"

DEFAULTS: dict[str, Any] = {
    "root": None,
    "t_in": 12,
    "t_out": 12,
    "train_years": "2010-2015",
    "val_years": "2016",
    "test_years": "2017-2018",
    "frame_interval": 1,
    "frame_hours": None,
    "sample_stride": 1,
    "level": 1000,
    "uv10_channels": "uv",
    "coarsen": 1,
}


@dataclass(frozen=True)
class Variable:
    """One WeatherBench variable: its folder, its name inside the files and its units."""

    folder: str
    name: str
    units: str
    levelled: bool = False


VARIABLES = {
    "t2m": Variable("2m_temperature", "t2m", "K"),
    "tcc": Variable("total_cloud_cover", "tcc", "(0 - 1)"),
    "r": Variable("relative_humidity", "r", "%", levelled=True),
    "u10": Variable("10m_u_component_of_wind", "u10", "m s**-1"),
    "v10": Variable("10m_v_component_of_wind", "v10", "m s**-1"),
}
TASK_VARIABLES = {"t2m": ("t2m",), "tcc": ("tcc",), "r": ("r",), "uv10": ("u10", "v10")}


def variable_file(grid_dir: Path, folder: str, year: int) -> Path:
    """Path of one variable-year file inside a `5.625deg` folder."""
    return Path(grid_dir) / folder / f"{folder}_{year}_{GRID_FOLDER}.nc"


def _netcdf_engine() -> str:
    try:
        import netCDF4  # noqa: F401

        return "netcdf4"
    except ImportError:
        return "h5netcdf"


def write_variable_year(
    root: str | Path,
    folder: str,
    var: str,
    year: int,
    data: Any,
    times: Any,
    lat: Any,
    lon: Any,
    units: str,
    level: Any = None,
) -> Path:
    """Write one variable-year as `<root>/5.625deg/<folder>/<folder>_<year>_5.625deg.nc`; returns the path.

    `data` is `(time, lat, lon)`, or `(time, level, lat, lon)` when `level` (hPa values) is given.
    Stored as float32 netCDF4; written to a temporary file in the same folder, then renamed, so a
    reader never sees a half-written file.
    """
    target = variable_file(Path(root) / GRID_FOLDER, folder, year)
    target.parent.mkdir(parents=True, exist_ok=True)
    dims = ("time", "lat", "lon") if level is None else ("time", "level", "lat", "lon")
    coords: dict[str, Any] = {
        "time": np.asarray(times, dtype="datetime64[ns]"),
        "lat": ("lat", np.asarray(lat, dtype=np.float64), {"units": "degrees_north"}),
        "lon": ("lon", np.asarray(lon, dtype=np.float64), {"units": "degrees_east"}),
    }
    if level is not None:
        coords["level"] = ("level", np.asarray(level), {"units": "hPa"})
    dataset = xr.Dataset(
        {var: (dims, np.asarray(data, dtype=np.float32), {"units": units})}, coords=coords
    )
    encoding: dict[str, dict[str, Any]] = {name: {"_FillValue": None} for name in ("lat", "lon")}
    encoding[var] = {"dtype": "float32", "_FillValue": None}
    encoding["time"] = {"units": "hours since 1979-01-01", "calendar": "proleptic_gregorian"}
    handle, temporary = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=".tmp", dir=target.parent)
    os.close(handle)
    try:
        dataset.to_netcdf(temporary, engine=_netcdf_engine(), format="NETCDF4", encoding=encoding)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target


# --- configuration -------------------------------------------------------------------------------


def parse_years(value: Any, key: str) -> list[int]:
    """Years from an int, a list, or text such as "2010-2015" or "2010,2012"; sorted, unique."""
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    years: set[int] = set()
    try:
        for item in items:
            if isinstance(item, bool):
                raise ValueError(item)
            if isinstance(item, (int, np.integer)):
                years.add(int(item))
                continue
            for part in str(item).split(","):
                first, dash, last = part.strip().partition("-")
                low, high = int(first), int(last if dash else first)
                if high < low:
                    raise ValueError(part)
                years.update(range(low, high + 1))
    except (TypeError, ValueError) as err:
        raise ConfigError(
            f"data.{key} = {value!r} is not a list of years. Write it as a list such as [2010, 2011] "
            'or as text such as "2010-2015" or "2010,2012".'
        ) from err
    if not years:
        raise ConfigError(f"data.{key} is empty: give at least one year, for example \"2016\".")
    return sorted(years)


def _positive_int(config: dict[str, Any], key: str) -> int:
    return whole_number(config.get(key, DEFAULTS[key]), key, 1, DEFAULTS[key])


@dataclass(frozen=True)
class Settings:
    """The resolved `data` configuration of one WeatherBench load."""

    root: str | None
    t_in: int
    t_out: int
    years: dict[str, list[int]]
    frame_interval: int
    sample_stride: int
    level: float
    uv10_channels: str
    coarsen: int = 1
    frame_hours: float | None = None


def read_settings(config: dict[str, Any]) -> Settings:
    """Validate the WeatherBench keys of `config`, filling in `DEFAULTS`; other keys are ignored."""
    years = {split: parse_years(config.get(f"{split}_years", DEFAULTS[f"{split}_years"]), f"{split}_years")
             for split in SPLITS}
    for i, first in enumerate(SPLITS):
        for second in SPLITS[i + 1:]:
            shared = sorted(set(years[first]) & set(years[second]))
            if shared:
                raise ConfigError(
                    f"data.{first}_years and data.{second}_years share the years {shared}: a year may "
                    "belong to one split only. Change one of the two lists."
                )
    level_value = config.get("level", DEFAULTS["level"])
    try:
        level = float(level_value)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"data.level = {level_value!r} must be a pressure level in hPa, e.g. 1000") from err
    uv10 = str(config.get("uv10_channels", DEFAULTS["uv10_channels"]))
    if uv10 not in ("uv", "speed"):
        raise ConfigError(
            f"data.uv10_channels = {uv10!r}: use 'uv' (u10 and v10 as two channels) or 'speed' (one channel)."
        )
    root = config.get("root", DEFAULTS["root"])
    coarsen = _positive_int(config, "coarsen")
    frame_hours = config.get("frame_hours", DEFAULTS["frame_hours"])
    if frame_hours is not None:
        try:
            frame_hours = float(frame_hours)
        except (TypeError, ValueError):
            frame_hours = -1.0
        if not frame_hours > 0:
            raise ConfigError(f"data.frame_hours = {config.get('frame_hours')!r} must be a positive number of "
                              "hours, such as 6 (or unset, to use data.frame_interval).")
    if GRID_SHAPE[0] % coarsen or GRID_SHAPE[1] % coarsen:
        raise ConfigError(
            f"data.coarsen = {coarsen} must divide the {GRID_SHAPE[0]} x {GRID_SHAPE[1]} grid: "
            "use 1, 2, 4, 8, 16 or 32."
        )
    return Settings(
        root=str(root) if root not in (None, "") else None,
        t_in=_positive_int(config, "t_in"),
        t_out=_positive_int(config, "t_out"),
        years=years,
        frame_interval=_positive_int(config, "frame_interval"),
        sample_stride=_positive_int(config, "sample_stride"),
        level=level,
        uv10_channels=uv10,
        coarsen=coarsen,
        frame_hours=frame_hours,
    )


def find_grid_folder(root: str | None) -> Path:
    """The `5.625deg` folder for a configured root (or the default locations); DataError if none."""
    if root is not None:
        candidates = [Path(root).expanduser()]
    elif os.environ.get(ROOT_ENV):
        env_root = Path(os.environ[ROOT_ENV]).expanduser()
        candidates = [env_root / "weatherbench", env_root]
    else:
        candidates = [Path("data") / "weatherbench"]
    for candidate in candidates:
        if (candidate / GRID_FOLDER).is_dir():
            return candidate / GRID_FOLDER
        if candidate.is_dir() and (
            candidate.name == GRID_FOLDER or any((candidate / v.folder).is_dir() for v in VARIABLES.values())
        ):
            return candidate
    looked = ", ".join(str((c / GRID_FOLDER).absolute()) for c in candidates)
    raise DataError(
        f"No WeatherBench 1 data found: looked for a `{GRID_FOLDER}` folder at {looked}. The original "
        "WeatherBench download server (TUM) is gone, so it cannot be fetched from there. Point "
        f"`--data-root` (config `data.root`, or the environment variable {ROOT_ENV}) at an existing "
        f"WeatherBench 1 folder that contains `{GRID_FOLDER}/` (or at the `{GRID_FOLDER}` folder itself); "
        f"the same ERA5 fields at 64x32 are in WeatherBench 2's public store {WB2_STORE}. To try the "
        "pipeline without any download, use the generated dataset `synthetic-weather`."
    )


# --- reading files -------------------------------------------------------------------------------


def _years_present(folder_dir: Path, folder: str) -> list[int]:
    pattern = re.compile(rf"^{re.escape(folder)}_(\d+)_{re.escape(GRID_FOLDER)}\.nc$")
    return sorted(int(m.group(1)) for p in folder_dir.iterdir() if (m := pattern.match(p.name)))


class _Reader:
    """Reads variable-year files and checks each against the first one read (grid, time step)."""

    def __init__(self, grid_dir: Path, level: float) -> None:
        self.grid_dir = grid_dir
        self.level = level
        self.lat: np.ndarray | None = None
        self.lon: np.ndarray | None = None
        self.step: np.timedelta64 | None = None
        self.units: dict[str, str] = {}

    def read_year(
        self, names: Sequence[str], year: int, split: str, years_text: str
    ) -> tuple[np.ndarray, np.ndarray]:
        """Time stamps and `(T, C, H, W)` float32 values of `names` (one channel each) for `year`."""
        times = None
        channels = []
        for name in names:
            variable = VARIABLES[name]
            path = variable_file(self.grid_dir, variable.folder, year)
            if not path.is_file():
                present = _years_present(path.parent, variable.folder)
                raise DataError(
                    f"Missing file {path}: the {split} split (data.{split}_years = {years_text}) needs year "
                    f"{year} of {variable.folder}. Years present in {path.parent}: "
                    f"{format_years(present) or 'none'}. Add the file, or change data.{split}_years."
                )
            file_times, values = self._read_file(path, variable)
            if times is not None and not np.array_equal(times, file_times):
                raise DataError(
                    f"The time stamps of {path} differ from those of the {names[0]} file of the same year: "
                    "the channels of one task must share their time axis. Re-download or regenerate the file."
                )
            times = file_times
            channels.append(values)
        values = channels[0][:, None] if len(channels) == 1 else np.stack(channels, axis=1)
        return times, values

    def _read_file(self, path: Path, variable: Variable) -> tuple[np.ndarray, np.ndarray]:
        try:
            with xr.open_dataset(path, engine=_netcdf_engine(), cache=False) as dataset:
                found = list(dataset.data_vars)
                array = dataset[variable.name].load() if variable.name in dataset.data_vars else None
        except Exception as err:  # netCDF4/HDF5 raise many exception types for a damaged file
            raise DataError(
                f"Cannot read {path} ({type(err).__name__}: {err}). The file is damaged or not a netCDF "
                "file: download it again (for synthetic-weather, delete its variable folder to regenerate)."
            ) from err
        if array is None:
            raise DataError(
                f"{path} has no variable {variable.name!r} (it has: {', '.join(found) or 'none'}). "
                f"WeatherBench files in {variable.folder}/ hold {variable.name!r}; check the file."
            )
        array = array.rename({old: new for old, new in (("latitude", "lat"), ("longitude", "lon"))
                              if old in array.dims})
        array = self._select_level(array, path, variable)
        if set(array.dims) != {"time", "lat", "lon"}:
            raise DataError(
                f"{path}: variable {variable.name!r} has dims {array.dims}; expected (time, lat, lon)"
                f"{' plus level' if variable.levelled else ''}. This is not a WeatherBench 1 file."
            )
        array = array.transpose("time", "lat", "lon")
        lat, lon = self._check_grid(array, path)
        values = np.asarray(array.values, dtype=np.float32)
        if lat[0] > lat[-1]:
            values = values[:, ::-1]
        times = self._check_times(array, path)
        bad = int(np.count_nonzero(~np.isfinite(values)))
        if bad:
            raise DataError(
                f"{path}: variable {variable.name!r} has {bad} NaN or infinite values (of {values.size}). "
                "WeatherBench data has no missing values; download or regenerate this file."
            )
        self.units.setdefault(variable.name, str(array.attrs.get("units", variable.units)))
        return times, np.ascontiguousarray(values)

    def _select_level(self, array: xr.DataArray, path: Path, variable: Variable) -> xr.DataArray:
        if "level" not in array.dims:
            if variable.levelled:
                raise DataError(f"{path}: variable {variable.name!r} has no `level` dimension; expected "
                                "13 pressure levels as in WeatherBench 1.")
            return array
        if not variable.levelled:
            if array.sizes["level"] != 1:
                raise DataError(f"{path}: single-level variable {variable.name!r} has "
                                f"{array.sizes['level']} levels; expected one.")
            return array.isel(level=0, drop=True)
        levels = np.asarray(array["level"].values, dtype=np.float64)
        matches = np.flatnonzero(np.isclose(levels, self.level))
        if not len(matches):
            available = ", ".join(f"{v:g}" for v in levels)
            raise ConfigError(
                f"data.level = {self.level:g} hPa is not in {path}; its levels are {available} hPa. "
                "Set data.level to one of them."
            )
        return array.isel(level=int(matches[0]), drop=True)

    def _check_grid(self, array: xr.DataArray, path: Path) -> tuple[np.ndarray, np.ndarray]:
        lat = np.asarray(array["lat"].values, dtype=np.float64)
        lon = np.asarray(array["lon"].values, dtype=np.float64)
        if (len(lat), len(lon)) != GRID_SHAPE or not (np.all(np.diff(lat) > 0) or np.all(np.diff(lat) < 0)):
            raise DataError(
                f"{path} has a {len(lat)} x {len(lon)} (lat x lon) grid; the {GRID_FOLDER} WeatherBench grid "
                f"is {GRID_SHAPE[0]} x {GRID_SHAPE[1]} with monotonic latitudes. Use the {GRID_FOLDER} files."
            )
        ascending = np.sort(lat)
        if self.lat is None:
            self.lat, self.lon = ascending, lon
        elif not (np.allclose(ascending, self.lat, atol=1e-3) and np.allclose(lon, self.lon, atol=1e-3)):
            raise DataError(
                f"The latitudes/longitudes of {path} differ from those of the other files; all files "
                f"must share one {GRID_FOLDER} grid."
            )
        return lat, lon

    def _check_times(self, array: xr.DataArray, path: Path) -> np.ndarray:
        times = np.asarray(array["time"].values)
        if times.dtype.kind != "M" or len(times) < 2:
            raise DataError(
                f"{path}: the time coordinate must hold at least two dates (CF units such as "
                f"'hours since 1979-01-01'); found {len(times)} values of type {times.dtype}."
            )
        times = times.astype("datetime64[ns]")
        steps = np.unique(np.diff(times))
        if self.step is None:
            self.step = steps[0]
        if len(steps) != 1 or steps[0] != self.step:
            raise DataError(
                f"{path}: time steps of {_hours(steps)} h; expected a regular step of "
                f"{_hours([self.step])} h as in the other files."
            )
        return times


def _hours(steps: Any) -> str:
    return ", ".join(f"{np.timedelta64(s, 'ns') / np.timedelta64(1, 'h'):g}" for s in steps)


def format_years(years: Sequence[int]) -> str:
    """[2010, 2011, 2012, 2016] -> "2010-2012, 2016"."""
    ranges: list[list[int]] = []
    for year in years:
        if ranges and year == ranges[-1][1] + 1:
            ranges[-1][1] = year
        else:
            ranges.append([year, year])
    return ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in ranges)


@dataclass
class _Split:
    frames: np.ndarray
    times: np.ndarray
    segment_lengths: list[int]


def _load_split(reader: _Reader, names: Sequence[str], split: str, settings: Settings) -> _Split:
    """All years of one split as one frame array, keeping every `frame_interval`-th step of each
    contiguous stretch; a jump in time (non-adjacent years) starts a new segment."""
    years = settings.years[split]
    years_text = format_years(years)
    pieces, piece_times, segment_lengths = [], [], []
    previous = None
    position = 0  # time steps since the start of the current segment
    for year in years:
        times, values = reader.read_year(names, year, split, years_text)
        interval = frame_interval(settings, reader.step, reader.grid_dir)
        if previous is None or times[0] - previous > reader.step:
            segment_lengths.append(0)
            position = 0
        elif times[0] - previous != reader.step:
            raise DataError(
                f"The {names[0]} file of {year} starts at {times[0]}, which does not follow the previous "
                f"year's last time {previous} by one step of {_hours([reader.step])} h; the files overlap "
                "or are out of order."
            )
        offset = (-position) % interval
        kept = values[offset::interval]
        pieces.append(np.ascontiguousarray(kept) if interval > 1 else kept)
        piece_times.append(times[offset::interval])
        segment_lengths[-1] += len(kept)
        position += len(times)
        previous = times[-1]
    frames = pieces[0] if len(pieces) == 1 else np.concatenate(pieces)
    return _Split(frames, np.concatenate(piece_times), segment_lengths)


def frame_interval(settings: Settings, step: np.timedelta64, grid_dir: Path) -> int:
    """Time steps per frame: `frame_hours` over the files' step when set, else `frame_interval`."""
    if settings.frame_hours is None:
        return settings.frame_interval
    step_hours = float(step / np.timedelta64(1, "h"))
    ratio = settings.frame_hours / step_hours
    if ratio < 1 - 1e-9 or abs(ratio - round(ratio)) > 1e-9:
        raise ConfigError(
            f"data.frame_hours = {settings.frame_hours:g} asks for a frame every {settings.frame_hours:g} h, but the "
            f"files in {grid_dir} hold one every {step_hours:g} h (WeatherBench 1 files are hourly, WeatherBench 2 "
            f"downloads 6-hourly). Use a multiple of {step_hours:g} h, e.g. --set data.frame_hours={step_hours:g}."
        )
    return int(round(ratio))


def _windows(split: _Split, name: str, settings: Settings, grid_dir: Path) -> np.ndarray:
    window = settings.t_in + settings.t_out
    starts = window_starts(split.segment_lengths, window, settings.sample_stride)
    if not len(starts):
        longest = max(split.segment_lengths)
        raise DataError(
            f"The {name} split (years {format_years(settings.years[name])} in {grid_dir}) has "
            f"{len(split.frames)} frames (longest contiguous stretch: {longest}) with frame_interval="
            f"{settings.frame_interval}, but one sample needs t_in + t_out = {window} consecutive frames. "
            f"Give data.{name}_years more (adjacent) years, or lower t_in, t_out or frame_interval."
        )
    return starts


def coarsen_grid(frames: np.ndarray, factor: int) -> np.ndarray:
    """Mean over `factor x factor` blocks of the last two axes of `(N, C, H, W)` frames."""
    if factor == 1:
        return frames
    n, c, h, w = frames.shape
    blocks = frames.reshape(n, c, h // factor, factor, w // factor, factor)
    return blocks.mean(axis=(3, 5), dtype=np.float64).astype(np.float32)


def load_from_grid_folder(grid_dir: Path, task: str, settings: Settings, name: str) -> ForecastData:
    """Load task `task` from a `5.625deg` folder; splits normalized with training statistics."""
    names = TASK_VARIABLES[task]
    for variable_name in names:
        folder = grid_dir / VARIABLES[variable_name].folder
        if not folder.is_dir():
            present = sorted(p.name for p in grid_dir.iterdir() if p.is_dir())
            raise DataError(
                f"{grid_dir} has no folder {VARIABLES[variable_name].folder}/, which task {task!r} needs "
                f"(variable {variable_name}). Folders present: {', '.join(present) or 'none'}. Add that "
                "variable's files, or choose a task whose variables you have."
            )
    reader = _Reader(grid_dir, settings.level)
    splits, datasets, normalizer = {}, {}, None
    for split in SPLITS:  # train first: its statistics normalize the others
        loaded = _load_split(reader, names, split, settings)
        if task == "uv10" and settings.uv10_channels == "speed":
            loaded.frames = np.hypot(loaded.frames[:, :1], loaded.frames[:, 1:])
        loaded.frames = coarsen_grid(loaded.frames, settings.coarsen)
        starts = _windows(loaded, split, settings, grid_dir)
        if normalizer is None:
            normalizer = fit_normalizer(loaded.frames)
            if np.any(normalizer.std <= 0):
                raise DataError(f"The training split in {grid_dir} is constant in time and space for task "
                                f"{task!r}; it cannot be standardized. Check the files.")
        normalize_inplace(loaded.frames, normalizer)
        splits[split] = loaded
        datasets[split] = WindowDataset(loaded.frames, starts, settings.t_in, settings.t_out, loaded.times)
    if task == "uv10" and settings.uv10_channels == "speed":
        channel_names, units = ["ws10"], [reader.units["u10"]]
    else:
        channel_names, units = list(names), [reader.units[n] for n in names]
    step_hours = float(reader.step / np.timedelta64(1, "h"))
    info = {
        "root": str(grid_dir),
        "task": task,
        "variables": list(names),
        "level_hpa": settings.level if any(VARIABLES[n].levelled for n in names) else None,
        "years": {split: settings.years[split] for split in SPLITS},
        "time_resolution_hours": step_hours,
        "frame_interval": frame_interval(settings, reader.step, grid_dir),
        "frame_hours": step_hours * frame_interval(settings, reader.step, grid_dir),
        "sample_stride": settings.sample_stride,
        "coarsen": settings.coarsen,
        "frames": {split: len(splits[split].frames) for split in SPLITS},
    }
    return ForecastData(
        name=name,
        train=datasets["train"],
        val=datasets["val"],
        test=datasets["test"],
        shape=DataShape(settings.t_in, settings.t_out, len(channel_names),
                        GRID_SHAPE[0] // settings.coarsen, GRID_SHAPE[1] // settings.coarsen),
        normalizer=normalizer,
        channel_names=channel_names,
        units=units,
        lat=reader.lat.reshape(-1, settings.coarsen).mean(axis=1),
        info=info,
    )


def require_task(dataset: str, task: str | None, tasks: Sequence[str]) -> str:
    """`task` when it is one of `tasks`; a ConfigError naming the choices otherwise."""
    if task not in tasks:
        raise ConfigError(
            f"Dataset {dataset!r} needs a task: use one of {', '.join(f'{dataset}:{t}' for t in tasks)}."
        )
    return task


@register_dataset(
    "weatherbench",
    summary="WeatherBench 1 (ERA5, 5.625 deg, 32x64) from its on-disk files: t2m, tcc, r, uv10",
    tasks=("tcc", "uv10", "r", "t2m"),
    default_tasks=("tcc", "uv10", "r", "t2m"),
)
def load_weatherbench(task: str | None, config: dict[str, Any]) -> ForecastData:
    """Load a WeatherBench 1 task from `config['root']` (see the module docstring for all keys)."""
    task = require_task("weatherbench", task, tuple(TASK_VARIABLES))
    settings = read_settings(config)
    return load_from_grid_folder(find_grid_folder(settings.root), task, settings, f"weatherbench:{task}")
