"""Tests of DIFFUMA: shapes, training signal through both paths, zero-init residual, the paper's
bidirectional Mamba block and its selective scan, the backend choice by device, input dependence
and conditioning balance at initialisation, the config dataclasses, the diffusion pieces and the
random-conditioning ablation."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

import models.diffuma  # noqa: F401  (registers the variants)
import models.diffuma.mamba as mamba_module
from benchmark.core.errors import ConfigError
from benchmark.registry import ModelSpec, create_model, get_model_spec
from benchmark.registry.contract import check_output_shape
from benchmark.registry.model_api import count_parameters
from benchmark.registry.shapes import DataShape
from models.diffuma.diffusion import FrameDiT, add_noise, linear_beta_schedule, timestep_embedding
from models.diffuma.mamba import BiMambaBlock, mamba_ssm_available, resolve_backend, selective_scan
from models.diffuma.model import (
    DIFFUMA,
    DiffumaConfig,
    MambaPathConfig,
    RandCondConfig,
    auto_downsample,
    build_diffuma,
    level_widths,
)
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
# One scan direction's parameters, named as in mamba_ssm's Mamba; the backward ones end in "_b".
SSM_KEYS = ["conv1d.weight", "conv1d.bias", "x_proj.weight", "dt_proj.weight", "dt_proj.bias", "A_log", "D"]
BACKWARD_SSM_KEYS = [
    "conv1d_b.weight",
    "conv1d_b.bias",
    "x_proj_b.weight",
    "dt_proj_b.weight",
    "dt_proj_b.bias",
    "A_log_b",
    "D_b",
]
SHARED_KEYS = ["in_proj.weight", "out_proj.weight", "norm.weight", "norm.bias"]
PAPER_DEFAULTS = {
    "hidden": 128,
    "mamba_layers": 4,
    "d_state": 16,
    "d_conv": 4,
    "expand": 2,
    "downsample": None,
    "bidirectional": True,
    "mamba_backend": "auto",
    "grad_checkpoint": False,
    "fuse": "sum",
    "norm": "post",
}
PAPER_DIT_DEFAULTS = {
    "dit_depth": 12,
    "dit_hidden": 256,
    "dit_heads": 4,
    "mlp_ratio": 4.0,
    "patch_size": None,
    "lam": 1.0,
    "diff_weight": 1.0,
    "ensemble_t": 100,  # ours, evaluation only (bench ensemble), not in the run id
    "ensemble_steps": 10,
    "dit_grad_checkpoint": True,
}


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


def _profile_model_args(profile, model):
    from benchmark.run.config import resolve_run

    return resolve_run(profile, model, "synthetic-weather:t2m", 0).model_args


@pytest.fixture
def no_cuda(monkeypatch):
    """Pretend this machine has no CUDA, whatever it has (the availability check is cached)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    mamba_ssm_available.cache_clear()
    yield
    mamba_ssm_available.cache_clear()


# --- registry, configs and shapes --------------------------------------------------------------


def test_variants_are_registered_with_the_published_defaults():
    configs = {"diffuma": DiffumaConfig, "diffuma-mamba": MambaPathConfig, "diffuma-randcond": RandCondConfig}
    for name, paper_name in zip(VARIANTS, ["DIFFUMA", "DIFFUMA (Mamba only)", "DIFFUMA (random cond.)"], strict=True):
        spec = get_model_spec(name)
        assert spec.family == "mamba-diffusion" and spec.paper_name == paper_name
        assert spec.config is configs[name]
    assert get_model_spec("diffuma-mamba").hyperparameter_defaults() == PAPER_DEFAULTS
    assert get_model_spec("diffuma").hyperparameter_defaults() == {**PAPER_DEFAULTS, **PAPER_DIT_DEFAULTS}
    randcond = {**PAPER_DEFAULTS, **PAPER_DIT_DEFAULTS, "context_seed": 0}
    assert get_model_spec("diffuma-randcond").hyperparameter_defaults() == randcond


