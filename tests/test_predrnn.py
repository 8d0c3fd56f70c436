"""Tests of PredRNN and PredRNN-v2: shapes, training signal, parameter counts, the zig-zag memory,
the decoupling loss and reverse scheduled sampling."""

from __future__ import annotations

import math

import pytest
import torch

import baselines.predrnn  # noqa: F401  (registers "predrnn")
import baselines.predrnn_v2  # noqa: F401  (registers "predrnn-v2")
from baselines.recurrent import reverse_scheduled_sampling_etas, reverse_scheduled_sampling_mask
from benchmark.core.errors import ConfigError
from benchmark.registry import create_model, get_model_spec
from benchmark.registry.contract import check_output_shape
from benchmark.registry.model_api import count_parameters
from benchmark.registry.shapes import DataShape
from tests.model_checks import adam_losses
from tests.model_checks import random_batch as _data

NAMES = ["predrnn", "predrnn-v2"]
SMALL = {"num_hidden": (4, 4), "filter_size": 3}
FRAMES = [(32, 64), (64, 64), (120, 160)]


@pytest.fixture(autouse=True)
def _one_thread():
    """These models are tiny: one thread is faster than two fighting for a shared CPU (restored after)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _model(name, shape, seed=0, **hp):
    torch.manual_seed(seed)
    return create_model(name, shape, **{**SMALL, **hp})


def test_registered_with_the_published_defaults():
    for name, paper_name in zip(NAMES, ["PredRNN", "PredRNN-v2"], strict=True):
        spec = get_model_spec(name)
        assert spec.family == "recurrent" and spec.paper_name == paper_name and spec.trainable
    defaults = get_model_spec("predrnn-v2").hyperparameter_defaults()
    assert defaults["decouple_beta"] == 0.1
    assert (defaults["r_sampling_step_1"], defaults["r_sampling_step_2"], defaults["r_exp_alpha"]) == (
        25_000,
        50_000,
        5_000,
    )


# --- shapes and training signal ----------------------------------------------------------------


# The shape contract at 16x32 (T_in != T_out, C = 1 and 2), gradients and determinism are in
# test_model_contract.py; here, the frame sizes of the datasets.
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("hw", FRAMES, ids=lambda hw: f"{hw[0]}x{hw[1]}")
def test_forward_shape_on_dataset_frames(name, hw):
    assert not check_output_shape(name, DataShape(3, 2, 1, *hw), SMALL)


def test_predrnn_overfits_one_batch():
    model = _model("predrnn", (3, 2, 1, 16, 16), num_hidden=(8, 8))
    x, y = _data(3, 2, 1, 16, 16)
    losses = adam_losses(model, x, y, 100)
    assert losses[-1] < losses[0] / 10


@pytest.mark.parametrize(
    "name,published,count",
    [("predrnn", 23_570_000, 23_568_384), ("predrnn-v2", 23_590_000, 23_584_768)],
)
def test_parameter_counts_at_weatherbench_shape(name, published, count):
    with torch.device("meta"):  # no memory, no init cost: only the count matters
        model = create_model(name, (12, 12, 1, 32, 64))
    n = count_parameters(model)
    assert n == count
    assert abs(n - published) / published < 0.03
    assert get_model_spec(name).reference_params == {"12,1,32,64": published}


def test_predrnn_v2_adds_exactly_one_shared_adapter():
    with torch.device("meta"):
        v1 = create_model("predrnn", (12, 12, 1, 32, 64))
        v2 = create_model("predrnn-v2", (12, 12, 1, 32, 64))
    assert count_parameters(v2) - count_parameters(v1) == 128 * 128
    assert [n for n, _ in v2.named_parameters() if "adapter" in n] == ["adapter.weight"]


# --- the zig-zag spatiotemporal memory ---------------------------------------------------------


def _record_cells(model):
    """Hook every cell; return a list filled with (layer, M fed in, M given out) per call, in call order."""
    calls = []
    for layer, cell in enumerate(model.cells):
        cell.register_forward_hook(
            lambda module, args, out, layer=layer: calls.append((layer, args[3].detach(), out[2].detach()))
        )
    return calls


def test_memory_flows_up_the_stack_then_from_top_to_bottom():
    layers, t_in, t_out = 3, 3, 2
    model = _model("predrnn", (t_in, t_out, 1, 8, 8), num_hidden=(4,) * layers)
    calls = _record_cells(model)
    x, _ = _data(t_in, t_out, 1, 8, 8)
    with torch.no_grad():
        model(x)
    n_steps = t_in + t_out - 1
    assert [layer for layer, _, _ in calls] == list(range(layers)) * n_steps
    assert not calls[0][1].any()  # the memory starts at zero
    for k in range(1, len(calls)):
        # Each cell reads the M its predecessor in the zig-zag wrote: the layer below in the same step,
        # or, for the bottom layer, the top layer of the previous step.
        assert torch.equal(calls[k][1], calls[k - 1][2])
    # ... and not its own memory of the previous step (which is how c flows).
    assert not torch.equal(calls[layers][1], calls[0][2])


@pytest.mark.parametrize("which,reaches_bottom", [(2, True), (1, False)])  # output index 2 = M, 1 = c
def test_top_memory_at_t_reaches_bottom_layer_at_t_plus_1(which, reaches_bottom):
    model = _model("predrnn", (3, 1, 1, 8, 8), num_hidden=(4, 4, 4))
    x, _ = _data(3, 1, 1, 8, 8)
    bottom_outputs = []
    model.cells[0].register_forward_hook(lambda m, a, out: bottom_outputs.append(out[0].detach()))
    with torch.no_grad():
        model(x)
        clean = list(bottom_outputs)
        bottom_outputs.clear()
        first = [True]

        def perturb_top_at_step_0(module, args, out):
            if first[0]:
                first[0] = False
                out = list(out)
                out[which] = out[which] + 1.0
                return tuple(out)
            return None

        model.cells[-1].register_forward_hook(perturb_top_at_step_0)
        model(x)
    # Step 0 of the bottom layer runs before the top layer: untouched. Step 1 reads the true input
    # x[:, 1] (t < T_in), so only the spatiotemporal memory can carry the perturbation down.
    assert torch.equal(bottom_outputs[0], clean[0])
    assert torch.equal(bottom_outputs[1], clean[1]) is not reaches_bottom


# --- PredRNN-v2: decoupling loss -----------------------------------------------------------------


def test_decoupling_loss_is_positive_logged_and_trains_the_adapter():
    model = _model("predrnn-v2", (3, 2, 1, 8, 8))
    x, y = _data(3, 2, 1, 8, 8)
    loss, logs = model.training_loss(x, y, step=0)
    assert {"mse", "mse_future", "decouple_loss", "sampling_eta", "sampling_eta_input"} <= set(logs)
    decouple = logs["decouple_loss"]
    assert 0 < float(decouple) <= 1
    assert torch.allclose(loss.detach(), logs["mse"] + 0.1 * decouple)

    # The decoupling term alone has a gradient into the adapter and into the cells' gate weights.
    _, decouple = model.generate_with_decoupling(x, y, reverse_scheduled_sampling_mask(2, 3, 2, 1.0, 1.0))
    decouple.backward()
    assert model.adapter.weight.grad is not None and model.adapter.weight.grad.abs().sum() > 0
    assert model.cells[0].conv_m.weight.grad.abs().sum() > 0
    # Under teacher forcing the decoupling term does not depend on the prediction head.
    assert model.readout.weight.grad is None or not model.readout.weight.grad.any()


def test_decouple_beta_weights_the_loss():
    x, y = _data(3, 2, 1, 8, 8)
    losses = {}
    for beta in (0.0, 1.0):
        model = _model("predrnn-v2", (3, 2, 1, 8, 8), decouple_beta=beta)
        with torch.no_grad():
            losses[beta] = model.training_loss(x, y, step=60_000)  # deterministic mask past step 2
    (l0, logs0), (l1, logs1) = losses[0.0], losses[1.0]
    assert torch.allclose(l0, logs0["mse"])
    assert torch.allclose(l1, logs1["mse"] + logs1["decouple_loss"])
    assert torch.allclose(logs0["mse"], logs1["mse"])


# --- PredRNN-v2: reverse scheduled sampling ----------------------------------------------------


@pytest.mark.parametrize(
    "step,input_eta,future_eta",
    [
        (0, 0.5, 0.5),
        (25_000, 0.5, 0.5),
        (30_000, 1 - 0.5 * math.exp(-1), 0.4),
        (50_000, 1.0, 0.0),
        (60_000, 1.0, 0.0),
    ],
)
def test_reverse_schedule_is_pinned(step, input_eta, future_eta):
    assert reverse_scheduled_sampling_etas(step) == pytest.approx((input_eta, future_eta), abs=1e-12)
    model = _model("predrnn-v2", (3, 2, 1, 8, 8))
    assert model.sampling_etas(step) == pytest.approx((input_eta, future_eta), abs=1e-12)


def test_reverse_schedule_is_configurable_and_logged():
    model = _model("predrnn-v2", (3, 2, 1, 8, 8), r_sampling_step_1=100, r_sampling_step_2=300, r_exp_alpha=50)
    assert model.sampling_etas(99) == (0.5, 0.5)
    assert model.sampling_etas(200) == pytest.approx((1 - 0.5 * math.exp(-2), 0.25))
    assert model.sampling_etas(300) == (1.0, 0.0)
    x, y = _data(3, 2, 1, 8, 8)
    _, logs = model.training_loss(x, y, step=200)
    assert float(logs["sampling_eta_input"]) == pytest.approx(1 - 0.5 * math.exp(-2))
    assert float(logs["sampling_eta"]) == pytest.approx(0.25)


def test_reverse_sampling_mask_is_one_draw_per_sample_and_frame():
    gen = torch.Generator().manual_seed(0)
    mask = reverse_scheduled_sampling_mask(4000, 4, 3, 0.8, 0.3, generator=gen)
    assert mask.shape == (4000, 4 + 3 - 1) and mask.dtype == torch.bool
    assert mask[:, 0].all()  # the first frame is always read
    assert 0.77 < mask[:, 1:4].float().mean() < 0.83  # input steps 1 .. T_in - 1
    assert 0.27 < mask[:, 4:].float().mean() < 0.33  # future steps
    assert not reverse_scheduled_sampling_mask(8, 4, 3, 0.0, 0.0)[:, 1:].any()
    assert reverse_scheduled_sampling_mask(8, 4, 3, 1.0, 1.0).all()


def test_reverse_mask_reaches_the_input_steps():
    model = _model("predrnn-v2", (3, 2, 1, 8, 8))
    x, y = _data(3, 2, 1, 8, 8)
    x_other = x.clone()
    x_other[:, 1:] += 1.0  # change every input frame but the first
    own = reverse_scheduled_sampling_mask(2, 3, 2, 0.0, 0.0)  # never read the truth after step 0
    truth = reverse_scheduled_sampling_mask(2, 3, 2, 1.0, 0.0)  # read the true inputs
    with torch.no_grad():
        assert torch.equal(model.generate(x, y, own), model.generate(x_other, y, own))
        assert not torch.allclose(model.generate(x, y, truth), model.generate(x_other, y, truth))
        # Past r_sampling_step_2: true inputs, own future outputs = the evaluation rollout.
        target = torch.cat([x, y], dim=1)[:, 1:]
        _, logs = model.training_loss(x, y, step=60_000)
        assert torch.allclose(logs["mse"], torch.nn.functional.mse_loss(model.generate(x), target))


def test_predrnn_v2_eval_feeds_its_own_outputs():
    model = _model("predrnn-v2", (3, 3, 1, 8, 8)).eval()
    x, y = _data(3, 3, 1, 8, 8)
    y_other = y + torch.randn_like(y)
    free = reverse_scheduled_sampling_mask(2, 3, 3, 1.0, 0.0)
    forced = reverse_scheduled_sampling_mask(2, 3, 3, 1.0, 1.0)
    with torch.no_grad():
        y_hat = model(x)
        assert y_hat.shape == (2, 3, 1, 8, 8)
        assert torch.equal(y_hat, model.generate(x)[:, -3:])
        # The evaluation rollout is the one that feeds back its outputs, whatever the future truth is ...
        assert torch.equal(model.generate(x, y, free), model.generate(x, y_other, free))
        assert torch.allclose(model.generate(x, y, free)[:, -3:], y_hat)
        # ... which would differ if the future truth were fed.
        assert not torch.allclose(model.generate(x, y, forced)[:, -3:], y_hat)
        # The adapter only serves the loss: it does not change predictions.
        assert torch.equal(model.generate_with_decoupling(x)[0], model.generate(x))


# --- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    "shape,hp,needle",
    [
        ((12, 12, 1, 33, 64), {}, "33x64"),
        ((12, 12, 1, 32, 64), {"patch_size": 3}, "32x64"),
        ((12, 12, 1, 32, 64), {"num_hidden": (8, 16)}, "same width"),
        ((12, 12, 1, 32, 64), {"num_hidden": (8, 0)}, "num_hidden"),
        ((12, 12, 1, 32, 64), {"filter_size": 4}, "filter_size"),
    ],
)
def test_clear_errors(name, shape, hp, needle):
    with pytest.raises(ConfigError) as err:
        create_model(name, shape, **hp)
    assert name in str(err.value) and needle in str(err.value)


@pytest.mark.parametrize(
    "hp",
    [
        {"decouple_beta": -0.1},
        {"r_sampling_step_1": 50_000, "r_sampling_step_2": 25_000},
        {"r_exp_alpha": 0},
    ],
)
def test_clear_errors_predrnn_v2_training_settings(hp):
    with pytest.raises(ConfigError, match="predrnn-v2"):
        create_model("predrnn-v2", (3, 2, 1, 8, 8), **hp)


def test_clear_errors_predrnn_sampling():
    with pytest.raises(ConfigError, match="sampling_start_value"):
        create_model("predrnn", (3, 2, 1, 8, 8), sampling_start_value=1.5)
