"""The WeatherBench 1 on-disk layout at 5.625 degrees: grid, variables, file names, the writer, year lists.

One netCDF4 file per variable and year, float32, dims `time, lat (32, ascending), lon (64)`::

    <root>/5.625deg/2m_temperature/2m_temperature_<year>_5.625deg.nc                    t2m  K
    <root>/5.625deg/total_cloud_cover/total_cloud_cover_<year>_5.625deg.nc              tcc  0-1
    <root>/5.625deg/relative_humidity/relative_humidity_<year>_5.625deg.nc              r    %  (+ level)
    <root>/5.625deg/10m_u_component_of_wind/10m_u_component_of_wind_<year>_5.625deg.nc  u10  m/s
    <root>/5.625deg/10m_v_component_of_wind/10m_v_component_of_wind_<year>_5.625deg.nc  v10  m/s

The loader (`weatherbench.py`), the WeatherBench 2 downloader (`wb2.py`), the inventory and the
synthetic-weather generator all read or write this layout through this module.
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

from benchmark.core.errors import ConfigError

GRID_FOLDER = "5.625deg"
GRID_SHAPE = (32, 64)
WB1_LAT = -87.1875 + 5.625 * np.arange(GRID_SHAPE[0])
WB1_LON = 5.625 * np.arange(GRID_SHAPE[1])
WB2_STORE = "gs://weatherbench2/datasets/era5/1959-2023_01_10-6h-64x32_equiangular_conservative.zarr"


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


def year_files(folder_dir: Path) -> list[tuple[int, Path]]:
    """`(year, path)` of every variable-year file in the variable folder `folder_dir`, by year."""
    pattern = re.compile(rf"^{re.escape(folder_dir.name)}_(\d+)_{re.escape(GRID_FOLDER)}\.nc$")
    return sorted((int(m.group(1)), p) for p in folder_dir.iterdir() if (m := pattern.match(p.name)))


def netcdf_engine() -> str:
    """The xarray engine for netCDF4 files: netCDF4 when installed, else h5netcdf."""
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
        dataset.to_netcdf(temporary, engine=netcdf_engine(), format="NETCDF4", encoding=encoding)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target


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


def format_years(years: Sequence[int]) -> str:
    """[2010, 2011, 2012, 2016] -> "2010-2012, 2016"."""
    ranges: list[list[int]] = []
    for year in years:
        if ranges and year == ranges[-1][1] + 1:
            ranges[-1][1] = year
        else:
            ranges.append([year, year])
    return ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in ranges)
