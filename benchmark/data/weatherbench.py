"""WeatherBench 1 (Rasp et al. 2020) at 5.625 degrees, read from its on-disk layout (see `wb1_files`).

Tasks: `t2m`, `tcc`, `r` (one pressure level, chosen by value) with C=1, and `uv10` with u10 then
v10 stacked as C=2 (or their speed as C=1, see `uv10_channels`).

Config keys (the run's `data` section; defaults and checks in `WeatherBenchSettings`):

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
applied to all three splits; so does the climatology (per day of year and hour of day, smoothed:
`benchmark.data.climatology`), which ACC and the `climatology` model use.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.core.errors import ConfigError, DataError
from benchmark.data.base import ForecastData
from benchmark.data.climatology import calendar_climatology
from benchmark.data.locations import ROOT_ENV
from benchmark.data.normalization import fit_normalizer, normalize_inplace
from benchmark.data.registry import register_dataset
from benchmark.data.regrid import coarsen, coarsen_coordinate
from benchmark.data.settings import DataSettings, real_number
from benchmark.data.wb1_files import (
    GRID_FOLDER,
    GRID_SHAPE,
    TASK_VARIABLES,
    VARIABLES,
    WB2_STORE,
    format_years,
    parse_years,
)
from benchmark.data.wb1_reader import FileReader, hours_text
from benchmark.data.windows import WindowDataset, window_starts
from benchmark.registry.shapes import DataShape

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class WeatherBenchSettings(DataSettings):
    """The `data` keys of a WeatherBench load (see the module docstring); years become sorted tuples."""

    t_in: int = 12
    t_out: int = 12
    train_years: tuple[int, ...] = tuple(range(2010, 2016))
    val_years: tuple[int, ...] = (2016,)
    test_years: tuple[int, ...] = (2017, 2018)
    frame_interval: int = 1
    frame_hours: float | None = None
    sample_stride: int = 1
    level: float = 1000.0
    uv10_channels: str = "uv"
    coarsen: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        for split in SPLITS:
            self._set(f"{split}_years", tuple(parse_years(getattr(self, f"{split}_years"), f"{split}_years")))
        for i, first in enumerate(SPLITS):
            for second in SPLITS[i + 1:]:
                shared = sorted(set(getattr(self, f"{first}_years")) & set(getattr(self, f"{second}_years")))
                if shared:
                    raise ConfigError(
                        f"data.{first}_years and data.{second}_years share the years {shared}: a year may "
                        "belong to one split only. Change one of the two lists."
                    )
        try:
            self._set("level", float(self.level))
        except (TypeError, ValueError) as err:
            raise ConfigError(f"data.level = {self.level!r} must be a pressure level in hPa, e.g. 1000") from err
        self._set("uv10_channels", str(self.uv10_channels))
        if self.uv10_channels not in ("uv", "speed"):
            raise ConfigError(f"data.uv10_channels = {self.uv10_channels!r}: use 'uv' (u10 and v10 as two "
                              "channels) or 'speed' (one channel).")
        self._set("coarsen", self._whole("coarsen", 1))
        if GRID_SHAPE[0] % self.coarsen or GRID_SHAPE[1] % self.coarsen:
            raise ConfigError(f"data.coarsen = {self.coarsen} must divide the {GRID_SHAPE[0]} x {GRID_SHAPE[1]} "
                              "grid: use 1, 2, 4, 8, 16 or 32.")
        if self.frame_hours is not None:
            hours = real_number(self.frame_hours)
            if hours is None or hours <= 0:
                raise ConfigError(f"data.frame_hours = {self.frame_hours!r} must be a positive number of hours, "
                                  "such as 6 (or unset, to use data.frame_interval).")
            self._set("frame_hours", hours)
        for key in ("frame_interval", "sample_stride"):
            self._set(key, self._whole(key, 1))

    @property
    def split_years(self) -> dict[str, list[int]]:
        """The years of each split."""
        return {split: list(getattr(self, f"{split}_years")) for split in SPLITS}


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


@dataclass
class _Split:
    frames: np.ndarray
    times: np.ndarray
    segment_lengths: list[int]


def _load_split(reader: FileReader, names: Sequence[str], split: str, settings: WeatherBenchSettings) -> _Split:
    """All years of one split as one frame array, keeping every `frame_interval`-th step of each
    contiguous stretch; a jump in time (non-adjacent years) starts a new segment."""
    years = settings.split_years[split]
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
                f"year's last time {previous} by one step of {hours_text([reader.step])} h; the files overlap "
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


def frame_interval(settings: WeatherBenchSettings, step: np.timedelta64, grid_dir: Path) -> int:
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


def _windows(split: _Split, name: str, settings: WeatherBenchSettings, grid_dir: Path) -> np.ndarray:
    window = settings.t_in + settings.t_out
    starts = window_starts(split.segment_lengths, window, settings.sample_stride)
    if not len(starts):
        longest = max(split.segment_lengths)
        raise DataError(
            f"The {name} split (years {format_years(settings.split_years[name])} in {grid_dir}) has "
            f"{len(split.frames)} frames (longest contiguous stretch: {longest}) with frame_interval="
            f"{settings.frame_interval}, but one sample needs t_in + t_out = {window} consecutive frames. "
            f"Give data.{name}_years more (adjacent) years, or lower t_in, t_out or frame_interval."
        )
    return starts


def load_from_grid_folder(grid_dir: Path, task: str, settings: WeatherBenchSettings, name: str) -> ForecastData:
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
    reader = FileReader(grid_dir, settings.level)
    splits, datasets, normalizer, climatology = {}, {}, None, None
    for split in SPLITS:  # train first: its statistics normalize the others
        loaded = _load_split(reader, names, split, settings)
        if task == "uv10" and settings.uv10_channels == "speed":
            loaded.frames = np.hypot(loaded.frames[:, :1], loaded.frames[:, 1:])
        loaded.frames = coarsen(loaded.frames, settings.coarsen)
        starts = _windows(loaded, split, settings, grid_dir)
        if normalizer is None:
            normalizer = fit_normalizer(loaded.frames)
            climatology = calendar_climatology(loaded.frames, loaded.times)  # training split only
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
        "years": {split: settings.split_years[split] for split in SPLITS},
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
        lat=coarsen_coordinate(reader.lat, settings.coarsen),
        info=info,
        climatology=climatology,
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
    settings=WeatherBenchSettings,
)
def load_weatherbench(task: str | None, config: dict[str, Any]) -> ForecastData:
    """Load a WeatherBench 1 task from `config['root']` (see the module docstring for all keys)."""
    task = require_task("weatherbench", task, tuple(TASK_VARIABLES))
    settings = WeatherBenchSettings.from_config(config, "weatherbench")
    return load_from_grid_folder(find_grid_folder(settings.root), task, settings, f"weatherbench:{task}")
