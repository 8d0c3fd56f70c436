"""`synthetic-chdl`: a generated stand-in for CHDL, written in its folder layout and read by the chdl loader.

On first use the generator writes `<folder>/train/seq_00000/frame_00.png ... frame_09.png` and
`<folder>/test/...` (grayscale PNG, 8-bit or 16-bit) plus a manifest of its parameters, and the
real CHDL loader (`chdl.py`) reads them: every CHDL key (`t_in`, `t_out`, `sample_stride`,
`val_fraction`, `crop`, `resize`, `cache_limit_mb`, ...) works the same way.

The scene, per sequence (all sizes scale with the frame size; parameters drawn per sequence):

- a horizontal street (the dicing lane, darker) between two rows of dies (brighter), with vertical
  cross streets every die pitch; each die has a seal ring and a row of bright bond pads along the
  lane and a faint periodic circuit texture; a smooth, non-periodic wafer texture on top;
- a kerf (the cut groove, dark) along the lane, present behind the saw's cut front, which advances
  from frame to frame; chipping (dark notches) along both kerf edges, where the kerf exists;
- debris speckle (bright and dark particles) around the lane, most of it only behind the cut front;
- the camera steps along the lane by a constant whole number of pixels a frame (10 equidistant
  positions), so the scene translates between frames; the cut front moves faster than the camera;
- slow illumination drift (a linear trend plus a slow oscillation of the gain), fixed vignetting,
  and Gaussian sensor noise, then quantization to the bit depth.

So the last input frame is a poor forecast, while the constant shift seen in the inputs predicts
most of the next frame. Deterministic from `seed_data`: the same parameters give byte-identical files.

Generation config keys (defaults in `SyntheticChdlSettings`): `height`, `width` (60 x 80, the
paper's 600 x 800 divided by ten, for CPU runs; 600 x 800 works), `train_sequences` (160),
`test_sequences` (48), `seed_data` (0), `bit_depth` (8 or 16). `root`: the folder to write (it must be
empty or hold the same generated data); unset: `$DIFFUMA_BENCH_CACHE/synthetic-chdl/<hash of the
generation parameters>/`, with `DIFFUMA_BENCH_CACHE` defaulting to `~/.cache/diffuma-bench`.
Generation writes into a temporary folder that is renamed into place when complete.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from benchmark.core.errors import ConfigError
from benchmark.data.base import ForecastData
from benchmark.data.chdl import ChdlSettings, load_chdl_from_root
from benchmark.data.locations import cache_folder
from benchmark.data.registry import register_dataset

GENERATOR_VERSION = 1
MANIFEST = "synthetic-chdl.json"
FRAMES = 10
MIN_SIZE = 24


# --- drawing helpers ------------------------------------------------------------------------------


def _cover(coords: np.ndarray, low: float, high: float) -> np.ndarray:
    """Fraction of each pixel `[c, c + 1)` inside `[low, high]` (exact box-filter anti-aliasing)."""
    return np.clip(np.minimum(coords + 1, high) - np.maximum(coords, low), 0, 1)


def _periodic_cover(coords: np.ndarray, period: float, low: float, high: float) -> np.ndarray:
    """Coverage of the intervals `[low + k period, high + k period]` for all integers k (high - low < period - 1)."""
    local = np.mod(coords - low, period)
    return _cover(local, 0, high - low) + _cover(local, period, period + high - low)


def _ellipses(shape: tuple[int, int], centres: np.ndarray, radii: np.ndarray) -> tuple[tuple[np.ndarray, np.ndarray],
                                                                                   np.ndarray, np.ndarray]:
    """Anti-aliased filled ellipses, all at once: pixel indices, coverage and ellipse number of every
    touched pixel (edges softened over about one pixel).

    `centres` and `radii` are `(n, 2)` as (y, x) in pixels.
    """
    reach = np.ceil(radii.max(axis=0)).astype(int) + 1 if len(radii) else np.ones(2, dtype=int)
    corner = np.floor(centres).astype(int) - reach  # (n, 2)
    y = corner[:, 0, None] + np.arange(2 * reach[0] + 1)  # (n, patch h)
    x = corner[:, 1, None] + np.arange(2 * reach[1] + 1)  # (n, patch w)
    dy = (y + 0.5 - centres[:, 0, None]) / radii[:, 0, None]
    dx = (x + 0.5 - centres[:, 1, None]) / radii[:, 1, None]
    radius = np.sqrt(dy[:, :, None] ** 2 + dx[:, None, :] ** 2)
    coverage = np.clip(0.5 + (1 - radius) * radii.min(axis=1)[:, None, None], 0, 1)
    rows, cols = np.broadcast_arrays(y[:, :, None], x[:, None, :])
    which = np.broadcast_to(np.arange(len(centres))[:, None, None], coverage.shape)
    keep = (coverage > 0) & (rows >= 0) & (rows < shape[0]) & (cols >= 0) & (cols < shape[1])
    return (rows[keep], cols[keep]), coverage[keep], which[keep]


# --- one sequence -----------------------------------------------------------------------------------


@dataclass
class _Scene:
    """The world (wider than one frame) of one sequence, and how the camera and the cut move over it."""

    base: np.ndarray  # (H, world W): wafer without the cut
    groove: np.ndarray  # (H, world W): 0..1 where the cut removes material (kerf and chipping)
    groove_value: np.ndarray  # (H, world W): intensity of the cut material
    debris: list[tuple[np.ndarray, np.ndarray]]  # [always visible, behind the cut front]: (alpha, value)
    step: int  # camera step, pixels per frame
    front: float  # cut front at frame 0, world x
    cut_speed: float  # world pixels per frame
    gain: np.ndarray  # (FRAMES,) illumination
    vignette: np.ndarray  # (H, W)
    noise: float


def _wafer(rng: np.random.Generator, height: int, width: int, world: int) -> tuple[np.ndarray, dict[str, float]]:
    """Dies, lane, cross streets, seal rings, pads and textures over `world` columns (frames are `width`
    wide); returns the image and the lane geometry."""
    ys, xs = np.arange(height, dtype=np.float64), np.arange(world, dtype=np.float64)
    centre = height * rng.uniform(0.45, 0.55)
    half = height * rng.uniform(0.09, 0.125)
    top, bottom = centre - half, centre + half
    pitch = width * rng.uniform(0.28, 0.38)
    phase = rng.uniform(0, pitch)
    street = pitch * rng.uniform(0.07, 0.1)
    offset, ring, gap, pad = height * 0.015, max(height * 0.008, 0.5), height * 0.01, height * 0.035
    lane_value, die_value = rng.uniform(0.30, 0.40), rng.uniform(0.58, 0.68)

    die = np.outer(1 - _cover(ys, top, bottom), 1 - _periodic_cover(xs, pitch, phase, phase + street))
    image = lane_value + (die_value - lane_value) * die
    ring_rows = _cover(ys, top - offset - ring, top - offset) + _cover(ys, bottom + offset, bottom + offset + ring)
    inner = _periodic_cover(xs, pitch, phase + street + offset, phase + pitch - offset)
    sides = (_periodic_cover(xs, pitch, phase + street + offset, phase + street + offset + ring)
             + _periodic_cover(xs, pitch, phase + pitch - offset - ring, phase + pitch - offset))
    outside = _cover(ys, -1, top - offset) + _cover(ys, bottom + offset, height + 1)
    image += 0.12 * np.clip(np.outer(ring_rows, inner) + np.outer(outside, sides), 0, 1)
    near = offset + ring + gap
    pad_rows = _cover(ys, top - near - pad, top - near) + _cover(ys, bottom + near, bottom + near + pad)
    pads = int(rng.integers(3, 6))
    pad_cols = sum(_periodic_cover(xs, pitch, centre_x - pad / 2, centre_x + pad / 2)
                   for centre_x in phase + street + (pitch - street) * np.arange(1, pads + 1) / (pads + 1))
    image += (rng.uniform(0.8, 0.9) - die_value) * np.outer(pad_rows, pad_cols)
    interior = _cover(ys, -1, top - near - pad - gap) + _cover(ys, bottom + near + pad + gap, height + 1)
    rows = interior * np.cos(2 * np.pi * ys / (height * rng.uniform(0.03, 0.06)))
    cols = die.max(axis=0) * np.cos(2 * np.pi * int(rng.integers(4, 9)) * (xs - phase) / pitch)
    image += 0.04 * np.outer(rows, cols)
    for _ in range(6):  # smooth wafer texture, not periodic
        wavelength = width * rng.uniform(0.2, 1.0)
        angle, shift = rng.uniform(0, np.pi), rng.uniform(0, 2 * np.pi)
        image += 0.01 * np.cos(2 * np.pi * (ys[:, None] * np.sin(angle) + xs * np.cos(angle)) / wavelength + shift)
    return image, {"centre": centre, "half": half, "width": width}


def _groove(rng: np.random.Generator, height: int, world: int, lane: dict[str, float]) -> tuple[np.ndarray,
                                                                                                 np.ndarray]:
    """Kerf plus chipping coverage, and the intensity of the cut, both `(H, world W)`."""
    centre = lane["centre"] + rng.uniform(-0.2, 0.2) * lane["half"]
    half = height * rng.uniform(0.022, 0.032)
    kerf = np.repeat(_cover(np.arange(height, dtype=np.float64), centre - half, centre + half)[:, None], world, 1)
    chips = np.zeros_like(kerf)
    count = rng.poisson(world / (lane["width"] * 0.05))
    edges = centre + half * rng.choice([-1.0, 1.0], count)
    centres = np.stack([edges, rng.uniform(0, world, count)], axis=1)
    radii = np.stack([height * rng.uniform(0.005, 0.02, count), lane["width"] * rng.uniform(0.005, 0.016, count)], 1)
    pixels, coverage, _ = _ellipses((height, world), centres, np.maximum(radii, 0.5))
    np.maximum.at(chips, pixels, coverage)
    kerf_value = rng.uniform(0.08, 0.15)
    value = kerf_value + 0.08 * np.clip(chips - kerf, 0, 1)
    return np.maximum(kerf, chips), value


def _debris(rng: np.random.Generator, height: int, world: int, lane: dict[str, float],
            density: float) -> tuple[np.ndarray, np.ndarray]:
    """Alpha and intensity `(H, world W)` of particles (about `density` per frame width) around the lane."""
    count = rng.poisson(density * world / lane["width"])
    centres = np.stack([np.clip(rng.normal(lane["centre"], 0.8 * lane["half"], count), 0, height - 1),
                        rng.uniform(0, world, count)], axis=1)
    radii = np.repeat(np.maximum(height * rng.uniform(0.002, 0.006, count), 0.6)[:, None], 2, axis=1)
    values = np.where(rng.random(count) < 0.7, rng.uniform(0.75, 0.95, count), rng.uniform(0.05, 0.15, count))
    alpha, value, weight = (np.zeros((height, world)) for _ in range(3))
    pixels, coverage, which = _ellipses((height, world), centres, radii)
    np.maximum.at(alpha, pixels, coverage)
    np.add.at(value, pixels, coverage * values[which])  # overlapping particles blend by coverage
    np.add.at(weight, pixels, coverage)
    return alpha, np.divide(value, weight, out=np.zeros_like(value), where=weight > 0)


def _scene(rng: np.random.Generator, height: int, width: int) -> _Scene:
    """Draw one sequence's world and motion."""
    step = max(1, round(width * rng.uniform(0.035, 0.09)))
    world = width + (FRAMES - 1) * step + 1
    base, lane = _wafer(rng, height, width, world)
    groove, groove_value = _groove(rng, height, world, lane)
    always = _debris(rng, height, world, lane, 10)
    behind = _debris(rng, height, world, lane, 25)  # thrown out by the saw: only where it has cut
    t = np.arange(FRAMES)
    gain = (1 + rng.uniform(-0.006, 0.006) * t
            + rng.uniform(0.01, 0.03) * np.sin(2 * np.pi * t / rng.uniform(15, 40) + rng.uniform(0, 2 * np.pi)))
    ys = (np.arange(height) + 0.5 - height / 2) / (height / 2)
    xs = (np.arange(width) + 0.5 - width / 2) / (width / 2)
    vignette = 1 - rng.uniform(0.05, 0.12) * (ys[:, None] ** 2 + xs[None, :] ** 2) / 2
    return _Scene(base, groove, groove_value, [always, behind], step, width * rng.uniform(0.1, 0.3),
                  step * rng.uniform(1.25, 1.9), gain, vignette, rng.uniform(0.006, 0.012))


