"""Tests of PastNet: shapes, training signal, the EMA codebook, straight-through gradients, errors, counts."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import baselines.pastnet  # noqa: F401  (registers the model)
from baselines.pastnet import VectorQuantizerEMA, choose_fpg_patch
from benchmark.core.errors import ConfigError
from benchmark.registry import create_model, get_model_spec
from benchmark.registry.contract import check_gradients, check_output_shape
from benchmark.registry.model_api import count_parameters
from benchmark.registry.shapes import DataShape
from tests.model_checks import adam_losses
from tests.model_checks import random_batch as _data

# Tiny widths so every test runs in a fraction of a second on one CPU core.
TINY = {
    "embed_dim": 8,
    "afno_blocks": 2,
    "dst_hiddens": 8,
    "dst_res_layers": 1,
    "dst_res_hiddens": 4,
    "num_codes": 16,
    "code_dim": 4,
    "hid_T": 8,
    "N_T": 2,
    "groups": 2,
    "incep_ker": (3,),
}
# (H, W, fpg_patch): 120 and 160 are not multiples of 16, so that frame size uses patch 8.
FRAMES = [(32, 64, 16), (64, 64, 16), (120, 160, 8)]


@pytest.fixture(autouse=True)
def one_thread():
    """Small convs on a shared, busy CPU run far faster on one thread than on several."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_registered_with_the_published_defaults():
    spec = get_model_spec("pastnet")
    assert spec.family == "physics-guided" and spec.paper_name == "PastNet"
    defaults = spec.hyperparameter_defaults()
    assert defaults["fpg_patch"] is None and defaults["num_codes"] == 512 and defaults["code_dim"] == 64


# (H, W) -> (automatic fpg_patch, token grid): 16 at 64x64 (the original setting), 8 on the weather
# grid (patch 16 would leave 2 x 4 tokens), the finest grid the head allows on tiny frames.
AUTO_PATCH = {
    (64, 64): (16, (4, 4)),
    (32, 64): (8, (4, 8)),
    (120, 160): (8, (15, 20)),
    (24, 32): (4, (6, 8)),
    (8, 16): (4, (2, 4)),
    (32, 60): (4, (8, 15)),
}


