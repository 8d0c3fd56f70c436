"""DIFFUMA's temporal mixer: the paper's bidirectional Mamba block and its selective-scan backends.

The block (paper Section 4.2, eq. 3-4) is a Vision-Mamba-style bidirectional Mamba block (Zhu et
al., 2024, "bimamba v2"), with Mamba's parameterisation and names (Gu & Dao, 2023):

    x, g   = in_proj(z).chunk(2)                          one shared projection: SSM stream, gate stream
    y_fwd  = SSM(SiLU(conv1d(x)))                         x_proj, dt_proj, A_log, D: the forward scan
    y_bwd  = flip(SSM_b(SiLU(conv1d_b(flip(x)))))         x_proj_b, dt_proj_b, A_log_b, D_b: the backward scan
    out    = LayerNorm(z + out_proj((y_fwd + y_bwd) * SiLU(g)))

`conv1d` is a causal depthwise convolution over time (the backward one is causal in reversed
time). `SSM` is Mamba's selective scan of `u`: per position `(dt, B, C) = x_proj(u)`,
`delta = softplus(dt_proj(dt))`, `A = -exp(A_log)`, `h_t = exp(delta_t A) h_{t-1} + delta_t B_t u_t`
and `y_t = C_t h_t + D u_t`. Initialisation is Mamba's: `dt_proj.bias` is the inverse softplus of a
log-uniform `dt` in [1e-3, 1e-1], `dt_proj.weight` uniform in `+-dt_rank^-0.5`, `A_log =
log(1..d_state)` (S4D-real), `D = 1`, `dt_rank = ceil(dim / 16)`, no bias on `in_proj`, `x_proj`
and `out_proj`, a bias on the convolutions. `bidirectional=False` drops the `_b` parameters.

Selective-scan backends, chosen by the device of the tensors (not by whether the host has CUDA):
- `"mamba_ssm"`: `mamba_ssm.ops.selective_scan_interface.selective_scan_fn`, the fused CUDA kernel
  of package `mamba-ssm` (the optional `cuda` extra; it only imports where CUDA is present);
- `"lean"`: `models.diffuma.scan.lean_selective_scan`, the exact recurrence as a loop over the
  sequence that saves only its inputs and recomputes the states in the backward pass (ours, issue
  22), on any device;
- `"mambapy"`: the pure-PyTorch parallel (Blelloch) scan `mambapy.pscan.pscan`, on any device; it
  keeps several copies of the `(N, L, d_inner, d_state)` states for autograd (the CPU default
  before issue 22, kept selectable to measure against).
All read the same parameters, and the block computes the scan's inputs once for all
(`selective_scan` below), so a checkpoint trained under one loads and runs under another.
`"auto"` uses `mamba_ssm` for CUDA tensors when it imports, `mambapy` for other CUDA tensors (as
before; the lean loop was not measured on a GPU) and `lean` on the CPU; the block resolves the
backend on every call from its input's device, so a model built on a CUDA host and run on a CPU
uses the CPU scan.

Choices (the paper is silent), with the two that depart from Vision Mamba's released block as
settings (`fuse`, `norm`; README "DIFFUMA fidelity notes"):
- the directions are fused by addition (the paper allows addition or concatenation), without
  Vision Mamba's division by 2 (`fuse="sum"`, the default; `fuse="mean"` halves the sum, as Vim's
  released models do with `if_devide_out=True`);
- the forward and backward scans have their own `conv1d`/`x_proj`/`dt_proj`/`A_log`/`D`; the
  input projection, the gate and the output projection are shared (the paper's single gating branch);
- the block is post-norm, `LayerNorm(z + block(z))`, in the order eq. (4) is written (`norm="post"`,
  the default); Mamba and Vision Mamba are pre-norm, `z + block(LayerNorm(z))` with one final
  LayerNorm after the last block (`norm="pre"`; `MambaPath` adds that final norm). With a
  residual, a post-norm keeps every block's output at unit scale; at our depths (L <= 4) the
  pre-norm's advantage for deep stacks does not matter.
- on the CPU the parallel scan pads the sequence to a power of two (12 -> 16). At 12 steps it is
  not faster than a plain loop over the steps: measured, forward + backward of one direction at
  512 sequences, d_inner 96, d_state 8 on one core, 0.24 s against 0.11 s for the loop (the
  reference recurrence of tests/test_diffuma.py, which it matches to 1e-5). Hence the `lean`
  backend, the CPU default since issue 22 (models.diffuma.scan).
"""

from __future__ import annotations

import functools
import importlib
import math

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.core.errors import ConfigError
from models.diffuma.scan import lean_selective_scan

