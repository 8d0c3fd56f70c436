"""Tests of the recurrent models' step schedules: the published values as fractions of the run
("relative") or as they are ("absolute"), resolved by `plan_schedule` and used by `training_loss`."""

from __future__ import annotations

import math

import pytest
import torch

import baselines.e3dlstm  # noqa: F401  (registers "e3dlstm")
import baselines.predrnn  # noqa: F401  (registers "predrnn")
import baselines.predrnn_v2  # noqa: F401  (registers "predrnn-v2")
from baselines.recurrent import (
    REFERENCE_TOTAL_STEPS,
    first_step_where,
    published_step,
    reverse_scheduled_sampling_etas,
    run_step,
    scheduled_sampling_eta,
)
from benchmark.core.errors import ConfigError
from benchmark.registry import create_model, get_model_spec
from tests.model_checks import random_batch as _data

TINY = {
    "convlstm": {"num_hidden": (4,), "filter_size": 3},
    "predrnn": {"num_hidden": (4,), "filter_size": 3},
    "predrnn-v2": {"num_hidden": (4,), "filter_size": 3},
    "e3dlstm": {"num_hidden": (4,), "filter_size": (2, 3, 3), "tau": 2},
}
SAMPLING = ["convlstm", "predrnn", "e3dlstm"]  # plain scheduled sampling
RUNS = [250, 6_850, REFERENCE_TOTAL_STEPS]  # the quick profile, the paper profile, OpenSTL's run
ZERO_FRACTION = 50_000 / REFERENCE_TOTAL_STEPS  # eta reaches 0 here (30.4%)
PHASE_1, PHASE_2, ALPHA = 25_000 / REFERENCE_TOTAL_STEPS, ZERO_FRACTION, 5_000 / REFERENCE_TOTAL_STEPS


def _model(name, shape=(3, 2, 1, 8, 8), **hp):
    torch.manual_seed(0)
    return create_model(name, shape, **{**TINY[name], **hp})


