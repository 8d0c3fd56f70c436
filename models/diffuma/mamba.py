"""DIFFUMA's temporal mixer: the bidirectional Mamba block and the choice of selective-scan backend.

The selective-scan unit is a standard Mamba block (Gu & Dao, 2023): `in_proj` splits the input
into an SSM stream and a gate stream, the SSM stream passes a causal depthwise `conv1d` over time
and the input-dependent (selective) scan (`x_proj`, `dt_proj`, `A_log`, `D`), is multiplied by the
SiLU of the gate stream, and `out_proj` maps it back to the model width. Two implementations with
the same parameters exist:

- `"mamba_ssm"`: `mamba_ssm.Mamba` (package `mamba-ssm`, fused CUDA kernels). It only imports on a
  machine with CUDA, so it is the optional `cuda` extra of this project.
- `"mambapy"`: `mambapy.mamba.MambaBlock` (package `mambapy`, pure PyTorch, runs anywhere).

Both store exactly `in_proj.weight, conv1d.weight, conv1d.bias, x_proj.weight, dt_proj.weight,
dt_proj.bias, A_log, D, out_proj.weight` (mamba_ssm's defaults: no bias on the linear
projections, a bias on the conv), so a checkpoint trained under one loads under the other.
`"auto"` picks `mamba_ssm` when CUDA is available and the package imports, else `mambapy`.

Choices (the paper is silent):
- mambapy runs its parallel scan (`pscan=True`; it pads the sequence to a power of two itself).
  At DIFFUMA's `T_in + T_out` = 24 steps it gives the sequential loop's outputs (to ~1e-8) and a
  forward+backward pass about twice as fast on a CPU; at <= 10 steps the two are equally fast.
- the forward and backward branches are two separate Mamba units (no weight sharing), as in
  Vision Mamba's bidirectional block.
- the block is post-norm, in the order the paper writes eq. (4):
  `out = LayerNorm(z + (fwd(z) + bwd(z)) * SiLU(W_g z))`; the two directions are fused by
  addition (the paper allows addition or concatenation).
"""

from __future__ import annotations

import functools
import importlib

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.errors import ConfigError

BACKENDS = ("auto", "mambapy", "mamba_ssm")


@functools.lru_cache(maxsize=1)
def mamba_ssm_available() -> bool:
    """True when CUDA is available and `mamba_ssm` imports (its import loads CUDA extensions)."""
    if not torch.cuda.is_available():
        return False
    try:
        importlib.import_module("mamba_ssm")
    except Exception:  # ImportError, or OSError/RuntimeError from a broken CUDA extension
        return False
    return True


def resolve_backend(requested: str) -> str:
    """Map a `mamba_backend` setting ("auto" | "mambapy" | "mamba_ssm") to the backend to build."""
    if requested not in BACKENDS:
        raise ConfigError(f"Unknown mamba_backend {requested!r}. Use one of: {', '.join(BACKENDS)}.")
    if requested == "auto":
        return "mamba_ssm" if mamba_ssm_available() else "mambapy"
    if requested == "mamba_ssm" and not mamba_ssm_available():
        reason = "CUDA is not available" if not torch.cuda.is_available() else "the package mamba_ssm does not import"
        raise ConfigError(
            f"mamba_backend='mamba_ssm' was requested but {reason}. The mamba_ssm backend needs a CUDA "
            "machine with the `cuda` extra installed (pip install -e '.[cuda]'); use mamba_backend='auto' "
            "or 'mambapy' (pure PyTorch, same parameters) elsewhere."
        )
    return requested


def selective_scan_unit(dim: int, d_state: int, d_conv: int, expand: int, backend: str) -> nn.Module:
    """One Mamba unit mapping `(N, L, dim) -> (N, L, dim)`, built by `backend` ("mambapy" or "mamba_ssm")."""
    if backend == "mamba_ssm":
        from mamba_ssm import Mamba

        return Mamba(d_model=dim, d_state=d_state, d_conv=d_conv, expand=expand)
    if backend == "mambapy":
        from mambapy.mamba import MambaBlock, MambaConfig

        config = MambaConfig(d_model=dim, n_layers=1, d_state=d_state, d_conv=d_conv, expand_factor=expand, pscan=True)
        return MambaBlock(config)
    raise ConfigError(f"selective_scan_unit needs a resolved backend (mambapy or mamba_ssm), got {backend!r}.")


class BiMambaBlock(nn.Module):
    """Bidirectional Mamba block (paper eq. 3-4): forward and backward SSM branches, gated, residual, norm."""

    def __init__(self, dim: int, *, d_state: int, d_conv: int, expand: int, backend: str, bidirectional: bool = True):
        super().__init__()
        self.forward_ssm = selective_scan_unit(dim, d_state, d_conv, expand, backend)
        self.backward_ssm = selective_scan_unit(dim, d_state, d_conv, expand, backend) if bidirectional else None
        self.gate = nn.Linear(dim, dim)
        self.norm = nn.LayerNorm(dim)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """`(N, L, dim) -> (N, L, dim)`: mixes information along the sequence axis L."""
        mixed = self.forward_ssm(z)
        if self.backward_ssm is not None:
            # The backward unit scans the reversed sequence; flipping its output back aligns positions.
            mixed = mixed + self.backward_ssm(z.flip(1)).flip(1)
        return self.norm(z + mixed * F.silu(self.gate(z)))
