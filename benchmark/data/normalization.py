"""Per-channel statistics of a training split, and applying them in place to any split.

Statistics are accumulated in float64 over chunks of frames, so that a multi-gigabyte float32
split is never copied as a whole.
"""

from __future__ import annotations

import numpy as np

from benchmark.data.base import Normalizer

_CHUNK_FRAMES = 512


def fit_normalizer(frames: np.ndarray) -> Normalizer:
    """Mean, standard deviation (ddof 0), minimum and maximum per channel of `(N, C, H, W)` frames."""
    channels = frames.shape[1]
    count = 0
    total = np.zeros(channels)
    low = np.full(channels, np.inf)
    high = np.full(channels, -np.inf)
    for start in range(0, len(frames), _CHUNK_FRAMES):
        chunk = frames[start:start + _CHUNK_FRAMES]
        total += chunk.sum(axis=(0, 2, 3), dtype=np.float64)
        low = np.minimum(low, chunk.min(axis=(0, 2, 3)))
        high = np.maximum(high, chunk.max(axis=(0, 2, 3)))
        count += chunk.shape[0] * chunk.shape[2] * chunk.shape[3]
    mean = total / count
    # Second pass around the mean: avoids the cancellation of the sum-of-squares formula.
    squares = np.zeros(channels)
    for start in range(0, len(frames), _CHUNK_FRAMES):
        centred = frames[start:start + _CHUNK_FRAMES].astype(np.float64) - mean[:, None, None]
        squares += np.square(centred).sum(axis=(0, 2, 3))
    return Normalizer(mean=mean, std=np.sqrt(squares / count), data_min=low, data_max=high)


def normalize_inplace(frames: np.ndarray, normalizer: Normalizer) -> np.ndarray:
    """Standardize float32 `(N, C, H, W)` frames in place with `normalizer`; returns `frames`."""
    mean = np.asarray(normalizer.mean, dtype=np.float32)[:, None, None]
    std = np.asarray(normalizer.std, dtype=np.float32)[:, None, None]
    for start in range(0, len(frames), _CHUNK_FRAMES):
        chunk = frames[start:start + _CHUNK_FRAMES]
        chunk -= mean
        chunk /= std
    return frames
