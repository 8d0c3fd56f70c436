"""CHDL loader (folder and array layouts, windows, splits, normalization, streaming, errors) and synthetic-chdl."""

from __future__ import annotations

import json
import logging
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from benchmark.core.errors import ConfigError, DataError
from benchmark.data.chdl import ChdlSettings, load_chdl_from_root
from benchmark.data.registry import list_datasets, load_dataset
from benchmark.data.regrid import area_matrix
from benchmark.data.synthetic_chdl import MANIFEST, SyntheticChdlSettings, generate_synthetic_chdl

H, W = 12, 16
FRAMES = 10


def pattern(seq: int, t: int, scale: int = 1, height: int = H, width: int = W) -> np.ndarray:
    """Frame `t` of sequence `seq`: a level that grows with seq and t, plus a small spatial pattern."""
    rows, cols = np.arange(height)[:, None], np.arange(width)[None, :]
    return ((seq * 16 + t + (rows + 2 * cols) % 5) * scale).astype(np.uint8 if scale == 1 else np.uint16)


def write_folder_split(root: Path, split: str, count: int, suffix: str = ".png", scale: int = 1,
                       offset: int = 0) -> None:
    """`count` sequences of 10 frames under `root/split/seq_<i>/frame_<t><suffix>`."""
    for i in range(count):
        folder = root / split / f"seq_{i}"  # unpadded on purpose: natural order puts seq_10 after seq_9
        folder.mkdir(parents=True)
        for t in range(FRAMES):
            Image.fromarray(pattern(i + offset, t, scale)).save(folder / f"frame_{t}{suffix}")


def write_folders(root: Path, train: int = 10, test: int = 3, suffix: str = ".png", scale: int = 1) -> Path:
    """A small CHDL folder layout; test sequences continue the train numbering (different levels)."""
    write_folder_split(root, "train", train, suffix, scale)
    write_folder_split(root, "test", test, suffix, scale, offset=train)
    return root


def split_array(count: int, offset: int = 0, channel_axis: bool = True) -> np.ndarray:
    """`(count, 10, 1, H, W)` (or without the channel axis) uint8 frames following `pattern`."""
    array = np.stack([np.stack([pattern(i + offset, t) for t in range(FRAMES)]) for i in range(count)])
    return array[:, :, None] if channel_axis else array


def save_array(path: Path, array: np.ndarray) -> None:
    """Save as .npy, uncompressed .npz, or compressed .npz (file name ending `.zip.npz`)."""
    if path.suffix == ".npy":
        np.save(path, array)
    elif path.name.endswith(".zip.npz"):
        np.savez_compressed(path.with_name(path.name.replace(".zip", "")), frames=array)
    else:
        np.savez(path, array)


def load(root: Path, **config) -> object:
    """Load CHDL from `root` with the given data keys."""
    return load_chdl_from_root(root, ChdlSettings.from_config({"root": str(root), **config}))


def physical(data, tensor) -> np.ndarray:
    """Denormalized values of a sample tensor."""
    return data.normalizer.denormalize(tensor.numpy().astype(np.float64))


@pytest.fixture(scope="module")
def png_root(tmp_path_factory) -> Path:
    return write_folders(tmp_path_factory.mktemp("chdl-png"))


# --- layouts -------------------------------------------------------------------------------------


def test_registered_with_their_settings():
    specs = {spec.name: spec for spec in list_datasets()}
    assert specs["chdl"].settings is ChdlSettings and specs["synthetic-chdl"].settings is SyntheticChdlSettings
    generator_keys = ("height", "width", "train_sequences", "test_sequences", "seed_data", "bit_depth")
    assert SyntheticChdlSettings.keys() == ChdlSettings.keys() + generator_keys  # the loader's keys it passes on


@pytest.mark.parametrize(("suffix", "scale", "bits"), [(".png", 1, 8), (".png", 300, 16), (".tif", 1, 8),
                                                       (".tiff", 300, 16)])
