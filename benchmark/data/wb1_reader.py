"""Reading WeatherBench 1 variable-year files, each checked against the first one read.

`FileReader.read_year` gives one year of a task's variables as `(T, C, H, W)` float32 values with
latitude ascending; a file whose grid, time step, levels or values do not fit is a DataError that
names the file (a missing level is a ConfigError naming `data.level`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from benchmark.core.errors import ConfigError, DataError
from benchmark.data.wb1_files import (
    GRID_FOLDER,
    GRID_SHAPE,
    VARIABLES,
    Variable,
    format_years,
    netcdf_engine,
    variable_file,
    year_files,
)


class FileReader:
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
                present = [year for year, _ in year_files(path.parent)]
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
            with xr.open_dataset(path, engine=netcdf_engine(), cache=False) as dataset:
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
                f"{path}: time steps of {hours_text(steps)} h; expected a regular step of "
                f"{hours_text([self.step])} h as in the other files."
            )
        return times


def hours_text(steps: Any) -> str:
    """Time steps as hours, comma-separated: "1, 6"."""
    return ", ".join(f"{np.timedelta64(s, 'ns') / np.timedelta64(1, 'h'):g}" for s in steps)
