"""Power spectra and the detail ratio: known answers on constructed fields."""

import numpy as np
import pytest
import torch

from benchmark.scoring.metrics import MetricAccumulator
from benchmark.scoring.spectra import SpectrumAccumulator, detail_ratio, power_spectrum, wavenumbers


def _field(seed: int = 0, shape=(2, 3, 1, 32, 64)) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).normal(size=shape))


def _blur(x: torch.Tensor, passes: int = 2) -> torch.Tensor:
    """A 3-point box average along both axes, periodic, `passes` times: removes fine-scale power."""
    for _ in range(passes):
        x = (x + x.roll(1, -1) + x.roll(-1, -1)) / 3
        x = (x + x.roll(1, -2) + x.roll(-1, -2)) / 3
    return x


@pytest.mark.parametrize("kind", ["zonal", "radial"])
def test_a_single_wave_puts_its_power_at_its_wavenumber(kind):
    h, w = 32, 64
    lon = torch.arange(w, dtype=torch.float64)
    wave = torch.cos(2 * torch.pi * 5 * lon / w).expand(h, w)
    power = power_spectrum(wave, kind)
    assert power.shape == (len(wavenumbers(h, w, kind)),)
    assert int(power.argmax()) == 5 and float(power[0]) == pytest.approx(0.0, abs=1e-20)
    assert float(power.sum() - power[5]) == pytest.approx(0.0, abs=1e-9 * float(power[5]))


def test_zonal_power_satisfies_parseval():
    x = _field(1, (32, 64))
    x = x - x.mean()
    power = power_spectrum(x, "zonal")  # |rfft|^2 / W averaged over rows
    one_sided = power[0] + 2 * power[1:-1].sum() + power[-1]  # W even: Nyquist counted once
    assert float(one_sided) == pytest.approx(float((x ** 2).sum(dim=-1).mean()), rel=1e-10)


@pytest.mark.parametrize("kind", ["zonal", "radial"])
def test_detail_ratio_is_one_against_itself_and_below_for_a_blurred_field(kind):
    truth = _field(2)
    accumulate = {}
    for name, pred in (("self", truth), ("blurred", _blur(truth)), ("noisy", truth + 0.5 * _field(3))):
        acc = SpectrumAccumulator(kind)
        acc.update(pred, truth)
        accumulate[name] = acc.detail_ratios()
    overall, per_lead = accumulate["self"]
    assert overall == pytest.approx(1.0) and per_lead == pytest.approx([1.0] * 3)
    assert accumulate["blurred"][0] < 0.5  # a 3-point box average twice removes most fine-scale power
    assert accumulate["noisy"][0] > 1.0


def test_detail_ratio_averages_channels_and_refuses_constant_truth():
    true_power = np.array([[1.0, 1.0, 1.0, 2.0, 2.0], [1.0, 1.0, 1.0, 4.0, 4.0]])  # k = 0..4: upper half 3, 4
    pred_power = np.array([[9.0, 9.0, 9.0, 1.0, 1.0], [0.0, 0.0, 0.0, 4.0, 4.0]])
    assert detail_ratio(pred_power, true_power) == pytest.approx((0.5 + 1.0) / 2)
    assert detail_ratio(pred_power, np.zeros_like(true_power)) is None
    with pytest.raises(ValueError, match="different shapes"):
        detail_ratio(pred_power, true_power[:1])
    with pytest.raises(ValueError, match="kind"):
        power_spectrum(torch.zeros(4, 4), "polar")


def test_metric_accumulator_reports_the_detail_ratio_unit_free():
    truth = _field(4, (2, 2, 1, 16, 32))
    normalizer_std = 7.5

    class Scale:
        def data_range(self, space):
            return [4.0 * (normalizer_std if space == "physical" else 1.0)]

        def denormalize(self, x):
            return x * normalizer_std + 280.0

    acc = MetricAccumulator(2, Scale())
    acc.update(_blur(truth).float(), truth.float())
    result = acc.compute()
    assert result["normalized"]["detail_ratio"] == pytest.approx(result["physical"]["detail_ratio"])
    assert 0 < result["normalized"]["detail_ratio"] < 0.5
    assert len(result["normalized"]["per_lead"]["detail_ratio"]) == 2
    assert acc.spectrum.kind == "radial"  # no latitudes: an image