def _probe_steps(total):
    """About 60 steps spread over the run, its first and last step included."""
    return sorted({0, total - 1, *range(0, total, max(1, total // 60))})


def test_reference_run_length_and_published_fractions():
    steps_per_epoch, epochs = 3_285, 50  # ~52,560 hourly windows of 2010-2015 at batch 16
    assert REFERENCE_TOTAL_STEPS == steps_per_epoch * epochs == 164_250
    assert ZERO_FRACTION == pytest.approx(0.3044, abs=1e-4)
    assert (PHASE_1, ALPHA) == pytest.approx((0.1522, 0.03044), abs=1e-4)


def test_the_mapping_keeps_fractions_and_is_the_identity_when_absolute_or_unplanned():
    assert published_step(125, 250, "relative") == REFERENCE_TOTAL_STEPS / 2
    assert published_step(125, 250, "absolute") == 125.0
    assert published_step(125, None, "relative") == 125.0  # no run planned: the reference length
    assert all(published_step(k, REFERENCE_TOTAL_STEPS, "relative") == k for k in (0, 1, 25_000, 50_000, 164_249))
    for schedule in ("relative", "absolute"):
        assert run_step(published_step(37, 250, schedule), 250, schedule) == pytest.approx(37)
    assert first_step_where(lambda k: k * k >= 50, guess=100) == 8
    assert first_step_where(lambda k: k * k >= 50, guess=0) == 8
    assert first_step_where(lambda k: True, guess=5) == 0


@pytest.mark.parametrize("name", list(TINY))
def test_schedule_is_a_validated_hyperparameter(name):
    assert get_model_spec(name).hyperparameter_defaults()["schedule"] == "relative"
    with pytest.raises(ConfigError) as err:
        create_model(name, (3, 2, 1, 8, 8), schedule="fractional", **TINY[name])
    assert name in str(err.value) and "'relative'" in str(err.value) and "'absolute'" in str(err.value)


@pytest.mark.parametrize("name", list(TINY))
def test_plan_schedule_validates_the_run_length_and_keeps_the_state_dict(name):
    model = _model(name)
    keys = list(model.state_dict())
    for bad in (0, -5, 2.5, True, float("inf"), "100"):
        with pytest.raises(ConfigError, match="total number of optimizer steps"):
            model.plan_schedule(bad)
    first = model.plan_schedule(6_850)
    assert model.plan_schedule(6_850.0) == first  # on resume the trainer calls it again, same value
    assert list(model.state_dict()) == keys  # the run length is no parameter or buffer
    assert model.planned_total_steps == 6_850


# --- scheduled sampling (ConvLSTM, PredRNN, E3D-LSTM) --------------------------------------------


@pytest.mark.parametrize("name", SAMPLING)
@pytest.mark.parametrize("total", RUNS)
def test_relative_eta_reaches_its_end_points_at_the_published_fractions(name, total):
    model = _model(name)
    plan = model.plan_schedule(total)
    zero_at = plan["sampling_eta_zero_at_step"]
    assert plan == {
        "schedule": "relative",
        "total_steps": total,
        "reference_total_steps": REFERENCE_TOTAL_STEPS,
        "sampling_eta_start": 1.0,
        "sampling_eta_zero_at_step": zero_at,
        "sampling_eta_final": 0.0,
    }
    # eta is 0 from 30.4% of the run on (the first such step), and not before.
    assert zero_at == math.ceil(ZERO_FRACTION * total - 1e-9)
    assert model.sampling_eta(zero_at) == 0.0 < model.sampling_eta(zero_at - 1)
    assert model.sampling_eta(total - 1) == 0.0
    # 1.0 at step 0, linear in the fraction of the run in between: 0.5 at 15.2%.
    assert model.sampling_eta(0) == 1.0
    for k in _probe_steps(total):
        assert model.sampling_eta(k) == pytest.approx(max(0.0, 1 - (k / total) / ZERO_FRACTION), abs=1e-9)
    mid = round(ZERO_FRACTION / 2 * total)
    assert model.sampling_eta(mid) == pytest.approx(0.5, abs=0.5 / (ZERO_FRACTION * total) + 1e-9)


@pytest.mark.parametrize("name", SAMPLING)
def test_relative_equals_absolute_on_the_reference_run_and_absolute_ignores_the_run_length(name):
    relative = _model(name)
    relative.plan_schedule(REFERENCE_TOTAL_STEPS)
    absolute = _model(name, schedule="absolute")
    unplanned = _model(name)  # relative without a planned run: the reference length
    plans = []
    for total in (250, 6_850, REFERENCE_TOTAL_STEPS):
        plans.append(absolute.plan_schedule(total))
        for k in (0, 1, 100, 25_000, 49_999, 50_000, 100_000):
            published = scheduled_sampling_eta(k)
            assert absolute.sampling_eta(k) == relative.sampling_eta(k) == unplanned.sampling_eta(k) == published
    assert {p["sampling_eta_zero_at_step"] for p in plans} == {50_000}
    assert plans[0]["sampling_eta_final"] == pytest.approx(1 - 249 * 2e-5)  # a short absolute run stays forced


@pytest.mark.parametrize("name", SAMPLING)
def test_a_changed_rate_is_read_in_published_steps(name):
    model = _model(name, sampling_changing_rate=4e-5)  # eta 0 at published step 25,000 = 15.2%
    assert model.plan_schedule(1_000)["sampling_eta_zero_at_step"] == math.ceil(PHASE_1 * 1_000)
    model = _model(name, sampling_changing_rate=0.0)
    assert model.plan_schedule(1_000)["sampling_eta_zero_at_step"] is None
    assert model.sampling_eta(999) == 1.0


@pytest.mark.parametrize("name", SAMPLING)
def test_training_loss_uses_the_planned_schedule(name):
    model = _model(name, shape=(3, 3, 1, 8, 8))
    x, y = _data(3, 3, 1, 8, 8)
    step = 40  # 40 % of a 100-step run, past 30.4 %; in published steps, eta would still be 0.9992
    with torch.no_grad():
        _, logs = model.training_loss(x, y, step)
        assert float(logs["sampling_eta"]) == pytest.approx(1 - step * 2e-5)
        model.plan_schedule(100)
        _, logs = model.training_loss(x, y, step)
        assert float(logs["sampling_eta"]) == 0.0
        # eta = 0: every future input is the model's own output, so the loss is the free-running one.
        target = torch.cat([x, y], dim=1)[:, 1:]
        assert torch.allclose(logs["mse"], torch.nn.functional.mse_loss(model.generate(x), target))
        _, logs = model.training_loss(x, y, 15)  # 15 % of the run: about half-way down
        assert float(logs["sampling_eta"]) == pytest.approx(1 - 0.15 / ZERO_FRACTION)


# --- reverse scheduled sampling (PredRNN-v2) -----------------------------------------------------


@pytest.mark.parametrize("total", RUNS)
def test_reverse_schedule_reaches_its_phases_at_the_published_fractions(total):
    model = _model("predrnn-v2")
    plan = model.plan_schedule(total)
    k1, k2, alpha = plan["r_sampling_step_1"], plan["r_sampling_step_2"], plan["r_exp_alpha"]
    assert plan == {
        "schedule": "relative",
        "total_steps": total,
        "reference_total_steps": REFERENCE_TOTAL_STEPS,
        "r_sampling_step_1": k1,
        "r_sampling_step_2": k2,
        "r_exp_alpha": alpha,
        "sampling_eta_input_final": 1.0,
        "sampling_eta_final": 0.0,
    }
    assert k1 == math.ceil(PHASE_1 * total - 1e-9) and k2 == math.ceil(PHASE_2 * total - 1e-9)
    assert alpha == pytest.approx(ALPHA * total, abs=1e-3)
    # (0.5, 0.5) up to 15.2 %, the rise from there, (1.0, 0.0) from 30.4 % on.
    assert model.published_step(k1 - 1) < 25_000 <= model.published_step(k1)  # the first rising step
    assert model.sampling_etas(k1 - 1) == (0.5, 0.5) and model.sampling_etas(k1 + 1)[0] > 0.5
    assert model.sampling_etas(k2 - 1) != (1.0, 0.0) and model.sampling_etas(k2) == (1.0, 0.0)
    for k in _probe_steps(total):
        f = k / total
        if f < PHASE_1:
            expected = (0.5, 0.5)
        elif f < PHASE_2:
            expected = (1 - 0.5 * math.exp(-(f - PHASE_1) / ALPHA), 0.5 * (PHASE_2 - f) / (PHASE_2 - PHASE_1))
        else:
            expected = (1.0, 0.0)
        assert model.sampling_etas(k) == pytest.approx(expected, abs=1e-9), k
    # One alpha after the rise begins, the input probability has closed 1 - 1/e of its gap to 1.
    assert model.sampling_etas((PHASE_1 + ALPHA) * total) == pytest.approx((1 - 0.5 * math.exp(-1), 0.4))


def test_reverse_schedule_absolute_ignores_the_run_length():
    absolute = _model("predrnn-v2", schedule="absolute")
    relative = _model("predrnn-v2")
    relative.plan_schedule(REFERENCE_TOTAL_STEPS)
    for total in (250, 6_850):
        plan = absolute.plan_schedule(total)
        assert (plan["r_sampling_step_1"], plan["r_sampling_step_2"], plan["r_exp_alpha"]) == (25_000, 50_000, 5_000)
        assert (plan["sampling_eta_input_final"], plan["sampling_eta_final"]) == (0.5, 0.5)
        for k in (0, 24_999, 25_000, 30_000, 49_999, 50_000):
            assert absolute.sampling_etas(k) == relative.sampling_etas(k) == reverse_scheduled_sampling_etas(k)


def test_reverse_schedule_training_loss_uses_the_planned_schedule():
    model = _model("predrnn-v2", shape=(3, 2, 1, 8, 8))
    x, y = _data(3, 2, 1, 8, 8)
    with torch.no_grad():
        _, logs = model.training_loss(x, y, 40)
        assert (float(logs["sampling_eta_input"]), float(logs["sampling_eta"])) == (0.5, 0.5)
        model.plan_schedule(100)
        _, logs = model.training_loss(x, y, 40)  # 40 % of the run: past the second phase
        assert (float(logs["sampling_eta_input"]), float(logs["sampling_eta"])) == (1.0, 0.0)
        target = torch.cat([x, y], dim=1)[:, 1:]
        assert torch.allclose(logs["mse"], torch.nn.functional.mse_loss(model.generate(x), target))
        _, logs = model.training_loss(x, y, 20)  # 20 % of the run: in the rise
        f = 0.2
        assert float(logs["sampling_eta_input"]) == pytest.approx(1 - 0.5 * math.exp(-(f - PHASE_1) / ALPHA))
        assert float(logs["sampling_eta"]) == pytest.approx(0.5 * (PHASE_2 - f) / (PHASE_2 - PHASE_1))


def test_models_without_a_step_schedule_plan_nothing():
    model = create_model("simvp", (3, 2, 1, 8, 8), hid_S=4, hid_T=8, N_T=2, groups=2, incep_ker=(3,))
    assert model.plan_schedule(100) == {}
