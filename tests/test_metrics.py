"""Tests for benchmark.scoring.metrics: parity with skimage, known values, and the streaming accumulator."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from benchmark.data.base import Normalizer
from benchmark.scoring.metrics import (
    PSNR_CAP_DB,
    MetricAccumulator,
    acc,
    lat_weighted_rmse,
    latitude_weights,
    mae,
    mse,
    psnr,
    ssim,
)


def _skimage_ssim(pred: np.ndarray, target: np.ndarray, ranges) -> np.ndarray:
    """Reference: skimage on every 2-D (sample, frame, channel) frame, mean over channels."""
    b, t, c = pred.shape[:3]
    ranges = np.broadcast_to(np.asarray(ranges, dtype=np.float64), (c,))
    out = np.empty((b, t))
    for i in range(b):
        for j in range(t):
            out[i, j] = np.mean([
                structural_similarity(pred[i, j, k], target[i, j, k], data_range=float(ranges[k]))
                for k in range(c)
            ])
    return out


def _smooth(shape, rng, phase=0.0) -> np.ndarray:
    h, w = shape[-2:]
    yy, xx = np.meshgrid(np.linspace(0, 2 * np.pi, h), np.linspace(0, 2 * np.pi, w), indexing="ij")
    field = np.sin(xx + phase) * np.cos(0.5 * yy) + 0.3 * np.cos(2 * yy - phase)
    return np.broadcast_to(field, shape) + 0.01 * rng.standard_normal(shape)


@pytest.mark.parametrize(
    ("shape", "ranges"),
    [
        ((2, 2, 1, 32, 64), 1.0),
        ((1, 2, 1, 20, 13), 255.0),
        ((1, 1, 1, 7, 7), 0.37),
        ((1, 2, 2, 64, 64), [2.0, 2.0]),
        ((2, 1, 3, 17, 29), [1.0, 50.0, 0.2]),
    ],
)
@pytest.mark.parametrize("kind", ["random", "smooth"])
def test_ssim_matches_skimage(shape, ranges, kind):
    rng = np.random.default_rng([*shape, kind == "random"])
    scale = np.broadcast_to(np.asarray(ranges, dtype=np.float64), (shape[2],)).reshape(1, 1, -1, 1, 1)
    if kind == "random":
        target = rng.uniform(0, 1, shape) * scale
        pred = target + 0.2 * scale * rng.standard_normal(shape)
    else:
        target = _smooth(shape, rng) * scale
        pred = _smooth(shape, rng, phase=0.3) * scale
    expected = _skimage_ssim(pred, target, ranges)
    got = ssim(torch.from_numpy(pred).float(), torch.from_numpy(target).float(), ranges)
    # float32 inputs: compare with skimage on the very same float32 values
    expected32 = _skimage_ssim(pred.astype(np.float32).astype(np.float64),
                               target.astype(np.float32).astype(np.float64), ranges)
    assert got.shape == shape[:2]
    assert got.dtype == torch.float64
    np.testing.assert_allclose(got.numpy(), expected32, atol=1e-5, rtol=0)
    got64 = ssim(torch.from_numpy(pred), torch.from_numpy(target), ranges)
    np.testing.assert_allclose(got64.numpy(), expected, atol=1e-5, rtol=0)


def test_ssim_per_channel_range_matters():
    rng = np.random.default_rng(0)
    target = torch.from_numpy(rng.uniform(0, 1, (1, 1, 2, 16, 16)))
    pred = target + 0.3 * torch.from_numpy(rng.standard_normal((1, 1, 2, 16, 16)))
    assert not torch.allclose(ssim(pred, target, [1.0, 1.0]), ssim(pred, target, [1.0, 10.0]))
    # a scalar range is the same as that range for every channel
    torch.testing.assert_close(ssim(pred, target, 3.0), ssim(pred, target, np.array([3.0, 3.0])))


def test_ssim_identical_is_one():
    x = torch.rand(2, 3, 2, 16, 24)
    torch.testing.assert_close(ssim(x, x.clone(), [1.0, 4.0]), torch.ones(2, 3, dtype=torch.float64))


def test_ssim_rejects_small_images_and_bad_ranges():
    x = torch.rand(1, 1, 1, 6, 32)
    with pytest.raises(ValueError, match="at least 7x7"):
        ssim(x, x, 1.0)
    y = torch.rand(1, 1, 2, 8, 8)
    with pytest.raises(ValueError, match="2 channels"):
        ssim(y, y, [1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="positive"):
        ssim(y, y, [1.0, 0.0])


def test_psnr_known_values():
    target = torch.zeros(1, 1, 2, 8, 8, dtype=torch.float64)
    pred = torch.full_like(target, 0.1)
    # channel 0: range 1 -> 10 log10(1 / 0.01) = 20 dB; channel 1: range 2 -> 10 log10(4 / 0.01)
    expected = (20.0 + 10 * math.log10(400.0)) / 2
    assert psnr(pred, target, [1.0, 2.0]).item() == pytest.approx(expected, abs=1e-9)
    assert psnr(pred, target, 1.0).item() == pytest.approx(20.0, abs=1e-9)


def test_psnr_exact_prediction_is_capped():
    x = torch.rand(2, 2, 1, 8, 8)
    out = psnr(x, x.clone(), 1.0)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, torch.full((2, 2), PSNR_CAP_DB, dtype=torch.float64))


def test_mse_mae_known_values():
    target = torch.randn(2, 3, 2, 4, 5)
    signs = torch.where(torch.rand(2, 3, 2, 4, 5) > 0.5, 1.0, -1.0)
    frame_err = torch.arange(1, 4, dtype=torch.float32).view(1, 3, 1, 1, 1)  # error t + 1 in frame t
    pred = target + signs * frame_err
    expected_mae = torch.tensor([[1.0, 2.0, 3.0]] * 2, dtype=torch.float64)
    torch.testing.assert_close(mae(pred, target), expected_mae)
    torch.testing.assert_close(mse(pred, target), expected_mae.square())
    assert mse(pred, target).shape == (2, 3)


def test_mse_not_summed_over_pixels():
    target = torch.zeros(1, 1, 1, 64, 64)
    assert mse(target + 2.0, target).item() == pytest.approx(4.0)


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match="shapes differ"):
        mse(torch.zeros(1, 2, 1, 8, 8), torch.zeros(1, 3, 1, 8, 8))


def _lats(h: int) -> np.ndarray:
    step = 180.0 / h
    return np.linspace(-90 + step / 2, 90 - step / 2, h)


def test_latitude_weights():
    w = latitude_weights(_lats(32))
    assert w.shape == (32,)
    assert w.mean().item() == pytest.approx(1.0, abs=1e-12)
    assert w[16].item() > w[0].item() and w[15].item() > w[-1].item()
    assert w.max().item() > 1.0 > w.min().item()


def test_lat_rmse_equals_rmse_for_latitude_constant_error():
    h, w = 32, 64
    target = torch.randn(2, 3, 2, h, w, dtype=torch.float64)
    # error varies with longitude, frame and channel but not with latitude
    err = torch.randn(2, 3, 2, 1, w, dtype=torch.float64).expand(2, 3, 2, h, w)
    weights = latitude_weights(_lats(h))
    plain = (err.square().mean(dim=(-2, -1)).sqrt()).mean(dim=-1)
    torch.testing.assert_close(lat_weighted_rmse(target + err, target, weights), plain)


def test_lat_rmse_downweights_poles():
    h, w = 32, 64
    target = torch.zeros(1, 1, 1, h, w)
    pred = target.clone()
    pred[..., [0, -1], :] = 1.0  # error only at the polar rows
    weights = latitude_weights(_lats(h))
    plain_rmse = mse(pred, target).sqrt()
    # the polar rows carry weight cos(lat) / mean(cos(lat)) ~ 0.077, so the RMSE shrinks by sqrt(0.077)
    ratio = lat_weighted_rmse(pred, target, weights).item() / plain_rmse.item()
    assert ratio == pytest.approx(math.sqrt(weights[0].item()), rel=1e-9)
    assert ratio < 0.3


# ---- accumulator -------------------------------------------------------------------------------


def _normalizer(channels: int) -> Normalizer:
    return Normalizer(
        mean=np.linspace(270.0, 280.0, channels),
        std=np.linspace(5.0, 12.0, channels),
        data_min=np.linspace(230.0, 240.0, channels),
        data_max=np.linspace(310.0, 330.0, channels),
    )


def _batch(rng, b=6, t=3, c=2, h=16, w=16):
    target = torch.from_numpy(rng.standard_normal((b, t, c, h, w))).float()
    pred = target + 0.3 * torch.from_numpy(rng.standard_normal((b, t, c, h, w))).float()
    return pred, target


def _assert_nested_close(a, b, rel=1e-9):
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            _assert_nested_close(a[k], b[k], rel)
    elif isinstance(a, list):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _assert_nested_close(x, y, rel)
    else:
        assert a == pytest.approx(b, rel=rel, abs=1e-12)


def test_accumulator_batch_size_independent():
    rng = np.random.default_rng(1)
    pred, target = _batch(rng)
    lat = _lats(16)
    whole = MetricAccumulator(3, _normalizer(2), lat=lat)
    whole.update(pred, target)
    ones = MetricAccumulator(3, _normalizer(2), lat=lat)
    for i in range(6):
        ones.update(pred[i:i + 1], target[i:i + 1])
    uneven = MetricAccumulator(3, _normalizer(2), lat=lat)
    uneven.update(pred[:2], target[:2])
    uneven.update(pred[2:], target[2:])
    ref = whole.compute()
    assert ref["count"] == 6
    _assert_nested_close(ones.compute(), ref)
    _assert_nested_close(uneven.compute(), ref)


def test_accumulator_matches_direct_functions():
    rng = np.random.default_rng(2)
    pred, target = _batch(rng)
    norm = _normalizer(2)
    acc = MetricAccumulator(3, norm, lat=_lats(16))
    acc.update(pred, target)
    res = acc.compute()["normalized"]["per_lead"]
    weights = latitude_weights(_lats(16))
    r = norm.data_range("normalized")
    np.testing.assert_allclose(res["mse"], mse(pred, target).mean(0).numpy(), rtol=1e-12)
    np.testing.assert_allclose(res["mae"], mae(pred, target).mean(0).numpy(), rtol=1e-12)
    np.testing.assert_allclose(res["ssim"], ssim(pred, target, r).mean(0).numpy(), rtol=1e-12)
    np.testing.assert_allclose(res["psnr"], psnr(pred, target, r).mean(0).numpy(), rtol=1e-12)
    np.testing.assert_allclose(res["lat_rmse"], lat_weighted_rmse(pred, target, weights).mean(0).numpy(),
                               rtol=1e-12)
    phys = acc.compute()["physical"]["per_lead"]
    pp, tp = norm.denormalize(pred.double()), norm.denormalize(target.double())
    np.testing.assert_allclose(phys["ssim"], ssim(pp, tp, norm.data_range("physical")).mean(0).numpy(),
                               rtol=1e-9)


def test_accumulator_physical_mse_scales_with_std_squared():
    rng = np.random.default_rng(3)
    pred, target = _batch(rng, c=1)
    norm = Normalizer(mean=np.array([285.0]), std=np.array([7.5]),
                      data_min=np.array([240.0]), data_max=np.array([320.0]))
    acc = MetricAccumulator(3, norm)
    acc.update(pred, target)
    res = acc.compute()
    assert res["physical"]["mse"] == pytest.approx(res["normalized"]["mse"] * 7.5**2, rel=1e-6)
    assert res["physical"]["mae"] == pytest.approx(res["normalized"]["mae"] * 7.5, rel=1e-6)
    # PSNR is scale-free: range and error both scale with std
    assert res["physical"]["psnr"] == pytest.approx(res["normalized"]["psnr"], rel=1e-6)


def test_accumulator_per_lead_and_aggregates():
    rng = np.random.default_rng(4)
    pred, target = _batch(rng, t=4)
    pred[:, 3] += 1.0  # make leads differ
    acc = MetricAccumulator(4, _normalizer(2), lat=_lats(16))
    acc.update(pred, target)
    res = acc.compute()
    json.dumps(res)  # JSON-ready
    for space in ("normalized", "physical"):
        block = res[space]
        assert set(block) == {"mse", "mae", "rmse", "rmse_wb2", "ssim", "psnr", "lat_rmse", "detail_ratio",
                              "per_lead"}
        for name in ("mse", "mae", "rmse", "rmse_wb2", "ssim", "psnr", "lat_rmse", "detail_ratio"):
            assert isinstance(block[name], float)
            assert len(block["per_lead"][name]) == 4
        for name in ("mse", "mae", "ssim", "psnr", "lat_rmse", "rmse_wb2"):
            assert block[name] == pytest.approx(np.mean(block["per_lead"][name]), rel=1e-12)
        assert block["rmse"] == pytest.approx(math.sqrt(block["mse"]), rel=1e-12)
        np.testing.assert_allclose(block["per_lead"]["rmse"], np.sqrt(block["per_lead"]["mse"]), rtol=1e-12)
        assert block["per_lead"]["mse"][3] > block["per_lead"]["mse"][0]
        # unit-free: the same in both spaces
        assert block["detail_ratio"] == pytest.approx(res["normalized"]["detail_ratio"], rel=1e-12)


def test_accumulator_without_lat_has_no_lat_rmse():
    rng = np.random.default_rng(5)
    acc = MetricAccumulator(3, _normalizer(2))
    acc.update(*_batch(rng, b=2))
    res = acc.compute()
    assert "lat_rmse" not in res["normalized"] and "lat_rmse" not in res["physical"]["per_lead"]
    assert res["count"] == 2


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_accumulator_rejects_non_finite_predictions(bad):
    rng = np.random.default_rng(6)
    pred, target = _batch(rng, b=2)
    pred[1, 0, 0, 3, 3] = bad
    acc = MetricAccumulator(3, _normalizer(2))
    with pytest.raises(ValueError, match="non-finite predictions"):
        acc.update(pred, target)


def test_accumulator_rejects_bad_shapes_and_empty():
    rng = np.random.default_rng(7)
    pred, target = _batch(rng, b=2)
    acc = MetricAccumulator(3, _normalizer(2))
    with pytest.raises(ValueError, match="shapes differ"):
        acc.update(pred[:, :2], target)
    with pytest.raises(ValueError, match="3 output frames"):
        acc.update(pred[:, :2], target[:, :2])
    with pytest.raises(ValueError, match="no samples"):
        acc.compute()


# --- ACC and WeatherBench 2's RMSE ----------------------------------------------------------------


def _numpy_acc(pred, target, clim, weights):
    """Reference: WeatherBench 2's uncentred, latitude-weighted anomaly correlation per (sample, frame, channel),
    mean over channels, then over samples; per lead."""
    w = np.asarray(weights, dtype=np.float64)[:, None]
    fa, oa = pred - clim, target - clim
    num = (w * fa * oa).mean(axis=(-2, -1))
    den = np.sqrt((w * fa**2).mean(axis=(-2, -1)) * (w * oa**2).mean(axis=(-2, -1)))
    return (num / den).mean(axis=2).mean(axis=0)


def _numpy_rmse_wb2(pred, target, weights):
    """Reference: per (lead, channel) the root of the mean over samples and space of w * error^2, mean over channels."""
    w = np.asarray(weights, dtype=np.float64)[:, None]
    return np.sqrt((w * (pred - target) ** 2).mean(axis=(-2, -1)).mean(axis=0)).mean(axis=-1)


def test_acc_of_the_truth_is_one_and_of_the_climatology_zero():
    rng = np.random.default_rng(11)
    _, target = _batch(rng)
    clim = torch.from_numpy(rng.standard_normal(target.shape)).float()
    weights = latitude_weights(_lats(16))
    np.testing.assert_allclose(acc(target, target, clim, weights).numpy(), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(acc(clim, target, clim, weights).numpy(), 0.0)
    assert acc(2 * clim - target, target, clim).max().item() == pytest.approx(-1.0, rel=1e-12)  # the opposite anomaly


def test_accumulator_acc_and_rmse_wb2_match_numpy_references_for_any_batching():
    rng = np.random.default_rng(12)
    pred, target = _batch(rng, b=7, t=3, c=2, h=16, w=8)
    clim = target + 0.8 * torch.from_numpy(rng.standard_normal(target.shape)).float()
    norm, lat = _normalizer(2), _lats(16)
    weights = latitude_weights(lat).numpy()
    p, t, c = (x.double().numpy() for x in (pred, target, clim))
    results = []
    for batches in ([slice(0, 7)], [slice(0, 3), slice(3, 4), slice(4, 7)]):
        accumulator = MetricAccumulator(3, norm, lat=lat)
        for part in batches:
            accumulator.update(pred[part], target[part], clim[part])
        results.append(accumulator.compute())
    _assert_nested_close(results[0], results[1], rel=1e-9)
    res = results[0]
    np.testing.assert_allclose(res["normalized"]["per_lead"]["acc"], _numpy_acc(p, t, c, weights), rtol=1e-9)
    np.testing.assert_allclose(res["physical"]["per_lead"]["acc"], res["normalized"]["per_lead"]["acc"], rtol=1e-9)
    np.testing.assert_allclose(res["normalized"]["per_lead"]["rmse_wb2"], _numpy_rmse_wb2(p, t, weights), rtol=1e-9)
    pp, tp = norm.denormalize(p), norm.denormalize(t)
    np.testing.assert_allclose(res["physical"]["per_lead"]["rmse_wb2"], _numpy_rmse_wb2(pp, tp, weights), rtol=1e-6)
    for space in ("normalized", "physical"):
        block = res[space]
        assert block["acc"] == pytest.approx(np.mean(block["per_lead"]["acc"]), rel=1e-12)
        # the root after the mean over samples is never below the mean of the per-sample roots (Jensen)
        assert all(wb2 >= wb1 for wb2, wb1 in zip(block["per_lead"]["rmse_wb2"], block["per_lead"]["lat_rmse"],
                                                   strict=True))


def test_rmse_wb2_without_latitudes_is_the_plain_root_mean_square_per_channel():
    rng = np.random.default_rng(13)
    pred, target = _batch(rng, c=1)
    accumulator = MetricAccumulator(3, _normalizer(1))
    accumulator.update(pred, target)
    res = accumulator.compute()["normalized"]
    np.testing.assert_allclose(res["per_lead"]["rmse_wb2"], res["per_lead"]["rmse"], rtol=1e-12)  # one channel
    assert "acc" not in res  # no climatology given


def test_accumulator_refuses_a_climatology_for_some_batches_only():
    rng = np.random.default_rng(14)
    pred, target = _batch(rng)
    accumulator = MetricAccumulator(3, _normalizer(2))
    accumulator.update(pred, target, target)
    with pytest.raises(ValueError, match="for all or none"):
        accumulator.update(pred, target)