def test_folder_layout_loads(tmp_path, suffix, scale, bits):
    root = write_folders(tmp_path, suffix=suffix, scale=scale)
    data = load_dataset("chdl", {"root": str(root), "t_in": 5, "t_out": 1})
    assert tuple(data.shape) == (5, 1, 1, H, W)
    assert (len(data.train), len(data.val), len(data.test)) == (9, 1, 3)
    assert data.info["bit_depth"] == bits and data.info["layout"] == {"train": "folders", "test": "folders"}
    assert data.units == ["intensity"] and data.lat is None
    x, y = data.test[2]
    assert x.dtype == y.dtype == torch.float32
    assert tuple(x.shape) == (5, 1, H, W) and tuple(y.shape) == (1, 1, H, W)
    full = 255 if bits == 8 else 65535
    expected = np.stack([pattern(12, t, scale) for t in range(6)]).astype(np.float64)[:, None] / full
    np.testing.assert_allclose(physical(data, x), expected[:5], atol=1e-5)
    np.testing.assert_allclose(physical(data, y), expected[5:], atol=1e-5)


@pytest.mark.parametrize("name", ["train.npy", "train.npz", "train.zip.npz"])
@pytest.mark.parametrize("channel_axis", [True, False])
def test_array_layout_loads(tmp_path, name, channel_axis):
    suffix = name.split(".")[-1]
    save_array(tmp_path / name, split_array(10, channel_axis=channel_axis))
    save_array(tmp_path / f"test.{suffix}", split_array(3, offset=10, channel_axis=channel_axis))
    data = load(tmp_path, cache_limit_mb=0 if suffix == "npy" else 1)
    assert data.info["layout"] == {"train": suffix, "test": suffix}
    assert (len(data.train), len(data.val), len(data.test)) == (9, 1, 3)
    x, y = data.test[1]
    np.testing.assert_allclose(physical(data, x)[:, 0], np.stack([pattern(11, t) for t in range(5)]) / 255,
                               atol=1e-5)
    np.testing.assert_allclose(physical(data, y)[0, 0], pattern(11, 5) / 255, atol=1e-5)


def test_array_datasets_pickle_without_their_data(tmp_path):
    """Worker processes get the file name, not a copy of a memory-mapped split."""
    array = split_array(40)
    np.save(tmp_path / "train.npy", array)
    np.savez(tmp_path / "test.npz", array)
    data = load(tmp_path, cache_limit_mb=0)
    for split in (data.train, data.test):
        copy = pickle.loads(pickle.dumps(split))
        assert len(pickle.dumps(split)) < array.nbytes / 4
        np.testing.assert_array_equal(copy[3][0].numpy(), split[3][0].numpy())


# --- windows, crop/resize, normalization, splits, streaming ------------------------------------


def test_five_to_five_and_sample_stride(png_root):
    data = load(png_root, t_in=5, t_out=5)
    x, y = data.test[0]
    assert tuple(x.shape) == (5, 1, H, W) and tuple(y.shape) == (5, 1, H, W)
    np.testing.assert_allclose(physical(data, y)[:, 0], np.stack([pattern(10, t) for t in range(5, 10)]) / 255,
                               atol=1e-5)
    strided = load(png_root, t_in=5, t_out=1, sample_stride=2)  # starts 0, 2, 4 in each sequence
    assert strided.info["windows_per_sequence"] == 3 and len(strided.test) == 9
    x, y = strided.test[4]  # second sequence, start 2
    np.testing.assert_allclose(physical(strided, y)[0, 0], pattern(11, 7) / 255, atol=1e-5)
    with pytest.raises(ConfigError, match="frames_per_sequence"):
        load(png_root, t_in=6, t_out=5)


def test_crop_then_area_resize(png_root):
    data = load(png_root, crop=[2, 4, 8, 12], resize=[4, 3])
    assert tuple(data.shape) == (5, 1, 1, 4, 3) and data.info["source_resolution"] == [H, W]
    x, _ = data.test[0]
    source = pattern(10, 0)[2:10, 4:16].astype(np.float64) / 255
    expected = source.reshape(4, 2, 3, 4).mean(axis=(1, 3))  # whole factors: plain block means
    np.testing.assert_allclose(physical(data, x)[0, 0], expected, atol=1e-5)
    weights = area_matrix(5, 2)  # fractional: output pixel 0 covers source pixels 0, 1 and half of 2
    np.testing.assert_allclose(weights, [[0.4, 0.4, 0.2, 0, 0], [0, 0, 0.2, 0.4, 0.4]], atol=1e-6)
    with pytest.raises(ConfigError, match="crop"):
        load(png_root, crop=[6, 0, 8, 8])
    with pytest.raises(ConfigError, match="down-scales"):
        load(png_root, resize=[24, 32])