def test_registry_reads_defaults_from_a_config_dataclass():
    @dataclasses.dataclass(frozen=True)
    class Sizes:
        width: int = 3
        kernel: tuple = (3, 5)

    def build(shape, **overrides):
        return Sizes(**overrides)

    spec = ModelSpec(name="sizes", builder=build, family="test", paper_name="Sizes", config=Sizes)
    assert spec.hyperparameter_defaults() == {"width": 3, "kernel": (3, 5)}
    plain = ModelSpec(name="plain", builder=lambda shape, width=3: None, family="test", paper_name="Plain")
    assert plain.hyperparameter_defaults() == {"width": 3}


def test_unknown_hyperparameter_is_a_config_error():
    with pytest.raises(ConfigError, match="Unknown model key dit_width for diffuma") as err:
        create_model("diffuma", (3, 2, 1, 16, 16), dit_width=8)
    assert "dit_hidden" in str(err.value)  # the message lists the accepted names
    with pytest.raises(ConfigError, match="dit_depth"):  # the Mamba-only variant has no DiT
        create_model("diffuma-mamba", (3, 2, 1, 16, 16), dit_depth=2)


def test_builder_is_a_config_one_liner_and_the_config_resolves_automatic_sizes():
    model = build_diffuma((3, 2, 1, 32, 64), **SMALL["diffuma"])
    assert isinstance(model, DIFFUMA) and model.mode == "full"
    assert model.config == DiffumaConfig(**SMALL["diffuma"], downsample=2, patch_size=4)
    assert DiffumaConfig(downsample=1).resolved((3, 2, 1, 600, 800)).patch_size == 2
    assert MambaPathConfig().resolved((5, 1, 1, 600, 800)).downsample == 5
    with pytest.raises(TypeError, match="RandCondConfig"):
        DIFFUMA((3, 2, 1, 16, 16), DiffumaConfig(), mode="randcond")


# The shape contract at 16x32 (T_in != T_out, C = 1 and 2), gradients (every parameter within a few
# steps) and determinism are in test_model_contract.py; here, the frame sizes of the datasets and a
# frame that the DiT patch does not divide (20x36).
@pytest.mark.parametrize("name", VARIANTS)
@pytest.mark.parametrize("hw", [(32, 64), (120, 160), (20, 36)], ids=lambda hw: f"{hw[0]}x{hw[1]}")
def test_forward_shape_on_dataset_frames(name, hw):
    assert not check_output_shape(name, DataShape(3, 2, 1, *hw), SMALL[name])


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
    assert ("mamba.future_queries" in before) == (t_out > t_in)
    if name != "diffuma-mamba":
        assert "dit.final_layer.linear.weight" in changed


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
        assert F.l1_loss(model.eval()(x), y) < recon[0] / 5


def test_training_loss_logs_what_each_path_contributes():
    model = _build("diffuma", (3, 2, 1, 16, 16))
    x, y = _data(3, 2, 1, 16, 16)
    loss, logs = model.training_loss(x, y, 0)
    assert set(logs) == {"loss_diff", "loss_recon", "l1_mamba", "delta_abs", "mse"}
    # At initialisation delta == 0: the reconstruction loss is the Mamba path's own L1.
    assert float(logs["delta_abs"]) == 0.0 and torch.equal(logs["l1_mamba"], logs["loss_recon"])
    assert torch.allclose(loss, logs["loss_diff"] + logs["loss_recon"])
    _adam_steps(model, x, y, steps=2)
    _, logs = model.training_loss(x, y, 2)
    assert float(logs["delta_abs"]) > 0 and not torch.equal(logs["l1_mamba"], logs["loss_recon"])
    mamba_loss, mamba_logs = _build("diffuma-mamba", (3, 2, 1, 16, 16)).training_loss(x, y, 0)
    assert set(mamba_logs) == {"l1_mamba", "mse"} and torch.equal(mamba_loss.detach(), mamba_logs["l1_mamba"])


# --- the forecast depends on its input at initialisation ------------------------------------


def _input_dependence(model, shape, batch=4):
    x1, _ = _data(*shape, batch=batch, seed=1)
    x2, _ = _data(*shape, batch=batch, seed=2)
    with torch.no_grad():
        y1, y2 = model.eval()(x1), model(x2)
    return float((y1 - y2).abs().mean() / y1.abs().mean())


