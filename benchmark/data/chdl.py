"""CHDL (Chip Dicing Lane Dataset of the DIFFUMA paper), read from its on-disk layout.

CHDL is not public (the authors give it on request): grayscale video of a wafer dicing lane,
600 x 800 pixels, 10 frames per sequence (a camera at 10 equidistant positions along the lane).
The layouts (folders of PNG/TIFF frames, or one .npy/.npz array per split) are described in
`frame_sources.py`, the decoding to [0, 1] intensities in `frames.py`. All frames of a dataset
must share one size and bit depth. Physical units are this [0, 1] "intensity".

Config keys (the run's `data` section; defaults and checks in `ChdlSettings`):

- `root`: the folder holding `train` and `test`. Unset: `$DIFFUMA_BENCH_DATA/chdl` when that
  variable is set, else `./data/chdl`.
- `t_in`, `t_out`: input and target frames per sample (5, 1; the paper's Section 3 uses 5 -> 5).
- `frames_per_sequence`: frames every sequence must have (10).
- `sample_stride`: null (default): one window per sequence, starting at its first frame, as in the
  paper (a sample is one 10-frame sequence; with 5 -> 1, frames 6..9 are unused). An integer k:
  windows start at frames 0, k, 2k, ... as long as they fit inside the sequence; a window never
  crosses from one sequence into another.
- `val_fraction`: CHDL ships train and test only; validation is the last `round(val_fraction * N)`
  (at least one) of the N training sequences in sorted-name order (array layout: the last ones by
  index), and those are left out of the training split (0.1).
- `crop`: [top, left, height, width] in source pixels, or null (null). Applied first.
- `resize`: [height, width] or null (null): area-average down-scaling (each output pixel is the
  mean of the source area it covers, fractional pixels weighted; `regrid.area_matrix`), after the
  crop. Up-scaling is refused.
- `color`: "error" (default): a colour frame is a DataError. "luminance": colour frames (RGB,
  RGBA, palette, gray+alpha; 3- or 4-channel arrays) are converted to ITU-R BT.601 luma
  (0.299 R + 0.587 G + 0.114 B, alpha dropped) and a warning is logged.
- `cache_limit_mb`: a split whose decoded frames (float32, after crop/resize, only the frames its
  windows use) take at most this many MiB is decoded once and held in memory; a larger split is
  read from disk item by item (1024).

Normalization: per-channel mean, standard deviation, minimum and maximum of all frames of the
training sequences (validation hold-out excluded), accumulated frame by frame (`RunningStats`:
Chan's parallel update, float64), never holding the split; applied to train, validation and test.
The climatology (ACC and the `climatology` model) is the per-pixel mean of the same training frames,
accumulated in the same pass.

Validation: every frame file's header (size, mode, bit depth) is checked at load; training frames
are fully decoded at load (statistics), as are cached splits; a damaged frame of a streamed
validation/test split is reported (DataError naming it) when it is first read.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from benchmark.core.errors import ConfigError, DataError
from benchmark.data.base import Climatology, ForecastData, Normalizer
from benchmark.data.climatology import PixelMean
from benchmark.data.frame_sources import MIB, SYNTHETIC_HINT, ArraySource, FolderSource, open_split
from benchmark.data.frames import FrameChecker
from benchmark.data.locations import ROOT_ENV
from benchmark.data.normalization import RunningStats
from benchmark.data.registry import register_dataset
from benchmark.data.regrid import area_average, area_matrix
from benchmark.data.settings import DataSettings, real_number, whole_number
from benchmark.data.windows import window_starts
from benchmark.registry.shapes import DataShape

log = logging.getLogger(__name__)

FILE_SPLITS = ("train", "test")


@dataclass(frozen=True)
class ChdlSettings(DataSettings):
    """The `data` keys of a CHDL load (see the module docstring); crop and resize become tuples."""

    t_in: int = 5
    t_out: int = 1
    frames_per_sequence: int = 10
    sample_stride: int | None = None
    val_fraction: float = 0.1
    crop: tuple[int, int, int, int] | None = None
    resize: tuple[int, int] | None = None
    color: str = "error"
    cache_limit_mb: float = 1024.0

    def __post_init__(self) -> None:
        super().__post_init__()
        self._set("frames_per_sequence", self._whole("frames_per_sequence", 2))
        if self.t_in + self.t_out > self.frames_per_sequence:
            raise ConfigError(f"t_in + t_out = {self.t_in} + {self.t_out} exceeds data.frames_per_sequence = "
                              f"{self.frames_per_sequence}: a CHDL sample is a window inside one sequence. Lower "
                              "t_in or t_out.")
        self._set("sample_stride", self._optional_whole("sample_stride", 1))
        fraction = real_number(self.val_fraction)
        if fraction is None or not 0 < fraction < 1:
            raise ConfigError(f"data.val_fraction = {self.val_fraction!r} must be a number between 0 and 1 "
                              "(exclusive): the share of training sequences held out for validation (default 0.1).")
        self._set("val_fraction", fraction)
        self._choice("color", {"error": "colour frames are refused",
                               "luminance": "colour frames are converted to gray with a warning"})
        limit = real_number(self.cache_limit_mb, allow_infinite=True)
        if limit is None or limit < 0:
            raise ConfigError(f"data.cache_limit_mb = {self.cache_limit_mb!r} must be a number of MiB of at least 0 "
                              "(0: always read frames from disk).")
        self._set("cache_limit_mb", limit)
        self._set("crop", self._pixels("crop", ("top", "left", "height", "width"), (0, 0, 1, 1)))
        self._set("resize", self._pixels("resize", ("height", "width"), (1, 1)))

    def window_starts(self) -> np.ndarray:
        """First frames of the windows inside one sequence (see `sample_stride` in the module docstring)."""
        # One window per sequence (sample_stride null) is a stride as long as the sequence.
        frames = self.frames_per_sequence
        return window_starts([frames], self.t_in + self.t_out, self.sample_stride or frames)

    def _pixels(self, key: str, names: tuple[str, ...], minimum: tuple[int, ...]) -> tuple[int, ...] | None:
        value = getattr(self, key)
        if value is None:
            return None
        if not isinstance(value, (list, tuple)) or len(value) != len(names):
            raise ConfigError(f"data.{key} = {value!r} must be a list [{', '.join(names)}] of whole numbers, or null.")
        return tuple(whole_number(v, key, low, None) for v, low in zip(value, minimum, strict=True))


def find_chdl_root(root: str | None) -> Path:
    """The CHDL folder for a configured root (or the default location); DataError if it is missing."""
    if root is not None:
        candidate = Path(root).expanduser()
    elif os.environ.get(ROOT_ENV):
        candidate = Path(os.environ[ROOT_ENV]).expanduser() / "chdl"
    else:
        candidate = Path("data") / "chdl"
    if not candidate.is_dir():
        raise DataError(
            f"No CHDL data found: the folder {candidate.absolute()} does not exist. CHDL is not public (the "
            "DIFFUMA authors give it on request). Put it there in the layout <root>/train/<sequence_id>/<frames> "
            "and <root>/test/<sequence_id>/<frames> (PNG or TIFF), or <root>/train.npy and <root>/test.npy, or "
            f"point --data-root (config data.root, or ${ROOT_ENV}/chdl) at it. {SYNTHETIC_HINT}"
        )
    return candidate


class FrameTransform:
    """Crop, then area-average resize, of float32 `(n, H, W)` frames."""

    def __init__(self, source_shape: tuple[int, int], crop: tuple[int, ...] | None,
                 resize: tuple[int, ...] | None, reference: str) -> None:
        height, width = source_shape
        if crop is not None:
            top, left, crop_h, crop_w = crop
            if top + crop_h > height or left + crop_w > width:
                raise ConfigError(f"data.crop = {list(crop)} reaches beyond the {height} x {width} frames (height x "
                                  f"width, e.g. {reference}). Choose top + height <= {height} and left + width "
                                  f"<= {width}.")
            height, width = crop_h, crop_w
        self.crop = crop
        self.rows = self.cols = None
        if resize is not None and tuple(resize) != (height, width):
            if resize[0] > height or resize[1] > width:
                raise ConfigError(f"data.resize = {list(resize)} is larger than the {height} x {width} frames "
                                  "(after data.crop): resize only down-scales (area averaging).")
            self.rows, self.cols = area_matrix(height, resize[0]), area_matrix(width, resize[1])
            height, width = resize
        self.shape = (height, width)

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        """Transformed frames, float32 `(n, H', W')`."""
        if self.crop is not None:
            top, left, height, width = self.crop
            frames = frames[:, top:top + height, left:left + width]
        if self.rows is not None:
            frames = area_average(frames, self.rows, self.cols)
        return np.ascontiguousarray(frames, dtype=np.float32)


# --- the dataset ----------------------------------------------------------------------------------


class ChdlDataset(Dataset):
    """`(x, y)` windows of some sequences of a CHDL split, normalized.

    Frames are read from the source (and cropped, resized, normalized) in `__getitem__`, unless
    `fill_cache` decided the split fits in memory; `cache` is then `(sequences, frames_used, 1, H, W)`.
    """

    def __init__(self, source: FolderSource | ArraySource, sequences: np.ndarray, starts: np.ndarray,
                 t_in: int, t_out: int, transform: FrameTransform) -> None:
        self.source = source
        self.sequences = np.asarray(sequences, dtype=np.int64)
        self.starts = np.asarray(starts, dtype=np.int64)
        self.t_in, self.t_out = t_in, t_out
        self.transform = transform
        self.frames_used = int(self.starts.max()) + t_in + t_out
        self.normalizer: Normalizer | None = None
        self.cache: np.ndarray | None = None

    @property
    def cached(self) -> bool:
        """Whether the decoded frames are held in memory."""
        return self.cache is not None

    def decoded_mib(self) -> float:
        """Size of this split's used frames decoded as float32, in MiB."""
        height, width = self.transform.shape
        return len(self.sequences) * self.frames_used * height * width * 4 / MIB

    def __len__(self) -> int:
        return len(self.sequences) * len(self.starts)

    def read_sequence(self, position: int, start: int, stop: int) -> np.ndarray:
        """Frames `start:stop` of the `position`-th sequence, transformed, physical units, `(n, H, W)`."""
        return self.transform(self.source.read(int(self.sequences[position]), start, stop))

    def _normalized(self, frames: np.ndarray) -> np.ndarray:
        mean, std = (np.float32(v[0]) for v in (self.normalizer.mean, self.normalizer.std))
        frames -= mean
        frames /= std
        return frames[:, None]

    def empty_cache(self) -> np.ndarray:
        """An uninitialized float32 array for this split's used frames, `(sequences, frames_used, 1, H, W)`."""
        return np.empty((len(self.sequences), self.frames_used, 1, *self.transform.shape), dtype=np.float32)

    def fill_cache(self, limit_mb: float, normalizer: Normalizer, decoded: np.ndarray | None = None) -> None:
        """Set the normalizer; hold the decoded frames in memory when they fit under `limit_mb`.

        `decoded` (optional): the physical frames already read, as filled into `empty_cache()`;
        normalized in place and kept.
        """
        self.normalizer = normalizer
        if self.decoded_mib() > limit_mb:
            return
        if decoded is None:
            decoded = self.empty_cache()
            for position in range(len(self.sequences)):
                decoded[position, :, 0] = self.read_sequence(position, 0, self.frames_used)
        decoded -= np.float32(normalizer.mean[0])
        decoded /= np.float32(normalizer.std[0])
        self.cache = decoded

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"window {index} out of range for {len(self)} windows")
        position, window = divmod(index % len(self), len(self.starts))
        start = int(self.starts[window])
        stop = start + self.t_in + self.t_out
        if self.cache is not None:
            frames = np.array(self.cache[position, start:stop])  # a copy: batches never alias the cache
        else:
            frames = self._normalized(self.read_sequence(position, start, stop))
        return torch.from_numpy(frames[:self.t_in]), torch.from_numpy(frames[self.t_in:])


