"""Data layer: WeatherBench loader (windows, splits, normalization, errors) and synthetic-weather."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from benchmark.core.errors import ConfigError, DataError
from benchmark.data.registry import load_dataset
from benchmark.data.synthetic_weather import GENERATOR_VERSION, SyntheticWeatherSettings, generate_synthetic_weather
from benchmark.data.wb1_files import GRID_FOLDER, VARIABLES, variable_file, write_variable_year

LAT = -87.1875 + 5.625 * np.arange(32)
LON = 5.625 * np.arange(64)
YEARS = (2000, 2001, 2002, 2003, 2004)
STEPS = 20  # hourly steps per tiny "year"; the years follow each other without a gap
SPLITS = {"train_years": "2000-2002", "val_years": [2003], "test_years": "2004"}


def write_tiny(root: Path, name: str, values=lambda t: t.astype(float), years=YEARS, level=None, lat=LAT):
    """One file per year of `STEPS` hourly steps; the field equals `values(global step index)` everywhere."""
    variable = VARIABLES[name]
    for i, year in enumerate(years):
        steps = np.arange(i * STEPS, (i + 1) * STEPS)
        times = np.datetime64("2000-01-01T00", "h") + steps.astype("timedelta64[h]")
        field = np.broadcast_to(values(steps)[:, None, None], (STEPS, 32, 64))
        if level is not None:
            field = np.stack([field + lev for lev in level], axis=1)
        write_variable_year(root, variable.folder, name, year, field, times, lat, LON, variable.units, level)


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory) -> Path:
    """t2m = global step index; u10 = index, v10 = -2 * index; r at four levels = index + level."""
    root = tmp_path_factory.mktemp("wb")
    write_tiny(root, "t2m")
    write_tiny(root, "u10")
    write_tiny(root, "v10", values=lambda t: -2.0 * t)
    write_tiny(root, "r", level=np.array([50, 500, 850, 1000]))
    return root


@pytest.fixture
def copy_root(tiny_root, tmp_path) -> Path:
    """A private copy of the tiny root that a test may damage."""
    return Path(shutil.copytree(tiny_root, tmp_path / "wb"))


def physical(data, tensor) -> np.ndarray:
    """Denormalized numpy values of a sample tensor."""
    return data.normalizer.denormalize(tensor.numpy().astype(np.float64))


# --- windows, splits, normalization -------------------------------------------------------------


def test_window_counts_and_contents_respect_splits(tiny_root):
    config = {"root": str(tiny_root), "t_in": 3, "t_out": 2, "sample_stride": 2, "frame_interval": 3,
              **SPLITS}
    data = load_dataset("weatherbench:t2m", config)
    # Train: steps 0..59, every 3rd -> 20 frames; windows of 5 frames, 2 apart -> 8. Val/test: 7 frames -> 2.
    assert (len(data.train), len(data.val), len(data.test)) == (8, 2, 2)
    assert data.info["frames"] == {"train": 20, "val": 7, "test": 7}
    assert data.info["time_resolution_hours"] == 1 and data.info["frame_hours"] == 3
    for split, first in ((data.train, 0), (data.val, 60), (data.test, 80)):
        for k in range(len(split)):
            x, y = split[k]
            assert x.shape == (3, 1, 32, 64) and y.shape == (2, 1, 32, 64) and x.dtype == y.dtype
            values = np.concatenate([physical(data, x), physical(data, y)])[:, 0, 0, 0]
            np.testing.assert_allclose(values, first + 3 * (2 * k + np.arange(5)), atol=1e-3)
            assert values.min() > first - 0.01 and values.max() < first + 20 * (3 if first == 0 else 1)


def test_frame_hours_is_read_against_the_files_time_step(tiny_root):
    base = {"root": str(tiny_root), "t_in": 3, "t_out": 2, "sample_stride": 2, **SPLITS}
    by_hours = load_dataset("weatherbench:t2m", {**base, "frame_hours": 3, "frame_interval": 7})
    by_interval = load_dataset("weatherbench:t2m", {**base, "frame_interval": 3})
    assert by_hours.info["frame_hours"] == 3 and by_hours.info["frames"] == by_interval.info["frames"]
    np.testing.assert_array_equal(by_hours.train[1][0].numpy(), by_interval.train[1][0].numpy())
    with pytest.raises(ConfigError, match="every 1 h"):  # finer than the hourly files
        load_dataset("weatherbench:t2m", {**base, "frame_hours": 0.5})
    with pytest.raises(ConfigError, match="positive number of hours"):
        load_dataset("weatherbench:t2m", {**base, "frame_hours": "six"})


def test_windows_do_not_cross_a_gap_between_years(tiny_root):
    config = {"root": str(tiny_root), "t_in": 3, "t_out": 2, "train_years": [2000, 2002],
              "val_years": "2003", "test_years": "2004"}
    data = load_dataset("weatherbench:t2m", config)
    assert len(data.train) == 2 * (STEPS - 5 + 1)
    for k in range(len(data.train)):
        x, y = data.train[k]
        values = np.concatenate([physical(data, x), physical(data, y)])[:, 0, 0, 0]
        np.testing.assert_allclose(np.diff(values), 1, atol=1e-3)


def test_normalization_uses_training_statistics_only(tmp_path):
    write_tiny(tmp_path, "t2m", values=lambda t: np.where(t >= 80, 1000.0 + t, t.astype(float)))
    data = load_dataset("weatherbench:t2m", {"root": str(tmp_path), "t_in": 2, "t_out": 2, **SPLITS})
    train_values = np.arange(60.0)
    np.testing.assert_allclose(data.normalizer.mean, [train_values.mean()])
    np.testing.assert_allclose(data.normalizer.std, [train_values.std()])
    assert (data.normalizer.data_min[0], data.normalizer.data_max[0]) == (0, 59)
    x, _ = data.test[0]
    expected = (1080.0 - train_values.mean()) / train_values.std()
    np.testing.assert_allclose(x[0].numpy(), expected, rtol=1e-5)


def test_lat_is_ascending_even_when_files_are_not(tmp_path):
    descending = LAT[::-1]
    variable = VARIABLES["t2m"]
    for i, year in enumerate(YEARS):
        steps = np.arange(i * STEPS, (i + 1) * STEPS)
        times = np.datetime64("2000-01-01T00", "h") + steps.astype("timedelta64[h]")
        field = descending[None, :, None] + 0.01 * steps[:, None, None] + np.zeros((1, 1, 64))
        write_variable_year(tmp_path, variable.folder, "t2m", year, field, times, descending, LON, "K")
    data = load_dataset("weatherbench:t2m", {"root": str(tmp_path), "t_in": 2, "t_out": 1, **SPLITS})
    np.testing.assert_allclose(data.lat, LAT)
    x, _ = data.train[0]
    np.testing.assert_allclose(physical(data, x)[0, 0, :, 0], LAT, atol=1e-3)


def test_uv10_stacks_u_then_v(tiny_root):
    data = load_dataset("weatherbench:uv10", {"root": str(tiny_root), "t_in": 2, "t_out": 1, **SPLITS})
    assert data.channel_names == ["u10", "v10"] and data.shape.channels == 2
    x, _ = data.val[0]
    np.testing.assert_allclose(physical(data, x)[:, :, 5, 5], [[60, -120], [61, -122]], atol=1e-3)
    speed = load_dataset("weatherbench:uv10", {"root": str(tiny_root), "t_in": 2, "t_out": 1,
                                               "uv10_channels": "speed", **SPLITS})
    assert speed.shape.channels == 1
    np.testing.assert_allclose(physical(speed, speed.val[0][0])[0, 0, 0, 0], np.hypot(60, 120), rtol=1e-5)


def test_coarsen_averages_blocks_of_grid_cells(tiny_root):
    config = {"root": str(tiny_root), "t_in": 2, "t_out": 1, **SPLITS}
    fine = load_dataset("weatherbench:t2m", config)
    coarse = load_dataset("weatherbench:t2m", {**config, "coarsen": 2})
    assert tuple(coarse.shape)[2:] == (1, 16, 32) and len(coarse.lat) == 16
    np.testing.assert_allclose(coarse.lat, fine.lat.reshape(16, 2).mean(axis=1))
    fine_x = physical(fine, fine.val[0][0])
    coarse_x = physical(coarse, coarse.val[0][0])
    np.testing.assert_allclose(coarse_x[:, :, 3, 5], fine_x[:, :, 6:8, 10:12].mean(axis=(-1, -2)), rtol=1e-5)
    with pytest.raises(ConfigError, match="coarsen"):
        load_dataset("weatherbench:t2m", {**config, "coarsen": 3})


def test_humidity_level_is_selected_by_value(tiny_root):
    config = {"root": str(tiny_root), "t_in": 2, "t_out": 1, **SPLITS}
    data = load_dataset("weatherbench:r", {**config, "level": 850})
    np.testing.assert_allclose(physical(data, data.train[0][0])[:, 0, 0, 0], [850, 851], atol=1e-3)
    assert data.info["level_hpa"] == 850
    with pytest.raises(ConfigError, match=r"925 hPa is not in .*relative_humidity_2000.*50, 500, 850, 1000"):
        load_dataset("weatherbench:r", {**config, "level": 925})


def test_root_env_variable_and_grid_folder_are_accepted(tiny_root, monkeypatch):
    monkeypatch.setenv("DIFFUMA_BENCH_DATA", str(tiny_root))
    config = {"t_in": 2, "t_out": 1, **SPLITS}
    assert len(load_dataset("weatherbench:t2m", config).train) == 58
    direct = load_dataset("weatherbench:t2m", {**config, "root": str(tiny_root / GRID_FOLDER)})
    assert len(direct.train) == 58


def test_written_file_layout(tiny_root):
    path = variable_file(tiny_root / GRID_FOLDER, "2m_temperature", 2001)
    assert path.name == "2m_temperature_2001_5.625deg.nc"
    assert not list(path.parent.glob("*.tmp"))
    with xr.open_dataset(path) as dataset:
        assert dataset["t2m"].dims == ("time", "lat", "lon") and dataset["t2m"].dtype == np.float32
        assert dataset["t2m"].attrs["units"] == "K" and dataset.sizes["time"] == STEPS


# --- errors ------------------------------------------------------------------------------------------


def test_missing_root_says_where_and_what_to_do(tmp_path):
    with pytest.raises(DataError, match=r"(?s)nowhere.*5\.625deg.*TUM.*--data-root.*synthetic-weather"):
        load_dataset("weatherbench:t2m", {"root": str(tmp_path / "nowhere")})


def test_missing_variable_folder(tiny_root):
    with pytest.raises(DataError, match="total_cloud_cover/"):
        load_dataset("weatherbench:tcc", {"root": str(tiny_root), **SPLITS})


def test_missing_year_file_names_file_and_split(copy_root):
    variable_file(copy_root / GRID_FOLDER, "2m_temperature", 2004).unlink()
    with pytest.raises(DataError, match=r"2m_temperature_2004_5\.625deg\.nc: the test split"):
        load_dataset("weatherbench:t2m", {"root": str(copy_root), "t_in": 2, "t_out": 1, **SPLITS})


def test_corrupt_file_names_the_file(copy_root):
    variable_file(copy_root / GRID_FOLDER, "2m_temperature", 2001).write_bytes(b"not a netCDF file" * 50)
    with pytest.raises(DataError, match=r"Cannot read .*2m_temperature_2001_5\.625deg\.nc"):
        load_dataset("weatherbench:t2m", {"root": str(copy_root), "t_in": 2, "t_out": 1, **SPLITS})


def test_nan_values_are_counted(tmp_path):
    write_tiny(tmp_path, "t2m", values=lambda t: np.where(t == 65, np.nan, t.astype(float)))
    with pytest.raises(DataError, match=r"2m_temperature_2003_5\.625deg\.nc: variable 't2m' has 2048 NaN"):
        load_dataset("weatherbench:t2m", {"root": str(tmp_path), "t_in": 2, "t_out": 1, **SPLITS})


def test_wrong_grid(tmp_path):
    write_tiny(tmp_path, "t2m", years=(2000,), lat=np.linspace(-80, 80, 32)[:16].repeat(2))
    with pytest.raises(DataError, match="2m_temperature_2000"):
        load_dataset("weatherbench:t2m", {"root": str(tmp_path), "train_years": "2000"})


def test_split_too_short_says_frames_needed(tiny_root):
    with pytest.raises(DataError, match=r"val split .* has 20 frames .* needs t_in \+ t_out = 25"):
        load_dataset("weatherbench:t2m", {"root": str(tiny_root), "t_in": 15, "t_out": 10, **SPLITS})


@pytest.mark.parametrize(
    "override, message",
    [({"val_years": "2002-2003"}, "share the years"), ({"train_years": "20x0"}, "not a list of years"),
     ({"t_in": 0}, "t_in"), ({"sample_stride": 1.5}, "sample_stride")],
)
def test_bad_config_values(tiny_root, override, message):
    with pytest.raises(ConfigError, match=message):
        load_dataset("weatherbench:t2m", {"root": str(tiny_root), **SPLITS, **override})


# --- synthetic-weather -----------------------------------------------------------------------------

SYNTHETIC = {"years": "2016-2018", "train_years": "2016", "val_years": "2017", "test_years": "2018",
             "t_in": 12, "t_out": 12}


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """Three 6-hourly years of synthetic t2m, generated into a cache folder."""
    cache = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DIFFUMA_BENCH_CACHE", str(cache))
        yield load_dataset("synthetic-weather", dict(SYNTHETIC)), cache


def read_years(grid_dir: Path, folder: str, name: str) -> np.ndarray:
    return np.concatenate([xr.open_dataset(p)[name].values for p in sorted((grid_dir / folder).glob("*.nc"))])


def test_synthetic_files_are_in_weatherbench_layout(synthetic):
    data, cache = synthetic
    grid_dir = Path(data.info["root"])
    assert grid_dir.parent.parent == cache / "synthetic-weather" and grid_dir.name == GRID_FOLDER
    assert sorted(p.name for p in grid_dir.iterdir()) == ["2m_temperature"]  # only what t2m needs
    with xr.open_dataset(variable_file(grid_dir, "2m_temperature", 2016)) as dataset:
        t2m = dataset["t2m"]
        assert t2m.dims == ("time", "lat", "lon") and t2m.dtype == np.float32 and t2m.attrs["units"] == "K"
        np.testing.assert_allclose(dataset["lat"], LAT)
        np.testing.assert_allclose(dataset["lon"], LON)
        assert dataset.sizes["time"] == 1464  # 2016 is a leap year, 6-hourly
        values = t2m.values
    assert 200 < values.min() and values.max() < 330
    january, july = values[:124].mean(axis=(0, 2)), values[728:852].mean(axis=(0, 2))
    assert values[:, 14:18].mean() > values[:, :3].mean() + 30  # warm tropics, cold poles
    assert july[-3:].mean() > january[-3:].mean() + 5 and january[:3].mean() > july[:3].mean() + 5
    assert data.shape == (12, 12, 1, 32, 64) and data.info["generation"]["hours_per_step"] == 6


def test_synthetic_persistence_is_beaten_by_a_diurnal_forecast(synthetic):
    data, _ = synthetic
    hours = {split: (s.frame_times.astype("datetime64[h]").astype(int) % 24) for split, s in
             (("train", data.train), ("test", data.test))}
    train = data.train.frames[:, 0]
    anomaly = {h: train[hours["train"] == h].mean(axis=0) - train.mean(axis=0) for h in (0, 6, 12, 18)}
    persistence, diurnal = [], []
    for k in range(0, len(data.test), 10):
        x, y = (t.numpy()[:, 0] for t in data.test[k])
        start = data.test.starts[k]
        last_hour = hours["test"][start + 11]
        target_hours = hours["test"][start + 12:start + 24]
        persistence.append(np.mean((y - x[-1]) ** 2))
        guess = np.stack([x[-1] - anomaly[last_hour] + anomaly[h] for h in target_hours])
        diurnal.append(np.mean((y - guess) ** 2))
    assert np.mean(persistence) > 1e-3
    assert np.mean(diurnal) < 0.8 * np.mean(persistence)


def test_synthetic_is_deterministic_whatever_is_written(tmp_path):
    params = {"version": GENERATOR_VERSION, "years": [2018], "hours_per_step": 24, "seed_data": 3}
    first = generate_synthetic_weather(tmp_path / "a", ["t2m"], params)
    second = generate_synthetic_weather(tmp_path / "b", ["u10", "v10", "t2m"], params)
    other = generate_synthetic_weather(tmp_path / "c", ["t2m"], {**params, "seed_data": 4})
    t2m = read_years(first, "2m_temperature", "t2m")
    assert np.array_equal(t2m, read_years(second, "2m_temperature", "t2m"))
    assert not np.allclose(t2m, read_years(other, "2m_temperature", "t2m"))
    u10 = read_years(second, "10m_u_component_of_wind", "u10")
    v10 = read_years(second, "10m_v_component_of_wind", "v10")
    assert u10.dtype == np.float32 and np.abs(u10).max() < 40 and np.abs(v10).max() < 40 and v10.std() > 0.5
    assert json.loads((tmp_path / "a" / "synthetic-weather.json").read_text()) == params
    assert not [p for p in (tmp_path / "a").iterdir() if p.name.startswith(".")]


def test_synthetic_refuses_foreign_or_mismatched_roots(tmp_path):
    (tmp_path / "real" / GRID_FOLDER).mkdir(parents=True)
    with pytest.raises(ConfigError, match="not written by the synthetic-weather generator"):
        load_dataset("synthetic-weather", {**SYNTHETIC, "root": str(tmp_path / "real")})
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "synthetic-weather.json").write_text(json.dumps({"seed_data": 9}))
    with pytest.raises(ConfigError, match="generated with"):
        load_dataset("synthetic-weather", {**SYNTHETIC, "root": str(tmp_path / "old")})
    with pytest.raises(ConfigError, match="does not generate"):
        load_dataset("synthetic-weather", {**SYNTHETIC, "test_years": "2019", "root": str(tmp_path / "x")})


# --- the shared down-sampler and statistics equal the formulas they replaced ---------------------------


def old_fit_normalizer(frames: np.ndarray) -> tuple[np.ndarray, ...]:
    """The two-pass statistics WeatherBench computed before `RunningStats` was shared."""
    total = frames.sum(axis=(0, 2, 3), dtype=np.float64)
    count = frames.shape[0] * frames.shape[2] * frames.shape[3]
    mean = total / count
    squares = np.square(frames.astype(np.float64) - mean[:, None, None]).sum(axis=(0, 2, 3))
    return mean, np.sqrt(squares / count), frames.min(axis=(0, 2, 3)), frames.max(axis=(0, 2, 3))


def test_coarsen_equals_the_old_block_means_exactly():
    from benchmark.data.regrid import coarsen, coarsen_coordinate

    rng = np.random.default_rng(3)
    # a wide dynamic range (1e-6 .. 1e3), near-zero values included, and more frames than one chunk
    frames = (rng.normal(0, 1, (700, 2, 32, 64)) * 10 ** rng.uniform(-6, 3, (700, 2, 32, 64))).astype(np.float32)
    for factor in (1, 2, 4, 8, 16, 32):
        n, c, h, w = frames.shape
        old = frames if factor == 1 else frames.reshape(n, c, h // factor, factor, w // factor, factor).mean(
            axis=(3, 5), dtype=np.float64).astype(np.float32)
        np.testing.assert_array_equal(coarsen(frames, factor), old)
        np.testing.assert_array_equal(coarsen_coordinate(LAT, factor), LAT.reshape(-1, factor).mean(axis=1))


def test_fit_normalizer_matches_the_old_two_pass_statistics_and_gives_the_same_frames():
    from benchmark.data.normalization import fit_normalizer, normalize_inplace

    frames = np.random.default_rng(4).normal(250, 20, (1300, 2, 8, 16)).astype(np.float32)
    normalizer = fit_normalizer(frames)
    old = old_fit_normalizer(frames)
    for new, before in zip((normalizer.mean, normalizer.std, normalizer.data_min, normalizer.data_max), old,
                           strict=True):
        np.testing.assert_allclose(new, before, rtol=1e-15, atol=0)  # the merge order differs in the last bit only
    np.testing.assert_array_equal(normalizer.data_min, old[2])
    np.testing.assert_array_equal(normalizer.data_max, old[3])
    mean, std = old[0].astype(np.float32)[:, None, None], old[1].astype(np.float32)[:, None, None]
    np.testing.assert_array_equal(normalize_inplace(frames.copy(), normalizer), (frames - mean) / std)


def test_unknown_weatherbench_key_given_to_the_loader_is_refused(tiny_root):
    with pytest.raises(ConfigError, match=r"Unknown data key resize for dataset weatherbench .*uv10_channels"):
        load_dataset("weatherbench:t2m", {"root": str(tiny_root), **SPLITS, "resize": [8, 8]})
    with pytest.raises(ConfigError, match=r"hours_per_step = 25"):
        load_dataset("synthetic-weather:t2m", {**SYNTHETIC, "hours_per_step": 25})


def test_synthetic_settings_are_the_weatherbench_keys_plus_the_generators_and_name_the_same_cache():
    from benchmark.data.weatherbench import WeatherBenchSettings

    keys = SyntheticWeatherSettings.keys()
    assert keys[:len(WeatherBenchSettings.keys())] == WeatherBenchSettings.keys()
    assert keys[len(WeatherBenchSettings.keys()):] == ("years", "hours_per_step", "seed_data")
    settings = SyntheticWeatherSettings.from_config({"years": "2016-2018", "train_years": "2016", "val_years": 2017,
                                                     "test_years": [2018], "seed_data": "2"})
    # the generation parameters (the cache folder's hash and the manifest) keep their former form
    assert settings.generation_params() == {"version": 1, "years": [2016, 2017, 2018], "hours_per_step": 6,
                                            "seed_data": 2}
    assert settings.split_years == {"train": [2016], "val": [2017], "test": [2018]}


def test_two_runs_generating_the_same_variables_at_once_both_succeed(tmp_path, monkeypatch):
    """Two runs generate the same synthetic-weather variables into one cache at once: the one that finishes
    second finds the folders in place and reads them (exact interleaving, forced in-process)."""
    import benchmark.data.synthetic_weather as synthetic_weather

    params = {"version": GENERATOR_VERSION, "years": [2018], "hours_per_step": 24, "seed_data": 3}
    root = tmp_path / "cache"
    real_simulate = synthetic_weather.simulate
    calls = []

    def simulate_while_another_run_finishes(*args, **kwargs):
        calls.append(args)
        if len(calls) == 1:  # the other run starts later and finishes first
            generate_synthetic_weather(root, ["t2m"], params)
        yield from real_simulate(*args, **kwargs)

    monkeypatch.setattr(synthetic_weather, "simulate", simulate_while_another_run_finishes)
    grid = generate_synthetic_weather(root, ["t2m"], params)
    assert len(calls) == 2
    reference = generate_synthetic_weather(tmp_path / "alone", ["t2m"], params)
    assert np.array_equal(read_years(grid, "2m_temperature", "t2m"), read_years(reference, "2m_temperature", "t2m"))
    assert not [p for p in root.iterdir() if p.name.startswith(".")]  # no staging folder left