@pytest.mark.parametrize("profile,shape", [("smoke", (4, 3, 1, 32, 64)), ("quick", (12, 12, 1, 8, 16))])
def test_forecast_depends_on_its_input_at_init(profile, shape):
    # The decoded positions are the input frames' own positions (T_out <= T_in), so two random
    # inputs give clearly different forecasts from the first step: mean |y1 - y2| / mean |y1| is
    # 0.86 (smoke sizes) and 1.13 (quick sizes) here; it was 0.004 and 0.003 when every frame was
    # read from learned query tokens.
    torch.manual_seed(0)
    model = create_model("diffuma", shape, **_profile_model_args(profile, "diffuma"))
    assert _input_dependence(model, shape) > 0.2


def test_future_queries_only_extend_the_sequence_beyond_the_inputs():
    shorter, longer = _build("diffuma-mamba", (4, 2, 1, 16, 16)), _build("diffuma-mamba", (2, 5, 1, 16, 16))
    assert shorter.mamba.future_queries is None
    assert longer.mamba.future_queries.shape == (3, 8)  # T_out - T_in extra positions
    x, _ = _data(2, 5, 1, 16, 16)
    with torch.no_grad():
        assert longer.mamba.features(x).shape == (2, 5, 8, 4, 4)
        x_shorter, _ = _data(4, 2, 1, 16, 16)
        last_two = shorter.mamba.features(x_shorter)[:, -2:]
        _, context = shorter.mamba(x_shorter)
    torch.testing.assert_close(context, last_two.mean(dim=(3, 4)))  # the decoded positions are the last T_out


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


# --- the DiT's condition: timestep and context balanced at init --------------------------------


def _condition_parts(model, shape):
    x, _ = _data(*shape, batch=2)
    with torch.no_grad():
        _, context = model.mamba(x)
        t = torch.randint(0, 1000, (context.shape[0] * context.shape[1],))
        time_part = model.dit.t_embedder(t)
        context_part = model.dit.context_proj(context.flatten(0, 1))
    return float(time_part.pow(2).mean().sqrt()), float(context_part.pow(2).mean().sqrt())


@pytest.mark.parametrize("profile,shape", [("smoke", (4, 3, 1, 32, 64)), ("quick", (12, 12, 1, 8, 16))])
def test_timestep_and_context_parts_of_the_condition_are_comparable_at_init(profile, shape):
    torch.manual_seed(0)
    model = create_model("diffuma", shape, **_profile_model_args(profile, "diffuma"))
    time_rms, context_rms = _condition_parts(model, shape)
    # Measured: 0.56 (smoke) and 4.2 (quick); 6 and 24 with a Xavier context projection, 120 and 50
    # when c_context came from learned query tokens.
    assert 0.1 < context_rms / time_rms < 10


def test_condition_balance_at_paper_sizes():
    # Measured: 2.5 (8.5 with a Xavier context projection, 22 with the former query tokens).
    shape = (12, 12, 1, 32, 64)
    torch.manual_seed(0)
    time_rms, context_rms = _condition_parts(create_model("diffuma", shape), shape)
    assert 0.1 < context_rms / time_rms < 10


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


@pytest.mark.parametrize("backend", ["lean", "mambapy"])
def test_gradient_checkpointing_gives_the_same_gradients_and_the_same_run_id(backend):
    from benchmark.run.config import resolve_run

    x, y = _data(2, 3, 1, 16, 16)
    grads, losses = [], []
    settings = [{"grad_checkpoint": False}, {"grad_checkpoint": True},
                {"grad_checkpoint": True, "dit_grad_checkpoint": False}]
    for setting in settings:
        model = _build("diffuma", (2, 3, 1, 16, 16), mamba_backend=backend, **setting)
        assert model.mamba.grad_checkpoint is setting["grad_checkpoint"]
        assert model.dit.grad_checkpoint is (setting["grad_checkpoint"] and setting.get("dit_grad_checkpoint", True))
        torch.manual_seed(5)  # the same diffusion noise and timesteps for every setting
        loss, _ = model.training_loss(x, y, 0)
        loss.backward()
        losses.append(loss.detach())
        # every parameter of both paths (at initialisation most DiT gradients are zero: the next test
        # compares them after training)
        grads.append({name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None})
    assert any(name.startswith("dit.blocks.") for name in grads[0])
    for other, loss in zip(grads[1:], losses[1:], strict=True):
        torch.testing.assert_close(loss, losses[0], rtol=0, atol=0)
        assert other.keys() == grads[0].keys()
        for name, grad in other.items():
            torch.testing.assert_close(grad, grads[0][name], rtol=1e-6, atol=1e-7, msg=name)
    plain = resolve_run("smoke", "diffuma", "synthetic-weather:t2m", 0)
    saving = resolve_run("smoke", "diffuma", "synthetic-weather:t2m", 0,
                         {"model": {"grad_checkpoint": True, "dit_grad_checkpoint": False}})
    assert saving.model_args["grad_checkpoint"] and plain.run_id == saving.run_id