def validation_split(count: int, fraction: float, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the training and validation sequences: validation = the last ones in sorted order."""
    held_out = max(1, round(fraction * count))
    if count - held_out < 1:
        raise DataError(f"The training split {where} has {count} sequence(s): too few to hold out a validation "
                        f"share (data.val_fraction = {fraction:g}) and still train. Add training sequences.")
    return np.arange(count - held_out), np.arange(count - held_out, count)


def _fit_training(train: ChdlDataset, frames_per_sequence: int, limit_mb: float) -> tuple[Normalizer, Climatology]:
    """Stream over every frame of the training sequences once: statistics, the climatology (the per-pixel
    mean), and the cache when it fits."""
    stats, pixel_mean = RunningStats(), PixelMean()
    decoded = train.empty_cache() if train.decoded_mib() <= limit_mb else None
    for position in range(len(train.sequences)):
        frames = train.read_sequence(position, 0, frames_per_sequence)
        pixel_mean.update(frames[:, None])
        for frame in frames:
            stats.update(frame[None, None])
        if decoded is not None:
            decoded[position, :, 0] = frames[:train.frames_used]
    normalizer = stats.normalizer()
    if not normalizer.std[0] > 0:
        raise DataError(f"The training frames in {train.source.describe()} are all equal ({normalizer.mean[0]:g}): "
                        "they cannot be standardized. Check the data.")
    train.fill_cache(limit_mb, normalizer, decoded)
    return normalizer, pixel_mean.climatology()


def load_chdl_from_root(root: Path, settings: ChdlSettings, name: str = "chdl") -> ForecastData:
    """Load CHDL from an existing folder `root` (either layout; see the module docstring)."""
    checker = FrameChecker(settings.color)
    sources = {split: open_split(root, split, settings.frames_per_sequence, checker, settings.cache_limit_mb)
               for split in FILE_SPLITS}
    if checker.converted:
        log.warning("%d CHDL colour frame(s) or array(s) converted to luminance (data.color: luminance), the first: "
                    "%s", len(checker.converted), checker.converted[0])
    transform = FrameTransform(checker.shape, settings.crop, settings.resize, checker.reference)
    starts = settings.window_starts()
    train_ids, val_ids = validation_split(len(sources["train"]), settings.val_fraction, sources["train"].describe())
    datasets = {
        "train": ChdlDataset(sources["train"], train_ids, starts, settings.t_in, settings.t_out, transform),
        "val": ChdlDataset(sources["train"], val_ids, starts, settings.t_in, settings.t_out, transform),
        "test": ChdlDataset(sources["test"], np.arange(len(sources["test"])), starts, settings.t_in,
                            settings.t_out, transform),
    }
    normalizer, climatology = _fit_training(datasets["train"], settings.frames_per_sequence, settings.cache_limit_mb)
    for split in ("val", "test"):
        datasets[split].fill_cache(settings.cache_limit_mb, normalizer)
    height, width = transform.shape
    info = {
        "root": str(root),
        "layout": {split: source.kind for split, source in sources.items()},
        "bit_depth": checker.depth,
        "source_resolution": list(checker.shape),
        "resolution": [height, width],
        "crop": list(settings.crop) if settings.crop else None,
        "resize": list(settings.resize) if settings.resize else None,
        "frames_per_sequence": settings.frames_per_sequence,
        "sample_stride": settings.sample_stride,
        "windows_per_sequence": len(starts),
        "sequences": {split: len(d.sequences) for split, d in datasets.items()},
        "val_fraction": settings.val_fraction,
        "validation_sequences": list(dict.fromkeys(sources["train"].names[i] for i in val_ids[[0, -1]])),  # ends
        "cached": {split: d.cached for split, d in datasets.items()},
        "color_converted": len(checker.converted),
    }
    return ForecastData(
        name=name,
        train=datasets["train"],
        val=datasets["val"],
        test=datasets["test"],
        shape=DataShape(settings.t_in, settings.t_out, 1, height, width),
        normalizer=normalizer,
        channel_names=["gray"],
        units=["intensity"],
        lat=None,
        info=info,
        climatology=climatology,
    )


@register_dataset("chdl", summary="CHDL chip dicing lane video (grayscale, 600x800, 10 frames a sequence; "
                  "not public) from PNG/TIFF folders or .npy/.npz arrays", settings=ChdlSettings)
def load_chdl(task: str | None, config: dict[str, Any]) -> ForecastData:
    """Load CHDL from `config['root']` (see the module docstring for all keys)."""
    settings = ChdlSettings.from_config(config, "chdl")
    return load_chdl_from_root(find_chdl_root(settings.root), settings)
