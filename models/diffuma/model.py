"""DIFFUMA: a Mamba path that forecasts the frames and a DiT path that adds a detail residual.

Xie et al., "DIFFUMA: High-Fidelity Spatio-Temporal Video Prediction via Dual-Path Mamba and
Diffusion Enhancement", arXiv 2507.06738 (2025), Section 4. Data flow:

    x (B, T_in, C, H, W)
     |- Mamba path: per-frame conv encoder (down by 2^k) -> z (B, T_in, D, h, w)
     |              -> one sequence per latent location: the T_in frame tokens
     |                 (+ T_out - T_in learned future queries when T_out > T_in)
     |              -> L x BiMambaBlock along time -> the LAST T_out positions of the sequence
     |              -> per-frame transposed-conv decoder -> y_mamba (B, T_out, C, H, W)
     |              -> c_context = spatial mean of those features (B, T_out, D)
     '- Diffusion path: a 12-block DiT denoiser of single frames, conditioned on (t, c_context)
    y_hat = y_mamba + delta,   delta = DiT(y_mamba, t=0, c_context)      (one pass, no sampling)

The BiMambaBlock is the paper's (eq. 3-4, a Vision-Mamba-style block): one shared input
projection to an SSM stream and a gate stream, a forward and a backward conv1d + selective scan on
the SSM stream, fused by addition, one SiLU gate, one output projection, then residual + LayerNorm
(see `models.diffuma.mamba`).

Training (the reading fixed in specs/diffuma.md of eqs. 8-10): with `eps ~ N(0, I)` and
`t ~ U{1..999}` drawn per output frame, `x_t = sqrt(abar_t) y + sqrt(1 - abar_t) eps` and

    L_diff  = mean (eps - DiT(x_t, t, c_context))^2
    L_recon = mean |y_mamba + DiT(y_mamba, 0, c_context) - y|
    L       = diff_weight * L_diff + lam * L_recon          (diff_weight = 1, lam = 1 by default)

Both terms reach the Mamba path through c_context; L_recon also through y_mamba. The DiT starts
zero-initialised (adaLN-Zero), so at initialisation `delta == 0` exactly and the full model's
forecast is its Mamba path's. `training_loss` logs `loss_diff`, `loss_recon`, `l1_mamba`
(L1 of y_mamba alone), `delta_abs` (mean |delta|) and `mse`, so a run's curves show what the
diffusion path adds.

Variants (registered below, one config dataclass each): `diffuma` (the above, `DiffumaConfig`),
`diffuma-mamba` (the Mamba path alone, trained with L1 on y_mamba, no DiT built;
`MambaPathConfig`) and `diffuma-randcond` (c_context replaced by random vectors of the same shape,
in training and evaluation; `RandCondConfig`).

Fidelity notes -- our choices where the paper is silent, and our departures where it is not:
- *Sizes.* The paper states only "12 DiT blocks". Everything else is ours: D = 128 (the Mamba
  width, the encoder/decoder width at the latent resolution, and the context width D_c), L = 4
  BiMamba blocks, Mamba's defaults inside a block (d_state 16, d_conv 4, expand 2), DiT width
  256 with 4 heads and MLP ratio 4, lam = 1.0, 1000 diffusion steps with DDPM's linear betas
  (DiT's defaults). 15.57M parameters at (12, 1, 32, 64): 14.54M in the DiT, 1.03M in the
  Mamba path (its BiMamba blocks 0.54M).
- *Down-sampling and patch size* (`downsample=None`, `patch_size=None`): chosen from the frame
  size. The encoder halves the frame `k` times, `k` the smallest value >= 2 that leaves at most 512
  latent locations (k = 2 at 32x64 -> 8x16; k = 3 at 120x160; k = 5 at 600x800 -> 19x25). The DiT
  patch is `2^k`, so the DiT's token grid is the encoder's latent grid (128 tokens of 4x4 px at
  32x64; 475 tokens of 32x32 px at 600x800, where 1-2 px patches would need tens of thousands of
  tokens per frame). Both can be set explicitly. Frames are zero-padded up to a multiple of `2^k`
  (Mamba path) or of the patch (DiT) and cropped back.
- *Tokens of the Mamba path* -- a departure, and why. The paper writes the encoder output as one
  D-vector per frame. Pooling a frame to one vector would make the decoder rebuild a 32x64 frame
  from 128 numbers and discard the spatial detail the forecast needs, so every latent location is
  its own time sequence, `(B*h*w, T, D)`, with the weights shared across locations. Spatial
  context comes from the conv encoder and decoder (and c_context is global).
- *Which positions are decoded.* The paper decodes "this sequence", the output of the Mamba
  blocks over the input frames: for T_out <= T_in we decode its last T_out positions (12 -> 12:
  every position; 5 -> 1: the last), with no extra tokens. T_out > T_in (our extension, the
  paper has no such task) appends T_out - T_in learned future-query tokens after the inputs and
  decodes the last T_out positions of that sequence, so the rule is the same for every task. The
  backward scan gives every decoded position the whole input sequence. (An earlier version read
  all T_out frames from learned queries; at initialisation its forecast hardly depended on the
  input: for two random inputs mean |y(x1) - y(x2)| / mean |y(x1)| was 0.002-0.005 at our smoke,
  quick and paper sizes, against 0.86-1.3 now.)
- *Encoder/decoder* ("several 2D conv layers" / "several transposed conv layers"): a 3x3 stem
  (conv + SiLU), then per halving a stride-2 3x3 conv and a 3x3 conv; the decoder mirrors it with
  stride-2 4x4 transposed convs and ends in a 1x1 readout. The width halves with every doubling of
  resolution (32, 64, 128 at 32x64), floored at 16, which keeps 600x800 frames affordable.
  GroupNorm (<= 8 groups) + SiLU follow every conv but the stem and the readout, and convs before
  a norm have no bias; the stem has no norm so that a frame's amplitude is not normalised away.
  No skip connections (the paper's decoder reads only the Mamba features).
- *c_context* ("the feature representation ... from the Mamba Module"): the spatial mean of the
  last BiMamba block's output at each decoded position, one D-vector per output frame; it is
  added, through a linear projection, to the timestep embedding and modulates every DiT block.
  The projection starts at N(0, 0.02) like DiT's condition embeddings, so that at initialisation
  the context does not drown the timestep embedding (models.diffuma.diffusion).
- *What the DiT sees* -- a departure, and why. The paper noises "the input video sequence"
  (eq. 1) yet adds the denoiser's t = 0 output to the *prediction* (eq. 7). A denoiser trained on
  past frames would be applied to future frames it never saw noised, so we noise the ground-truth
  future frames for L_diff and apply the same network to y_mamba at t = 0 for the residual
  (specs/diffuma.md): it is trained on, and applied to, the distribution of the frames it
  corrects. Each output frame is one DiT sample (tokens = patches of its C channels) conditioned
  on its own c_context; `t` is drawn independently per frame. Eq. 1 calls the total loss an MSE
  while eqs. 8-10 give MSE + lam * L1; we follow eqs. 8-10.
- *delta* is the raw DiT output at t = 0 (not rescaled by the schedule); t = 0 is never drawn for
  L_diff, so the timestep embedding tells the two uses apart. Both DiT passes of a training step
  run as one batch.
- *diffuma-randcond.* The context is replaced by fresh N(0, 1) draws scaled by the (detached)
  root-mean-square of the true context over the batch -- one scalar, so the DiT gets conditions of
  the usual magnitude but no information about the sample. In training the draws come from the
  global RNG (new each step); in evaluation from a generator re-seeded with `context_seed` on
  every call, so test metrics are reproducible. A fixed random buffer was rejected: it would act
  as a learned per-frame bias rather than as "no information".
- *diffuma-mamba* is trained with L1 (the reconstruction loss of the full model without delta).
- *Ensembles* (evaluation only; our choice, the paper scores one deterministic pass and describes
  no sampling at inference): `sample_ensemble` noises the single-pass forecast to step `ensemble_t`
  (default 100: abar = 0.895, x_t = 0.95 y_hat + 0.32 eps in normalized units) and denoises it with the
  trained eps-prediction DiT by `ensemble_steps` (default 10) DDIM steps; only the noise differs
  between members. `bench ensemble` scores a finished run this way; the single pass stays the
  headline. Both settings are left out of the run id.
- The selective-scan backend (`mamba_ssm` CUDA kernel, the pure-PyTorch `lean` or `mambapy` scan)
  does not change the parameters; it follows the device of the input, and
  `selective_scan_backend(device)` names the one a run uses (and rejects `mamba_ssm` off CUDA
  before training starts).
- `grad_checkpoint` recomputes the Mamba blocks' and (unless `dit_grad_checkpoint=False`) the DiT
  blocks' activations in the backward pass; `forecast_components` returns `y_mamba` beside the
  forecast so evaluation scores the Mamba path inside the full model in every run.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from benchmark.registry import register_model
from benchmark.registry.model_api import ForecastModel, ModelConfig
from benchmark.registry.shapes import DataShape
from models.diffuma.diffusion import NUM_TIMESTEPS, FrameDiT, add_noise, linear_beta_schedule
from models.diffuma.mamba import BACKENDS, FUSES, NORMS, BiMambaBlock, resolve_backend

MAX_LATENT_LOCATIONS = 512


def auto_downsample(height: int, width: int, max_locations: int = MAX_LATENT_LOCATIONS) -> int:
    """Smallest `k >= 2` whose `2^k` down-sampling leaves at most `max_locations` latent locations."""
    k = 2
    while math.ceil(height / 2**k) * math.ceil(width / 2**k) > max_locations:
        k += 1
    return k


def level_widths(dim: int, levels: int, floor: int = 16) -> list[int]:
    """Conv widths from full resolution (index 0) to the latent (index `levels`, width `dim`).

    The width halves with every doubling of the resolution, down to `min(dim, floor)`.
    """
    return [max(dim >> (levels - i), min(dim, floor)) for i in range(levels + 1)]


def _groups(channels: int) -> int:
    """GroupNorm groups: the largest of 8, 4, 2, 1 that divides `channels`."""
    return next(g for g in (8, 4, 2, 1) if channels % g == 0)


class ConvBlock(nn.Sequential):
    """3x3 conv (stride 1 or 2) + GroupNorm + SiLU; the conv has no bias (the norm's shift replaces it)."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__(
            nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
            nn.GroupNorm(_groups(c_out), c_out),
            nn.SiLU(),
        )


