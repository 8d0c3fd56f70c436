"""Tests of DIFFUMA: shapes, training signal through both paths, zero-init residual, bidirectionality,
the selective-scan backend, the diffusion pieces and the random-conditioning ablation."""

from __future__ import annotations

import json

import pytest
import torch

import models.diffuma  # noqa: F401  (registers the variants)
from benchmark.errors import ConfigError
from benchmark.model_api import count_parameters
from benchmark.registry import create_model, get_model_spec
from models.diffuma.diffusion import FrameDiT, add_noise, linear_beta_schedule, timestep_embedding
from models.diffuma.mamba import BiMambaBlock, mamba_ssm_available, selective_scan_unit
from models.diffuma.model import auto_downsample, level_widths
from tests.model_checks import random_batch as _data

VARIANTS = ["diffuma", "diffuma-mamba", "diffuma-randcond"]
# Tiny widths so a forward pass takes milliseconds; the backend is left on "auto" on purpose.
MAMBA_SMALL = {"hidden": 8, "mamba_layers": 1, "d_state": 4}
DIT_SMALL = {"dit_hidden": 16, "dit_heads": 2, "dit_depth": 1}
SMALL = {
    "diffuma": {**MAMBA_SMALL, **DIT_SMALL},
    "diffuma-mamba": MAMBA_SMALL,
    "diffuma-randcond": {**MAMBA_SMALL, **DIT_SMALL},
}
MAMBA_STATE_DICT_KEYS = [
    "in_proj.weight",
    "conv1d.weight",
    "conv1d.bias",
    "x_proj.weight",
    "dt_proj.weight",
    "dt_proj.bias",
    "A_log",
    "D",
    "out_proj.weight",
]


def _build(name, shape, seed=0, **overrides):
    torch.manual_seed(seed)
    return create_model(name, shape, **{**SMALL[name], **overrides})


def _adam_steps(model, x, y, steps, lr=1e-2):
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for step in range(steps):
        loss, _ = model.training_loss(x, y, step)
        opt.zero_grad()
        loss.backward()
        opt.step()