def render_sequence(rng: np.random.Generator, height: int, width: int, bit_depth: int) -> np.ndarray:
    """One synthetic CHDL sequence: `(10, H, W)` uint8 or uint16 frames."""
    scene = _scene(rng, height, width)
    top = 2**bit_depth - 1
    frames = np.empty((FRAMES, height, width), dtype=np.uint8 if bit_depth == 8 else np.uint16)
    for t in range(FRAMES):
        view = slice(t * scene.step, t * scene.step + width)
        columns = np.arange(view.start, view.stop, dtype=np.float64)
        behind_front = _cover(columns, -1.0, scene.front + t * scene.cut_speed)[None, :]
        cut = scene.groove[:, view] * behind_front
        image = scene.base[:, view] * (1 - cut) + scene.groove_value[:, view] * cut
        for layer, (alpha, value) in enumerate(scene.debris):
            alpha = alpha[:, view] * (behind_front if layer else 1)
            image = image * (1 - alpha) + value[:, view] * alpha
        image = image * scene.gain[t] * scene.vignette + rng.normal(0, scene.noise, image.shape)
        frames[t] = np.rint(np.clip(image, 0, 1) * top)
    return frames


# --- writing and caching ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SyntheticChdlSettings(ChdlSettings):
    """The CHDL keys plus the generator's: `height`, `width`, `train_sequences`, `test_sequences`,
    `seed_data`, `bit_depth` (the generator writes 10 frames a sequence: `frames_per_sequence` stays 10)."""

    height: int = 60
    width: int = 80
    train_sequences: int = 160
    test_sequences: int = 48
    seed_data: int = 0
    bit_depth: int = 8

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.frames_per_sequence != FRAMES:
            raise ConfigError(f"synthetic-chdl writes {FRAMES} frames a sequence; data.frames_per_sequence = "
                              f"{self.frames_per_sequence} cannot be used with it.")
        if self.bit_depth not in (8, 16) or isinstance(self.bit_depth, bool):
            raise ConfigError(f"data.bit_depth = {self.bit_depth!r} must be 8 or 16 (bits per pixel of the PNG "
                              "frames).")
        self._set("bit_depth", int(self.bit_depth))
        for key, minimum in (("height", MIN_SIZE), ("width", MIN_SIZE), ("train_sequences", 2),
                             ("test_sequences", 1), ("seed_data", 0)):
            self._set(key, self._whole(key, minimum))

    def generation_params(self) -> dict[str, Any]:
        """What the generator draws from; these parameters name the cache folder and fill the manifest."""
        return {"version": GENERATOR_VERSION, "height": self.height, "width": self.width,
                "train_sequences": self.train_sequences, "test_sequences": self.test_sequences,
                "seed_data": self.seed_data, "bit_depth": self.bit_depth}