def test_dit_checkpointing_gives_the_same_gradients_through_a_trained_dit():
    # At initialisation the DiT's adaLN-Zero layers are zero, so most DiT gradients are zero
    # whatever the checkpointing: compare after Adam steps have made them non-zero.
    x, y = _data(2, 3, 1, 16, 16)
    model = _build("diffuma", (2, 3, 1, 16, 16))
    _adam_steps(model, x, y, steps=2)
    grads = []
    for flag in (False, True):
        model.dit.grad_checkpoint = flag
        model.zero_grad(set_to_none=True)
        torch.manual_seed(7)
        loss, _ = model.training_loss(x, y, 0)
        loss.backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.dit.blocks.parameters()]))
    assert grads[0].abs().sum() > 0
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-6, atol=1e-7)


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
    # equal up to rounding: the RMS of the shuffled values is summed in another order
    torch.testing.assert_close(model.condition(context), model.condition(shuffled), rtol=1e-6, atol=1e-6)
    assert model.condition(context).shape == context.shape
    rms = float(model.condition(torch.randn(64, 12, 8) * 3).pow(2).mean().sqrt())
    assert 2.5 < rms < 3.5  # scaled to the true context's magnitude
    model.train()
    assert not torch.equal(model.condition(context), model.condition(context))


# --- the paper's bidirectional Mamba block -----------------------------------------------------


def test_block_has_mamba_parameter_names_and_one_shared_projection_and_gate():
    block = BiMambaBlock(16, d_state=4, d_conv=4, expand=2)
    state = block.state_dict()
    assert sorted(state) == sorted(SSM_KEYS + BACKWARD_SSM_KEYS + SHARED_KEYS)  # no more, no fewer
    assert state["in_proj.weight"].shape == (64, 16)  # dim -> SSM stream + gate stream (2 * d_inner)
    assert state["out_proj.weight"].shape == (16, 32)
    for suffix in ("", "_b"):
        assert state[f"A_log{suffix}"].shape == (32, 4) and state[f"D{suffix}"].shape == (32,)
        assert state[f"conv1d{suffix}.weight"].shape == (32, 1, 4)  # depthwise
        assert state[f"x_proj{suffix}.weight"].shape == (1 + 2 * 4, 32)  # dt_rank = ceil(16 / 16) = 1
        assert state[f"dt_proj{suffix}.weight"].shape == (32, 1)
    one_way = BiMambaBlock(16, d_state=4, d_conv=4, expand=2, bidirectional=False)
    assert sorted(one_way.state_dict()) == sorted(SSM_KEYS + SHARED_KEYS)


def test_block_is_initialised_like_mamba():
    torch.manual_seed(0)
    block = BiMambaBlock(32, d_state=6, d_conv=4, expand=2)
    for suffix in ("", "_b"):
        dt = F.softplus(getattr(block, f"dt_proj{suffix}").bias)
        assert dt.min() >= 1e-3 * (1 - 1e-5) and dt.max() <= 1e-1 * (1 + 1e-5)
        assert dt.max() / dt.min() > 10  # spread log-uniformly over the range, not constant
        torch.testing.assert_close(getattr(block, f"A_log{suffix}"), torch.log(torch.arange(1.0, 7.0)).expand(64, 6))
        assert torch.equal(getattr(block, f"D{suffix}"), torch.ones(64))
        bound = 2**-0.5  # dt_rank = ceil(32 / 16) = 2
        assert getattr(block, f"dt_proj{suffix}").weight.abs().max() <= bound
    assert block.in_proj.bias is None and block.out_proj.bias is None and block.x_proj.bias is None


