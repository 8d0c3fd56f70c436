"""CHDL (Chip Dicing Lane Dataset of the DIFFUMA paper), read from its on-disk layout.

CHDL is not public (the authors give it on request): grayscale video of a wafer dicing lane,
600 x 800 pixels, 10 frames per sequence (a camera at 10 equidistant positions along the lane).
Two layouts are read; for each split the folder wins over an array file::

    <root>/train/<sequence_id>/<frame files>     8- or 16-bit grayscale PNG or TIFF (.png, .tif,
    <root>/test/<sequence_id>/<frame files>      .tiff), frames ordered by name
    <root>/train.npy | train.npz                 one array per split: (N, 10, 1, H, W) or
    <root>/test.npy  | test.npz                  (N, 10, H, W); uint8, uint16 or float

Names (sequence folders and frame files) are sorted "naturally": digit runs compare as numbers,
so `frame_2` comes before `frame_10`; zero-padded names sort as usual. Hidden files and files with
other extensions are ignored. An `.npz` holds one array (or one named `frames`). `.npy` files are
memory-mapped; uncompressed `.npz` members (`numpy.savez`) are memory-mapped too; a compressed
`.npz` is read into memory, so it must fit under `cache_limit_mb`.

Intensities: integer frames are scaled to [0, 1] by their bit depth (value / 255 or / 65535), so
8- and 16-bit versions of one scene give the same numbers (the usual video-prediction convention);
float frames are taken as they are. All frames of a dataset must share one size and bit depth.
Physical units are this [0, 1] "intensity".

Config keys (the run's `data` section; defaults in `DEFAULTS`):

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
  mean of the source area it covers, fractional pixels weighted), after the crop. Up-scaling is
  refused.
- `color`: "error" (default): a colour frame is a DataError. "luminance": colour frames (RGB,
  RGBA, palette, gray+alpha; 3- or 4-channel arrays) are converted to ITU-R BT.601 luma
  (0.299 R + 0.587 G + 0.114 B, alpha dropped) and a warning is logged.
- `cache_limit_mb`: a split whose decoded frames (float32, after crop/resize, only the frames its
  windows use) take at most this many MiB is decoded once and held in memory; a larger split is
  read from disk item by item (1024).

Normalization: per-channel mean, standard deviation, minimum and maximum of all frames of the
training sequences (validation hold-out excluded), accumulated sequence by sequence (Chan's
parallel update, float64), never holding the split; applied to train, validation and test.

Validation: every frame file's header (size, mode, bit depth) is checked at load; training frames
are fully decoded at load (statistics), as are cached splits; a damaged frame of a streamed
validation/test split is reported (DataError naming it) when it is first read.
"""

from __future__ import annotations

import logging
import math
import os
import re
import struct
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from benchmark.data.base import ForecastData, Normalizer
from benchmark.data.registry import register_dataset
from benchmark.data.settings import whole_number
from benchmark.errors import ConfigError, DataError
from benchmark.shapes import DataShape

log = logging.getLogger(__name__)

ROOT_ENV = "DIFFUMA_BENCH_DATA"
FILE_SPLITS = ("train", "test")
FRAME_SUFFIXES = (".png", ".tif", ".tiff")
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
MIB = 2**20
DEFAULTS: dict[str, Any] = {
    "root": None,
    "t_in": 5,
    "t_out": 1,
    "frames_per_sequence": 10,
    "sample_stride": None,
    "val_fraction": 0.1,
    "crop": None,
    "resize": None,
    "color": "error",
    "cache_limit_mb": 1024,
}
GRAY_MODES: dict[str, int | str] = {"1": 8, "L": 8, "I;16": 16, "I;16L": 16, "I;16B": 16, "I;16N": 16, "F": "float"}
COLOR_MODES = {"RGB", "RGBA", "RGBX", "RGBa", "P", "PA", "LA", "La", "CMYK", "YCbCr", "LAB", "HSV"}
SYNTHETIC_HINT = "To try the pipeline without the real data, use the generated dataset `synthetic-chdl`."


