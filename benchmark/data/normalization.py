"""Per-channel statistics of a training split, and applying them in place to any split.

Statistics are accumulated in float64 chunk by chunk (`RunningStats`), so that a split is never
copied as a whole: a multi-gigabyte float32 array in memory (WeatherBench) and frames streamed from
disk sequence by sequence (CHDL) go through the same accumulator.
"""

from __future__ import annotations

import numpy as np

from benchmark.data.base import Normalizer

_CHUNK_FRAMES = 512


class RunningStats:
    """Per-channel mean, variance (ddof 0), minimum and maximum of `(n, C, H, W)` chunks, merged chunk
    by chunk with Chan et al.'s parallel update, in float64. Each chunk's own variance is taken around
    its own mean, which avoids the cancellation of the sum-of-squares formula."""

    def __init__(self, channels: int = 1) -> None:
        self.count = 0
        self.mean = np.zeros(channels)
        self.m2 = np.zeros(channels)
        self.low = np.full(channels, np.inf)
        self.high = np.full(channels, -np.inf)

    def update(self, chunk: np.ndarray) -> None:
        """Add a chunk of `(n, C, H, W)` values."""
        count = chunk.shape[0] * chunk.shape[2] * chunk.shape[3]
        # One full reduction per channel (not one over axes 0, 2, 3): numpy's pairwise summation then
        # adds in the same order as for a single frame, so a one-channel stream keeps its exact numbers.
        mean = np.array([chunk[:, c].mean(dtype=np.float64) for c in range(chunk.shape[1])])
        m2 = np.array([np.square(chunk[:, c].astype(np.float64) - mean[c]).sum() for c in range(chunk.shape[1])])
        total = self.count + count
        delta = mean - self.mean
        self.mean = self.mean + delta * count / total
        self.m2 = self.m2 + (m2 + delta**2 * self.count * count / total)
        self.count = total
        self.low = np.minimum(self.low, chunk.min(axis=(0, 2, 3)))
        self.high = np.maximum(self.high, chunk.max(axis=(0, 2, 3)))

    def normalizer(self) -> Normalizer:
        """The statistics as a `Normalizer`."""
        return Normalizer(mean=self.mean, std=np.sqrt(self.m2 / self.count), data_min=self.low, data_max=self.high)


def fit_normalizer(frames: np.ndarray) -> Normalizer:
    """Mean, standard deviation (ddof 0), minimum and maximum per channel of `(N, C, H, W)` frames."""
    stats = RunningStats(frames.shape[1])
    for start in range(0, len(frames), _CHUNK_FRAMES):
        stats.update(frames[start:start + _CHUNK_FRAMES])
    return stats.normalizer()


def normalize_inplace(frames: np.ndarray, normalizer: Normalizer) -> np.ndarray:
    """Standardize float32 `(N, C, H, W)` frames in place with `normalizer`; returns `frames`."""
    mean = np.asarray(normalizer.mean, dtype=np.float32)[:, None, None]
    std = np.asarray(normalizer.std, dtype=np.float32)[:, None, None]
    for start in range(0, len(frames), _CHUNK_FRAMES):
        chunk = frames[start:start + _CHUNK_FRAMES]
        chunk -= mean
        chunk /= std
    return frames