def _reference_scan(u, delta, A, B, C, D, delta_bias):
    """Mamba's recurrence one step at a time: h_t = exp(dt_t A) h_{t-1} + dt_t B_t u_t, y_t = C_t h_t + D u_t."""
    dt = F.softplus(delta + delta_bias)
    h = u.new_zeros(u.shape[0], u.shape[2], A.shape[1])
    ys = []
    for t in range(u.shape[1]):
        h = torch.exp(dt[:, t, :, None] * A) * h + (dt[:, t] * u[:, t])[:, :, None] * B[:, t, None, :]
        ys.append((h * C[:, t, None, :]).sum(-1) + D * u[:, t])
    return torch.stack(ys, dim=1)


@pytest.mark.parametrize("length", [1, 5, 8, 12])
def test_parallel_scan_matches_the_sequential_recurrence(length):
    gen = torch.Generator().manual_seed(length)
    n, d_inner, d_state = 3, 6, 4
    inputs = [
        torch.randn(n, length, d_inner, generator=gen),  # u
        torch.randn(n, length, d_inner, generator=gen),  # delta (before softplus and bias)
        -torch.rand(d_inner, d_state, generator=gen) * 2 - 0.1,  # A < 0
        torch.randn(n, length, d_state, generator=gen),  # B
        torch.randn(n, length, d_state, generator=gen),  # C
        torch.randn(d_inner, generator=gen),  # D
        torch.randn(d_inner, generator=gen),  # delta_bias
    ]
    for tensor in inputs:
        tensor.requires_grad_(True)
    weights = torch.randn(n, length, d_inner, generator=gen)
    results = []
    for scan in (lambda *a: selective_scan(*a, backend="mambapy"), _reference_scan):
        y = scan(*inputs)
        grads = torch.autograd.grad((y * weights).sum(), inputs)
        results.append((y.detach(), grads))
    (y_par, g_par), (y_seq, g_seq) = results
    assert y_par.shape == (n, length, d_inner)
    torch.testing.assert_close(y_par, y_seq, rtol=1e-5, atol=1e-5)
    for name, a, b in zip(["u", "delta", "A", "B", "C", "D", "delta_bias"], g_par, g_seq, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5, msg=f"gradient of {name}")


@pytest.mark.parametrize("fuse,norm", [("sum", "post"), ("mean", "post"), ("sum", "pre"), ("mean", "pre")])
def test_block_is_the_papers_bidirectional_block(fuse, norm):
    # Recompute the block by hand from its parameters with the sequential reference scan:
    # one input projection, two conv+scan directions (the backward one on the flipped sequence),
    # fused by addition (halved with fuse="mean", Vim's), one SiLU gate, one output projection,
    # residual + post-norm (or, norm="pre", Vim's pre-norm: z + block(LayerNorm(z))).
    torch.manual_seed(0)
    block = BiMambaBlock(8, d_state=4, d_conv=3, expand=2, fuse=fuse, norm=norm)
    z = torch.randn(5, 7, 8)

    def direction(x, suffix):
        conv, x_proj, dt_proj = (getattr(block, n + suffix) for n in ("conv1d", "x_proj", "dt_proj"))
        u = F.silu(F.conv1d(F.pad(x.transpose(1, 2), (2, 0)), conv.weight, conv.bias, groups=16).transpose(1, 2))
        dt, B, C = x_proj(u).split([1, 4, 4], dim=-1)
        A = -torch.exp(getattr(block, "A_log" + suffix))
        return _reference_scan(u, dt @ dt_proj.weight.T, A, B, C, getattr(block, "D" + suffix), dt_proj.bias)

    def layer_norm(v):
        return F.layer_norm(v, (8,), block.norm.weight, block.norm.bias)

    with torch.no_grad():
        x, gate = ((layer_norm(z) if norm == "pre" else z) @ block.in_proj.weight.T).chunk(2, dim=-1)
        mixed = direction(x, "") + direction(x.flip(1), "_b").flip(1)
        if fuse == "mean":
            mixed = mixed / 2
        out = z + (mixed * F.silu(gate)) @ block.out_proj.weight.T
        expected = layer_norm(out) if norm == "post" else out
        torch.testing.assert_close(block(z), expected, rtol=1e-5, atol=1e-5)