def _stored_params(folder: Path) -> Any:
    try:
        return json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return None


def write_sequences(folder: Path, params: dict[str, Any]) -> None:
    """Write every sequence of `params` as PNG frames under `folder/{train,test}/seq_NNNNN/`."""
    for code, split in enumerate(("train", "test")):
        for index in range(params[f"{split}_sequences"]):
            rng = np.random.default_rng([params["seed_data"], code, index])
            frames = render_sequence(rng, params["height"], params["width"], params["bit_depth"])
            target = folder / split / f"seq_{index:05d}"
            target.mkdir(parents=True)
            for t, frame in enumerate(frames):
                Image.fromarray(frame).save(target / f"frame_{t:02d}.png", format="PNG")


def generate_synthetic_chdl(folder: str | Path, params: dict[str, Any]) -> Path:
    """Make sure `folder` holds the data of `params` (generating it when absent); returns the folder.

    Files are written into a temporary sibling folder, which is renamed to `folder` when complete,
    so a reader never sees a partial dataset.
    """
    folder = Path(folder).expanduser()
    if folder.is_dir() and any(folder.iterdir()):
        stored = _stored_params(folder)
        if stored == params:
            return folder
        held = f"synthetic-chdl data generated with {stored}" if stored else f"files not written by synthetic-chdl " \
            f"(no {MANIFEST})"
        raise ConfigError(f"{folder} holds {held}, not the requested {params}. Give synthetic-chdl another "
                          "data.root (an empty or new folder), or leave it unset to use the cache folder.")
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.generating-", dir=folder.parent))
    try:
        write_sequences(staging, params)
        (staging / MANIFEST).write_text(json.dumps(params, sort_keys=True))
        try:
            if folder.is_dir():
                folder.rmdir()  # empty when checked above; rename does not replace a folder everywhere
            os.rename(staging, folder)
        except OSError:  # the folder filled meanwhile (rmdir or rename refused)
            if _stored_params(folder) != params:  # else a concurrent run wrote the same data first
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


@register_dataset("synthetic-chdl", summary="Generated dicing-lane video in the CHDL folder layout (moving camera, "
                  "advancing kerf, chipping, debris); read by the chdl loader", settings=SyntheticChdlSettings)
def load_synthetic_chdl(task: str | None, config: dict[str, Any]) -> ForecastData:
    """Generate (once) and load synthetic CHDL; CHDL keys plus the generation keys of the module docstring."""
    settings = SyntheticChdlSettings.from_config(config, "synthetic-chdl")
    params = settings.generation_params()
    folder = generate_synthetic_chdl(settings.root or cache_folder("synthetic-chdl", params), params)
    data = load_chdl_from_root(folder, settings, "synthetic-chdl")
    return dataclasses.replace(data, info={**data.info, "generated": True, "generation": params})
