"""Sliding forecast windows over an in-memory frame array, without materializing the windows.

A split is one float32 array of frames `(N, C, H, W)` made of one or more contiguous stretches
("segments", e.g. non-adjacent years). A window is `t_in + t_out` consecutive frames inside one
segment; consecutive windows start `sample_stride` frames apart and never cross a segment end.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset


def window_starts(segment_lengths: Sequence[int], window: int, stride: int) -> np.ndarray:
    """First-frame indices of every window of `window` frames, `stride` apart, inside each segment.

    Segments lie back to back in the frame array; each starts its own window grid at its first frame.
    """
    starts = []
    offset = 0
    for length in segment_lengths:
        if length >= window:
            starts.append(offset + np.arange(0, length - window + 1, stride, dtype=np.int64))
        offset += length
    return np.concatenate(starts) if starts else np.zeros(0, dtype=np.int64)


class WindowDataset(Dataset):
    """`(x, y)` pairs sliced lazily from `frames`: x = `t_in` frames, y = the `t_out` frames after.

    `frames` is `(N, C, H, W)` float32 (already normalized); `frame_times` (optional, length N)
    are the frames' time stamps so that baselines can look up calendar information.
    """

    def __init__(
        self,
        frames: np.ndarray,
        starts: np.ndarray,
        t_in: int,
        t_out: int,
        frame_times: np.ndarray | None = None,
    ) -> None:
        self.frames = frames
        self.starts = np.asarray(starts, dtype=np.int64)
        self.t_in = t_in
        self.t_out = t_out
        self.frame_times = frame_times

    def __len__(self) -> int:
        return len(self.starts)

    def _start(self, index: int) -> int:
        if not -len(self) <= index < len(self):
            raise IndexError(f"window {index} out of range for {len(self)} windows")
        return int(self.starts[index])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        start = self._start(index)
        middle = start + self.t_in
        # Copies, so that in-place edits of a batch never reach the stored frames.
        x = torch.from_numpy(np.array(self.frames[start:middle], dtype=np.float32))
        y = torch.from_numpy(np.array(self.frames[middle:middle + self.t_out], dtype=np.float32))
        return x, y

    def times(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Time stamps of the input and target frames of window `index`."""
        if self.frame_times is None:
            raise ValueError("this dataset was built without frame time stamps")
        start = self._start(index)
        middle = start + self.t_in
        return self.frame_times[start:middle], self.frame_times[middle:middle + self.t_out]