def test_pre_norm_path_ends_in_a_final_layer_norm():
    post = _build("diffuma-mamba", (3, 2, 1, 16, 16))
    pre = _build("diffuma-mamba", (3, 2, 1, 16, 16), norm="pre", fuse="mean")
    assert post.mamba.final_norm is None and isinstance(pre.mamba.final_norm, torch.nn.LayerNorm)
    assert all(block.norm_position == "pre" and block.fuse == "mean" for block in pre.mamba.blocks)
    x, _ = _data(3, 2, 1, 16, 16)
    features = pre.mamba.features(x)  # (B, L, D, h, w): unit scale over D after the final norm
    torch.testing.assert_close(features.mean(dim=2), torch.zeros_like(features[:, :, 0]), rtol=0, atol=1e-5)
    with pytest.raises(ConfigError, match="fuse"):
        _build("diffuma", (3, 2, 1, 16, 16), fuse="concat")
    with pytest.raises(ConfigError, match="norm"):
        _build("diffuma", (3, 2, 1, 16, 16), norm="sandwich")


@pytest.mark.parametrize("bidirectional", [True, False])
def test_later_frames_reach_earlier_positions_only_backwards(bidirectional):
    model = _build("diffuma-mamba", (4, 2, 1, 16, 16), bidirectional=bidirectional).eval()
    x, _ = _data(4, 2, 1, 16, 16)
    x_later = x.clone()
    x_later[:, -1] += 1.0  # change only the last input frame
    with torch.no_grad():
        f, f_later = model.mamba.features(x), model.mamba.features(x_later)
    assert f.shape == (2, 4, 8, 4, 4)  # T_out <= T_in: the sequence is the T_in input positions
    assert not torch.allclose(f[:, 3], f_later[:, 3])  # the changed position itself
    first_changes = (f[:, 0] - f_later[:, 0]).abs().max() > 1e-4
    assert first_changes == bidirectional
    if not bidirectional:
        assert torch.equal(f[:, :3], f_later[:, :3])


# --- selective-scan backend: chosen by device --------------------------------------------------


def test_auto_runs_the_lean_scan_on_the_cpu(no_cuda):
    model = _build("diffuma", (3, 2, 1, 16, 16))
    assert not hasattr(model, "backend")  # nothing is fixed at construction
    assert model.selective_scan_backend("cpu") == "lean"
    assert model.selective_scan_backend(torch.device("cpu")) == "lean"
    assert _build("diffuma", (3, 2, 1, 16, 16), mamba_backend="mambapy").selective_scan_backend("cpu") == "mambapy"
    assert resolve_backend("lean", "cuda") == "lean"
    # a CUDA device without the package falls back as well
    assert resolve_backend("auto", "cuda") == "mambapy"


def test_asking_for_mamba_ssm_on_the_cpu_is_a_config_error(no_cuda):
    model = _build("diffuma", (3, 2, 1, 16, 16), mamba_backend="mamba_ssm")  # builds: the device is not known yet
    with pytest.raises(ConfigError) as err:
        model.selective_scan_backend("cpu")
    message = str(err.value)
    assert "mamba_backend" in message and "'cpu'" in message and "CUDA" in message
    assert "--set model.mamba_backend=auto" in message and "model.mamba_backend=lean" in message
    x, _ = _data(3, 2, 1, 16, 16)
    with pytest.raises(ConfigError, match="cannot run on device 'cpu'"):  # the forward checks its input's device
        model(x)
    with pytest.raises(ConfigError, match="does not import"):
        model.selective_scan_backend("cuda")


def test_auto_picks_mamba_ssm_only_for_cuda_tensors(monkeypatch):
    model = _build("diffuma", (3, 2, 1, 16, 16)).eval()
    x, _ = _data(3, 2, 1, 16, 16)
    with torch.no_grad():
        expected = model(x)
    monkeypatch.setattr(mamba_module, "mamba_ssm_available", lambda: True)
    assert model.selective_scan_backend("cuda") == "mamba_ssm"
    assert model.selective_scan_backend(torch.device("cuda", 0)) == "mamba_ssm"
    assert model.selective_scan_backend("cpu") == "lean"
    assert resolve_backend("mambapy", "cuda") == "mambapy"  # an explicit mambapy is kept on CUDA
    # A model "built on a CUDA host" still runs its CPU tensors on the CPU scan (mamba_ssm is
    # not importable here, so dispatching to it would fail).
    with torch.no_grad():
        assert torch.equal(model(x), expected)


