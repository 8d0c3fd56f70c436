"""Tests of the baseline models: shapes, training signal, parameter counts, scheduled sampling."""

from __future__ import annotations

import pytest
import torch

from baselines.recurrent import (
    autoregressive_rollout,
    patchify,
    scheduled_sampling_eta,
    scheduled_sampling_mask,
    unpatchify,
)
from benchmark.core.errors import ConfigError
from benchmark.registry import create_model, get_model_spec, list_models
from benchmark.registry.contract import check_output_shape
from benchmark.registry.model_api import count_parameters
from benchmark.registry.shapes import DataShape
from tests.model_checks import adam_losses
from tests.model_checks import random_batch as _data

# Small widths so every test runs in well under a second or two on one CPU core.
SMALL = {
    "persistence": {},
    "convlstm": {"num_hidden": (4, 4), "filter_size": 3},
    "simvp": {"hid_S": 4, "hid_T": 8, "N_T": 2, "groups": 2, "incep_ker": (3, 5)},
}
FRAMES = [(32, 64), (64, 64), (120, 160)]


def test_models_are_registered():
    assert {"persistence", "convlstm", "simvp"} <= set(list_models())
    assert get_model_spec("persistence").trainable is False
    assert get_model_spec("convlstm").family == "recurrent"
    assert get_model_spec("simvp").family == "cnn"


# The shape contract at 16x32 (T_in != T_out, C = 1 and 2), gradients and determinism are in
# test_model_contract.py; here, the frame sizes of the datasets.
@pytest.mark.parametrize("name", list(SMALL))
@pytest.mark.parametrize("hw", FRAMES, ids=lambda hw: f"{hw[0]}x{hw[1]}")
def test_forward_shape_on_dataset_frames(name, hw):
    assert not check_output_shape(name, DataShape(3, 2, 1, *hw), SMALL[name])


def test_convlstm_overfits_one_batch():
    torch.manual_seed(0)
    model = create_model("convlstm", (3, 2, 1, 16, 16), num_hidden=(8, 8), filter_size=3)
    x, y = _data(3, 2, 1, 16, 16)
    losses = adam_losses(model, x, y, 150)
    assert losses[-1] < losses[0] / 10


@pytest.mark.parametrize(
    "name,published,paper_count",
    [("convlstm", 11_520_000, 11_520_512), ("simvp", 14_670_000, 14_666_017)],
)
def test_parameter_counts_at_weatherbench_shape(name, published, paper_count):
    spec = get_model_spec(name)
    with torch.device("meta"):  # no memory, no init cost: only the count matters
        model = create_model(name, (12, 12, 1, 32, 64))
    n = count_parameters(model)
    assert n == paper_count
    assert abs(n - published) / published < 0.03
    reference = spec.reference_params["12,1,32,64"]
    assert abs(n - reference) / reference < 0.03


# --- scheduled sampling ------------------------------------------------------------------------


@pytest.mark.parametrize("step,eta", [(0, 1.0), (25_000, 0.5), (50_000, 0.0), (60_000, 0.0)])
def test_scheduled_sampling_schedule(step, eta):
    assert scheduled_sampling_eta(step) == pytest.approx(eta, abs=1e-9)
    model = create_model("convlstm", (3, 2, 1, 8, 8), **SMALL["convlstm"])
    assert model.sampling_eta(step) == pytest.approx(eta, abs=1e-9)


def test_sampling_schedule_is_configurable_and_logged():
    model = create_model("convlstm", (3, 2, 1, 8, 8), sampling_changing_rate=1e-3, **SMALL["convlstm"])
    assert model.sampling_eta(500) == pytest.approx(0.5)
    x, y = _data(3, 2, 1, 8, 8)
    _, logs = model.training_loss(x, y, step=500)
    assert float(logs["sampling_eta"]) == pytest.approx(0.5)


def test_sampling_mask_is_one_draw_per_sample_and_frame():
    gen = torch.Generator().manual_seed(0)
    mask = scheduled_sampling_mask(4000, 3, 4, 0.5, generator=gen)
    assert mask.shape == (4000, 3 + 4 - 1) and mask.dtype == torch.bool
    assert mask[:, :3].all()  # observed inputs are always read
    assert 0.45 < mask[:, 3:].float().mean() < 0.55
    assert not scheduled_sampling_mask(8, 3, 4, 0.0)[:, 3:].any()
    assert scheduled_sampling_mask(8, 3, 4, 1.0).all()