def test_normalization_uses_training_sequences_only(png_root):
    data = load(png_root, val_fraction=0.2)
    train = np.stack([pattern(i, t) for i in range(8) for t in range(FRAMES)]).astype(np.float64) / 255
    np.testing.assert_allclose(data.normalizer.mean, [train.mean()], rtol=1e-6)
    np.testing.assert_allclose(data.normalizer.std, [train.std()], rtol=1e-6)
    np.testing.assert_allclose([data.normalizer.data_min[0], data.normalizer.data_max[0]], [train.min(), train.max()])
    x, _ = data.train[0]
    assert abs(float(x.mean())) < 3  # standardized, not raw


def test_split_counts_and_natural_order(tmp_path):
    root = write_folders(tmp_path, train=12, test=2)
    data = load(root, val_fraction=0.25, sample_stride=1)
    assert data.info["sequences"] == {"train": 9, "val": 3, "test": 2}
    assert (len(data.train), len(data.val), len(data.test)) == (9 * 5, 3 * 5, 2 * 5)
    assert data.info["validation_sequences"] == ["seq_9", "seq_11"]  # the last by natural order
    x, _ = data.val[0]
    np.testing.assert_allclose(physical(data, x)[0, 0], pattern(9, 0) / 255, atol=1e-5)
    summary = data.summary()
    assert summary["train_samples"] == 45 and summary["test_samples"] == 10


def test_streaming_keeps_no_decoded_frames(png_root):
    cached = load(png_root)
    streamed = load(png_root, cache_limit_mb=0)
    assert all(cached.info["cached"].values()) and not any(streamed.info["cached"].values())
    for split in ("train", "val", "test"):
        a, b = getattr(cached, split), getattr(streamed, split)
        for index in range(len(b)):
            for left, right in zip(a[index], b[index], strict=True):
                np.testing.assert_allclose(left.numpy(), right.numpy(), atol=1e-6)
        assert b.cache is None and not b.cached  # still nothing held after a full pass
    assert cached.train.cache.shape == (9, 6, 1, H, W)  # only the frames the windows use


# --- synthetic-chdl ------------------------------------------------------------------------------


SMALL = {"height": 30, "width": 40, "train_sequences": 4, "test_sequences": 2}


def file_bytes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_synthetic_is_deterministic(tmp_path):
    first = generate_synthetic_chdl(tmp_path / "a", SyntheticChdlSettings(**SMALL, seed_data=3).generation_params())
    second = generate_synthetic_chdl(tmp_path / "b", SyntheticChdlSettings(**SMALL, seed_data=3).generation_params())
    other = generate_synthetic_chdl(tmp_path / "c", SyntheticChdlSettings(**SMALL, seed_data=4).generation_params())
    a, b, c = file_bytes(first), file_bytes(second), file_bytes(other)
    assert len(a) == 6 * 10 + 1 and a == b
    assert a.keys() == c.keys() and all(a[k] != c[k] for k in a if k != MANIFEST)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder left
    with pytest.raises(ConfigError, match="generated with"):
        generate_synthetic_chdl(first, SyntheticChdlSettings(**SMALL, seed_data=5).generation_params())


def test_synthetic_16_bit_and_cache_reuse(isolated_data_cache):
    config = {**SMALL, "bit_depth": 16, "seed_data": 1}
    data = load_dataset("synthetic-chdl", config)
    assert data.info["bit_depth"] == 16 and data.info["generated"]
    folder = Path(data.info["root"])
    assert folder.parent == isolated_data_cache / "synthetic-chdl"
    stamp = (folder / "train" / "seq_00000" / "frame_00.png").stat().st_mtime_ns
    again = load_dataset("synthetic-chdl", {**config, "t_out": 5})
    assert again.info["root"] == str(folder)
    assert (folder / "train" / "seq_00000" / "frame_00.png").stat().st_mtime_ns == stamp