class SpatialEncoder(nn.Module):
    """Per-frame conv encoder: `(N, C, H, W) -> (N, D, H / 2^k, W / 2^k)` (H, W multiples of 2^k)."""

    def __init__(self, channels: int, dim: int, downsample: int):
        super().__init__()
        widths = level_widths(dim, downsample)
        # The stem has a bias and no norm: a GroupNorm straight after a linear conv of the frame
        # would make the encoder blind to each frame's overall amplitude.
        layers: list[nn.Module] = [nn.Conv2d(channels, widths[0], 3, padding=1), nn.SiLU()]
        for c_in, c_out in zip(widths[:-1], widths[1:], strict=True):
            layers += [ConvBlock(c_in, c_out, stride=2), ConvBlock(c_out, c_out)]
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class SpatialDecoder(nn.Module):
    """Per-frame transposed-conv decoder: `(N, D, h, w) -> (N, C, h * 2^k, w * 2^k)`."""

    def __init__(self, dim: int, channels: int, upsample: int):
        super().__init__()
        widths = level_widths(dim, upsample)[::-1]
        layers: list[nn.Module] = []
        for c_in, c_out in zip(widths[:-1], widths[1:], strict=True):
            layers += [
                nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1, bias=False),
                nn.GroupNorm(_groups(c_out), c_out),
                nn.SiLU(),
                ConvBlock(c_out, c_out),
            ]
        self.layers = nn.Sequential(*layers)
        self.readout = nn.Conv2d(widths[-1], channels, kernel_size=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.readout(self.layers(z))


# --- hyper-parameters --------------------------------------------------------------------------


def _is_int(value: Any, minimum: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


@dataclass(frozen=True)
class MambaPathConfig(ModelConfig):
    """Hyper-parameters of the Mamba path (all of `diffuma-mamba`'s). Defaults: our `paper` sizes.

    `hidden` (D: the Mamba width, the encoder/decoder width at the latent resolution and the
    context width), `mamba_layers` (L), `d_state`/`d_conv`/`expand` (Mamba's defaults),
    `downsample` (k; None = the smallest k >= 2 leaving <= 512 latent locations),
    `bidirectional=False` drops the backward scan, `mamba_backend` is "auto", "lean", "mambapy"
    or "mamba_ssm" (resolved against the run's device), and `grad_checkpoint=True` recomputes each
    Mamba block's (and, in `diffuma`, each DiT block's) activations in the backward pass instead of
    storing them (same results, less memory, more time). `fuse` ("sum": the paper's addition,
    default; "mean": Vision Mamba's halved sum) and `norm` ("post": eq. 4 as written, default;
    "pre": Vision Mamba's and Mamba's pre-norm with a final LayerNorm) are the block's fidelity
    settings (models.diffuma.mamba, README "DIFFUMA fidelity notes").
    """

    model_name: ClassVar[str] = "diffuma-mamba"

    hidden: int = 128
    mamba_layers: int = 4
    d_state: int = 16
    d_conv: int = 4
    expand: int = 2
    downsample: int | None = None
    bidirectional: bool = True
    mamba_backend: str = "auto"
    grad_checkpoint: bool = False
    fuse: str = "sum"
    norm: str = "post"

    def validate(self) -> None:
        """Check every field; shape-dependent defaults (`None`) are left to `resolved`."""
        for key in ("hidden", "mamba_layers", "d_state", "d_conv", "expand"):
            value = getattr(self, key)
            self.require(_is_int(value, 1), f"{key} must be a positive integer, got {value!r}.")
        self.require(
            self.downsample is None or _is_int(self.downsample, 0),
            f"downsample must be null (auto) or an integer >= 0, got {self.downsample!r}.",
        )
        for key in ("bidirectional", "grad_checkpoint"):
            value = getattr(self, key)
            self.require(isinstance(value, bool), f"{key} must be true or false, got {value!r}.")
        self.require(
            self.mamba_backend in BACKENDS, f"mamba_backend must be one of {BACKENDS}, got {self.mamba_backend!r}."
        )
        self.require(self.fuse in FUSES, f"fuse must be one of {FUSES}, got {self.fuse!r}.")
        self.require(self.norm in NORMS, f"norm must be one of {NORMS}, got {self.norm!r}.")

    def resolved(self, shape: DataShape) -> MambaPathConfig:
        """A copy with the automatic (`None`) sizes fixed for data of `shape` (a `DataShape` or 5-tuple)."""
        if self.downsample is not None:
            return self
        _, _, _, height, width = shape
        return dataclasses.replace(self, downsample=auto_downsample(height, width))


@dataclass(frozen=True)
class DiffumaConfig(MambaPathConfig):
    """Hyper-parameters of `diffuma`: the Mamba path's, plus the DiT's and the loss weights.

    Paper: `dit_depth=12`. Ours (the paper gives no value): `dit_hidden`, `dit_heads`,
    `mlp_ratio` (DiT's 4), `patch_size` (None = 2^k, so the DiT's token grid is the encoder's
    latent grid), `lam` (weight of L_recon) and `diff_weight` (weight of L_diff, 1 in the paper's
    eq. 10; 0 removes the diffusion loss). Evaluation only (`DIFFUMA.sample_ensemble`, `bench
    ensemble`; they change neither training nor the single-pass forecast, so they stay out of the run
    id): `ensemble_t` (the diffusion step the single-pass forecast is noised to, 1..999) and
    `ensemble_steps` (DDIM steps back to a clean frame, 1..ensemble_t).
    """

    model_name: ClassVar[str] = "diffuma"

    dit_depth: int = 12
    dit_hidden: int = 256
    dit_heads: int = 4
    mlp_ratio: float = 4.0
    patch_size: int | None = None
    lam: float = 1.0
    diff_weight: float = 1.0
    ensemble_t: int = 100
    ensemble_steps: int = 10
    dit_grad_checkpoint: bool = True

    def validate(self) -> None:
        """The Mamba path's checks, then the DiT's and the loss weights'."""
        super().validate()
        for key in ("dit_depth", "dit_hidden", "dit_heads"):
            value = getattr(self, key)
            self.require(_is_int(value, 1), f"{key} must be a positive integer, got {value!r}.")
        self.require(
            self.dit_hidden % self.dit_heads == 0,
            f"dit_hidden ({self.dit_hidden}) must be divisible by dit_heads ({self.dit_heads}).",
        )
        self.require(
            self.patch_size is None or _is_int(self.patch_size, 1),
            f"patch_size must be null (auto) or an integer >= 1, got {self.patch_size!r}.",
        )
        for key in ("mlp_ratio", "lam", "diff_weight"):
            value = getattr(self, key)
            self.require(
                isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0,
                f"{key} must be a number >= 0, got {value!r}.",
            )
        self.require(self.mlp_ratio > 0, "mlp_ratio must be positive.")
        self.require(
            _is_int(self.ensemble_t, 1) and self.ensemble_t < NUM_TIMESTEPS,
            f"ensemble_t must be an integer from 1 to {NUM_TIMESTEPS - 1}, got {self.ensemble_t!r}.",
        )
        self.require(
            _is_int(self.ensemble_steps, 1) and self.ensemble_steps <= self.ensemble_t,
            f"ensemble_steps must be an integer from 1 to ensemble_t ({self.ensemble_t}), got {self.ensemble_steps!r}.",
        )
        self.require(
            isinstance(self.dit_grad_checkpoint, bool),
            f"dit_grad_checkpoint must be true or false, got {self.dit_grad_checkpoint!r}.",
        )

    def resolved(self, shape: DataShape) -> DiffumaConfig:
        """A copy with `downsample` and then `patch_size` (= 2^downsample) fixed for `shape`."""
        config = super().resolved(shape)
        if config.patch_size is not None:
            return config
        return dataclasses.replace(config, patch_size=2**config.downsample)


@dataclass(frozen=True)
class RandCondConfig(DiffumaConfig):
    """Hyper-parameters of `diffuma-randcond`: `diffuma`'s, plus the seed of the evaluation draws."""

    model_name: ClassVar[str] = "diffuma-randcond"

    context_seed: int = 0

    def validate(self) -> None:
        """`diffuma`'s checks, then `context_seed`'s."""
        super().validate()
        self.require(_is_int(self.context_seed, 0), f"context_seed must be an integer >= 0, got {self.context_seed!r}.")


# --- the model ---------------------------------------------------------------------------------


class MambaPath(nn.Module):
    """Encoder -> BiMamba blocks over time (per latent location) -> decoder; also returns c_context.

    `config` must be resolved (`downsample` set).
    """

    def __init__(self, shape: DataShape, config: MambaPathConfig):
        super().__init__()
        self.shape = shape
        self.factor = 2**config.downsample
        self.grad_checkpoint = config.grad_checkpoint
        self.encoder = SpatialEncoder(shape.channels, config.hidden, config.downsample)
        extra = shape.t_out - shape.t_in
        # Learned stand-ins for the frames beyond the input sequence (only when T_out > T_in).
        if extra > 0:
            self.future_queries = nn.Parameter(torch.randn(extra, config.hidden) * 0.02)
        else:
            self.register_parameter("future_queries", None)
        self.blocks = nn.ModuleList(
            BiMambaBlock(
                config.hidden,
                d_state=config.d_state,
                d_conv=config.d_conv,
                expand=config.expand,
                bidirectional=config.bidirectional,
                mamba_backend=config.mamba_backend,
                fuse=config.fuse,
                norm=config.norm,
            )
            for _ in range(config.mamba_layers)
        )
        # Pre-norm blocks leave the residual stream unnormalised: one final LayerNorm, as Vim's norm_f.
        self.final_norm = nn.LayerNorm(config.hidden) if config.norm == "pre" else None
        self.decoder = SpatialDecoder(config.hidden, shape.channels, config.downsample)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Mamba features of every position, `(B, T_in, C, H, W) -> (B, max(T_in, T_out), D, h, w)`."""
        b, t_in, c, height, width = x.shape
        pad_h, pad_w = -height % self.factor, -width % self.factor
        frames = F.pad(x.reshape(b * t_in, c, height, width), (0, pad_w, 0, pad_h))
        z = self.encoder(frames)
        _, dim, h, w = z.shape
        # (B*T_in, D, h, w) -> one sequence per latent location: (B*h*w, T_in, D).
        z = z.reshape(b, t_in, dim, h * w).permute(0, 3, 1, 2).reshape(b * h * w, t_in, dim)
        if self.future_queries is not None:
            z = torch.cat([z, self.future_queries.unsqueeze(0).expand(z.shape[0], -1, -1)], dim=1)
        for block in self.blocks:
            if self.grad_checkpoint and torch.is_grad_enabled():
                # keep only each block's input; its activations are recomputed in the backward pass
                z = checkpoint(block, z, use_reentrant=False)
            else:
                z = block(z)
        if self.final_norm is not None:
            z = self.final_norm(z)
        length = z.shape[1]
        return z.reshape(b, h, w, length, dim).permute(0, 3, 4, 1, 2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """`x -> (y_mamba (B, T_out, C, H, W), c_context (B, T_out, D))`, from the last T_out positions."""
        b, _, c, height, width = x.shape
        future = self.features(x)[:, -self.shape.t_out :]  # (B, T_out, D, h, w)
        context = future.mean(dim=(3, 4))
        t_out, dim, h, w = future.shape[1:]
        y = self.decoder(future.reshape(b * t_out, dim, h, w))[:, :, :height, :width]
        return y.reshape(b, t_out, c, height, width), context


MODES = {"full": DiffumaConfig, "mamba": MambaPathConfig, "randcond": RandCondConfig}


class DIFFUMA(ForecastModel):
    """DIFFUMA and its ablations: `mode` is "full", "mamba" (no DiT) or "randcond" (random c_context).

    `config` is the variant's config dataclass (`MODES[mode]` or a subclass); its automatic sizes
    are resolved for `shape` and the result is kept as `self.config`.
    """

    def __init__(self, shape: DataShape, config: MambaPathConfig, *, mode: str):
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"DIFFUMA mode must be one of {', '.join(MODES)}, got {mode!r}.")
        if not isinstance(config, MODES[mode]):
            raise TypeError(f"DIFFUMA mode {mode!r} needs a {MODES[mode].__name__}, got {type(config).__name__}.")
        shape = DataShape(*shape)
        self.shape, self.mode = shape, mode
        self.config = config = config.resolved(shape)
        # The Mamba path is built first, so for one seed `diffuma` and `diffuma-mamba` share its weights.
        self.mamba = MambaPath(shape, config)
        self.dit = None
        if mode != "mamba":
            self.lam, self.diff_weight = config.lam, config.diff_weight
            self.context_seed = config.context_seed if mode == "randcond" else 0
            self.dit = FrameDiT(
                shape.channels,
                shape.height,
                shape.width,
                context_dim=config.hidden,
                hidden=config.dit_hidden,
                depth=config.dit_depth,
                num_heads=config.dit_heads,
                patch_size=config.patch_size,
                mlp_ratio=config.mlp_ratio,
                grad_checkpoint=config.grad_checkpoint and config.dit_grad_checkpoint,
            )
            self.register_buffer("alphas_cumprod", linear_beta_schedule().float(), persistent=False)

    def selective_scan_backend(self, device: torch.device | str) -> str:
        """The selective-scan backend on `device`; a `ConfigError` if `mamba_backend` cannot run there."""
        return resolve_backend(self.config.mamba_backend, device)

    def condition(self, context: torch.Tensor) -> torch.Tensor:
        """The DiT's context: c_context itself, or (randcond) random vectors of its shape and RMS."""
        if self.mode != "randcond":
            return context
        scale = context.detach().pow(2).mean().sqrt()
        if self.training:
            noise = torch.randn(context.shape, device=context.device, dtype=context.dtype)
        else:
            generator = torch.Generator().manual_seed(self.context_seed)
            noise = torch.randn(context.shape, generator=generator).to(context)
        return noise * scale

    def residual(self, y_mamba: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """delta: the DiT's output on each frame of `y_mamba` at `t = 0`, shape of `y_mamba`."""
        frames = y_mamba.flatten(0, 1)
        t = torch.zeros(frames.shape[0], dtype=torch.long, device=frames.device)
        return self.dit(frames, t, self.condition(context).flatten(0, 1)).view_as(y_mamba)

    @torch.no_grad()
    def sample_ensemble(
        self,
        x: torch.Tensor,
        members: int,
        generator: torch.Generator | None = None,
        t_start: int | None = None,
        steps: int | None = None,
    ) -> torch.Tensor:
        """`members` forecasts of `x`, `(members, B, T_out, C, H, W)`, that differ only in diffusion noise.

        Our choice (the paper evaluates one deterministic pass and describes no sampling at inference):
        SDEdit-style. The single-pass forecast `y_hat = y_mamba + delta` of each output frame is noised
        to step `t_start` (`ensemble_t`), `x_t = sqrt(abar_t) y_hat + sqrt(1 - abar_t) eps`, with a
        fresh `eps ~ N(0, I)` per member, and denoised back with the trained eps-prediction DiT
        (L_diff, eq. 8) by `steps` (`ensemble_steps`) deterministic DDIM steps (eta = 0; Song et al.
        2021) on evenly spaced steps from `t_start` down to 1, conditioned on the frame's c_context;
        each member is the last step's clean estimate `x0_hat`. Only `eps` varies between members; the
        Mamba path and c_context are computed once. The noise is drawn on the CPU from `generator`, so
        the members do not depend on the device.
        """
        if self.dit is None:
            raise ValueError("diffuma-mamba has no diffusion module: it forecasts one deterministic frame sequence")
        if not _is_int(members, 1):
            raise ValueError(f"members must be a positive integer, got {members!r}")
        t_start = self.config.ensemble_t if t_start is None else int(t_start)
        steps = self.config.ensemble_steps if steps is None else int(steps)
        if not 1 <= steps <= t_start < NUM_TIMESTEPS:
            raise ValueError(f"need 1 <= steps <= t_start < {NUM_TIMESTEPS}, got steps={steps}, t_start={t_start}")
        y_mamba, context = self.mamba(x)
        y_hat = y_mamba + self.residual(y_mamba, context)
        frames = y_hat.flatten(0, 1)
        condition = self.condition(context).flatten(0, 1)
        schedule = torch.linspace(t_start, 1, steps, dtype=torch.float64).round().long().unique().flip(0).tolist()
        abar = self.alphas_cumprod
        out = []
        for _ in range(members):
            eps = torch.randn(frames.shape, generator=generator).to(frames)
            x_t = add_noise(frames, eps, torch.full((frames.shape[0],), schedule[0], device=frames.device), abar)
            for index, t in enumerate(schedule):
                eps_hat = self.dit(x_t, torch.full((frames.shape[0],), t, device=frames.device), condition)
                x0_hat = (x_t - (1 - abar[t]).sqrt() * eps_hat) / abar[t].sqrt()
                if index + 1 < len(schedule):
                    after = schedule[index + 1]
                    x_t = abar[after].sqrt() * x0_hat + (1 - abar[after]).sqrt() * eps_hat
            out.append(x0_hat.view_as(y_hat))
        return torch.stack(out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Forecast `(B, T_in, C, H, W) -> (B, T_out, C, H, W)`: `y_mamba + delta` in one pass."""
        y_mamba, context = self.mamba(x)
        if self.dit is None:
            return y_mamba
        return y_mamba + self.residual(y_mamba, context)

    def forecast_components(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """`forward(x)` and, for the variants with a DiT, `{"y_mamba": the Mamba path's forecast}` of the same pass."""
        y_mamba, context = self.mamba(x)
        if self.dit is None:
            return y_mamba, {}
        return y_mamba + self.residual(y_mamba, context), {"y_mamba": y_mamba}

    def training_loss(
        self, x: torch.Tensor, y: torch.Tensor, step: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """`diff_weight * L_diff + lam * L_recon` (L1 on y_mamba for the Mamba-only variant)."""
        y_mamba, context = self.mamba(x)
        l1_mamba = F.l1_loss(y_mamba, y)
        if self.dit is None:
            return l1_mamba, {"l1_mamba": l1_mamba.detach(), "mse": F.mse_loss(y_mamba.detach(), y)}
        frames, base = y.flatten(0, 1), y_mamba.flatten(0, 1)
        context = self.condition(context).flatten(0, 1)
        n = frames.shape[0]
        t = torch.randint(1, NUM_TIMESTEPS, (n,), device=y.device)
        eps = torch.randn_like(frames)
        x_t = add_noise(frames, eps, t, self.alphas_cumprod)
        # Denoising of the noised targets and the t = 0 residual on y_mamba, as one DiT batch.
        out = self.dit(torch.cat([x_t, base]), torch.cat([t, torch.zeros_like(t)]), torch.cat([context, context]))
        eps_hat, delta = out[:n], out[n:].view_as(y_mamba)
        loss_diff = F.mse_loss(eps_hat, eps)
        y_hat = y_mamba + delta
        loss_recon = F.l1_loss(y_hat, y)
        loss = self.diff_weight * loss_diff + self.lam * loss_recon
        logs = {
            "loss_diff": loss_diff.detach(),
            "loss_recon": loss_recon.detach(),
            "l1_mamba": l1_mamba.detach(),
            "delta_abs": delta.detach().abs().mean(),
            "mse": F.mse_loss(y_hat.detach(), y),
        }
        return loss, logs


# --- builders ----------------------------------------------------------------------------------


@register_model("diffuma", family="mamba-diffusion", paper_name="DIFFUMA", config=DiffumaConfig)
def build_diffuma(shape: DataShape, **overrides: Any) -> DIFFUMA:
    """DIFFUMA (Xie et al., 2025): bidirectional-Mamba forecaster plus a DiT detail residual.

    Hyper-parameters and their defaults: `DiffumaConfig`.
    """
    return DIFFUMA(shape, DiffumaConfig(**overrides), mode="full")


@register_model("diffuma-mamba", family="mamba-diffusion", paper_name="DIFFUMA (Mamba only)", config=MambaPathConfig)
def build_diffuma_mamba(shape: DataShape, **overrides: Any) -> DIFFUMA:
    """DIFFUMA's Mamba path alone (no diffusion module), trained with L1; hyper-parameters: `MambaPathConfig`."""
    return DIFFUMA(shape, MambaPathConfig(**overrides), mode="mamba")


@register_model(
    "diffuma-randcond", family="mamba-diffusion", paper_name="DIFFUMA (random cond.)", config=RandCondConfig
)
def build_diffuma_randcond(shape: DataShape, **overrides: Any) -> DIFFUMA:
    """DIFFUMA with c_context replaced by random vectors (is the conditioning used?); as `diffuma`.

    The random vectors are N(0, 1) scaled to the batch RMS of the true context: fresh every training
    step, and drawn from a generator seeded with `context_seed` on every evaluation call.
    Hyper-parameters: `RandCondConfig`.
    """
    return DIFFUMA(shape, RandCondConfig(**overrides), mode="randcond")
