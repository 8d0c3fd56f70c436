"""PastNet: a Fourier physics guide plus a vector-quantized spatio-temporal predictor.

Wu et al., "PastNet: Introducing Physical Inductive Biases for Spatio-temporal Video Prediction",
ACM MM 2024 (arXiv:2305.11421). Two branches are summed:

    pred = Decoder(DynamicPropagation(VQ(Encoder(x)))) + FPG(x)

- **FPG (Fourier physics guide)**, applied to every frame: a patch-embedding conv (kernel = stride
  = `fpg_patch`), a learned position embedding over the `H/p x W/p` token grid, `fpg_depth` AFNO
  blocks, a LayerNorm, and a transposed-conv head back to full resolution. An AFNO block is
  `x + AFNO(LN(x))` then `x + MLP(LN(x))`; AFNO takes `rfft2` over the token grid, applies a
  block-diagonal complex two-layer MLP over channels (`afno_blocks` blocks, ReLU between, optional
  soft-shrinkage), and returns `irfft2`. The MLP is Linear -> GELU -> Linear (`fpg_mlp_ratio`).
  The head is ConvT(k=s=2) -> Tanh -> ConvT(k=s=2) -> Tanh -> ConvT(k=s=fpg_patch/4), with widths
  `16*C -> 4*C -> C`.
- **DST (discrete spatio-temporal)**, per frame: a VQ-VAE encoder (4x4 stride-2 conv to
  `dst_hiddens/2`, ReLU, 4x4 stride-2 conv to `dst_hiddens`, ReLU, 3x3 conv, a residual stack of
  `dst_res_layers` units `ReLU -> 3x3 conv (dst_res_hiddens) -> BN -> ReLU -> 1x1 conv -> BN`,
  final ReLU), a 1x1 conv to `code_dim`, and a vector quantizer with an EMA codebook
  (`num_codes` codes, straight-through estimator, Laplace-smoothed cluster sizes). The decoder
  mirrors the encoder (3x3 conv, residual stack, two 4x4 stride-2 transposed convs).
- **DynamicPropagation**: the SimVP Inception U-Net (`baselines.simvp.InceptionUNet`) over the
  `T_in` quantized latents stacked on channels (`T_in * code_dim`); its output is decoded frame by
  frame.

Published settings (the public PastNet code, Moving MNIST 10 -> 10 frames at 64x64), the builder's
defaults: `embed_dim=128, fpg_patch=16` (at 64x64; chosen per shape, see below), `fpg_depth=1,
fpg_mlp_ratio=2.0, afno_blocks=4, afno_softshrink=0.0, dst_hiddens=128, dst_res_layers=4,
dst_res_hiddens=32, num_codes=512, code_dim=64, commitment_cost=0.25, ema_decay=0.99,
ema_epsilon=1e-5, hid_T=256, N_T=8, groups=8, incep_ker=(3, 5, 7, 11)`. Training there: batch 16,
Adam lr 1e-2, OneCycle.

The FPG's patch, `fpg_patch=None` (the default), is chosen per frame shape: the largest of
`FPG_PATCHES = (16, 8, 4)` that divides H and W and leaves a token grid of at least
`MIN_FPG_TOKENS = 4` x 4; if none leaves 4 x 4, the smallest that divides (the finest grid). So
64x64 -> 16 (a 4x4 grid, the published setting), 32x64 -> 8 (4x8; patch 16 would give 2x4, whose
`rfft2` is 2x3: a nearly degenerate spectrum), 120x160 -> 8 (15x20), 24x32 -> 4 (6x8), and 8x16 -> 4
(2x4, the finest grid the head allows). Patches 2 and 1 are not candidates: the FPG head
up-samples by 2, 2 and `fpg_patch / 4`. An explicit integer is used as given (validated below).
The resolved patch is `model.fpg_patch`, the grid `model.fpg.token_grid`.

Parameters with the defaults: 16,432,790 at (10, 1, 64, 64) (patch 16) and 16,845,926 at
(12, 1, 32, 64) (patch 8; 16,867,478 with patch 16).
The public code counts 16,498,326 at (10, 1, 64, 64) (our tally of its modules): the 65,536 more
are its codebook and EMA sums (512 x 64 each), which it registers as `nn.Parameter`s although no
gradient ever reaches them; we keep them as buffers, so they are not counted. There is no published
count at the weather shape (the public code is hard-wired to 64x64 and 10 frames).

Implementation notes:
- The residual units carry BatchNorm and the translator's groups fall back to 1 where channels do
  not divide, as in the public code (`DiscreteSTModel_modules.py`, the module its model imports).
- The public FPG MLP builds `fc1` and `fc2` but its forward replaces `fc2` by an adaptive average
  pool over the hidden features (`fc2` is dead weight). We apply `fc2` (the standard MLP); the
  parameter count is the same.
- The public AFNO computes the second layer's imaginary part from the already-updated real part;
  we compute both parts from the first layer's output (the complex product it intends).
- The public AFNO settings are `fno_bias=False`, `double_skip=False`, `fno_softshrink=0`: no
  extra 1x1 "bias" path inside the filter, plain pre-norm residuals.
- *choice*: training loss = MSE + `vq_loss_weight` x the commitment loss
  `commitment_cost * ||z - sg(q)||^2` (the paper's formulation includes the VQ term; the public
  code computes it but trains on the MSE alone, which `vq_loss_weight=0` reproduces).
  `training_loss` logs `mse`, `vq_commitment` and `codebook_perplexity`.
- *choice*: the codebook moves only by EMA, and only when the model is in training mode *and*
  gradients are enabled (a training step); evaluation (`eval()` or `no_grad`) never changes it.
- *choice*: the EMA state starts consistent with the codebook (running cluster sizes at 1, running
  sums equal to the N(0, 1) codebook), so a code that is never chosen keeps its vector. The public
  code starts the sizes at 0 and the sums at independent noise, which flings unused codes far away
  on the first update; it also stores the smoothed sizes back as the running sizes, whereas we
  smooth only when dividing.
- *choice*: when `T_out != T_in`, a 1x1 conv over the stacked predicted frames
  (`T_in*C -> T_out*C` channels) maps the `T_in` frames of `DST + FPG` to `T_out` frames (the
  public code requires `T_out == T_in`; our SimVP does the same). It is only built when the lengths
  differ, so the published count is unchanged.
- *choice*: `fpg_patch` must be a multiple of 4 because the FPG head up-samples by 2, 2 and
  `fpg_patch / 4` (2, 2, 4 at the published patch 16); frames must be divisible by `fpg_patch`
  (the token grid) and by 4 (the DST encoder's two stride-2 convs).
- *choice*: `fpg_patch=None` picks the patch per frame shape (rule above), so that the Fourier
  guide keeps a token grid of at least 4 x 4 as in the original 64x64 setting; the original code
  has patch 16 hard-wired for 64x64 frames.
- The vector quantizer and the AFNO filter run in float32 even under autocast (nearest-code
  search and FFTs are not reliable in half precision).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from baselines.recurrent import check_positive_ints
from baselines.simvp import InceptionUNet
from benchmark.core.errors import ConfigError
from benchmark.registry import register_model
from benchmark.registry.model_api import ForecastModel
from benchmark.registry.shapes import DataShape

FPG_PATCHES = (16, 8, 4)
"""Candidate FPG patch sizes for `fpg_patch=None`, largest first (multiples of 4, see the module doc)."""

MIN_FPG_TOKENS = 4
"""Smallest token-grid side the automatic FPG patch aims for (the original 64x64 setting has 4 x 4)."""


def choose_fpg_patch(height: int, width: int) -> int | None:
    """The FPG patch for `height x width` frames when `fpg_patch=None`, or None if no candidate divides.

    The largest of `FPG_PATCHES` that divides both sides and leaves at least `MIN_FPG_TOKENS` tokens
    along each; failing that, the smallest candidate that divides both (the finest grid available).
    """
    dividing = [p for p in FPG_PATCHES if height % p == 0 and width % p == 0]
    for patch in dividing:
        if min(height // patch, width // patch) >= MIN_FPG_TOKENS:
            return patch
    return dividing[-1] if dividing else None


# --- FPG: the Fourier physics guide ---------------------------------------------------------------


class AFNOFilter(nn.Module):
    """Adaptive Fourier neural operator: a block-diagonal complex MLP over channels in Fourier space."""

    def __init__(self, dim: int, num_blocks: int, softshrink: float):
        super().__init__()
        self.num_blocks = num_blocks
        self.block = dim // num_blocks
        self.softshrink = softshrink
        # Index 0 holds the real part, index 1 the imaginary part of each complex weight/bias.
        self.w1 = nn.Parameter(0.02 * torch.randn(2, num_blocks, self.block, self.block))
        self.b1 = nn.Parameter(0.02 * torch.randn(2, num_blocks, self.block))
        self.w2 = nn.Parameter(0.02 * torch.randn(2, num_blocks, self.block, self.block))
        self.b2 = nn.Parameter(0.02 * torch.randn(2, num_blocks, self.block))

    @staticmethod
    def _complex(p: torch.Tensor) -> torch.Tensor:
        return torch.complex(p[0], p[1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """`(N, h, w, dim) -> (N, h, w, dim)`."""
        n, h, w, dim = x.shape
        with torch.autocast(device_type=x.device.type, enabled=False):
            f = torch.fft.rfft2(x.float(), dim=(1, 2), norm="ortho")
            f = f.reshape(n, h, w // 2 + 1, self.num_blocks, self.block)
            f = torch.einsum("...ki,kio->...ko", f, self._complex(self.w1)) + self._complex(self.b1)
            f = torch.complex(F.relu(f.real), F.relu(f.imag))
            f = torch.einsum("...ki,kio->...ko", f, self._complex(self.w2)) + self._complex(self.b2)
            if self.softshrink > 0:
                f = torch.complex(F.softshrink(f.real, self.softshrink), F.softshrink(f.imag, self.softshrink))
            f = f.reshape(n, h, w // 2 + 1, dim)
            out = torch.fft.irfft2(f, s=(h, w), dim=(1, 2), norm="ortho")
        return out.to(x.dtype)


class FourierBlock(nn.Module):
    """Pre-norm residual block: token mixing by AFNO, then a channel MLP."""

    def __init__(self, dim: int, mlp_ratio: float, num_blocks: int, softshrink: float):
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.filter = AFNOFilter(dim, num_blocks, softshrink)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """`(N, h, w, dim) -> (N, h, w, dim)`."""
        x = x + self.filter(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class FourierPhysicsGuide(nn.Module):
    """FPG: patch embedding + position embedding, AFNO blocks, transposed-conv head (per frame)."""

    def __init__(
        self,
        channels: int,
        height: int,
        width: int,
        embed_dim: int,
        patch: int,
        depth: int,
        mlp_ratio: float,
        num_blocks: int,
        softshrink: float,
    ):
        super().__init__()
        self.token_grid = (height // patch, width // patch)
        self.patch_embed = nn.Conv2d(channels, embed_dim, kernel_size=patch, stride=patch)
        self.pos_embed = nn.Parameter(torch.zeros(1, *self.token_grid, embed_dim))
        self.blocks = nn.ModuleList(FourierBlock(embed_dim, mlp_ratio, num_blocks, softshrink) for _ in range(depth))
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.head = nn.Sequential(
            nn.ConvTranspose2d(embed_dim, 16 * channels, kernel_size=2, stride=2),
            nn.Tanh(),
            nn.ConvTranspose2d(16 * channels, 4 * channels, kernel_size=2, stride=2),
            nn.Tanh(),
            nn.ConvTranspose2d(4 * channels, channels, kernel_size=patch // 4, stride=patch // 4),
        )
        # ViT-style initialisation, as in the public code: position embedding and Linear weights
        # from a truncated normal (std 0.02), Linear biases at zero.
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """`(N, C, H, W) -> (N, C, H, W)`."""
        tokens = self.patch_embed(frames).permute(0, 2, 3, 1) + self.pos_embed  # (N, h, w, E)
        for block in self.blocks:
            tokens = block(tokens)
        return self.head(self.norm(tokens).permute(0, 3, 1, 2))


# --- DST: the discrete spatio-temporal module -----------------------------------------------------


class ResidualStack(nn.Module):
    """`layers` units `x + (ReLU, 3x3 conv, BN, ReLU, 1x1 conv, BN)(x)`, then a ReLU."""

    def __init__(self, channels: int, hidden: int, layers: int):
        super().__init__()
        self.units = nn.ModuleList(
            nn.Sequential(
                nn.ReLU(),
                nn.Conv2d(channels, hidden, kernel_size=3, padding=1, bias=False),
                nn.BatchNorm2d(hidden),
                nn.ReLU(),
                nn.Conv2d(hidden, channels, kernel_size=1, bias=False),
                nn.BatchNorm2d(channels),
            )
            for _ in range(layers)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for unit in self.units:
            x = x + unit(x)
        return F.relu(x)


class DSTEncoder(nn.Module):
    """Two 4x4 stride-2 convs (H/4, W/4), a 3x3 conv, a residual stack, a 1x1 conv to the code dim."""

    def __init__(self, channels: int, hiddens: int, res_layers: int, res_hiddens: int, code_dim: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(channels, hiddens // 2, kernel_size=4, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(hiddens // 2, hiddens, kernel_size=4, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(hiddens, hiddens, kernel_size=3, padding=1),
            ResidualStack(hiddens, res_hiddens, res_layers),
            nn.Conv2d(hiddens, code_dim, kernel_size=1),  # the "pre-VQ" conv
        )

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """`(N, C, H, W) -> (N, code_dim, H/4, W/4)`."""
        return self.net(frames)


class DSTDecoder(nn.Module):
    """Mirror of the encoder: 3x3 conv, residual stack, two 4x4 stride-2 transposed convs."""

    def __init__(self, code_dim: int, hiddens: int, res_layers: int, res_hiddens: int, channels: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(code_dim, hiddens, kernel_size=3, padding=1),
            ResidualStack(hiddens, res_hiddens, res_layers),
            nn.ConvTranspose2d(hiddens, hiddens // 2, kernel_size=4, stride=2, padding=1),
            nn.ReLU(),
            nn.ConvTranspose2d(hiddens // 2, channels, kernel_size=4, stride=2, padding=1),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """`(N, code_dim, H/4, W/4) -> (N, C, H, W)`."""
        return self.net(z)


class VectorQuantizerEMA(nn.Module):
    """Nearest-code quantizer whose codebook follows an exponential moving average of its clusters.

    Buffers (not parameters; no gradient reaches them): `codebook (K, D)`, the running cluster
    sizes `ema_cluster_size (K,)` and the running sums of assigned vectors `ema_sum (K, D)`.
    """

    def __init__(self, num_codes: int, code_dim: int, commitment_cost: float, decay: float, epsilon: float):
        super().__init__()
        self.num_codes = num_codes
        self.commitment_cost = commitment_cost
        self.decay = decay
        self.epsilon = epsilon
        codebook = torch.randn(num_codes, code_dim)
        self.register_buffer("codebook", codebook)
        self.register_buffer("ema_cluster_size", torch.ones(num_codes))
        self.register_buffer("ema_sum", codebook.clone())

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """`z (N, D, h, w)` -> (straight-through quantized `z`, commitment loss, codebook perplexity)."""
        with torch.autocast(device_type=z.device.type, enabled=False):
            flat = z.float().permute(0, 2, 3, 1).reshape(-1, z.shape[1])  # (M, D)
            distances = (
                flat.pow(2).sum(1, keepdim=True) - 2 * flat @ self.codebook.t() + self.codebook.pow(2).sum(1)[None, :]
            )
            indices = distances.argmin(dim=1)
            one_hot = F.one_hot(indices, self.num_codes).type(flat.dtype)  # (M, K)
            quantized = self.codebook[indices]
            if self.training and torch.is_grad_enabled():
                self._ema_update(flat.detach(), one_hot)
            commitment = self.commitment_cost * F.mse_loss(flat, quantized.detach())
            # Straight-through estimator: the forward value is the code, the gradient is the identity.
            quantized = flat + (quantized - flat).detach()
            usage = one_hot.mean(dim=0)
            perplexity = torch.exp(torch.special.entr(usage).sum())
        n, d, h, w = z.shape
        quantized = quantized.reshape(n, h, w, d).permute(0, 3, 1, 2).to(z.dtype)
        return quantized, commitment, perplexity.detach()

    @torch.no_grad()
    def _ema_update(self, flat: torch.Tensor, one_hot: torch.Tensor) -> None:
        """Move every chosen code towards the mean of the vectors assigned to it."""
        self.ema_cluster_size.mul_(self.decay).add_(one_hot.sum(0), alpha=1 - self.decay)
        self.ema_sum.mul_(self.decay).add_(one_hot.t() @ flat, alpha=1 - self.decay)
        # Laplace smoothing keeps every size > 0 while preserving their total.
        total = self.ema_cluster_size.sum()
        sizes = (self.ema_cluster_size + self.epsilon) / (total + self.num_codes * self.epsilon) * total
        self.codebook.copy_(self.ema_sum / sizes[:, None])


# --- The model ---------------------------------------------------------------------------------------


class PastNet(ForecastModel):
    """PastNet: DST (VQ encoder, Inception translator, decoder) + FPG (Fourier physics guide)."""

    def __init__(
        self,
        shape: DataShape,
        *,
        embed_dim: int,
        fpg_patch: int,
        fpg_depth: int,
        fpg_mlp_ratio: float,
        afno_blocks: int,
        afno_softshrink: float,
        dst_hiddens: int,
        dst_res_layers: int,
        dst_res_hiddens: int,
        num_codes: int,
        code_dim: int,
        commitment_cost: float,
        ema_decay: float,
        ema_epsilon: float,
        vq_loss_weight: float,
        hid_T: int,
        N_T: int,
        groups: int,
        incep_ker: Sequence[int],
    ):
        super().__init__()
        self.shape = shape
        t_in, t_out, c, h, w = shape
        self.vq_loss_weight = vq_loss_weight
        self.fpg_patch = fpg_patch
        self.fpg = FourierPhysicsGuide(
            c, h, w, embed_dim, fpg_patch, fpg_depth, fpg_mlp_ratio, afno_blocks, afno_softshrink
        )
        self.encoder = DSTEncoder(c, dst_hiddens, dst_res_layers, dst_res_hiddens, code_dim)
        self.quantizer = VectorQuantizerEMA(num_codes, code_dim, commitment_cost, ema_decay, ema_epsilon)
        self.propagation = InceptionUNet(t_in * code_dim, hid_T, N_T, incep_ker, groups)
        self.decoder = DSTDecoder(code_dim, dst_hiddens, dst_res_layers, dst_res_hiddens, c)
        self.time_map = nn.Conv2d(t_in * c, t_out * c, kernel_size=1) if t_in != t_out else None

    def predict(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """`(B, T_in, C, H, W)` -> (forecast `(B, T_out, C, H, W)`, commitment loss, perplexity)."""
        b, t, c, h, w = x.shape
        frames = x.reshape(b * t, c, h, w)
        guide = self.fpg(frames)
        quantized, commitment, perplexity = self.quantizer(self.encoder(frames))
        _, d, zh, zw = quantized.shape
        latents = self.propagation(quantized.reshape(b, t * d, zh, zw))
        y = self.decoder(latents.reshape(b * t, d, zh, zw)) + guide
        y = y.reshape(b, t * c, h, w)
        if self.time_map is not None:
            y = self.time_map(y)
        return y.reshape(b, self.shape.t_out, c, h, w), commitment, perplexity

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Forecast `(B, T_in, C, H, W) -> (B, T_out, C, H, W)` in one pass."""
        return self.predict(x)[0]

    def training_loss(
        self, x: torch.Tensor, y: torch.Tensor, step: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """MSE of the forecast + `vq_loss_weight` x the VQ commitment loss; logs the codebook perplexity."""
        y_hat, commitment, perplexity = self.predict(x)
        mse = F.mse_loss(y_hat, y)
        loss = mse + self.vq_loss_weight * commitment
        return loss, {
            "mse": mse.detach(),
            "vq_commitment": commitment.detach(),
            "codebook_perplexity": perplexity,
        }


def _check_hparams(shape: DataShape, hp: dict) -> None:
    """Raise a `ConfigError` naming the first hyper-parameter or frame size PastNet cannot use."""
    positive = (
        "embed_dim", "fpg_depth", "afno_blocks", "dst_res_layers", "dst_res_hiddens", "num_codes", "code_dim",
        "groups",
    )  # fmt: skip
    for name in positive:
        value = hp[name]
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"Model 'pastnet': {name} must be a positive integer, got {value!r}.")
    for name in ("dst_hiddens", "hid_T"):
        if not isinstance(hp[name], int) or hp[name] < 2 or hp[name] % 2:
            raise ConfigError(
                f"Model 'pastnet': {name} must be an even integer >= 2 (it is halved inside the model), "
                f"got {hp[name]!r}."
            )
    if hp["N_T"] < 2:
        raise ConfigError(f"Model 'pastnet' needs N_T >= 2 (the published value is 8), got {hp['N_T']}.")
    if hp["embed_dim"] % hp["afno_blocks"]:
        raise ConfigError(
            f"Model 'pastnet': embed_dim={hp['embed_dim']} must be divisible by afno_blocks={hp['afno_blocks']} "
            "(AFNO splits the channels into equal blocks)."
        )
    if int(hp["embed_dim"] * hp["fpg_mlp_ratio"]) < 1:
        raise ConfigError(f"Model 'pastnet': fpg_mlp_ratio must be > 0, got {hp['fpg_mlp_ratio']!r}.")
    for name in ("afno_softshrink", "commitment_cost", "vq_loss_weight"):
        if not hp[name] >= 0:
            raise ConfigError(f"Model 'pastnet': {name} must be >= 0, got {hp[name]!r}.")
    if not 0 <= hp["ema_decay"] < 1:
        raise ConfigError(f"Model 'pastnet': ema_decay must be in [0, 1), got {hp['ema_decay']!r}.")
    if not hp["ema_epsilon"] > 0:
        raise ConfigError(f"Model 'pastnet': ema_epsilon must be > 0, got {hp['ema_epsilon']!r}.")
    for k in check_positive_ints("pastnet", "incep_ker", hp["incep_ker"]):
        if k % 2 == 0:
            raise ConfigError(f"Model 'pastnet': incep_ker must hold odd kernel sizes, got {k}.")
    h, w = shape.height, shape.width
    patch = hp["fpg_patch"]
    if patch is None:
        raise ConfigError(
            f"Model 'pastnet' chooses its FPG patch from {list(FPG_PATCHES)} (fpg_patch=null), but none of "
            f"them divides the frame size {h}x{w} of shape {tuple(shape)}. Use frames whose height and width "
            "are multiples of 4 (the DST encoder down-samples by 4 too), or crop/pad them."
        )
    if not isinstance(patch, int) or isinstance(patch, bool) or patch < 4 or patch % 4:
        raise ConfigError(
            f"Model 'pastnet': fpg_patch must be a multiple of 4 (the FPG head up-samples by 2, 2 and "
            f"fpg_patch/4), got {patch!r}. The published value is 16 (at 64x64); null chooses it per "
            "frame shape."
        )
    if h % patch or w % patch:  # a multiple of 4 that divides H and W: the DST's down-sampling by 4 fits too
        raise ConfigError(
            f"Model 'pastnet' cuts frames into {patch}x{patch} patches (fpg_patch={patch}), which does not "
            f"divide the frame size {h}x{w} of shape {tuple(shape)}. Choose an fpg_patch (a multiple of 4) "
            f"that divides both {h} and {w}; the DST encoder also needs frames divisible by 4."
        )