# --- configuration -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChdlSettings:
    """The resolved `data` configuration of one CHDL load."""

    root: str | None
    t_in: int
    t_out: int
    frames_per_sequence: int
    sample_stride: int | None
    val_fraction: float
    crop: tuple[int, int, int, int] | None
    resize: tuple[int, int] | None
    color: str
    cache_limit_mb: float


def _whole(value: Any, key: str, minimum: int) -> int:
    return whole_number(value, key, minimum, DEFAULTS[key])


def _int_list(config: dict[str, Any], key: str, names: Sequence[str], minimum: Sequence[int]) -> tuple[int, ...] | None:
    value = config.get(key, DEFAULTS[key])
    if value is None:
        return None
    example = "[" + ", ".join(names) + "]"
    if not isinstance(value, (list, tuple)) or len(value) != len(names):
        raise ConfigError(f"data.{key} = {value!r} must be a list {example} of whole numbers, or null.")
    return tuple(_whole(v, key, low) for v, low in zip(value, minimum, strict=True))


def read_chdl_settings(config: dict[str, Any]) -> ChdlSettings:
    """Validate the CHDL keys of `config`, filling in `DEFAULTS`; other keys are ignored."""
    t_in = _whole(config.get("t_in", DEFAULTS["t_in"]), "t_in", 1)
    t_out = _whole(config.get("t_out", DEFAULTS["t_out"]), "t_out", 1)
    frames = _whole(config.get("frames_per_sequence", DEFAULTS["frames_per_sequence"]), "frames_per_sequence", 2)
    if t_in + t_out > frames:
        raise ConfigError(f"t_in + t_out = {t_in} + {t_out} exceeds data.frames_per_sequence = {frames}: a CHDL "
                          "sample is a window inside one sequence. Lower t_in or t_out.")
    stride = config.get("sample_stride", DEFAULTS["sample_stride"])
    stride = None if stride is None else _whole(stride, "sample_stride", 1)
    fraction = config.get("val_fraction", DEFAULTS["val_fraction"])
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
        raise ConfigError(f"data.val_fraction = {fraction!r} must be a number between 0 and 1 (exclusive): the "
                          "share of training sequences held out for validation (default 0.1).")
    color = config.get("color", DEFAULTS["color"])
    if color not in ("error", "luminance"):
        raise ConfigError(f"data.color = {color!r}: use 'error' (colour frames are refused) or 'luminance' "
                          "(colour frames are converted to gray with a warning).")
    limit = config.get("cache_limit_mb", DEFAULTS["cache_limit_mb"])
    if isinstance(limit, bool) or not isinstance(limit, (int, float)) or not limit >= 0:
        raise ConfigError(f"data.cache_limit_mb = {limit!r} must be a number of MiB of at least 0 "
                          "(0: always read frames from disk).")
    root = config.get("root", DEFAULTS["root"])
    return ChdlSettings(
        root=str(root) if root not in (None, "") else None,
        t_in=t_in,
        t_out=t_out,
        frames_per_sequence=frames,
        sample_stride=stride,
        val_fraction=float(fraction),
        crop=_int_list(config, "crop", ("top", "left", "height", "width"), (0, 0, 1, 1)),
        resize=_int_list(config, "resize", ("height", "width"), (1, 1)),
        color=color,
        cache_limit_mb=float(limit),
    )


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


def natural_key(name: str) -> tuple[list[Any], str]:
    """Sort key comparing digit runs as numbers: 'frame_2' < 'frame_10'."""
    parts = re.split(r"(\d+)", name.lower())
    return [int(p) if i % 2 else p for i, p in enumerate(parts)], name


# --- frames: checking and decoding ---------------------------------------------------------------


def _unreadable(path: Path, err: Exception) -> DataError:
    return DataError(f"Cannot read the frame {path} ({type(err).__name__}: {err}). It is not a readable PNG or "
                     "TIFF image (damaged or truncated?): replace the file, or remove its sequence folder.")