def test_checkpoint_reloads_into_a_model_configured_for_the_other_backend():
    model = _build("diffuma", (3, 2, 1, 16, 16), seed=1)
    other = _build("diffuma", (3, 2, 1, 16, 16), seed=2, mamba_backend="mamba_ssm")
    other.load_state_dict(model.state_dict())  # strict: identical names and shapes
    runnable = _build("diffuma", (3, 2, 1, 16, 16), seed=3, mamba_backend="mambapy")
    runnable.load_state_dict(other.state_dict())
    x, _ = _data(3, 2, 1, 16, 16)
    with torch.no_grad():  # the lean scan (auto on the CPU) and mambapy's parallel scan: float32 rounding apart
        torch.testing.assert_close(model.eval()(x), runnable.eval()(x), rtol=1e-5, atol=1e-5)


@pytest.mark.skipif(not mamba_ssm_available(), reason="needs CUDA and the mamba_ssm package")
def test_mamba_ssm_kernel_matches_the_cpu_scan():
    torch.manual_seed(0)
    block = BiMambaBlock(16, d_state=8, d_conv=4, expand=2)
    z = torch.randn(6, 12, 16)
    y_cpu = block(z)
    y_cuda = block.cuda()(z.cuda())
    torch.testing.assert_close(y_cuda.cpu(), y_cpu, rtol=1e-4, atol=1e-4)


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


def test_context_projection_starts_small_like_dits_condition_embeddings():
    torch.manual_seed(0)
    dit = FrameDiT(1, 8, 8, context_dim=128, hidden=256, depth=1, num_heads=4, patch_size=4)
    assert abs(float(dit.context_proj.weight.detach().std()) - 0.02) < 0.002
    assert torch.equal(dit.context_proj.bias, torch.zeros(256))


# --- sizes and errors --------------------------------------------------------------------------


def test_automatic_sizes():
    assert auto_downsample(32, 64) == 2 and auto_downsample(120, 160) == 3 and auto_downsample(600, 800) == 5
    assert level_widths(128, 2) == [32, 64, 128] and level_widths(128, 5) == [16, 16, 16, 32, 64, 128]
    assert level_widths(8, 3) == [8, 8, 8, 8]


def test_default_model_sizes():
    with torch.device("meta"):  # no memory, no init cost: only the count matters
        full = create_model("diffuma", (12, 12, 1, 32, 64))
        mamba_only = create_model("diffuma-mamba", (12, 12, 1, 32, 64))
        chdl = create_model("diffuma", (5, 1, 1, 600, 800))
    assert count_parameters(full) == 15_566_833
    assert count_parameters(mamba_only) == count_parameters(full.mamba) == 1_027_553
    assert len(full.dit.blocks) == 12 and full.dit.patch_size == 4 and full.mamba.factor == 4
    assert chdl.dit.patch_size == 32 and chdl.mamba.factor == 32


def test_quick_sizes_give_diffuma_a_capacity_like_the_baselines():
    args = {name: _profile_model_args("quick", name) for name in VARIANTS}
    mamba_keys = set(PAPER_DEFAULTS)
    # diffuma-mamba and diffuma-randcond use exactly diffuma's Mamba (and DiT) sizes
    assert {k: args["diffuma"][k] for k in mamba_keys} == args["diffuma-mamba"]
    assert {k: v for k, v in args["diffuma-randcond"].items() if k != "context_seed"} == args["diffuma"]
    with torch.device("meta"):
        full = create_model("diffuma", (12, 12, 1, 8, 16), **args["diffuma"])
    assert 0.2e6 <= count_parameters(full) <= 0.5e6 and count_parameters(full.mamba) >= 0.1e6


