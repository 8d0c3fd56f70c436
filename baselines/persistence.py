"""Persistence: the forecast is the last observed frame, repeated for every lead time.

The standard no-skill reference of weather and nowcasting benchmarks ("tomorrow is like
today"); see e.g. Rasp et al., "WeatherBench: A benchmark dataset for data-driven weather
forecasting", 2020, which reports it for every variable. It has no parameters and is not
trained (`trainable=False`); any model worth reporting should beat it.
"""

from __future__ import annotations

import torch

from benchmark.registry import register_model
from benchmark.registry.model_api import ForecastModel
from benchmark.registry.shapes import DataShape


class Persistence(ForecastModel):
    """Repeat the last input frame `T_out` times."""

    def __init__(self, t_out: int):
        super().__init__()
        self.t_out = t_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """`(B, T_in, C, H, W) -> (B, T_out, C, H, W)`, every output frame equal to `x[:, -1]`."""
        return x[:, -1:].repeat(1, self.t_out, 1, 1, 1)


@register_model("persistence", family="reference", paper_name="Persistence", trainable=False)
def build_persistence(shape: DataShape) -> Persistence:
    """Persistence: repeat the last observed frame for every lead time (no parameters)."""
    return Persistence(shape.t_out)
