"""CHDL frames: checking frame files against each other and decoding them to float32 intensities.

Intensities: integer frames are scaled to [0, 1] by their bit depth (value / 255 or / 65535), so
8- and 16-bit versions of one scene give the same numbers (the usual video-prediction convention);
float frames are taken as they are. Colour frames are an error, or (`color: luminance`) converted
to ITU-R BT.601 luma (0.299 R + 0.587 G + 0.114 B, alpha dropped).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from benchmark.core.errors import DataError

LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
GRAY_MODES: dict[str, int | str] = {"1": 8, "L": 8, "I;16": 16, "I;16L": 16, "I;16B": 16, "I;16N": 16, "F": "float"}
COLOR_MODES = {"RGB", "RGBA", "RGBX", "RGBa", "P", "PA", "LA", "La", "CMYK", "YCbCr", "LAB", "HSV"}


def unreadable(path: Path, err: Exception) -> DataError:
    """The DataError for a frame file Pillow cannot read."""
    return DataError(f"Cannot read the frame {path} ({type(err).__name__}: {err}). It is not a readable PNG or "
                     "TIFF image (damaged or truncated?): replace the file, or remove its sequence folder.")


def color_error(where: str, what: str) -> DataError:
    """The DataError for a colour frame or array under `color: error`."""
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
            raise unreadable(path, err) from err
        depth = frame_depth(mode, image_format)
        if depth is None:
            if mode not in COLOR_MODES:
                raise DataError(f"{path} has the pixel mode {mode!r}, which CHDL does not read: use 8- or 16-bit "
                                "grayscale PNG or TIFF.")
            if self.color != "luminance":
                raise color_error(str(path), f"image (mode {mode})")
            self.converted.append(str(path))
            depth = 8  # Pillow converts colour to 8-bit RGB
        self.check(str(path), shape, depth)


def scale_intensities(values: np.ndarray) -> np.ndarray:
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
                raise color_error(str(path), f"image (mode {image.mode})")
    except (OSError, ValueError, Image.DecompressionBombError) as err:
        raise unreadable(Path(path), err) from err
    if depth == 16 and values.dtype.kind == "i":  # mode "I": int32 holding 16-bit values
        values = values.astype(np.uint16)
    return scale_intensities(values)
