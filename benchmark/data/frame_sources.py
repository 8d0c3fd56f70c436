"""The two on-disk layouts of a CHDL split: a folder of sequence folders, or one array file.

For each split the folder wins over an array file::

    <root>/train/<sequence_id>/<frame files>     8- or 16-bit grayscale PNG or TIFF (.png, .tif,
    <root>/test/<sequence_id>/<frame files>      .tiff), frames ordered by name
    <root>/train.npy | train.npz                 one array per split: (N, 10, 1, H, W) or
    <root>/test.npy  | test.npz                  (N, 10, H, W); uint8, uint16 or float

Names (sequence folders and frame files) are sorted "naturally": digit runs compare as numbers,
so `frame_2` comes before `frame_10`; zero-padded names sort as usual. Hidden files and files with
other extensions are ignored. An `.npz` holds one array (or one named `frames`). `.npy` files are
memory-mapped; uncompressed `.npz` members (`numpy.savez`) are memory-mapped too; a compressed
`.npz` is read into memory, so it must fit under `cache_limit_mb`. A source reads the frames of
one sequence as float32 `(n, H, W)` intensities (see `frames.py`).
"""

from __future__ import annotations

import math
import re
import struct
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.core.errors import DataError
from benchmark.data.frames import LUMA, FrameChecker, color_error, decode_frame, scale_intensities

FRAME_SUFFIXES = (".png", ".tif", ".tiff")
MIB = 2**20
SYNTHETIC_HINT = "To try the pipeline without the real data, use the generated dataset `synthetic-chdl`."


def natural_key(name: str) -> tuple[list[Any], str]:
    """Sort key comparing digit runs as numbers: 'frame_2' < 'frame_10'."""
    parts = re.split(r"(\d+)", name.lower())
    return [int(p) if i % 2 else p for i, p in enumerate(parts)], name



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
        return scale_intensities(block)
    if block.shape[-3] == 1:
        return scale_intensities(block[..., 0, :, :])
    rgb = scale_intensities(block[..., :3, :, :])  # colour (accepted only under color: luminance); alpha dropped
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
            raise color_error(str(path), f"array ({channels} channels on axis 2)")
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


def open_split(root: Path, split: str, frames_per_sequence: int, checker: FrameChecker,
               limit_mb: float) -> FolderSource | ArraySource:
    """The source of split `split`: `<root>/<split>/` when present, else `<root>/<split>.npy` or `.npz`."""
    folder = root / split
    if folder.is_dir():
        return scan_folder(folder, frames_per_sequence, checker)
    for suffix in (".npy", ".npz"):
        path = root / f"{split}{suffix}"
        if path.is_file():
            source = open_array(path, frames_per_sequence, checker, limit_mb)
            source.kind = suffix[1:]
            return source
    present = ", ".join(sorted(p.name for p in root.iterdir() if not p.name.startswith("."))) or "nothing"
    raise DataError(f"The CHDL folder {root} has no {split} split: looked for the folder {folder}/ (one subfolder "
                    f"of frames per sequence) and the files {split}.npy, {split}.npz. Present: {present}. "
                    f"{SYNTHETIC_HINT}")