def _color_error(where: str, what: str) -> DataError:
    return DataError(f"{where} is a colour {what}; CHDL frames are grayscale. Convert the frames to 8- or 16-bit "
                     "grayscale, or set data.color: luminance to convert colour frames to luma (with a warning).")


def frame_depth(mode: str, image_format: str | None) -> int | str | None:
    """Bit depth of a grayscale Pillow mode (8, 16 or 'float'); None for a colour mode."""
    if mode in GRAY_MODES:
        return GRAY_MODES[mode]
    if mode == "I" and image_format == "PNG":  # how older Pillow versions open 16-bit PNGs
        return 16
    return None


class FrameChecker:
    """Checks each frame (or array) against the first one seen: size, bit depth, grayscale."""

    def __init__(self, color: str) -> None:
        self.color = color
        self.shape: tuple[int, int] | None = None
        self.depth: int | str | None = None
        self.reference = ""
        self.converted: list[str] = []

    def check(self, where: str, shape: tuple[int, int], depth: int | str) -> None:
        """Record the first frame's size and depth; a DataError when `where` differs from it."""
        if self.shape is None:
            self.shape, self.depth, self.reference = tuple(shape), depth, where
            return
        if tuple(shape) != self.shape:
            raise DataError(f"{where} is {shape[0]} x {shape[1]} pixels (height x width) but {self.reference} is "
                            f"{self.shape[0]} x {self.shape[1]}: all CHDL frames must have one size. Resize or "
                            "replace the odd frames (data.crop / data.resize act on every frame alike).")
        if depth != self.depth:
            raise DataError(f"{where} has bit depth {depth} but {self.reference} has {self.depth}: all CHDL frames "
                            "must share one bit depth. Convert the odd frames.")

    def check_file(self, path: Path) -> None:
        """Open the header of one frame file and check it."""
        try:
            with Image.open(path) as image:
                mode, shape, image_format = image.mode, (image.height, image.width), image.format
        except (OSError, ValueError, Image.DecompressionBombError) as err:
            raise _unreadable(path, err) from err
        depth = frame_depth(mode, image_format)
        if depth is None:
            if mode not in COLOR_MODES:
                raise DataError(f"{path} has the pixel mode {mode!r}, which CHDL does not read: use 8- or 16-bit "
                                "grayscale PNG or TIFF.")
            if self.color != "luminance":
                raise _color_error(str(path), f"image (mode {mode})")
            self.converted.append(str(path))
            depth = 8  # Pillow converts colour to 8-bit RGB
        self.check(str(path), shape, depth)


def _scale(values: np.ndarray) -> np.ndarray:
    """Integer intensities -> float32 in [0, 1] by their dtype's range; floats unchanged."""
    if values.dtype == np.uint8:
        return values.astype(np.float32) / np.float32(255)
    if values.dtype.kind in "iu":
        return values.astype(np.float32) / np.float32(65535)
    return values.astype(np.float32, copy=False)


def decode_frame(path: str | Path, color: str) -> np.ndarray:
    """One frame file as float32 `(H, W)` intensities (see the module docstring for the scaling)."""
    try:
        with Image.open(path) as image:
            image.load()
            depth = frame_depth(image.mode, image.format)
            if depth is not None:
                values = np.asarray(image.convert("L") if image.mode == "1" else image)
            elif image.mode in COLOR_MODES and color == "luminance":
                rgb = image.getchannel("L").convert("RGB") if image.mode in ("LA", "La") else image.convert("RGB")
                return np.asarray(rgb, dtype=np.float32) @ (LUMA / np.float32(255))
            else:
                raise _color_error(str(path), f"image (mode {image.mode})")
    except (OSError, ValueError, Image.DecompressionBombError) as err:
        raise _unreadable(Path(path), err) from err
    if depth == 16 and values.dtype.kind == "i":  # mode "I": int32 holding 16-bit values
        values = values.astype(np.uint16)
    return _scale(values)


# --- split sources: folders of frame files, or one array file --------------------------------------


