"""The lean selective scan (models.diffuma.scan): values and gradients against the plain recurrence
and mambapy's parallel scan in float64, autograd's own gradient check, fp32 under bf16 autocast,
and what it saves for the backward pass."""

from __future__ import annotations

import pytest
import torch

from models.diffuma.mamba import selective_scan
from models.diffuma.scan import LeanSelectiveScan, lean_selective_scan, reference_selective_scan

NAMES = ["u", "delta", "A", "B", "C", "D", "delta_bias"]


def _inputs(n, length, d_inner, d_state, seed, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    tensors = [
        torch.randn(n, length, d_inner, generator=gen, dtype=dtype),  # u
        torch.randn(n, length, d_inner, generator=gen, dtype=dtype),  # delta (before softplus and bias)
        -torch.rand(d_inner, d_state, generator=gen, dtype=dtype) * 2 - 0.1,  # A < 0
        torch.randn(n, length, d_state, generator=gen, dtype=dtype),  # B
        torch.randn(n, length, d_state, generator=gen, dtype=dtype),  # C
        torch.randn(d_inner, generator=gen, dtype=dtype),  # D
        torch.randn(d_inner, generator=gen, dtype=dtype),  # delta_bias
    ]
    return [t.requires_grad_(True) for t in tensors]


def _value_and_grads(scan, inputs, weights):
    y = scan(*inputs)
    return y.detach(), torch.autograd.grad((y * weights).sum(), inputs)


# Random shapes, L = 1 and odd L included (mambapy pads odd lengths to a power of two).
SHAPES = [(1, 1, 3, 2), (3, 1, 5, 4), (2, 3, 4, 3), (4, 7, 6, 5), (3, 12, 8, 16), (2, 13, 5, 1), (5, 20, 3, 7)]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_values_and_gradients_match_the_recurrence_and_mambapy(shape):
    inputs = _inputs(*shape, seed=sum(shape))
    weights = torch.randn(*shape[:3], generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    y_lean, g_lean = _value_and_grads(lean_selective_scan, inputs, weights)
    assert y_lean.dtype == torch.float64 and y_lean.shape == shape[:3]
    others = {
        "reference": reference_selective_scan,
        "mambapy": lambda *a: selective_scan(*a, backend="mambapy").to(torch.float64),
    }
    for other, scan in others.items():
        inputs64 = inputs if other == "reference" else [t.detach().float().requires_grad_(True) for t in inputs]
        y, grads = _value_and_grads(scan, inputs64, weights if other == "reference" else weights.float())
        # mambapy computes in float32 whatever it is given: compared at float32 tolerance
        tolerance = {"rtol": 1e-12, "atol": 1e-12} if other == "reference" else {"rtol": 1e-4, "atol": 1e-4}
        torch.testing.assert_close(y_lean, y.to(torch.float64), **tolerance, msg=f"values against {other}")
        for name, a, b in zip(NAMES, g_lean, grads, strict=True):
            torch.testing.assert_close(a, b.to(torch.float64), **tolerance, msg=f"gradient of {name} against {other}")


@pytest.mark.parametrize("length", [1, 4, 5])
def test_autograd_gradcheck(length):
    inputs = _inputs(2, length, 3, 2, seed=length)
    assert torch.autograd.gradcheck(LeanSelectiveScan.apply, inputs)


def test_backend_lean_is_the_same_function():
    inputs = _inputs(2, 5, 4, 3, seed=3)
    torch.testing.assert_close(selective_scan(*inputs, backend="lean"), lean_selective_scan(*inputs))


def test_computes_in_float32_under_bf16_autocast():
    inputs = [t.detach().float().requires_grad_(True) for t in _inputs(2, 6, 4, 3, seed=4)]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = lean_selective_scan(inputs[0].bfloat16(), *inputs[1:])
    assert y.dtype == torch.bfloat16  # cast back to u's dtype
    expected = lean_selective_scan(inputs[0].bfloat16().float(), *inputs[1:])
    torch.testing.assert_close(y.float(), expected, rtol=1e-2, atol=1e-2)  # only the output is rounded
    y.float().sum().backward()
    assert all(t.grad is not None and t.grad.dtype == torch.float32 for t in inputs[1:])


def test_saves_only_its_inputs_for_backward():
    # The states (N, L, d_inner, d_state) are recomputed in backward: what autograd keeps between the
    # passes is O(N L d_inner) -- here 16x smaller than one copy of the states.
    n, length, d_inner, d_state = 8, 12, 32, 16
    inputs = [t.detach().float().requires_grad_(True) for t in _inputs(n, length, d_inner, d_state, seed=5)]
    saved = []

    def pack(tensor):
        saved.append(tensor.numel())
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        y = lean_selective_scan(*inputs)
    assert sum(saved) <= sum(t.numel() for t in inputs)
    assert max(saved) < n * length * d_inner * d_state
    y.sum().backward()
