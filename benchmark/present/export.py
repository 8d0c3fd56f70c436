"""Forecasts of a whole test split as a netCDF file other tools read (`bench predict`).

Weather data (a latitude grid) follows WeatherBench 2's forecast layout, so that its evaluation
(`weatherbench2.evaluation`) reads the file as a forecast dataset: one data variable per channel
(named as the dataset names it, e.g. `t2m`, with its `units` attribute, in physical units: the
training split's normalizer undone) of dims `(time, prediction_timedelta, latitude, longitude)`,
where `time` is the initialisation time (the last input frame), `prediction_timedelta` the lead
(`timedelta64`, one frame interval apart, the first frame after the initialisation first),
`latitude` ascending as the data holds it and `longitude` the cell centres of the grid from 0 degrees
east (WeatherBench 1's 5.625 degree grid, averaged like the data when `coarsen` > 1). WeatherBench 2
wants variable names of its own (`2m_temperature`); ours are kept and its `--variables` / a rename
maps them. Images (CHDL) have no such convention: one variable per channel of dims
`(sample, lead, y, x)`, lead 1 the first predicted frame. Both hold `sample_index` (the window's
position in the test split) along the first dimension and float32 values.

Size per run: `N * T_out * C * H * W * 4` bytes plus a few kB of coordinates (no compression):
`bench predict` prints it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmark.core.errors import BenchError
from benchmark.data.base import ForecastData

FORECASTS_NAME = "forecasts.nc"


@torch.no_grad()
def predict_split(model: torch.nn.Module, data: ForecastData, batch_size: int,
                  device: torch.device | str = "cpu") -> tuple[np.ndarray, float]:
    """The model's physical-unit forecasts of every test window, `(N, T_out, C, H, W)` float32, and the
    seconds its forward passes took."""
    from benchmark.run.training import ForecastDataModule

    device = torch.device(device)
    model.to(device).eval()
    loader = ForecastDataModule(data, int(batch_size)).test_dataloader()
    parts, seconds = [], 0.0
    for x, _ in loader:
        start = time.perf_counter()
        y_hat = model(x.to(device))
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds += time.perf_counter() - start
        parts.append(data.normalizer.denormalize(y_hat.float()).cpu().numpy().astype(np.float32))
    if not parts:
        raise BenchError(f"The test split of {data.name} is empty: no window fits in it, nothing to export.")
    return np.concatenate(parts), seconds


def longitudes(width: int) -> np.ndarray:
    """Cell centres (degrees east) of WeatherBench 1's 64-point longitude grid averaged to `width` points."""
    from benchmark.data.regrid import coarsen_coordinate
    from benchmark.data.wb1_files import GRID_SHAPE, WB1_LON

    if GRID_SHAPE[1] % width:
        raise BenchError(f"A grid {width} points wide is not WeatherBench 1's {GRID_SHAPE[1]} longitudes averaged "
                         "by a whole factor; its longitudes are unknown.")
    return coarsen_coordinate(WB1_LON, GRID_SHAPE[1] // width)


def forecast_dataset(forecasts: np.ndarray, data: ForecastData, attrs: dict[str, Any] | None = None) -> Any:
    """`forecasts` `(N, T_out, C, H, W)` (physical units, the test split's windows in order) as an
    `xarray.Dataset` in the layout of this module's docstring."""
    import xarray as xr

    n, t_out, channels, height, width = forecasts.shape
    if len(data.test) != n or tuple(data.shape[1:]) != (t_out, channels, height, width):
        raise ValueError(f"forecasts of shape {forecasts.shape} do not cover the {len(data.test)} test windows of "
                         f"shape {tuple(data.shape[1:])}")
    sample_index = ("time" if data.lat is not None else "sample", np.arange(n))
    if data.lat is not None:
        first_inputs, first_targets = data.test.times(0)
        interval = first_targets[0] - first_inputs[-1]
        init = np.array([data.test.times(i)[0][-1] for i in range(n)], dtype="datetime64[ns]")
        dims = ("time", "prediction_timedelta", "latitude", "longitude")
        coords = {"time": init, "prediction_timedelta": (np.arange(1, t_out + 1) * interval).astype("timedelta64[ns]"),
                  "latitude": np.asarray(data.lat, dtype=np.float64), "longitude": longitudes(width),
                  "sample_index": sample_index}
    else:
        dims = ("sample", "lead", "y", "x")
        coords = {"sample": np.arange(n), "lead": np.arange(1, t_out + 1), "y": np.arange(height),
                  "x": np.arange(width), "sample_index": sample_index}
    variables = {name: (dims, forecasts[:, :, c], {"units": unit})
                 for c, (name, unit) in enumerate(zip(data.channel_names, data.units, strict=True))}
    return xr.Dataset(variables, coords=coords, attrs=dict(attrs or {}))


def write_forecasts(dataset: Any, path: Path) -> int:
    """Write `dataset` as netCDF-4 to `path` atomically (temporary file + rename); returns its size in bytes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        dataset.to_netcdf(tmp, engine="netcdf4", format="NETCDF4")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path.stat().st_size