class FolderSource:
    """The sequence folders of one split folder; frames are decoded when read."""

    kind = "folders"

    def __init__(self, folder: Path, names: list[str], frames: list[list[str]], color: str) -> None:
        self.folder = folder
        self.names = names
        self.frames = frames
        self.color = color

    def __len__(self) -> int:
        return len(self.names)

    def read(self, sequence: int, start: int, stop: int) -> np.ndarray:
        """Frames `start:stop` of sequence `sequence` as float32 `(n, H, W)` intensities."""
        return np.stack([decode_frame(path, self.color) for path in self.frames[sequence][start:stop]])

    def describe(self) -> str:
        """Where the split comes from (for messages and info)."""
        return str(self.folder)


def scan_folder(folder: Path, frames_per_sequence: int, checker: FrameChecker) -> FolderSource:
    """List and check the sequence folders of one split folder (headers only)."""
    entries = sorted((p for p in folder.iterdir() if not p.name.startswith(".")), key=lambda p: natural_key(p.name))
    sequences = [p for p in entries if p.is_dir()]
    if not sequences:
        loose = sum(p.suffix.lower() in FRAME_SUFFIXES for p in entries)
        hint = (f" It holds {loose} frame files directly: move each sequence's frames into its own subfolder."
                if loose else "")
        raise DataError(f"The split folder {folder} has no sequence folders; CHDL expects {folder}/<sequence_id>/"
                        f"<frame files>, one folder of {frames_per_sequence} frames per sequence.{hint}")
    names, frames = [], []
    for sequence in sequences:
        files = sorted((p for p in sequence.iterdir() if p.is_file() and not p.name.startswith(".")
                        and p.suffix.lower() in FRAME_SUFFIXES), key=lambda p: natural_key(p.name))
        if len(files) != frames_per_sequence:
            raise DataError(
                f"The sequence folder {sequence} has {len(files)} frame files (.png, .tif, .tiff) but every CHDL "
                f"sequence needs data.frames_per_sequence = {frames_per_sequence}. Add the missing frames (the "
                "CHDL authors interpolate missing ones), remove the folder, or change data.frames_per_sequence."
            )
        for path in files:
            checker.check_file(path)
        names.append(sequence.name)
        frames.append([str(p) for p in files])
    return FolderSource(folder, names, frames, checker.color)


def _npz_member(path: Path) -> tuple[str, int | None, tuple[int, ...], np.dtype, bool]:
    """The array of an `.npz`: its key, its data offset in the file (None when compressed), shape,
    dtype and Fortran order."""
    try:
        with zipfile.ZipFile(path) as archive:
            keys = [n[:-4] for n in archive.namelist() if n.endswith(".npy")]
            if len(keys) != 1 and "frames" not in keys:
                raise DataError(f"{path} holds the arrays {keys or 'none'}; a CHDL .npz must hold one array (or "
                                "one named 'frames') of shape (N, 10, 1, H, W).")
            key = keys[0] if len(keys) == 1 else "frames"
            info = archive.getinfo(key + ".npy")
            with archive.open(info) as member:
                shape, fortran, dtype = _read_npy_header(member)
            if info.compress_type != zipfile.ZIP_STORED:
                return key, None, shape, dtype, fortran
        with open(path, "rb") as handle:
            handle.seek(info.header_offset)
            name_length, extra_length = struct.unpack("<HH", handle.read(30)[26:30])
            handle.seek(info.header_offset + 30 + name_length + extra_length)
            _read_npy_header(handle)
            return key, handle.tell(), shape, dtype, fortran
    except (OSError, ValueError, zipfile.BadZipFile, struct.error) as err:
        raise DataError(f"Cannot read {path} ({type(err).__name__}: {err}): not a valid .npz file. Save it with "
                        "numpy.savez (or numpy.save as .npy).") from err


def _read_npy_header(handle: Any) -> tuple[tuple[int, ...], bool, np.dtype]:
    version = np.lib.format.read_magic(handle)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(handle)
    return np.lib.format.read_array_header_2_0(handle)