@pytest.mark.parametrize(
    "name,hp,words",
    [
        ("diffuma", {"dit_hidden": 10, "dit_heads": 4}, "divisible"),
        ("diffuma", {"mamba_backend": "cuda"}, "mamba_backend"),
        ("diffuma-mamba", {"hidden": 0}, "hidden"),
        ("diffuma-mamba", {"bidirectional": "yes"}, "bidirectional"),
        ("diffuma-mamba", {"downsample": -1}, "downsample"),
        ("diffuma", {"lam": -1.0}, "lam"),
        ("diffuma", {"patch_size": 0}, "patch_size"),
        ("diffuma", {"mlp_ratio": 0}, "mlp_ratio"),
        ("diffuma-randcond", {"context_seed": -1}, "context_seed"),
    ],
)
def test_bad_hyperparameters_are_config_errors(name, hp, words):
    with pytest.raises(ConfigError, match=words) as err:
        create_model(name, (3, 2, 1, 16, 16), **hp)
    assert name in str(err.value)


def test_backend_setting_is_checked_by_the_block_too():
    with pytest.raises(ConfigError, match="mamba_backend"):
        BiMambaBlock(8, d_state=4, d_conv=4, expand=2, mamba_backend="cuda")


# --- the Mamba path's own forecast, scored inside the full model ---------------------------------


def test_evaluation_scores_y_mamba_beside_the_forecast_and_the_record_keeps_it():
    import numpy as np
    from torch.utils.data import DataLoader, TensorDataset

    from benchmark.data.base import Normalizer
    from benchmark.results.records import Scores, components_to_frame
    from benchmark.scoring.evaluation import evaluate

    model = _build("diffuma", (3, 2, 1, 16, 16))
    _adam_steps(model, *_data(3, 2, 1, 16, 16), steps=2)  # a non-zero DiT: y_hat != y_mamba
    x, y = _data(3, 2, 1, 16, 16)
    loader = DataLoader(TensorDataset(x.repeat(3, 1, 1, 1, 1), y.repeat(3, 1, 1, 1, 1)), batch_size=4)
    normalizer = Normalizer(*(np.array([value]) for value in (0.0, 1.0, -3.0, 3.0)))
    parts: dict = {}
    metrics, _ = evaluate(model, loader, normalizer, None, components_out=parts)
    assert list(parts) == ["y_mamba"]

    class MambaOnly(torch.nn.Module):  # y_mamba alone, as a plain module
        def forward(self, inputs):
            return model.mamba(inputs)[0]

    alone, _ = evaluate(MambaOnly(), loader, normalizer, None)
    assert parts["y_mamba"]["normalized"]["mse"] == pytest.approx(alone["normalized"]["mse"], rel=1e-6)
    assert parts["y_mamba"]["normalized"]["mse"] != pytest.approx(metrics["normalized"]["mse"], rel=1e-6)
    plain, _ = evaluate(model, loader, normalizer, None)  # without components_out: the same forecast scores
    assert plain["normalized"]["mse"] == pytest.approx(metrics["normalized"]["mse"], rel=1e-6)
    # a model without parts records none; diffuma-mamba's forecast is y_mamba itself
    none: dict = {}
    evaluate(_build("diffuma-mamba", (3, 2, 1, 16, 16)), loader, normalizer, None, components_out=none)
    assert none == {}
    assert Scores.from_dict(parts["y_mamba"]).count == metrics["count"] == len(loader.dataset)
    assert components_to_frame([]).empty


def test_a_diffuma_run_records_the_mamba_paths_scores(tmp_path):
    from benchmark.results.records import components_to_frame, read_record, record_path
    from benchmark.run.config import resolve_run
    from benchmark.run.runner import execute_run

    config = resolve_run("smoke", "diffuma", "synthetic-weather:t2m", 0,
                         {"train": {"epochs": 1, "limit_train_batches": 1, "limit_val_batches": 1,
                                    "limit_test_batches": 1}})
    record = execute_run(config, tmp_path)
    assert list(record.components) == ["y_mamba"] and record.components["y_mamba"].count == record.test.count
    assert read_record(record_path(tmp_path, config.run_id)) == record
    frame = components_to_frame([record])
    assert set(frame["model"]) == {"diffuma (y_mamba)"} and set(frame["epoch"]) == {"best"}
    from tests.test_cli import invoke

    shown = invoke("table", "--results", str(tmp_path), "--components", "--out", str(tmp_path / "tables"))
    assert shown.exit_code == 0, shown.output
    assert "diffuma (y_mamba)" in " ".join(shown.output.split())
    refused = invoke("table", "--results", str(tmp_path), "--components", "--epoch-sweep")
    assert refused.exit_code != 0 and "--components adds rows to the main table only" in refused.output
