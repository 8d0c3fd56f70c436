"""Tests of E3D-LSTM: shapes, training signal, parameter count, eidetic recall, scheduled sampling."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import baselines.e3dlstm  # noqa: F401  (registers "e3dlstm")
from baselines.e3dlstm import E3DLSTM, eidetic_recall
from baselines.recurrent import patchify, scheduled_sampling_mask
from benchmark.core.errors import ConfigError
from benchmark.registry import create_model, get_model_spec
from benchmark.registry.contract import check_gradients, check_output_shape
from benchmark.registry.model_api import count_parameters
from benchmark.registry.shapes import DataShape
from tests.model_checks import adam_losses
from tests.model_checks import random_batch as _data

# Tiny widths so the whole file runs in seconds on one CPU core.
TINY = {"num_hidden": (4, 4), "filter_size": (2, 3, 3), "tau": 2}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # These tensors are tiny: with several threads on a shared 2-core machine the per-op
    # synchronisation costs far more than the work, so run single-threaded and restore afterwards.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _tiny(shape, seed=0, **overrides):
    torch.manual_seed(seed)
    return create_model("e3dlstm", shape, **{**TINY, **overrides})


def test_registered_as_recurrent():
    spec = get_model_spec("e3dlstm")
    assert spec.family == "recurrent" and spec.paper_name == "E3D-LSTM" and spec.trainable
    defaults = spec.hyperparameter_defaults()
    assert defaults["filter_size"] == (2, 5, 5) and defaults["window_length"] == 2
    assert defaults["num_hidden"] == (128, 128, 128, 128) and defaults["patch_size"] == 2


# --- shapes and training signal ----------------------------------------------------------------


# The shape contract at 16x32 (T_in != T_out, C = 1 and 2), gradients and determinism are in
# test_model_contract.py; here, the frame sizes of the datasets and fewer inputs than the window.
# 120x160 frames use patch 4 to keep the attention (over every space-time position) small on CPU.
@pytest.mark.parametrize("hw,patch", [((32, 64), 2), ((64, 64), 2), ((120, 160), 4)], ids=str)
def test_forward_shape_on_dataset_frames(hw, patch):
    assert not check_output_shape("e3dlstm", DataShape(3, 2, 1, *hw), {**TINY, "patch_size": patch})


def test_gradients_reach_every_parameter_with_fewer_inputs_than_the_window():
    assert not check_gradients("e3dlstm", DataShape(1, 3, 2, 16, 32), TINY)


def test_overfits_one_batch():
    model = _tiny((3, 2, 1, 8, 8), num_hidden=(8,))
    x, y = _data(3, 2, 1, 8, 8)
    losses = adam_losses(model, x, y, 100)  # about 40 steps reach a tenth of the first loss
    assert min(losses[-10:]) < losses[0] / 10


# --- parameter count ---------------------------------------------------------------------------


def test_parameter_count_at_weatherbench_shape():
    spec = get_model_spec("e3dlstm")
    with torch.device("meta"):  # no memory, no init cost: only the count matters
        model = create_model("e3dlstm", (12, 12, 1, 32, 64))
    n = count_parameters(model)
    assert n == 51_331_072
    assert spec.reference_params["12,1,32,64"] == 51_330_000
    assert abs(n - 51_330_000) / 51_330_000 < 0.03  # OpenSTL's own count (all weights used)
    assert abs(n - 51_090_000) / 51_090_000 < 0.03  # OpenSTL's published table
    # Only the cell-state LayerNorm depends on the frame size: 2 * 128 * window 2 * 16 * 32 per cell.
    norm = sum(p.numel() for name, p in model.named_parameters() if "cell_norm" in name)
    assert norm == 4 * 2 * 128 * 2 * 16 * 32


# --- eidetic recall ----------------------------------------------------------------------------


def test_recall_is_softmax_attention_over_the_history():
    gen = torch.Generator().manual_seed(0)
    b, e, w, h, wd = 2, 3, 2, 4, 5
    query = torch.rand(b, e, w, h, wd, generator=gen)
    history = [torch.randn(b, e, w, h, wd, generator=gen) for _ in range(3)]
    out = eidetic_recall(query, history)
    # The paper's formula written out: each (t, y, x) position is a token with e features.
    q = query.flatten(2).transpose(1, 2)  # (B, L, E)
    c = torch.cat([m.flatten(2) for m in history], dim=2).transpose(1, 2)  # (B, 3L, E)
    expected = (torch.softmax(q @ c.transpose(1, 2), dim=-1) @ c).transpose(1, 2).reshape(query.shape)
    assert torch.allclose(out, expected, atol=1e-5)
    # The oldest stored cell state changes the recall; recall of a single state is that state.
    changed = [history[0] + 1.0, *history[1:]]
    assert not torch.allclose(eidetic_recall(query, changed), out)


def _roll(model: E3DLSTM, x: torch.Tensor):
    """Step the model through the patched frames of `x`, returning every state."""
    frames = patchify(x, model.config.patch_size)
    state, states = None, []
    for t in range(frames.shape[1]):
        _, state = model._step(frames[:, t], state)
        states.append(state)
    return states


@pytest.mark.parametrize("tau", [None, 1, 2, 3])
def test_history_length_is_capped_at_tau(tau):
    model = _tiny((5, 1, 1, 8, 8), tau=tau).eval()
    x, _ = _data(5, 1, 1, 8, 8)
    with torch.no_grad():
        states = _roll(model, x)
    for t, state in enumerate(states):
        # After step t the history holds the zero initial state and C_0..C_t, the last tau of them.
        full = t + 2
        expected = full if tau is None else min(full, tau)
        assert all(len(history) == expected for history in state.cells)


def test_an_earlier_frame_reaches_the_output_through_the_recall():
    # Roll two inputs that differ only in their first frame, then graft the *older* cell states
    # (all but the current C, read by nothing but the recall) of the second run onto the state of
    # the first: the next prediction changes, so the first frame reaches it through the attention.
    x, _ = _data(4, 1, 1, 8, 8, batch=1)
    x_changed = x.clone()
    x_changed[:, 0] += 1.0
    for tau, reaches in [(3, True), (1, False)]:  # tau=1 keeps only the current C: nothing older
        model = _tiny((4, 1, 1, 8, 8), tau=tau).eval()
        last = patchify(x, model.config.patch_size)[:, 3]
        with torch.no_grad():
            state = _roll(model, x[:, :3])[-1]
            other = _roll(model, x_changed[:, :3])[-1]
            grafted = [b[:-1] + a[-1:] for a, b in zip(state.cells, other.cells, strict=True)]
            assert any(not torch.equal(a[0], b[0]) for a, b in zip(state.cells, grafted, strict=True)) is reaches
            out, _ = model._step(last, state)
            out_grafted, _ = model._step(last, state._replace(cells=grafted))
        assert (not torch.allclose(out, out_grafted)) is reaches, f"tau={tau}"


# --- scheduled sampling and evaluation ---------------------------------------------------------


def test_training_without_teacher_ignores_ground_truth():
    model = _tiny((3, 3, 1, 8, 8))
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
        # Past 50,000 steps eta = 0: the training loss is that of the free-running rollout.
        target = torch.cat([x, y], dim=1)[:, 1:]
        loss_late, logs = model.training_loss(x, y, step=60_000)
        assert float(logs["sampling_eta"]) == 0.0
        free = model.generate(x)
        assert torch.allclose(loss_late, F.mse_loss(free, target) + F.l1_loss(free, target))
        assert float(model.training_loss(x, y, step=0)[1]["sampling_eta"]) == 1.0


def test_training_loss_is_mse_plus_l1_over_all_generated_frames():
    # OpenSTL's E3DLSTM_Model: nn.MSELoss() + nn.L1Loss() (means, weight 1) against frames[:, 1:].
    model = _tiny((3, 3, 1, 8, 8))
    model.plan_schedule(100)
    x, y = _data(3, 3, 1, 8, 8)
    target = torch.cat([x, y], dim=1)[:, 1:]
    with torch.no_grad():
        for step, mask in [(0, scheduled_sampling_mask(2, 3, 3, 1.0)), (31, scheduled_sampling_mask(2, 3, 3, 0.0))]:
            loss, logs = model.training_loss(x, y, step)  # eta 1 at step 0, 0 from 30.4 % of the run on
            pred = model.generate(x, y, mask)
            mse = ((pred - target) ** 2).mean()
            l1 = (pred - target).abs().mean()
            assert torch.allclose(loss, mse + l1)
            assert torch.allclose(logs["mse"], mse) and torch.allclose(logs["l1"], l1)
            assert torch.allclose(logs["mse_future"], ((pred[:, -3:] - y) ** 2).mean())
            assert not torch.allclose(loss, mse)  # the L1 term is really there


def test_eval_forward_uses_only_the_inputs():
    model = _tiny((3, 3, 1, 8, 8)).eval()
    x, _ = _data(3, 3, 1, 8, 8)
    with torch.no_grad():
        y_hat = model(x)
        assert torch.equal(y_hat, model.generate(x)[:, -3:])
        x_changed = x.clone()
        x_changed[:, -1] += 1.0
        assert not torch.allclose(model(x_changed), y_hat)


# --- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "shape,hp,needle",
    [
        ((12, 12, 1, 33, 64), {}, "33x64"),
        ((12, 12, 1, 32, 64), {"patch_size": 3}, "32x64"),
        ((12, 12, 1, 32, 64), {"filter_size": [2, 4, 5]}, "filter_size"),
        ((12, 12, 1, 32, 64), {"filter_size": [5, 5]}, "filter_size"),
        ((12, 12, 1, 32, 64), {"filter_size": [3, 5, 5]}, "window_length"),
        ((12, 12, 1, 32, 64), {"window_length": 0}, "window_length"),
        ((12, 12, 1, 32, 64), {"tau": 0}, "tau"),
        ((12, 12, 1, 32, 64), {"num_hidden": [64, 32]}, "num_hidden"),
        ((12, 12, 1, 32, 64), {"sampling_start_value": 2.0}, "sampling_start_value"),
    ],
)
def test_clear_errors(shape, hp, needle):
    with pytest.raises(ConfigError) as err:
        create_model("e3dlstm", shape, **hp)
    assert "e3dlstm" in str(err.value) and needle in str(err.value)
