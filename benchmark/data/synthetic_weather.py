"""`synthetic-weather`: a generated stand-in for WeatherBench, written in its exact on-disk layout.

On first use the generator writes `2m_temperature` (t2m, K) and/or `10m_u_component_of_wind`,
`10m_v_component_of_wind` (u10, v10, m s**-1) files — only the variables the task needs — on the
WeatherBench 5.625 degree grid (lat 32 ascending -87.1875..87.1875, lon 64 from 0, step 5.625),
one float32 netCDF4 file per year, and the real WeatherBench loader (`weatherbench.py`) reads
them; every WeatherBench key (`t_in`, `t_out`, split years, strides, ...) works the same way.

The fields come from `weather_model.simulate` (see there for the model); deterministic from
`seed_data`. Generation config keys (defaults in `SyntheticWeatherSettings`, which adds them to the
WeatherBench keys): `years` (2010-2018; the split years must lie inside), `hours_per_step` (6, i.e.
1460 or 1464 steps a year; 1..24), `seed_data` (0). `root`: where to write (the folder that will
contain `5.625deg/`); unset: `$DIFFUMA_BENCH_CACHE/synthetic-weather/<hash of the generation
parameters>` with `DIFFUMA_BENCH_CACHE` defaulting to `~/.cache/diffuma-bench`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmark.core.errors import ConfigError
from benchmark.data.base import ForecastData
from benchmark.data.locations import cache_folder
from benchmark.data.registry import register_dataset
from benchmark.data.wb1_files import (
    GRID_FOLDER,
    TASK_VARIABLES,
    VARIABLES,
    WB1_LAT,
    WB1_LON,
    format_years,
    parse_years,
    write_variable_year,
)
from benchmark.data.weather_model import simulate
from benchmark.data.weatherbench import WeatherBenchSettings, load_from_grid_folder, require_task

GENERATOR_VERSION = 1
MANIFEST = "synthetic-weather.json"
TASKS = ("t2m", "uv10")


@dataclass(frozen=True)
class SyntheticWeatherSettings(WeatherBenchSettings):
    """The WeatherBench keys plus the generator's: `years`, `hours_per_step`, `seed_data`."""

    years: tuple[int, ...] = tuple(range(2010, 2019))
    hours_per_step: int = 6
    seed_data: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        self._set("years", tuple(parse_years(self.years, "years")))
        self._set("hours_per_step", self._whole("hours_per_step", 1))
        if self.hours_per_step > 24:
            raise ConfigError(f"data.hours_per_step = {self.hours_per_step} must be a whole number of hours "
                              "from 1 to 24.")
        self._set("seed_data", self._whole("seed_data", 0))
        for split, split_years in self.split_years.items():
            outside = sorted(set(split_years) - set(self.years))
            if outside:
                raise ConfigError(
                    f"data.{split}_years asks for {outside}, which synthetic-weather does not generate "
                    f"(data.years = {format_years(self.years)}). Widen data.years or change data.{split}_years."
                )

    def generation_params(self) -> dict[str, Any]:
        """What the generator draws from; these parameters name the cache folder and fill the manifest."""
        return {"version": GENERATOR_VERSION, "years": list(self.years), "hours_per_step": self.hours_per_step,
                "seed_data": self.seed_data}


def _claim_root(root: Path, params: dict[str, Any]) -> None:
    """Check that `root` holds (or may hold) data generated with `params`; record them if it is new."""
    manifest = root / MANIFEST
    if manifest.is_file():
        try:
            stored = json.loads(manifest.read_text())
        except ValueError:
            stored = "unreadable parameters"
        if stored != params:
            raise ConfigError(
                f"{root} holds synthetic-weather data generated with {stored}, not the requested {params}. "
                "Use another data.root (or leave it unset to use the cache), or delete that folder."
            )
    elif (root / GRID_FOLDER).exists():
        raise ConfigError(
            f"{root / GRID_FOLDER} exists but was not written by the synthetic-weather generator "
            f"(no {MANIFEST}); refusing to write generated data next to it. Give synthetic-weather "
            "another data.root, or leave it unset to use the cache folder."
        )
    else:  # written before generating, so that an interrupted run can complete the folder later
        temporary = root / f".{MANIFEST}.{os.getpid()}.tmp"
        temporary.write_text(json.dumps(params, sort_keys=True))
        os.replace(temporary, manifest)


def generate_synthetic_weather(root: str | Path, variables: Sequence[str], params: dict[str, Any]) -> Path:
    """Write the missing variable folders of `variables` under `<root>/5.625deg/`; returns that folder.

    Files are generated into a temporary folder next to the target, and each variable folder is then
    renamed into place, so readers only ever see complete folders.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    _claim_root(root, params)
    grid_dir = root / GRID_FOLDER
    missing = [name for name in variables if not (grid_dir / VARIABLES[name].folder).is_dir()]
    if missing:
        staging = Path(tempfile.mkdtemp(prefix=".generating-", dir=root))
        try:
            years, hours, seed = params["years"], params["hours_per_step"], params["seed_data"]
            for year, times, fields in simulate(years, hours, seed, missing):
                for name in missing:
                    variable = VARIABLES[name]
                    write_variable_year(staging, variable.folder, name, year, fields[name], times, WB1_LAT, WB1_LON,
                                        variable.units)
            grid_dir.mkdir(exist_ok=True)
            for name in missing:
                folder = VARIABLES[name].folder
                try:
                    os.rename(staging / GRID_FOLDER / folder, grid_dir / folder)
                except OSError:
                    if not (grid_dir / folder).is_dir():  # else a concurrent run wrote the same folder
                        raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return grid_dir


@register_dataset(
    "synthetic-weather",
    summary="Generated weather in the WeatherBench 1 layout (t2m with moving diurnal cycle and advected "
    "anomalies; u10/v10); read by the weatherbench loader",
    tasks=TASKS,
    default_tasks=("t2m",),
    settings=SyntheticWeatherSettings,
)
def load_synthetic_weather(task: str | None, config: dict[str, Any]) -> ForecastData:
    """Generate (once) and load a synthetic-weather task (see the module docstring for the keys)."""
    task = require_task("synthetic-weather", task, TASKS)
    settings = SyntheticWeatherSettings.from_config(config, "synthetic-weather")
    params = settings.generation_params()
    root = Path(settings.root).expanduser() if settings.root else cache_folder("synthetic-weather", params)
    grid_dir = generate_synthetic_weather(root, TASK_VARIABLES[task], params)
    data = load_from_grid_folder(grid_dir, task, settings, f"synthetic-weather:{task}")
    info = {**data.info, "generated": True, "generation": params}
    return dataclasses.replace(data, info=info)