@register_model(
    "pastnet",
    family="physics-guided",
    paper_name="PastNet",
    reference_params={"10,1,64,64": 16_500_000},
)
def build_pastnet(
    shape: DataShape,
    *,
    embed_dim: int = 128,
    fpg_patch: int | None = None,
    fpg_depth: int = 1,
    fpg_mlp_ratio: float = 2.0,
    afno_blocks: int = 4,
    afno_softshrink: float = 0.0,
    dst_hiddens: int = 128,
    dst_res_layers: int = 4,
    dst_res_hiddens: int = 32,
    num_codes: int = 512,
    code_dim: int = 64,
    commitment_cost: float = 0.25,
    ema_decay: float = 0.99,
    ema_epsilon: float = 1e-5,
    vq_loss_weight: float = 1.0,
    hid_T: int = 256,
    N_T: int = 8,
    groups: int = 8,
    incep_ker: Sequence[int] = (3, 5, 7, 11),
) -> PastNet:
    """PastNet (Wu et al., 2024): VQ encoder + Inception translator + decoder, plus an AFNO Fourier guide."""
    hp = dict(locals())  # every keyword above, by name
    del hp["shape"]
    if fpg_patch is None:
        hp["fpg_patch"] = choose_fpg_patch(shape.height, shape.width)
    _check_hparams(shape, hp)
    hp["incep_ker"] = list(incep_ker)
    return PastNet(shape, **hp)