@pytest.fixture(scope="module")
def synthetic():
    """The default size (60 x 80), fewer sequences, 5 -> 1."""
    return load_dataset("synthetic-chdl", {"train_sequences": 8, "test_sequences": 12, "seed_data": 7})


def test_synthetic_lane_is_darker_than_the_dies(synthetic):
    frames = np.concatenate([physical(synthetic, synthetic.test[i][0])[:, 0] for i in range(len(synthetic.test))])
    assert frames.shape[1:] == (60, 80)
    rows = frames.mean(axis=(0, 2))
    lane, dies = rows[28:33].mean(), np.r_[rows[:18], rows[-18:]].mean()  # lane within 0.45-0.55 H
    assert dies - lane > 0.1


def shift_forecast(frames: np.ndarray) -> np.ndarray:
    """Next frame = last frame moved by the whole-pixel shift that best maps the frame before onto it."""
    before, last = frames[-2], frames[-1]
    width = last.shape[1]
    shift = min(range(width // 3), key=lambda s: np.mean((before[:, s:] - last[:, :width - s]) ** 2))
    forecast = last.copy()
    forecast[:, :width - shift] = last[:, shift:]
    return forecast


def test_synthetic_motion_beats_persistence(synthetic):
    persistence, shifted = [], []
    for index in range(len(synthetic.test)):
        x, y = (t.numpy()[:, 0] for t in synthetic.test[index])
        persistence.append(np.mean((y[0] - x[-1]) ** 2))
        shifted.append(np.mean((y[0] - shift_forecast(x)) ** 2))
    assert min(persistence) > 0.05  # normalized units: the scene moves every frame
    assert np.mean(shifted) < 0.3 * np.mean(persistence)


# --- errors --------------------------------------------------------------------------------------


def frame(root: Path, split: str, seq: int, t: int, suffix: str = ".png") -> Path:
    return root / split / f"seq_{seq}" / f"frame_{t}{suffix}"


def test_wrong_frame_count(tmp_path):
    root = write_folders(tmp_path)
    frame(root, "test", 1, 9).unlink()
    with pytest.raises(DataError, match="has 9 frame files") as error:
        load(root)
    assert str(root / "test" / "seq_1") in str(error.value)


def test_unequal_frame_size(tmp_path):
    root = write_folders(tmp_path)
    odd = frame(root, "train", 2, 4)
    Image.fromarray(np.zeros((H, W + 2), np.uint8)).save(odd)
    with pytest.raises(DataError, match="one size") as error:
        load(root)
    assert str(odd) in str(error.value)


def test_mixed_bit_depth(tmp_path):
    root = write_folders(tmp_path)
    odd = frame(root, "test", 0, 0)
    Image.fromarray(pattern(0, 0, 300)).save(odd)
    with pytest.raises(DataError, match="bit depth") as error:
        load(root)
    assert str(odd) in str(error.value)


@pytest.mark.parametrize("mode", ["RGB", "RGBA"])
def test_color_frame_is_an_error_or_converted(tmp_path, caplog, mode):
    root = write_folders(tmp_path)
    odd = frame(root, "train", 3, 2)
    gray = pattern(3, 2)
    channels = [gray, gray, gray] + ([np.full_like(gray, 255)] if mode == "RGBA" else [])
    Image.fromarray(np.stack(channels, axis=-1), mode).save(odd)
    with pytest.raises(DataError, match="colour") as error:
        load(root)
    assert str(odd) in str(error.value) and "luminance" in str(error.value)
    with caplog.at_level(logging.WARNING, logger="benchmark.data.chdl"):
        data = load(root, color="luminance", val_fraction=0.5)
    assert str(odd) in caplog.text
    x, _ = data.train[3]
    np.testing.assert_allclose(physical(data, x)[2, 0], gray / 255, atol=1e-5)


def test_unreadable_frame(tmp_path):
    root = write_folders(tmp_path)
    odd = frame(root, "test", 2, 5)
    odd.write_bytes(b"this is not a png")
    with pytest.raises(DataError, match="Cannot read the frame") as error:
        load(root)
    assert str(odd) in str(error.value)


def test_truncated_frame_is_found_when_decoded(tmp_path):
    root = write_folders(tmp_path)
    odd = frame(root, "train", 0, 7)
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (H, W), dtype=np.uint8)).save(odd)
    odd.write_bytes(odd.read_bytes()[:-40])  # header intact, pixel data cut
    with pytest.raises(DataError) as error:
        load(root)
    assert str(odd) in str(error.value)