@pytest.mark.parametrize("hw", list(AUTO_PATCH), ids=lambda hw: f"{hw[0]}x{hw[1]}")
def test_fpg_patch_is_chosen_per_frame_shape(hw):
    patch, grid = AUTO_PATCH[hw]
    assert choose_fpg_patch(*hw) == patch
    with torch.device("meta"):
        model = create_model("pastnet", (3, 2, 1, *hw), **TINY)
    assert model.fpg_patch == patch and model.fpg.token_grid == grid
    assert model.fpg.pos_embed.shape == (1, *grid, TINY["embed_dim"])
    # An explicit patch is used as given.
    with torch.device("meta"):
        explicit = create_model("pastnet", (3, 2, 1, *hw), fpg_patch=4, **TINY)
    assert explicit.fpg_patch == 4 and explicit.fpg.token_grid == (hw[0] // 4, hw[1] // 4)


def test_automatic_patch_runs_on_the_weather_grid():
    model = create_model("pastnet", (3, 2, 1, 32, 64), **TINY).eval()
    x, _ = _data(3, 2, 1, 32, 64, batch=1)
    with torch.no_grad():
        assert model(x).shape == (1, 2, 1, 32, 64)
    assert model.plan_schedule(100) == {}  # no step schedule


# The shape contract at 16x32 (T_in != T_out, C = 1 and 2), gradients and determinism are in
# test_model_contract.py; here, the frame sizes of the datasets and equal lengths (no time map).
@pytest.mark.parametrize("frame", FRAMES, ids=lambda f: f"{f[0]}x{f[1]}")
def test_forward_shape_on_dataset_frames(frame):
    h, w, patch = frame
    assert not check_output_shape("pastnet", DataShape(3, 2, 1, h, w), {**TINY, "fpg_patch": patch})


@pytest.mark.parametrize("t_in,t_out", [(3, 5), (4, 2), (3, 3)])
def test_time_map_only_when_the_lengths_differ(t_in, t_out):
    with torch.device("meta"):
        model = create_model("pastnet", (t_in, t_out, 2, 16, 32), fpg_patch=8, **TINY)
    assert (model.time_map is None) == (t_in == t_out)


def test_gradients_reach_every_parameter_without_a_time_map():
    assert not check_gradients("pastnet", DataShape(3, 3, 2, 16, 32), {**TINY, "fpg_patch": 8})


def test_overfits_one_batch():
    torch.manual_seed(0)
    model = create_model("pastnet", (3, 2, 1, 16, 16), fpg_patch=4, **TINY)
    x, y = _data(3, 2, 1, 16, 16)
    losses = adam_losses(model, x, y, 120)
    assert losses[-1] < losses[0] / 10


def test_loss_adds_the_weighted_commitment_loss():
    x, y = _data(3, 2, 1, 16, 16)
    for weight in (1.0, 0.0):
        torch.manual_seed(0)
        model = create_model("pastnet", (3, 2, 1, 16, 16), fpg_patch=8, vq_loss_weight=weight, **TINY)
        loss, logs = model.training_loss(x, y, step=0)
        assert logs["vq_commitment"] > 0
        assert torch.allclose(loss, logs["mse"] + weight * logs["vq_commitment"])


# --- the EMA codebook --------------------------------------------------------------------------


def _vq_state(model):
    q = model.quantizer
    return [q.codebook.clone(), q.ema_cluster_size.clone(), q.ema_sum.clone()]


def test_codebook_moves_by_ema_in_training_only():
    torch.manual_seed(0)
    model = create_model("pastnet", (3, 2, 1, 16, 16), fpg_patch=8, **TINY)
    x, y = _data(3, 2, 1, 16, 16)
    start = _vq_state(model)

    model.eval()
    model.training_loss(x, y, step=0)  # eval mode, gradients on
    with torch.no_grad():
        model(x)  # eval mode, no gradients
    model.train()
    with torch.no_grad():
        model(x)  # training mode but no gradients: not a training step either
    assert all(torch.equal(a, b) for a, b in zip(_vq_state(model), start, strict=True))

    _, logs = model.training_loss(x, y, step=0)
    after = _vq_state(model)
    assert not torch.equal(after[0], start[0])
    assert not any(p is model.quantizer.codebook for p in model.parameters())  # moved by EMA, not the optimizer
    perplexity = float(logs["codebook_perplexity"])
    assert 1.0 <= perplexity <= TINY["num_codes"]


def test_ema_update_moves_codes_to_their_cluster_means_and_perplexity_counts_usage():
    torch.manual_seed(0)
    vq = VectorQuantizerEMA(num_codes=32, code_dim=3, commitment_cost=0.25, decay=0.0, epsilon=1e-9).train()
    z = torch.randn(2, 3, 4, 5, requires_grad=True)
    codebook = vq.codebook.clone()
    flat = z.detach().permute(0, 2, 3, 1).reshape(-1, 3)
    indices = torch.cdist(flat, codebook).argmin(dim=1)

    quantized, commitment, perplexity = vq(z)
    # The forward value is the nearest code of the old codebook.
    assert torch.allclose(quantized.detach().permute(0, 2, 3, 1).reshape(-1, 3), codebook[indices], atol=1e-6)
    assert torch.allclose(commitment, 0.25 * F.mse_loss(flat, codebook[indices]))
    # With decay 0, every used code becomes the mean of the vectors assigned to it.
    for k in indices.unique():
        assert torch.allclose(vq.codebook[k], flat[indices == k].mean(dim=0), atol=1e-5)
    # An unused code's running size is 0 here: Laplace smoothing keeps the division finite.
    assert len(indices.unique()) < 32 and torch.isfinite(vq.codebook).all()
    usage = torch.bincount(indices, minlength=32).float() / len(indices)
    expected = torch.exp(-(usage[usage > 0] * usage[usage > 0].log()).sum())
    assert torch.allclose(perplexity, expected)
    assert 1.0 <= float(perplexity) <= 32


# --- straight-through gradients ----------------------------------------------------------------


def test_straight_through_gradient_is_the_identity():
    torch.manual_seed(0)
    vq = VectorQuantizerEMA(num_codes=8, code_dim=3, commitment_cost=0.25, decay=0.99, epsilon=1e-5)
    z = torch.randn(2, 3, 4, 5, requires_grad=True)
    weights = torch.randn(2, 3, 4, 5)
    quantized, _, _ = vq(z)
    (quantized * weights).sum().backward()
    assert torch.allclose(z.grad, weights)


def test_prediction_gradient_reaches_the_encoder_through_the_quantizer():
    torch.manual_seed(0)
    model = create_model("pastnet", (3, 2, 1, 16, 16), fpg_patch=8, vq_loss_weight=0.0, **TINY)
    x, y = _data(3, 2, 1, 16, 16)
    F.mse_loss(model(x), y).backward()  # no commitment term: only the decoder path reaches the encoder
    for name, p in model.encoder.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


# --- errors and parameter counts ---------------------------------------------------------------


@pytest.mark.parametrize(
    "shape,hp,needle",
    [
        ((3, 2, 1, 30, 64), {}, "30x64"),  # no automatic patch divides 30
        ((3, 2, 1, 40, 64), {"fpg_patch": 16}, "40x64"),
        ((3, 2, 1, 32, 60), {"fpg_patch": 8}, "32x60"),
        ((3, 2, 1, 120, 160), {"fpg_patch": 16}, "120x160"),
        ((3, 2, 1, 32, 64), {"fpg_patch": 6}, "fpg_patch"),
        ((3, 2, 1, 32, 64), {"embed_dim": 10, "afno_blocks": 4}, "afno_blocks"),
        ((3, 2, 1, 32, 64), {"ema_decay": 1.0}, "ema_decay"),
    ],
)
def test_clear_config_errors(shape, hp, needle):
    with pytest.raises(ConfigError) as err:
        create_model("pastnet", shape, **hp)
    message = str(err.value)
    assert "pastnet" in message and needle in message


def test_parameter_counts():
    public_code = 16_498_326  # the public PastNet code at 10 -> 10 frames of 1x64x64, codebook included
    with torch.device("meta"):  # no memory, no init cost: only the count matters
        original = create_model("pastnet", (10, 10, 1, 64, 64))
        weather = create_model("pastnet", (12, 12, 1, 32, 64))
    n = count_parameters(original)
    assert n == 16_432_790
    reference = get_model_spec("pastnet").reference_params["10,1,64,64"]  # "~16.5M" of the public code
    assert abs(n - reference) / reference < 0.03
    # The only difference: the public code counts its EMA codebook and sums (2 x 512 x 64) as parameters.
    assert public_code - n == 2 * 512 * 64
    assert weather.fpg_patch == 8 and original.fpg_patch == 16
    assert count_parameters(weather) == 16_845_926
    with torch.device("meta"):
        weather_16 = create_model("pastnet", (12, 12, 1, 32, 64), fpg_patch=16)
    assert count_parameters(weather_16) == 16_867_478
    # Patch 8 instead of 16: a 4x8 instead of a 2x4 position embedding, a smaller patch embedding and head.
    e = 128
    assert count_parameters(weather_16) - count_parameters(weather) == (
        (16 * 16 - 8 * 8) * e + (2 * 4 - 4 * 8) * e + 4 * (4 * 4 - 2 * 2)
    )
