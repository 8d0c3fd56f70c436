"""Climatology of the training split: fitting it, and looking up the fields of given valid times.

Weather (frames with time stamps): the mean per day of year and hour of day, as WeatherBench 2
computes its reference climatology (Rasp et al. 2024, "WeatherBench 2", Section 3; its
`scripts/compute_climatology.py` defaults to a 61-day window, `window_size=61`), smoothed over a
circular window of `WINDOW_DAYS` = 61 days of the year centred on each day. Ours, not fixed by
WeatherBench 2: every training frame within the window at that hour counts once (a pooled mean:
the window's sums over its counts, `scipy.ndimage.uniform_filter1d` with `mode="wrap"`); the day of
year is the calendar's (1 January = day 0, so from 1 March on a leap year is one day ahead), and day
366 (31 December of leap years) is its own bin, smoothed like the others. A valid time whose hour of
day no training frame falls on (a split whose frames start at another hour) takes the field of the
nearest training hour of day (circular; ours).

Images (CHDL: no calendar): the per-pixel mean of every training frame (one field).

Only the training split goes in; the val and test splits are only ever looked up.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from scipy.ndimage import uniform_filter1d

from benchmark.data.base import Climatology, Normalizer

WINDOW_DAYS = 61  # WeatherBench 2's compute_climatology.py default (window_size)
DAYS = 366
_CHUNK_FRAMES = 512

__all__ = ["WINDOW_DAYS", "PixelMean", "TargetClimatology", "calendar_climatology", "climatology_fields",
           "target_climatology"]


def _calendar(times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Day of year (0..365) and hour of day (float) of datetime64 `times`."""
    index = pd.DatetimeIndex(np.asarray(times, dtype="datetime64[ns]"))
    hours = index.hour + index.minute / 60.0 + index.second / 3600.0
    return np.asarray(index.day_of_year - 1, dtype=np.int64), np.asarray(hours, dtype=np.float64)


def calendar_climatology(frames: np.ndarray, times: np.ndarray, window_days: int = WINDOW_DAYS) -> Climatology:
    """The smoothed day-of-year x hour-of-day mean of training `frames` `(N, C, H, W)` (physical units)
    stamped with `times` (N datetime64); see the module docstring."""
    frames = np.asarray(frames)
    if len(frames) != len(times) or not len(frames):
        raise ValueError(f"calendar_climatology needs one time per frame, got {len(frames)} frames and "
                         f"{len(times)} times")
    days, hours = _calendar(times)
    hour_values, hour_index = np.unique(hours, return_inverse=True)
    bins = days * len(hour_values) + hour_index
    sums = np.zeros((DAYS * len(hour_values), *frames.shape[1:]), dtype=np.float64)
    counts = np.zeros(DAYS * len(hour_values), dtype=np.float64)
    for start in range(0, len(frames), _CHUNK_FRAMES):
        chunk = bins[start:start + _CHUNK_FRAMES]
        np.add.at(sums, chunk, frames[start:start + _CHUNK_FRAMES].astype(np.float64))
    np.add.at(counts, bins, 1.0)
    sums = sums.reshape(DAYS, len(hour_values), *frames.shape[1:])
    counts = counts.reshape(DAYS, len(hour_values))
    smoothed_sums = uniform_filter1d(sums, window_days, axis=0, mode="wrap")
    smoothed_counts = uniform_filter1d(counts, window_days, axis=0, mode="wrap")
    with np.errstate(invalid="ignore", divide="ignore"):
        fields = smoothed_sums / smoothed_counts.reshape(*counts.shape, *([1] * (frames.ndim - 1)))
    return Climatology(fields.astype(np.float32), hours=hour_values, window_days=int(window_days),
                       training_frames=len(frames))


class PixelMean:
    """Streaming per-pixel mean of `(n, C, H, W)` chunks in float64: the static climatology of images."""

    def __init__(self) -> None:
        self.total: np.ndarray | None = None
        self.count = 0

    def update(self, chunk: np.ndarray) -> None:
        """Add a chunk of `(n, C, H, W)` frames (physical units)."""
        summed = np.asarray(chunk, dtype=np.float64).sum(axis=0)
        self.total = summed if self.total is None else self.total + summed
        self.count += len(chunk)

    def climatology(self) -> Climatology:
        """The mean of every frame added, as a static `Climatology`."""
        if self.total is None or not self.count:
            raise ValueError("PixelMean.climatology: no frames were added")
        return Climatology((self.total / self.count).astype(np.float32)[None, None], training_frames=self.count)


def climatology_fields(climatology: Climatology, times: np.ndarray | None, count: int) -> np.ndarray:
    """The climatology's float32 `(count, C, H, W)` physical fields for `count` frames valid at `times`
    (datetime64; ignored, and may be None, for a static climatology)."""
    if climatology.static:
        return np.broadcast_to(climatology.fields[0, 0], (count, *climatology.fields.shape[2:]))
    if times is None or len(times) != count:
        raise ValueError(f"a calendar climatology needs the {count} frames' valid times")
    days, hours = _calendar(times)
    known = np.asarray(climatology.hours, dtype=np.float64)
    gap = np.abs(hours[:, None] - known[None, :])
    hour_index = np.argmin(np.minimum(gap, 24.0 - gap), axis=1)  # the nearest hour of day (circular)
    return climatology.fields[days, hour_index]


class TargetClimatology:
    """The normalized climatology of the target frames of one split's windows, by window position.

    Called with positions in the split (the order an unshuffled loader yields them), it returns float32
    `(B, T_out, C, H, W)` in the space the models are scored in. A calendar climatology needs the split
    to tell each window's valid times (`dataset.times(index)` -> (input times, target times), as
    `benchmark.data.windows.WindowDataset` does).
    """

    def __init__(self, climatology: Climatology, dataset: object, normalizer: Normalizer, t_out: int) -> None:
        if not climatology.static and not hasattr(dataset, "times"):
            raise ValueError(f"{type(dataset).__name__} has no valid times (times(index)); a calendar "
                             "climatology cannot be looked up for it")
        self.climatology = Climatology(normalizer.normalize(climatology.fields.astype(np.float64)).astype(np.float32),
                                       climatology.hours, climatology.window_days, climatology.training_frames)
        self.dataset = dataset
        self.t_out = int(t_out)

    def window(self, index: int) -> np.ndarray:
        """Float32 `(T_out, C, H, W)`: the normalized climatology of window `index`'s target frames."""
        times = None if self.climatology.static else self.dataset.times(int(index))[1]
        return climatology_fields(self.climatology, times, self.t_out)

    def __call__(self, positions: Sequence[int] | np.ndarray) -> torch.Tensor:
        """Float32 `(B, T_out, C, H, W)` for the windows at `positions`."""
        return torch.from_numpy(np.stack([self.window(i) for i in positions]).astype(np.float32))


def target_climatology(data: object, split: str = "test") -> TargetClimatology | None:
    """The `TargetClimatology` of `split` of a `ForecastData` (None when its dataset has no climatology)."""
    if getattr(data, "climatology", None) is None:
        return None
    return TargetClimatology(data.climatology, getattr(data, split), data.normalizer, data.shape.t_out)