@pytest.mark.parametrize("name", ["train.npy", "train.npz"])
def test_non_finite_array(tmp_path, name):
    array = split_array(6).astype(np.float32) / 255
    array[4, 2, 0, 1, 1] = np.nan if name.endswith("npy") else np.inf
    save_array(tmp_path / name, array)
    np.save(tmp_path / "test.npy", split_array(2))
    with pytest.raises(DataError, match="NaN or infinite") as error:
        load(tmp_path)
    assert str(tmp_path / name) in str(error.value) and "sequence 4, frame 2" in str(error.value)


@pytest.mark.parametrize(("shape", "match"), [((4, 9, 1, H, W), "9 frames per sequence"),
                                              ((4, 10, 3, H, W), "colour"), ((40, H, W), "shape")])
def test_wrong_array_shape(tmp_path, shape, match):
    np.save(tmp_path / "train.npy", np.zeros(shape, np.uint8))
    np.save(tmp_path / "test.npy", split_array(2))
    with pytest.raises(DataError, match=match) as error:
        load(tmp_path)
    assert str(tmp_path / "train.npy") in str(error.value)


def test_missing_root_and_split(tmp_path, monkeypatch):
    with pytest.raises(DataError, match="synthetic-chdl") as error:
        load_dataset("chdl", {"root": str(tmp_path / "nowhere")})
    assert str(tmp_path / "nowhere") in str(error.value)
    monkeypatch.setenv("DIFFUMA_BENCH_DATA", str(tmp_path / "data"))
    with pytest.raises(DataError) as error:
        load_dataset("chdl", {})
    assert str(tmp_path / "data" / "chdl") in str(error.value)
    write_folder_split(tmp_path / "only-train", "train", 3)
    with pytest.raises(DataError, match="no test split") as error:
        load(tmp_path / "only-train")
    assert "test.npy" in str(error.value) and "synthetic-chdl" in str(error.value)


def test_bad_config_values(png_root):
    for key, value in [("val_fraction", 1.0), ("color", "rgb"), ("resize", [4]), ("sample_stride", 0),
                       ("cache_limit_mb", -1)]:
        with pytest.raises(ConfigError, match=key):
            load(png_root, **{key: value})


def test_epoch_memory_measurement_runs_on_a_small_generated_set(tmp_path):
    from benchmark.data.chdl_memory import measure_epoch_memory

    result = measure_epoch_memory(tmp_path / "chdl", sequences=6, height=96, width=128, test_sequences=2,
                                  cache_limit_mb=0, seed=3)
    assert result["items"] == 6 and result["cached"] == {"train": False, "val": False, "test": False}
    assert result["disk_mib"] > 0 and result["peak_rss_mib"] > 0
    assert json.loads((tmp_path / "chdl" / "synthetic-chdl.json").read_text())["seed_data"] == 3


# --- the shared pieces equal the formulas CHDL had before they were shared ---------------------------


def old_area_matrix(size_in: int, size_out: int) -> np.ndarray:
    """CHDL's own down-scaling weights before `regrid.area_matrix` replaced them."""
    step = size_in / size_out
    low = np.arange(size_out)[:, None] * step
    pixels = np.arange(size_in)[None, :]
    overlap = np.clip(np.minimum(low + step, pixels + 1) - np.maximum(low, pixels), 0, None)
    return (overlap / step).astype(np.float32)