class ArraySource:
    """One split stored as an array file `(N, F, 1, H, W)` or `(N, F, H, W)` (or with 3-4 colour
    channels under `color: luminance`); memory-mapped unless it is a compressed `.npz`."""

    kind = "array"

    def __init__(self, path: Path, key: str | None, offset: int | None, shape: tuple[int, ...],
                 dtype: np.dtype, fortran: bool, in_memory: np.ndarray | None = None) -> None:
        self.path, self.key, self.offset = path, key, offset
        self.shape, self.dtype, self.fortran = shape, dtype, fortran
        self.names = [str(i) for i in range(shape[0])]
        self._array = in_memory
        self._in_memory = in_memory is not None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        if not self._in_memory:  # worker processes re-open the memory map instead of copying it
            state["_array"] = None
        return state

    def array(self) -> np.ndarray:
        """The (memory-mapped) array."""
        if self._array is None:
            if self.key is None:
                self._array = np.load(self.path, mmap_mode="r")
            else:
                self._array = np.memmap(self.path, self.dtype, "r", self.offset, self.shape,
                                        order="F" if self.fortran else "C")
        return self._array

    def __len__(self) -> int:
        return self.shape[0]

    def read(self, sequence: int, start: int, stop: int) -> np.ndarray:
        """Frames `start:stop` of sequence `sequence` as float32 `(n, H, W)` intensities."""
        return _array_frames(np.asarray(self.array()[sequence, start:stop]))

    def describe(self) -> str:
        """Where the split comes from (for messages and info)."""
        return str(self.path)


def _array_frames(block: np.ndarray) -> np.ndarray:
    """`(..., H, W)` or `(..., C, H, W)` raw values of one split array -> float32 gray intensities."""
    if block.ndim == 3:  # (n, H, W)
        return _scale(block)
    if block.shape[-3] == 1:
        return _scale(block[..., 0, :, :])
    rgb = _scale(block[..., :3, :, :])  # colour (accepted only under color: luminance); alpha dropped
    return np.einsum("...chw,c->...hw", rgb, LUMA)


def open_array(path: Path, frames_per_sequence: int, checker: FrameChecker, limit_mb: float) -> ArraySource:
    """Open and check one split array file (`.npy` memory-mapped; `.npz` see `_npz_member`)."""
    if path.suffix == ".npy":
        try:
            array = np.load(path, mmap_mode="r")
        except (OSError, ValueError) as err:
            raise DataError(f"Cannot read {path} ({type(err).__name__}: {err}): not a valid .npy file. Save the "
                            "split with numpy.save.") from err
        source = ArraySource(path, None, None, array.shape, array.dtype, False)
    else:
        key, offset, shape, dtype, fortran = _npz_member(path)
        in_memory = None
        if offset is None:
            raw_mb = math.prod(shape) * dtype.itemsize / MIB
            if raw_mb > limit_mb:
                raise DataError(f"{path} is a compressed .npz ({raw_mb:.0f} MiB unpacked), which cannot be read frame "
                                f"by frame, and it exceeds data.cache_limit_mb = {limit_mb:g}. Save it uncompressed "
                                "(numpy.savez, or numpy.save as .npy) so it streams from disk, or raise the limit.")
            with np.load(path) as archive:
                in_memory = archive[key]
        source = ArraySource(path, key, offset, shape, dtype, fortran, in_memory)
    _check_array(source, frames_per_sequence, checker)
    return source


def _check_array(source: ArraySource, frames_per_sequence: int, checker: FrameChecker) -> None:
    shape, dtype, path = source.shape, source.dtype, source.path
    expected = f"(N, {frames_per_sequence}, 1, H, W) or (N, {frames_per_sequence}, H, W)"
    channels = shape[2] if len(shape) == 5 else 1
    if len(shape) not in (4, 5) or shape[0] < 1 or shape[1] != frames_per_sequence or channels not in (1, 3, 4):
        frames = f"; it has {shape[1]} frames per sequence" if len(shape) in (4, 5) else ""
        raise DataError(f"{path} holds an array of shape {tuple(shape)}; a CHDL split array must be {expected}: N "
                        f"sequences of data.frames_per_sequence = {frames_per_sequence} grayscale frames{frames}. "
                        "Reshape and save it again, or change data.frames_per_sequence.")
    if channels != 1:
        if checker.color != "luminance":
            raise _color_error(str(path), f"array ({channels} channels on axis 2)")
        checker.converted.append(str(path))
    if dtype == np.uint8:
        depth: int | str = 8
    elif dtype == np.uint16:
        depth = 16
    elif dtype.kind == "f":
        depth = "float"
    else:
        raise DataError(f"{path} has the dtype {dtype}; CHDL arrays must be uint8, uint16 or floating point.")
    checker.check(str(path), tuple(shape[-2:]), depth)
    if depth == "float":
        _check_finite(source)