BACKENDS = ("auto", "lean", "mambapy", "mamba_ssm")
FUSES = ("sum", "mean")  # how the two directions are fused: Vim halves the sum ("mean")
NORMS = ("post", "pre")  # where the block's LayerNorm sits: eq. (4) as written ("post"), Vim/Mamba ("pre")
DT_MIN, DT_MAX, DT_INIT_FLOOR = 1e-3, 1e-1, 1e-4


@functools.lru_cache(maxsize=1)
def mamba_ssm_available() -> bool:
    """True when CUDA is available and `mamba_ssm`'s selective-scan op imports (it loads CUDA extensions)."""
    if not torch.cuda.is_available():
        return False
    try:
        importlib.import_module("mamba_ssm.ops.selective_scan_interface")
    except Exception:  # ImportError, or OSError/RuntimeError from a broken CUDA extension
        return False
    return True


def resolve_backend(requested: str, device: torch.device | str) -> str:
    """The backend ("lean", "mambapy" or "mamba_ssm") that a `mamba_backend` setting runs on `device`.

    Raises `ConfigError` for an unknown setting, and for "mamba_ssm" where it cannot run: on a
    device that is not CUDA, or where the package does not import.
    """
    if requested not in BACKENDS:
        raise ConfigError(f"Unknown mamba_backend {requested!r}. Use one of: {', '.join(BACKENDS)}.")
    device = torch.device(device)
    fix = (
        "use --set model.mamba_backend=auto (mamba_ssm on CUDA when it imports, a pure-PyTorch scan elsewhere) or "
        "--set model.mamba_backend=lean (pure PyTorch, the same parameters)."
    )
    if device.type != "cuda":
        if requested == "mamba_ssm":
            raise ConfigError(
                f"model.mamba_backend='mamba_ssm' cannot run on device {str(device)!r}: mamba_ssm's selective "
                f"scan is a CUDA kernel. Run on a CUDA device, or {fix}"
            )
        return "mambapy" if requested == "mambapy" else "lean"
    if requested in ("mambapy", "lean"):
        return requested
    if mamba_ssm_available():
        return "mamba_ssm"
    if requested == "mamba_ssm":
        raise ConfigError(
            f"model.mamba_backend='mamba_ssm' was requested on device {str(device)!r} but the package mamba_ssm "
            "does not import. Install the `cuda` extra (pip install -e '.[cuda]'), or " + fix
        )
    return "mambapy"


def selective_scan(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor,
    delta_bias: torch.Tensor,
    backend: str,
) -> torch.Tensor:
    """Mamba's selective scan, `y_t = C_t h_t + D u_t` with `h_t = exp(dt_t A) h_{t-1} + dt_t B_t u_t`.

    `dt = softplus(delta + delta_bias)`. Shapes: `u, delta: (N, L, d_inner)`, `A: (d_inner, d_state)`
    (negative), `B, C: (N, L, d_state)`, `D, delta_bias: (d_inner,)`; returns `(N, L, d_inner)`.
    """
    if backend == "mamba_ssm":
        from mamba_ssm.ops.selective_scan_interface import selective_scan_fn

        # The kernel wants (N, channels, L) with L contiguous; it applies softplus(delta + bias) itself.
        y = selective_scan_fn(
            u.transpose(1, 2).contiguous(),
            delta.transpose(1, 2).contiguous(),
            A.float().contiguous(),
            B.transpose(1, 2).contiguous(),
            C.transpose(1, 2).contiguous(),
            D.float(),
            z=None,
            delta_bias=delta_bias.float(),
            delta_softplus=True,
        )
        return y.transpose(1, 2)
    if backend == "lean":
        return lean_selective_scan(u, delta, A, B, C, D, delta_bias)
    if backend != "mambapy":
        raise ConfigError(f"selective_scan needs a resolved backend (lean, mambapy or mamba_ssm), got {backend!r}.")
    from mambapy.pscan import pscan

    # The recurrence, its exponentials and the read-out run in float32 whatever the autocast
    # precision (as the CUDA kernel does internally): a product of L decays in bfloat16 loses the state.
    dtype = u.dtype
    with torch.autocast(device_type=u.device.type, enabled=False):
        u, delta, B, C = u.float(), delta.float(), B.float(), C.float()
        dt = F.softplus(delta + delta_bias.float())
        decay = torch.exp(dt.unsqueeze(-1) * A.float())  # (N, L, d_inner, d_state)
        drive = (dt * u).unsqueeze(-1) * B.unsqueeze(2)  # (N, L, d_inner, d_state)
        states = pscan(decay, drive)  # pads L to a power of two itself
        y = (states @ C.unsqueeze(-1)).squeeze(-1) + D.float() * u
    return y.to(dtype)