def old_frame_stats(frames: np.ndarray) -> tuple[float, float, float, float]:
    """CHDL's own streaming statistics (one scalar Chan update per frame) before `RunningStats` was shared."""
    count, mean, m2, low, high = 0, 0.0, 0.0, np.inf, -np.inf
    for values in frames:
        n = values.size
        frame_mean = float(values.mean(dtype=np.float64))
        frame_m2 = float(np.square(values.astype(np.float64) - frame_mean).sum())
        total = count + n
        delta = frame_mean - mean
        mean += delta * n / total
        m2 += frame_m2 + delta**2 * count * n / total
        count = total
        low, high = min(low, float(values.min())), max(high, float(values.max()))
    return mean, float(np.sqrt(m2 / count)), low, high


def test_area_weights_and_resize_equal_the_old_chdl_formulas():
    rng = np.random.default_rng(1)
    for size_in, size_out in [(5, 2), (60, 32), (80, 40), (600, 37), (800, 41), (12, 12), (7, 3), (9, 1)]:
        np.testing.assert_array_equal(area_matrix(size_in, size_out), old_area_matrix(size_in, size_out))
    from benchmark.data.chdl import FrameTransform

    frames = rng.random((3, 30, 40), dtype=np.float32)
    transform = FrameTransform((30, 40), (1, 2, 28, 36), (13, 20), "frame")
    old = old_area_matrix(28, 13) @ frames[:, 1:29, 2:38] @ old_area_matrix(36, 20).T
    np.testing.assert_array_equal(transform(frames), old)


def test_running_stats_equal_the_old_per_frame_statistics():
    from benchmark.data.normalization import RunningStats

    frames = np.random.default_rng(2).normal(0.4, 0.1, (40, 16, 20)).astype(np.float32)
    stats = RunningStats()
    for frame in frames:
        stats.update(frame[None, None])
    normalizer = stats.normalizer()
    got = (normalizer.mean[0], normalizer.std[0], normalizer.data_min[0], normalizer.data_max[0])
    assert got == old_frame_stats(frames)  # exactly


def test_window_starts_equal_the_old_chdl_formula():
    for stride in (None, 1, 2, 3, 5):
        for t_in, t_out in ((5, 1), (5, 5), (2, 3), (9, 1)):
            settings = ChdlSettings(t_in=t_in, t_out=t_out, sample_stride=stride)
            last = settings.frames_per_sequence - t_in - t_out
            old = np.zeros(1, dtype=np.int64) if stride is None else np.arange(0, last + 1, stride, dtype=np.int64)
            np.testing.assert_array_equal(settings.window_starts(), old)
            assert settings.window_starts().dtype == np.int64


def test_unknown_keys_given_to_the_loader_are_refused(png_root):
    with pytest.raises(ConfigError, match=r"Unknown data key tyop for dataset chdl .*cache_limit_mb"):
        load_dataset("chdl", {"root": str(png_root), "tyop": 3})
    with pytest.raises(ConfigError, match=r"coarsen for dataset synthetic-chdl.*bit_depth"):
        load_dataset("synthetic-chdl", {"coarsen": 4})


def test_two_runs_generating_the_same_folder_at_once_both_succeed(tmp_path, monkeypatch):
    """Two runs of a sweep (or two tasks of a SLURM job) generate the same cache folder at once: the one
    that finishes second finds the folder complete and uses it (exact interleaving, forced in-process)."""
    import benchmark.data.synthetic_chdl as synthetic_chdl

    params = SyntheticChdlSettings(**SMALL, seed_data=3).generation_params()
    folder = tmp_path / "cache" / "data"
    real_write = synthetic_chdl.write_sequences
    calls = []

    def write_while_another_run_finishes(staging, params_):
        calls.append(staging)
        real_write(staging, params_)
        if len(calls) == 1:  # the other run starts later and finishes first
            generate_synthetic_chdl(folder, params_)

    monkeypatch.setattr(synthetic_chdl, "write_sequences", write_while_another_run_finishes)
    (folder).mkdir(parents=True)  # an empty folder, as a run that was stopped before writing leaves it
    assert generate_synthetic_chdl(folder, params) == folder and len(calls) == 2
    reference = generate_synthetic_chdl(tmp_path / "alone", params)
    assert file_bytes(folder) == file_bytes(reference)
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no staging folder left