def test_rollout_feeds_truth_or_own_output():
    # A step function that remembers what it was fed and predicts "input + 100".
    fed = []

    def step(frame, state):
        fed.append(frame.clone())
        return frame + 100, state

    frames = torch.arange(4.0).reshape(1, 4, 1)  # truth: 0, 1, 2, 3
    mask = torch.tensor([[True, True, False, True]])
    out, _ = autoregressive_rollout(step, None, frames, 4, mask)
    assert [f.item() for f in fed] == [0, 1, 101, 3]
    assert out.shape == (1, 4, 1)
    fed.clear()
    autoregressive_rollout(step, None, frames[:, :2], 4)  # inputs only: own outputs afterwards
    assert [f.item() for f in fed] == [0, 1, 101, 201]


@pytest.fixture
def tiny_convlstm():
    torch.manual_seed(0)
    return create_model("convlstm", (3, 3, 1, 8, 8), **SMALL["convlstm"])


def test_training_without_teacher_ignores_ground_truth(tiny_convlstm):
    model = tiny_convlstm
    x, y = _data(3, 3, 1, 8, 8)
    y_other = y + torch.randn_like(y)
    mask0 = scheduled_sampling_mask(2, 3, 3, 0.0)
    mask1 = scheduled_sampling_mask(2, 3, 3, 1.0)
    with torch.no_grad():
        # eta = 0: the future inputs are the model's own outputs, so y cannot change predictions.
        assert torch.equal(model.generate(x, y, mask0), model.generate(x, y_other, mask0))
        assert torch.equal(model.generate(x, y, mask0), model.generate(x))
        # eta = 1: the future inputs are the truth, so y does change predictions after T_in.
        p1, p1_other = model.generate(x, y, mask1), model.generate(x, y_other, mask1)
        assert torch.equal(p1[:, :3], p1_other[:, :3])
        assert not torch.allclose(p1[:, 3:], p1_other[:, 3:])


def test_training_loss_follows_the_schedule(tiny_convlstm):
    model = tiny_convlstm
    x, y = _data(3, 3, 1, 8, 8)
    target = torch.cat([x, y], dim=1)[:, 1:]
    with torch.no_grad():
        free = torch.nn.functional.mse_loss(model.generate(x), target)
        forced = torch.nn.functional.mse_loss(
            model.generate(x, y, scheduled_sampling_mask(2, 3, 3, 1.0)), target
        )
        assert not torch.isclose(free, forced)
        # Past 50,000 steps eta = 0: the loss is that of the free-running rollout on all frames.
        loss_late, logs = model.training_loss(x, y, step=60_000)
        assert float(logs["sampling_eta"]) == 0.0
        assert torch.allclose(loss_late, free)
        # At step 0 eta = 1: teacher forcing on every future input.
        assert torch.allclose(model.training_loss(x, y, step=0)[0], forced)


def test_eval_forward_uses_only_the_inputs(tiny_convlstm):
    model = tiny_convlstm.eval()
    x, _ = _data(3, 3, 1, 8, 8)
    with torch.no_grad():
        y_hat = model(x)
        assert torch.equal(y_hat, model.generate(x)[:, -3:])
        x_changed = x.clone()
        x_changed[:, -1] += 1.0
        assert not torch.allclose(model(x_changed), y_hat)


def test_patchify_roundtrip():
    x = torch.randn(2, 3, 5, 8, 12)
    p = patchify(x, 2)
    assert p.shape == (2, 3, 20, 4, 6)
    assert torch.equal(unpatchify(p, 2), x)
    # Each patched pixel holds exactly the 2x2 block of the original frame.
    assert torch.equal(p[0, 0, :4, 0, 0].sort().values, x[0, 0, 0, :2, :2].flatten().sort().values)


# --- errors and the reference model ------------------------------------------------------------


@pytest.mark.parametrize(
    "name,shape,hp",
    [
        ("convlstm", (12, 12, 1, 33, 64), {}),
        ("convlstm", (12, 12, 1, 32, 64), {"patch_size": 3}),
        ("simvp", (12, 12, 1, 32, 63), {}),
        ("simvp", (12, 12, 1, 34, 64), {"N_S": 4}),
    ],
)
def test_clear_error_when_frames_do_not_divide(name, shape, hp):
    with pytest.raises(ConfigError) as err:
        create_model(name, shape, **hp)
    message = str(err.value)
    assert name in message and f"{shape[3]}x{shape[4]}" in message


def test_persistence_repeats_the_last_frame():
    model = create_model("persistence", (4, 3, 2, 8, 16))
    assert count_parameters(model) == 0
    x, _ = _data(4, 3, 2, 8, 16)
    y_hat = model(x)
    assert y_hat.shape == (2, 3, 2, 8, 16)
    for t in range(3):
        assert torch.equal(y_hat[:, t], x[:, -1])