def _ssm_parameters(d_inner: int, d_state: int, d_conv: int, dt_rank: int) -> dict[str, nn.Module | nn.Parameter]:
    """One scan direction's `conv1d, x_proj, dt_proj, A_log, D`, initialised as in Mamba."""
    conv1d = nn.Conv1d(d_inner, d_inner, kernel_size=d_conv, groups=d_inner, padding=d_conv - 1, bias=True)
    x_proj = nn.Linear(d_inner, dt_rank + 2 * d_state, bias=False)
    dt_proj = nn.Linear(dt_rank, d_inner, bias=True)
    nn.init.uniform_(dt_proj.weight, -(dt_rank**-0.5), dt_rank**-0.5)
    # softplus(dt_proj.bias) is log-uniform in [DT_MIN, DT_MAX]: the inverse softplus of such dt.
    dt = torch.exp(torch.rand(d_inner) * (math.log(DT_MAX) - math.log(DT_MIN)) + math.log(DT_MIN))
    dt = dt.clamp(min=DT_INIT_FLOOR)
    with torch.no_grad():
        dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))
    A_log = nn.Parameter(torch.log(torch.arange(1, d_state + 1, dtype=torch.float32)).repeat(d_inner, 1))
    D = nn.Parameter(torch.ones(d_inner))
    return {"conv1d": conv1d, "x_proj": x_proj, "dt_proj": dt_proj, "A_log": A_log, "D": D}


class BiMambaBlock(nn.Module):
    """The paper's bidirectional Mamba block (eq. 3-4) with a residual and a LayerNorm: `(N, L, dim) -> (N, L, dim)`.

    `mamba_backend` ("auto" | "lean" | "mambapy" | "mamba_ssm") is resolved against the input's
    device on every call; the parameters do not depend on it. `fuse` ("sum" | "mean") and `norm`
    ("post" | "pre") are the two Vision-Mamba fidelity settings of the module docstring; neither
    changes the parameters.
    """

    def __init__(
        self,
        dim: int,
        *,
        d_state: int,
        d_conv: int,
        expand: int,
        bidirectional: bool = True,
        mamba_backend: str = "auto",
        fuse: str = "sum",
        norm: str = "post",
    ):
        super().__init__()
        for name, value, allowed in (("mamba_backend", mamba_backend, BACKENDS), ("fuse", fuse, FUSES),
                                     ("norm", norm, NORMS)):
            if value not in allowed:
                raise ConfigError(f"Unknown {name} {value!r}. Use one of: {', '.join(allowed)}.")
        self.mamba_backend, self.bidirectional, self.fuse, self.norm_position = mamba_backend, bidirectional, fuse, norm
        self.d_inner, self.d_state, self.dt_rank = expand * dim, d_state, math.ceil(dim / 16)
        self.in_proj = nn.Linear(dim, 2 * self.d_inner, bias=False)
        for suffix in ("", "_b") if bidirectional else ("",):
            for name, value in _ssm_parameters(self.d_inner, d_state, d_conv, self.dt_rank).items():
                setattr(self, name + suffix, value)
        self.out_proj = nn.Linear(self.d_inner, dim, bias=False)
        self.norm = nn.LayerNorm(dim)

    def scan_direction(self, x: torch.Tensor, suffix: str, backend: str) -> torch.Tensor:
        """Conv1d + SiLU + selective scan of the SSM stream `x: (N, L, d_inner)` with the `suffix` parameters."""
        conv1d, x_proj, dt_proj = (getattr(self, name + suffix) for name in ("conv1d", "x_proj", "dt_proj"))
        length = x.shape[1]
        u = F.silu(conv1d(x.transpose(1, 2))[..., :length].transpose(1, 2))  # causal: drop the right padding
        dt, B, C = x_proj(u).split([self.dt_rank, self.d_state, self.d_state], dim=-1)
        A = -torch.exp(getattr(self, "A_log" + suffix).float())
        delta = F.linear(dt, dt_proj.weight)  # the bias enters inside the scan, as mamba_ssm's delta_bias
        return selective_scan(u, delta, A, B, C, getattr(self, "D" + suffix), dt_proj.bias, backend)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """`(N, L, dim) -> (N, L, dim)`: mixes information along the sequence axis L (both ways if bidirectional)."""
        backend = resolve_backend(self.mamba_backend, z.device)
        pre = self.norm_position == "pre"
        x, gate = self.in_proj(self.norm(z) if pre else z).chunk(2, dim=-1)
        mixed = self.scan_direction(x, "", backend)
        if self.bidirectional:
            # The backward scan reads the reversed sequence; flipping its output back aligns positions.
            mixed = mixed + self.scan_direction(x.flip(1), "_b", backend).flip(1)
            if self.fuse == "mean":
                mixed = mixed / 2
        out = z + self.out_proj(mixed * F.silu(gate))
        return out if pre else self.norm(out)
