"""Climatology: the forecast for each target frame is the training split's climatology at its valid time.

The other standard no-skill reference of weather forecasting beside persistence ("the weather of
an average such day"): WeatherBench (Rasp et al. 2020) reports a climatology forecast for every
variable, and WeatherBench 2 (Rasp et al. 2024) a day-of-year and hour-of-day one. Here it is the
dataset's `Climatology` (training split only; `benchmark.data.climatology`): per day of year and
hour, smoothed over 61 days, on weather grids; the per-pixel training mean on images (CHDL). It
ignores the input frames, has no parameters and is not trained (`trainable=False`). Its ACC is 0
by construction; a model with a positive ACC forecasts some of the anomaly.
"""

from __future__ import annotations

import torch

from benchmark.registry import register_model
from benchmark.registry.model_api import ForecastModel
from benchmark.registry.shapes import DataShape


class Climatology(ForecastModel):
    """Forecast the climatology of each target frame (handed in by the evaluation: `uses_climatology`)."""

    uses_climatology = True

    def __init__(self, shape: DataShape):
        super().__init__()
        self.shape = DataShape(*shape)

    def forward(self, x: torch.Tensor, climatology: torch.Tensor | None = None) -> torch.Tensor:
        """`(B, T_in, C, H, W)` and the normalized climatology `(B, T_out, C, H, W)` -> that climatology."""
        if climatology is None:
            raise ValueError("the climatology model needs the climatology of the target frames (forward(x, "
                             "climatology=...)); the dataset has none")
        expected = (x.shape[0], self.shape.t_out, *x.shape[2:])
        if tuple(climatology.shape) != expected:
            raise ValueError(f"climatology of shape {tuple(climatology.shape)} for a forecast of shape {expected}")
        return climatology.to(dtype=x.dtype, device=x.device)


@register_model("climatology", family="reference", paper_name="Climatology", trainable=False)
def build_climatology(shape: DataShape) -> Climatology:
    """Climatology: the training split's mean field at each target frame's valid time (no parameters)."""
    return Climatology(shape)
