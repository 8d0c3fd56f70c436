"""A memory-lean selective scan for the CPU: the exact recurrence, states recomputed in the backward pass.

Mamba's selective scan (Gu & Dao, 2023) with `dt = softplus(delta + delta_bias)`:

    h_t = exp(dt_t A) * h_{t-1} + dt_t u_t B_t          h: (N, d_inner, d_state), h_0 = 0
    y_t = C_t . h_t + D u_t

`LeanSelectiveScan` runs this recurrence step by step and saves for the backward pass only its
inputs (`u, delta, A, B, C, D, delta_bias`: O(N L d_inner)), not the `(N, L, d_inner, d_state)`
states. The backward pass recomputes the states with the same loop, then walks the sequence in
reverse with the adjoint recurrence

    g_t = C_t (x) dy_t + exp(dt_{t+1} A) * g_{t+1}      (dL/dh_t)

and accumulates every input's gradient one step at a time, so at most one direction's states
(and one step's temporaries) are alive at once, and only while its backward runs. This is the
memory profile of mamba_ssm's CUDA kernel (which also recomputes the states), written in PyTorch.

Why not mambapy's parallel scan on the CPU: its Blelloch scan pads L to a power of two and keeps
about 3.5 copies of the `(N, L, d_inner, d_state)` decays and drives per direction for autograd
(~10.8 GiB at DIFFUMA's paper size, batch 16); with at most a few dozen steps a loop over L does
no more arithmetic and none of that storage. Measured in issue 22 (float64, one direction,
N 512, d_inner 256, d_state 16, L 12): 0.68 s forward+backward against pscan's 1.42 s, 13 MiB
saved against 339 MiB; the README's cost table has the whole model.

`torch.compile` -- measured, not adopted. Forward + backward of one direction at N 512, d_inner
256, d_state 16, L 12, float32, two threads on this (busy) machine: eager 5.7 s, mambapy's pscan
14.6 s, `torch.compile(lean_selective_scan)` 1.7 s after a first call of 87 s (Inductor compiling
C++). It helps the scan 3.3x, but every new input shape compiles again (a run's last, smaller
batch, evaluation batches, each profile size), it needs a working C++ toolchain, and a compile
failure would stop a run; at the quick sizes a whole run is a few minutes. So the eager loop is
the default; making the compiled scan an opt-in backend is left open.

The computation runs in float32 (or float64 for float64 inputs, as in the tests) whatever the
autocast precision, as mamba_ssm's kernel does internally: a product of L decays in bfloat16 loses
the state. The output is cast back to `u`'s dtype.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable


def _compute_dtype(u: torch.Tensor) -> torch.dtype:
    """float64 stays float64 (gradient checks); everything else is computed in float32."""
    return torch.float64 if u.dtype == torch.float64 else torch.float32


def _states(dtu: torch.Tensor, dt: torch.Tensor, A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """All states `h_1..h_L` of the recurrence, `(N, L, d_inner, d_state)` (the backward pass's working copy).

    `dtu = dt * u`, `(N, L, d_inner)`.
    """
    n, length, d_inner = dtu.shape
    states = dtu.new_empty(n, length, d_inner, A.shape[1])
    h = dtu.new_zeros(n, d_inner, A.shape[1])
    for t in range(length):
        h.mul_(torch.exp(dt[:, t, :, None] * A)).addcmul_(dtu[:, t, :, None], B[:, t, None, :])
        states[:, t] = h
    return states


class LeanSelectiveScan(torch.autograd.Function):
    """`y = selective_scan(u, delta, A, B, C, D, delta_bias)` saving only the inputs for backward.

    Shapes: `u, delta: (N, L, d_inner)`, `A: (d_inner, d_state)`, `B, C: (N, L, d_state)`,
    `D, delta_bias: (d_inner,)`; all of one floating dtype (the caller casts). Returns `(N, L, d_inner)`.
    """

    @staticmethod
    def forward(ctx: Any, u, delta, A, B, C, D, delta_bias):  # noqa: D102 - see the class docstring
        dt = F.softplus(delta + delta_bias)
        dtu = dt * u
        h = u.new_zeros(u.shape[0], u.shape[2], A.shape[1])
        y = torch.empty_like(u)
        # Elementwise products and sums throughout: on the CPU, bmm/einsum of N tiny (d_inner, d_state)
        # matrices was two thirds of the time (measured with torch.profiler).
        for t in range(u.shape[1]):
            h.mul_(torch.exp(dt[:, t, :, None] * A)).addcmul_(dtu[:, t, :, None], B[:, t, None, :])
            y[:, t] = (h * C[:, t, None, :]).sum(-1)
        y = y + D * u
        ctx.save_for_backward(u, delta, A, B, C, D, delta_bias)
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_y: torch.Tensor):  # noqa: D102 - the adjoint recurrence of the module docstring
        u, delta, A, B, C, D, delta_bias = ctx.saved_tensors
        grad_y = grad_y.to(u.dtype)
        pre = delta + delta_bias
        dt = F.softplus(pre)
        dtu = dt * u
        states = _states(dtu, dt, A, B)
        length = u.shape[1]
        grad_u, grad_dt = torch.empty_like(u), torch.empty_like(u)
        grad_B, grad_C = torch.empty_like(B), torch.empty_like(C)
        grad_A = torch.zeros_like(A)
        g = torch.zeros_like(states[:, 0])  # dL/dh_t, carried backwards in time
        for t in range(length - 1, -1, -1):
            gy = grad_y[:, t]
            grad_C[:, t] = (gy[:, :, None] * states[:, t]).sum(1)
            g.addcmul_(gy[:, :, None], C[:, t, None, :])
            # h_t = decay_t * h_{t-1} + dt_t u_t B_t: the gradients of this step's inputs.
            decay = torch.exp(dt[:, t, :, None] * A)
            gB = (g * B[:, t, None, :]).sum(-1)
            if t > 0:
                g_decay = (g * states[:, t - 1]).mul_(decay)  # dL/d(dt_t A), elementwise
                grad_dt[:, t] = (g_decay * A).sum(-1) + gB * u[:, t]
                grad_A += (g_decay * dt[:, t, :, None]).sum(0)
            else:  # h_0 = 0: the first decay multiplies nothing
                grad_dt[:, t] = gB * u[:, t]
            grad_u[:, t] = gB * dt[:, t]
            grad_B[:, t] = (g * dtu[:, t, :, None]).sum(1)
            g.mul_(decay)  # dL/dh_{t-1} through h_t
        grad_u = grad_u + grad_y * D
        grad_D = (grad_y * u).sum((0, 1))
        grad_delta = grad_dt * torch.sigmoid(pre)
        grad_bias = grad_delta.sum((0, 1))
        return grad_u, grad_delta, grad_A, grad_B, grad_C, grad_D, grad_bias


def lean_selective_scan(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor,
    delta_bias: torch.Tensor,
) -> torch.Tensor:
    """The selective scan (module docstring) in float32 under any autocast; returns `u`'s dtype.

    Shapes: `u, delta: (N, L, d_inner)`, `A: (d_inner, d_state)` (negative), `B, C: (N, L, d_state)`,
    `D, delta_bias: (d_inner,)`; returns `(N, L, d_inner)`.
    """
    dtype, compute = u.dtype, _compute_dtype(u)
    with torch.autocast(device_type=u.device.type, enabled=False):
        inputs = (t.to(compute) for t in (u, delta, A, B, C, D, delta_bias))
        y = LeanSelectiveScan.apply(*inputs)
    return y.to(dtype)


def reference_selective_scan(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor,
    delta_bias: torch.Tensor,
) -> torch.Tensor:
    """The recurrence written plainly with autograd through every step: the tests' reference (slow, memory-hungry)."""
    dt = F.softplus(delta + delta_bias)
    h = u.new_zeros(u.shape[0], u.shape[2], A.shape[1])
    outputs = []
    for t in range(u.shape[1]):
        h = torch.exp(dt[:, t, :, None] * A) * h + (dt[:, t] * u[:, t])[:, :, None] * B[:, t, None, :]
        outputs.append((h * C[:, t, None, :]).sum(-1) + D * u[:, t])
    return torch.stack(outputs, dim=1)