@pytest.fixture
def no_cuda(monkeypatch):
    """Pretend this machine has no CUDA, whatever it has (the availability check is cached)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    mamba_ssm_available.cache_clear()
    yield
    mamba_ssm_available.cache_clear()


# --- registry and shapes -----------------------------------------------------------------------


def test_variants_are_registered_with_plain_defaults():
    for name, paper_name in zip(VARIANTS, ["DIFFUMA", "DIFFUMA (Mamba only)", "DIFFUMA (random cond.)"], strict=True):
        spec = get_model_spec(name)
        assert spec.family == "mamba-diffusion" and spec.paper_name == paper_name
        json.dumps(spec.hyperparameter_defaults())
    assert get_model_spec("diffuma").hyperparameter_defaults()["dit_depth"] == 12  # the paper's one number
    assert "dit_depth" not in get_model_spec("diffuma-mamba").hyperparameter_defaults()


@pytest.mark.parametrize("name", VARIANTS)
@pytest.mark.parametrize("hw", [(32, 64), (120, 160), (20, 36)], ids=lambda hw: f"{hw[0]}x{hw[1]}")
@pytest.mark.parametrize("channels", [1, 2])
def test_forward_shape(name, hw, channels):
    t_in, t_out = 3, 2
    model = _build(name, (t_in, t_out, channels, *hw)).eval()
    x, _ = _data(t_in, t_out, channels, *hw, batch=1)
    with torch.no_grad():
        y_hat = model(x)
    assert y_hat.shape == (1, t_out, channels, *hw)
    assert torch.isfinite(y_hat).all()
    assert model.backend in ("mambapy", "mamba_ssm")


@pytest.mark.parametrize("name", VARIANTS)
@pytest.mark.parametrize("t_in,t_out", [(3, 5), (4, 2)])
def test_one_gradient_step_changes_the_forecasting_path(name, t_in, t_out):
    model = _build(name, (t_in, t_out, 2, 16, 32))
    x, y = _data(t_in, t_out, 2, 16, 32)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    loss, logs = model.training_loss(x, y, step=0)
    assert loss.ndim == 0 and torch.isfinite(loss) and "mse" in logs
    loss.backward()
    torch.optim.Adam(model.parameters(), lr=1e-3).step()  # Adam: tiny gradients still move a weight
    changed = {n for n, p in model.named_parameters() if not torch.equal(p.detach(), before[n])}
    # Every Mamba-path weight moves at once. The DiT is adaLN-Zero: at step 0 only its final
    # projection has a gradient (everything behind it is multiplied by that zero matrix).
    assert {n for n in before if n.startswith("mamba.")} <= changed
    if name != "diffuma-mamba":
        assert "dit.final_layer.linear.weight" in changed


@pytest.mark.parametrize("name", ["diffuma", "diffuma-randcond"])
def test_after_a_few_steps_every_parameter_has_moved(name):
    # The zero-initialised modulations open up one layer per step: final linear, then the adaLN
    # layers and gates, then what they gate. Three Adam steps reach every parameter.
    model = _build(name, (3, 2, 1, 16, 16))
    x, y = _data(3, 2, 1, 16, 16)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    _adam_steps(model, x, y, steps=3, lr=1e-3)
    unchanged = [n for n, p in model.named_parameters() if torch.equal(p.detach(), before[n])]
    assert not unchanged


def test_overfits_one_tiny_batch():
    model = _build("diffuma", (3, 2, 1, 16, 16), hidden=16, dit_hidden=32, patch_size=2)
    x, y = _data(3, 2, 1, 16, 16)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    recon = []
    for step in range(150):
        loss, logs = model.training_loss(x, y, step)
        opt.zero_grad()
        loss.backward()
        opt.step()
        recon.append(float(logs["loss_recon"]))
    assert sum(recon[-10:]) / 10 < recon[0] / 5
    with torch.no_grad():
        assert torch.nn.functional.l1_loss(model.eval()(x), y) < recon[0] / 5


# --- the residual starts at zero ---------------------------------------------------------------


def test_delta_is_exactly_zero_at_init():
    shape = (4, 3, 2, 16, 32)
    full, mamba_only = _build("diffuma", shape, seed=7).eval(), _build("diffuma-mamba", shape, seed=7).eval()
    x, _ = _data(4, 3, 2, 16, 32)
    with torch.no_grad():
        y_mamba, context = full.mamba(x)
        assert torch.equal(full.residual(y_mamba, context), torch.zeros_like(y_mamba))
        assert torch.equal(full(x), y_mamba)
        # The Mamba path is built first, so the same seed gives the Mamba-only variant its weights.
        assert torch.equal(full(x), mamba_only(x))


# --- both losses reach the Mamba path ----------------------------------------------------------


def _encoder_grad(model, x, y):
    model.zero_grad()
    loss, logs = model.training_loss(x, y, step=0)
    assert torch.isfinite(logs["loss_diff"]) and torch.isfinite(logs["loss_recon"])
    loss.backward()
    grads = [p.grad for p in model.mamba.encoder.parameters()]
    return sum(float(g.abs().sum()) for g in grads if g is not None)


def test_diffusion_loss_alone_trains_the_mamba_path_through_the_context():
    model = _build("diffuma", (3, 2, 1, 16, 16), lam=0.0)
    x, y = _data(3, 2, 1, 16, 16)
    # The DiT is zero-initialised, so at step 0 its output ignores c_context and L_diff sends no
    # gradient into the encoder; after two optimizer steps its final and adaLN layers are non-zero.
    assert _encoder_grad(model, x, y) == 0.0
    _adam_steps(model, x, y, steps=2)
    assert _encoder_grad(model, x, y) > 0.0


def test_reconstruction_loss_alone_trains_the_mamba_path():
    model = _build("diffuma", (3, 2, 1, 16, 16), diff_weight=0.0)
    x, y = _data(3, 2, 1, 16, 16)
    assert _encoder_grad(model, x, y) > 0.0


def test_gradient_checkpointing_gives_the_same_gradients_and_the_same_run_id():
    from benchmark.config import resolve_run

    x, y = _data(2, 3, 1, 16, 16)
    grads = []
    for flag in (False, True):
        model = _build("diffuma", (2, 3, 1, 16, 16), grad_checkpoint=flag)
        loss, _ = model.training_loss(x, y, 0)
        loss.backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.mamba.parameters() if p.grad is not None]))
        assert model.mamba.grad_checkpoint is flag
    torch.testing.assert_close(grads[0], grads[1])
    plain = resolve_run("smoke", "diffuma", "synthetic-weather:t2m", 0)
    saving = resolve_run("smoke", "diffuma", "synthetic-weather:t2m", 0, {"model": {"grad_checkpoint": True}})
    assert saving.model_args["grad_checkpoint"] and plain.run_id == saving.run_id


def test_random_condition_carries_no_gradient():
    # Same as the L_diff-only test, with c_context replaced by noise: nothing reaches the encoder.
    model = _build("diffuma-randcond", (3, 2, 1, 16, 16), lam=0.0)
    x, y = _data(3, 2, 1, 16, 16)
    _adam_steps(model, x, y, steps=2)
    assert _encoder_grad(model, x, y) == 0.0


def test_random_condition_ignores_the_context_and_is_reproducible_in_eval():
    model = _build("diffuma-randcond", (3, 2, 1, 16, 16))
    context = torch.randn(2, 2, 8)
    shuffled = context.flatten()[torch.randperm(context.numel())].view_as(context)  # same RMS
    model.eval()
    assert torch.equal(model.condition(context), model.condition(shuffled))
    assert model.condition(context).shape == context.shape
    rms = float(model.condition(torch.randn(64, 12, 8) * 3).pow(2).mean().sqrt())
    assert 2.5 < rms < 3.5  # scaled to the true context's magnitude
    model.train()
    assert not torch.equal(model.condition(context), model.condition(context))


# --- bidirectional Mamba -----------------------------------------------------------------------


@pytest.mark.parametrize("bidirectional", [True, False])
def test_later_frames_reach_earlier_positions_only_backwards(bidirectional):
    model = _build("diffuma-mamba", (4, 2, 1, 16, 16), bidirectional=bidirectional).eval()
    x, _ = _data(4, 2, 1, 16, 16)
    x_later = x.clone()
    x_later[:, -1] += 1.0  # change only the last input frame
    with torch.no_grad():
        f, f_later = model.mamba.features(x), model.mamba.features(x_later)
    assert f.shape == (2, 4 + 2, 8, 4, 4)
    assert not torch.allclose(f[:, 3], f_later[:, 3])  # the changed position itself
    first_changes = (f[:, 0] - f_later[:, 0]).abs().max() > 1e-4
    assert first_changes == bidirectional
    if not bidirectional:
        assert torch.equal(f[:, :3], f_later[:, :3])


# --- selective-scan backend --------------------------------------------------------------------


def test_selective_scan_unit_has_the_mamba_ssm_parameter_names():
    unit = selective_scan_unit(16, d_state=4, d_conv=4, expand=2, backend="mambapy")
    assert sorted(unit.state_dict()) == sorted(MAMBA_STATE_DICT_KEYS)  # no more, no fewer (no biases)
    state = unit.state_dict()
    assert state["in_proj.weight"].shape == (64, 16) and state["A_log"].shape == (32, 4)
    assert state["conv1d.weight"].shape == (32, 1, 4) and state["x_proj.weight"].shape == (1 + 2 * 4, 32)
    y = unit(torch.randn(3, 5, 16))
    assert y.shape == (3, 5, 16)
    if mamba_ssm_available():
        cuda_unit = selective_scan_unit(16, d_state=4, d_conv=4, expand=2, backend="mamba_ssm")
        assert {k: v.shape for k, v in cuda_unit.state_dict().items()} == {k: v.shape for k, v in state.items()}


def test_bimamba_block_names_its_branches():
    block = BiMambaBlock(8, d_state=4, d_conv=4, expand=2, backend="mambapy")
    keys = set(block.state_dict())
    assert {f"forward_ssm.{k}" for k in MAMBA_STATE_DICT_KEYS} <= keys
    assert {f"backward_ssm.{k}" for k in MAMBA_STATE_DICT_KEYS} <= keys
    assert {"gate.weight", "gate.bias", "norm.weight", "norm.bias"} <= keys
    one_way = BiMambaBlock(8, d_state=4, d_conv=4, expand=2, backend="mambapy", bidirectional=False)
    assert not any(k.startswith("backward_ssm.") for k in one_way.state_dict())


def test_without_mamba_ssm_the_model_uses_mambapy(no_cuda):
    from mambapy.mamba import MambaBlock

    model = _build("diffuma", (3, 2, 1, 16, 16))
    assert model.backend == "mambapy"
    assert isinstance(model.mamba.blocks[0].forward_ssm, MambaBlock)
    assert _build("diffuma", (3, 2, 1, 16, 16), mamba_backend="mambapy").backend == "mambapy"


def test_asking_for_mamba_ssm_without_cuda_is_a_config_error(no_cuda):
    with pytest.raises(ConfigError, match="cuda"):
        _build("diffuma", (3, 2, 1, 16, 16), mamba_backend="mamba_ssm")


def test_checkpoint_reloads_into_a_fresh_model():
    model = _build("diffuma", (3, 2, 1, 16, 16), seed=1)
    other = _build("diffuma", (3, 2, 1, 16, 16), seed=2, mamba_backend="mambapy")
    other.load_state_dict(model.state_dict())  # strict: identical names and shapes
    x, _ = _data(3, 2, 1, 16, 16)
    with torch.no_grad():
        assert torch.equal(model.eval()(x), other.eval()(x))


# --- diffusion pieces --------------------------------------------------------------------------


def test_noise_schedule_and_timestep_embedding():
    abar = linear_beta_schedule()
    assert abar.shape == (1000,) and abar[0] == pytest.approx(1 - 1e-4)
    assert (abar[1:] < abar[:-1]).all() and abar[-1] < 1e-4
    x0, eps = torch.ones(2, 3), torch.zeros(2, 3)
    assert torch.allclose(add_noise(x0, eps, torch.tensor([0, 999]), abar.float())[:, 0], abar[[0, 999]].sqrt().float())
    emb = timestep_embedding(torch.tensor([0, 1, 999]))
    assert emb.shape == (3, 256)
    assert torch.equal(emb[0, :128], torch.ones(128)) and not torch.allclose(emb[1], emb[2])


def test_dit_tokens_map_back_to_their_own_patch():
    dit = FrameDiT(2, 12, 20, context_dim=4, hidden=8, depth=1, num_heads=2, patch_size=4)
    assert dit.grid == (3, 5)
    x = torch.randn(1, 2, 12, 20)
    # A hand-made patchify (row-major patches, each flattened as (row, col, channel)) inverts unpatchify.
    tokens = x.reshape(1, 2, 3, 4, 5, 4).permute(0, 2, 4, 3, 5, 1).reshape(1, 15, 32)
    assert torch.equal(dit.unpatchify(tokens), x)
    # The patch embedding numbers the patches in the same order: only token 1*5+2 sees patch (1, 2).
    one_patch = torch.zeros(1, 2, 12, 20)
    one_patch[:, :, 4:8, 8:12] = 1.0
    embedded = dit.patch_embed(one_patch).flatten(2).transpose(1, 2)
    assert embedded[0].abs().sum(-1).nonzero().flatten().tolist() == [7]


def test_dit_pads_frames_that_the_patch_does_not_divide():
    dit = FrameDiT(1, 10, 14, context_dim=4, hidden=8, depth=1, num_heads=2, patch_size=4)
    torch.nn.init.normal_(dit.final_layer.linear.weight)  # make the output non-zero
    out = dit(torch.randn(3, 1, 10, 14), torch.tensor([0, 5, 999]), torch.randn(3, 4))
    assert out.shape == (3, 1, 10, 14) and out.abs().sum() > 0


# --- sizes and errors --------------------------------------------------------------------------


def test_automatic_sizes():
    assert auto_downsample(32, 64) == 2 and auto_downsample(120, 160) == 3 and auto_downsample(600, 800) == 5
    assert level_widths(128, 2) == [32, 64, 128] and level_widths(128, 5) == [16, 16, 16, 32, 64, 128]
    assert level_widths(8, 3) == [8, 8, 8, 8]


def test_default_model_sizes():
    with torch.device("meta"):  # no memory, no init cost: only the count matters
        full = create_model("diffuma", (12, 12, 1, 32, 64), mamba_backend="mambapy")
        mamba_only = create_model("diffuma-mamba", (12, 12, 1, 32, 64), mamba_backend="mambapy")
        chdl = create_model("diffuma", (5, 1, 1, 600, 800), mamba_backend="mambapy")
    assert count_parameters(full) == 16_027_633
    assert count_parameters(mamba_only) == count_parameters(full.mamba) == 1_488_353
    assert len(full.dit.blocks) == 12 and full.dit.patch_size == 4 and full.mamba.factor == 4
    assert chdl.dit.patch_size == 32 and chdl.mamba.factor == 32


@pytest.mark.parametrize(
    "name,hp,words",
    [
        ("diffuma", {"dit_hidden": 10, "dit_heads": 4}, "divisible"),
        ("diffuma", {"mamba_backend": "cuda"}, "mamba_backend"),
        ("diffuma-mamba", {"hidden": 0}, "hidden"),
        ("diffuma", {"lam": -1.0}, "lam"),
        ("diffuma", {"patch_size": 0}, "patch_size"),
        ("diffuma-randcond", {"context_seed": -1}, "context_seed"),
    ],
)
def test_bad_hyperparameters_are_config_errors(name, hp, words):
    with pytest.raises(ConfigError, match=words) as err:
        create_model(name, (3, 2, 1, 16, 16), **hp)
    assert name in str(err.value)
