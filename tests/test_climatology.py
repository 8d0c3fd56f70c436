"""Climatology: fitted on the training split only (weather and CHDL), its calendar smoothing against a brute-force
mean, the lookup of valid times, and the `climatology` model through the normal run path (ACC 0)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmark.data.base import Climatology
from benchmark.data.climatology import (
    WINDOW_DAYS,
    TargetClimatology,
    calendar_climatology,
    climatology_fields,
    target_climatology,
)
from benchmark.data.registry import load_dataset
from benchmark.registry import create_model, get_model_spec
from benchmark.run.config import resolve_run
from benchmark.run.runner import DataCache, execute_run
from benchmark.scoring.metrics import mse
from tests.test_chdl import load, save_array, split_array
from tests.test_data import SPLITS, STEPS, write_tiny

WB_CONFIG = {"t_in": 2, "t_out": 2, **SPLITS}  # train 2000-2002, val 2003, test 2004 (STEPS hourly steps each)


def _tiny_weather(root, bump_year=None):
    """The tiny WeatherBench t2m files (hourly from 1 January 2000, one file of STEPS steps per 'year'), with 50 K
    added to every step of the file `bump_year` and a spatial pattern so the fields are not flat."""
    years = (2000, 2001, 2002, 2003, 2004)
    offset = (years.index(bump_year) * STEPS, (years.index(bump_year) + 1) * STEPS) if bump_year else (0, 0)
    write_tiny(root, "t2m", values=lambda t: 280.0 + np.sin(t / 5.0) + np.where((t >= offset[0]) & (t < offset[1]),
                                                                                50.0, 0.0))
    return load_dataset("weatherbench:t2m", {"root": str(root), **WB_CONFIG})


def test_weather_climatology_uses_the_training_years_only(tmp_path):
    base = _tiny_weather(tmp_path / "base").climatology
    assert base is not None and not base.static and base.training_frames == 3 * STEPS
    for held_out in (2003, 2004):  # the validation and the test year: changing them changes nothing
        other = _tiny_weather(tmp_path / str(held_out), bump_year=held_out).climatology
        np.testing.assert_array_equal(other.fields, base.fields)
    trained = _tiny_weather(tmp_path / "2001", bump_year=2001).climatology  # a training year: it moves
    assert np.nanmax(trained.fields - base.fields) > 1.0


def test_calendar_climatology_is_the_mean_over_a_circular_61_day_window_per_hour():
    rng = np.random.default_rng(0)
    times = np.arange("2010-01-01T00", "2012-01-01T00", 6, dtype="datetime64[h]")  # 6-hourly, two years
    frames = rng.standard_normal((len(times), 2, 2, 3)).astype(np.float32)
    clim = calendar_climatology(frames, times)
    assert clim.fields.shape == (366, 4, 2, 2, 3) and list(clim.hours) == [0, 6, 12, 18]
    assert clim.window_days == WINDOW_DAYS == 61
    days = np.array([t.astype("datetime64[D]") - t.astype("datetime64[Y]").astype("datetime64[D]")
                     for t in times]).astype(int)
    hours = (times - times.astype("datetime64[D]")).astype(int)
    for day, hour in ((2, 6), (180, 0), (364, 18), (365, 12)):  # wrapping over the new year at both ends
        gap = np.abs(days - day)
        near = (np.minimum(gap, 366 - gap) <= 30) & (hours == hour)
        np.testing.assert_allclose(clim.fields[day, hour // 6], frames[near].astype(np.float64).mean(axis=0),
                                   rtol=1e-5, atol=1e-6)


def test_lookup_takes_the_valid_time_and_the_nearest_training_hour():
    fields = np.arange(366 * 2, dtype=np.float32).reshape(366, 2, 1, 1, 1)
    clim = Climatology(fields, hours=np.array([0.0, 12.0]), window_days=61, training_frames=1)
    times = np.array(["2017-01-01T00", "2017-01-01T12", "2017-02-01T05", "2017-02-01T23"], dtype="datetime64[h]")
    got = climatology_fields(clim, times, 4)[:, 0, 0, 0]
    # field value = 2 * day + hour index: 05 h takes 0 h, 23 h takes 0 h (circular: 1 h away, not 11)
    np.testing.assert_array_equal(got, [0, 1, 2 * 31, 2 * 31])


def test_target_climatology_follows_each_windows_valid_times(tmp_path):
    data = _tiny_weather(tmp_path)
    lookup = target_climatology(data, "test")
    assert isinstance(lookup, TargetClimatology)
    batch = lookup([0, 3])
    assert tuple(batch.shape) == (2, 2, 1, 32, 64) and batch.dtype == torch.float32
    _, target_times = data.test.times(3)
    physical = climatology_fields(data.climatology, target_times, 2)
    np.testing.assert_allclose(data.normalizer.denormalize(batch[1].double().numpy()), physical, rtol=1e-5)


def test_chdl_climatology_is_the_per_pixel_mean_of_the_training_sequences(tmp_path):
    train = split_array(10)  # the last sequence is held out for validation (val_fraction 0.1)
    save_array(tmp_path / "train.npy", train)
    save_array(tmp_path / "test.npy", split_array(3, offset=10))
    data = load(tmp_path)
    clim = data.climatology
    assert clim.static and clim.training_frames == 9 * 10
    np.testing.assert_allclose(clim.fields[0, 0], train[:9].astype(np.float64).mean(axis=(0, 1)) / 255, rtol=1e-5)
    moved = train.copy()
    moved[9] = 0  # the validation sequence, and then the test split: neither moves it
    save_array(tmp_path / "train.npy", moved)
    save_array(tmp_path / "test.npy", split_array(3, offset=3))
    np.testing.assert_array_equal(load(tmp_path).climatology.fields, clim.fields)
    lookup = target_climatology(data, "test")
    assert tuple(lookup([0, 1, 2]).shape) == (3, data.shape.t_out, 1, *data.shape[3:])


def test_climatology_model_forecasts_what_it_is_given_and_needs_it():
    model = create_model("climatology", (3, 2, 1, 4, 5))
    assert get_model_spec("climatology").trainable is False and not list(model.parameters())
    x, clim = torch.randn(2, 3, 1, 4, 5), torch.randn(2, 2, 1, 4, 5)
    assert torch.equal(model(x, climatology=clim), clim)
    with pytest.raises(ValueError, match="needs the climatology"):
        model(x)
    with pytest.raises(ValueError, match="shape"):
        model(x, climatology=torch.randn(2, 3, 1, 4, 5))


def test_climatology_run_scores_acc_zero_and_its_mse_is_that_of_the_climatology(tmp_path):
    config = resolve_run("smoke", "climatology", "synthetic-weather:t2m", 0)
    cache = DataCache()
    record = execute_run(config, tmp_path, data_cache=cache)
    scores = record.test.normalized
    assert scores.acc == 0.0 and scores.per_lead["acc"] == [0.0] * config.t_out
    assert scores.rmse_wb2 > 0 and record.test.physical.rmse_wb2 > 0
    assert "climatology" in record.data and "61-day" in record.data["climatology"]
    data = cache.get(config)
    lookup = target_climatology(data, "test")
    limit = config.train["limit_test_batches"]
    count = len(data.test) if limit is None else min(len(data.test), int(limit) * int(config.train["batch_size"]))
    targets = torch.stack([data.test[i][1] for i in range(count)])
    expected = mse(lookup(np.arange(count)), targets).mean().item()
    assert scores.mse == pytest.approx(expected, rel=1e-6)
