"""What every dataset hands to the trainer: splits of normalized `(x, y)` pairs plus metadata."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from benchmark.registry.shapes import DataShape


@dataclass
class Normalizer:
    """Per-channel statistics fitted on the training split only, applied to every split.

    `mean`/`std` standardize; `data_min`/`data_max` (physical units, training split) give the
    `data_range` used by SSIM and PSNR. Channels are on axis -3 of `(..., C, H, W)` arrays.
    """

    mean: np.ndarray
    std: np.ndarray
    data_min: np.ndarray
    data_max: np.ndarray

    def _view(self, values: np.ndarray, like: Any) -> Any:
        shaped = np.asarray(values, dtype=np.float64).reshape(-1, 1, 1)
        if isinstance(like, torch.Tensor):
            return torch.as_tensor(shaped, dtype=like.dtype, device=like.device)
        return shaped.astype(np.asarray(like).dtype if np.issubdtype(np.asarray(like).dtype, np.floating)
                             else np.float64)

    def normalize(self, x: Any) -> Any:
        """Physical units -> standardized units (numpy array or tensor)."""
        return (x - self._view(self.mean, x)) / self._view(self.std, x)

    def denormalize(self, x: Any) -> Any:
        """Standardized units -> physical units (numpy array or tensor)."""
        return x * self._view(self.std, x) + self._view(self.mean, x)

    def data_range(self, space: str) -> np.ndarray:
        """Per-channel dynamic range of the training data in `space` ('physical' or 'normalized')."""
        physical = np.asarray(self.data_max, dtype=np.float64) - np.asarray(self.data_min, dtype=np.float64)
        if space == "physical":
            return physical
        if space == "normalized":
            return physical / np.asarray(self.std, dtype=np.float64)
        raise ValueError(f"space must be 'physical' or 'normalized', not {space!r}")

    def to_dict(self) -> dict[str, list[float]]:
        """JSON-ready form (stored in run records)."""
        return {k: np.asarray(getattr(self, k), dtype=np.float64).tolist()
                for k in ("mean", "std", "data_min", "data_max")}

    @classmethod
    def from_dict(cls, values: dict[str, list[float]]) -> Normalizer:
        """Inverse of `to_dict`."""
        return cls(**{k: np.asarray(v, dtype=np.float64) for k, v in values.items()})


@dataclass
class Climatology:
    """Mean fields of the training split only, in physical units, stored beside the `Normalizer`.

    `fields` is float32 `(D, K, C, H, W)`. On a calendar (`hours` set): D = 366 days of the year
    (1 January = 0, 31 December of a leap year = 365), K = the hours of the day the training frames
    fall on (`hours`, ascending), each field smoothed over `window_days` days of the year. Static
    (`hours` None, e.g. CHDL): D = K = 1, the per-pixel mean of every training frame.
    `benchmark.data.climatology` fits them and looks up the fields of given valid times.
    """

    fields: np.ndarray
    hours: np.ndarray | None = None
    window_days: int | None = None
    training_frames: int = 0

    @property
    def static(self) -> bool:
        """True for one field for every time (no calendar)."""
        return self.hours is None

    def describe(self) -> str:
        """One line for records and reports: what the climatology is."""
        if self.static:
            return f"per-pixel mean of the {self.training_frames} training frames"
        hours = ", ".join(f"{h:g}" for h in np.asarray(self.hours))
        return (f"training-split mean per day of year ({self.window_days}-day circular window) and hour of day "
                f"({hours} h), from {self.training_frames} frames")


@dataclass
class ForecastData:
    """One dataset (and task) ready for training: three splits and what is needed to score them.

    Each split is a torch `Dataset` whose items are `(x, y)` float32 tensors of shapes
    `(T_in, C, H, W)` and `(T_out, C, H, W)`, already normalized with `normalizer`.
    """

    name: str
    train: Dataset
    val: Dataset
    test: Dataset
    shape: DataShape
    normalizer: Normalizer
    channel_names: list[str]
    units: list[str]
    lat: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict)
    climatology: Climatology | None = None  # training split only, like `normalizer`

    def summary(self) -> dict[str, Any]:
        """Counts and shapes for records and Table 1."""
        return {
            "name": self.name,
            "train_samples": len(self.train),
            "val_samples": len(self.val),
            "test_samples": len(self.test),
            "shape": list(self.shape),
            "channels": list(self.channel_names),
            "units": list(self.units),
            **({"climatology": self.climatology.describe()} if self.climatology is not None else {}),
            **self.info,
        }