def _check_finite(source: ArraySource) -> None:
    """Scan a float array chunk by chunk; a DataError naming the file and the first bad sequence."""
    array = source.array()
    per_sequence = max(1, math.prod(array.shape[1:]) * array.dtype.itemsize)
    chunk = max(1, (64 * MIB) // per_sequence)
    bad_total, first = 0, None
    for start in range(0, len(array), chunk):
        bad = ~np.isfinite(np.asarray(array[start:start + chunk]))
        count = int(np.count_nonzero(bad))
        if count and first is None:
            where = np.argwhere(bad)[0]
            first = (start + int(where[0]), int(where[1]))
        bad_total += count
    if bad_total:
        raise DataError(f"{source.path} holds {bad_total} NaN or infinite values (the first in sequence {first[0]}, "
                        f"frame {first[1]}). CHDL frames must be finite intensities: repair or drop those sequences.")


def open_split(root: Path, split: str, settings: ChdlSettings, checker: FrameChecker) -> FolderSource | ArraySource:
    """The source of split `split`: `<root>/<split>/` when present, else `<root>/<split>.npy` or `.npz`."""
    folder = root / split
    if folder.is_dir():
        return scan_folder(folder, settings.frames_per_sequence, checker)
    for suffix in (".npy", ".npz"):
        path = root / f"{split}{suffix}"
        if path.is_file():
            source = open_array(path, settings.frames_per_sequence, checker, settings.cache_limit_mb)
            source.kind = suffix[1:]
            return source
    present = ", ".join(sorted(p.name for p in root.iterdir() if not p.name.startswith("."))) or "nothing"
    raise DataError(f"The CHDL folder {root} has no {split} split: looked for the folder {folder}/ (one subfolder "
                    f"of frames per sequence) and the files {split}.npy, {split}.npz. Present: {present}. "
                    f"{SYNTHETIC_HINT}")


# --- per-frame processing -------------------------------------------------------------------------


def area_matrix(size_in: int, size_out: int) -> np.ndarray:
    """`(size_out, size_in)` weights of area-average down-scaling along one axis (rows sum to 1)."""
    step = size_in / size_out
    low = np.arange(size_out)[:, None] * step
    pixels = np.arange(size_in)[None, :]
    overlap = np.clip(np.minimum(low + step, pixels + 1) - np.maximum(low, pixels), 0, None)
    return (overlap / step).astype(np.float32)


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
            self.rows, self.cols = area_matrix(height, resize[0]), area_matrix(width, resize[1]).T
            height, width = resize
        self.shape = (height, width)

    def __call__(self, frames: np.ndarray) -> np.ndarray:
        """Transformed frames, float32 `(n, H', W')`."""
        if self.crop is not None:
            top, left, height, width = self.crop
            frames = frames[:, top:top + height, left:left + width]
        if self.rows is not None:
            frames = self.rows @ frames @ self.cols
        return np.ascontiguousarray(frames, dtype=np.float32)


class RunningStats:
    """Mean, variance (ddof 0), minimum and maximum merged batch by batch (Chan et al.), in float64."""

    def __init__(self) -> None:
        self.count, self.mean, self.m2 = 0, 0.0, 0.0
        self.low, self.high = math.inf, -math.inf

    def update(self, values: np.ndarray) -> None:
        """Add a batch of values."""
        count = values.size
        mean = float(values.mean(dtype=np.float64))
        m2 = float(np.square(values.astype(np.float64) - mean).sum())
        total = self.count + count
        delta = mean - self.mean
        self.mean += delta * count / total
        self.m2 += m2 + delta**2 * self.count * count / total
        self.count = total
        self.low, self.high = min(self.low, float(values.min())), max(self.high, float(values.max()))

    def normalizer(self) -> Normalizer:
        """The statistics as a one-channel `Normalizer`."""
        std = math.sqrt(self.m2 / self.count)
        return Normalizer(mean=np.array([self.mean]), std=np.array([std]),
                          data_min=np.array([self.low]), data_max=np.array([self.high]))


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


def window_starts_in_sequence(settings: ChdlSettings) -> np.ndarray:
    """First frames of the windows inside one sequence (see `sample_stride` in the module docstring)."""
    if settings.sample_stride is None:
        return np.zeros(1, dtype=np.int64)
    last = settings.frames_per_sequence - settings.t_in - settings.t_out
    return np.arange(0, last + 1, settings.sample_stride, dtype=np.int64)


def validation_split(count: int, fraction: float, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the training and validation sequences: validation = the last ones in sorted order."""
    held_out = max(1, round(fraction * count))
    if count - held_out < 1:
        raise DataError(f"The training split {where} has {count} sequence(s): too few to hold out a validation "
                        f"share (data.val_fraction = {fraction:g}) and still train. Add training sequences.")
    return np.arange(count - held_out), np.arange(count - held_out, count)


def _fit_training(train: ChdlDataset, frames_per_sequence: int, limit_mb: float) -> Normalizer:
    """Stream over every frame of the training sequences once: statistics, and the cache when it fits."""
    stats = RunningStats()
    decoded = train.empty_cache() if train.decoded_mib() <= limit_mb else None
    for position in range(len(train.sequences)):
        frames = train.read_sequence(position, 0, frames_per_sequence)
        for frame in frames:
            stats.update(frame)
        if decoded is not None:
            decoded[position, :, 0] = frames[:train.frames_used]
    normalizer = stats.normalizer()
    if not normalizer.std[0] > 0:
        raise DataError(f"The training frames in {train.source.describe()} are all equal ({normalizer.mean[0]:g}): "
                        "they cannot be standardized. Check the data.")
    train.fill_cache(limit_mb, normalizer, decoded)
    return normalizer


def load_chdl_from_root(root: Path, settings: ChdlSettings, name: str = "chdl") -> ForecastData:
    """Load CHDL from an existing folder `root` (either layout; see the module docstring)."""
    checker = FrameChecker(settings.color)
    sources = {split: open_split(root, split, settings, checker) for split in FILE_SPLITS}
    if checker.converted:
        log.warning("%d CHDL colour frame(s) or array(s) converted to luminance (data.color: luminance), the first: "
                    "%s", len(checker.converted), checker.converted[0])
    transform = FrameTransform(checker.shape, settings.crop, settings.resize, checker.reference)
    starts = window_starts_in_sequence(settings)
    train_ids, val_ids = validation_split(len(sources["train"]), settings.val_fraction, sources["train"].describe())
    datasets = {
        "train": ChdlDataset(sources["train"], train_ids, starts, settings.t_in, settings.t_out, transform),
        "val": ChdlDataset(sources["train"], val_ids, starts, settings.t_in, settings.t_out, transform),
        "test": ChdlDataset(sources["test"], np.arange(len(sources["test"])), starts, settings.t_in,
                            settings.t_out, transform),
    }
    normalizer = _fit_training(datasets["train"], settings.frames_per_sequence, settings.cache_limit_mb)
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
    )


@register_dataset("chdl", summary="CHDL chip dicing lane video (grayscale, 600x800, 10 frames a sequence; "
                  "not public) from PNG/TIFF folders or .npy/.npz arrays")
def load_chdl(task: str | None, config: dict[str, Any]) -> ForecastData:
    """Load CHDL from `config['root']` (see the module docstring for all keys)."""
    settings = read_chdl_settings(config)
    return load_chdl_from_root(find_chdl_root(settings.root), settings)
