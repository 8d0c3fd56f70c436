"""DIFFUMA's diffusion module: a conditional DiT denoiser over single frames, and its noise schedule.

The denoiser follows the Diffusion Transformer (Peebles & Xie, "Scalable Diffusion Models with
Transformers", 2023): a frame is cut into non-overlapping `p x p` patches, each patch (all `C`
channels) is linearly embedded and gets a learned position embedding, and the tokens pass a stack
of DiT blocks. Every block is adaLN-Zero:

    shift1, scale1, gate1, shift2, scale2, gate2 = Linear(SiLU(c))            (c: the condition)
    x = x + gate1 * Attention(LayerNorm(x) * (1 + scale1) + shift1)
    x = x + gate2 * MLP(LayerNorm(x) * (1 + scale2) + shift2)

with LayerNorms without affine parameters and an MLP of ratio 4 with GELU. A final adaLN layer
maps each token back to its `p x p x C` patch. The condition is `c = TimestepEmbedder(t) +
Linear(c_context)`; the timestep embedding is sinusoidal (256 dimensions) followed by
`Linear -> SiLU -> Linear`.

Initialisation (as in DiT): linear layers Xavier-uniform with zero bias, the timestep MLP and the
context projection N(0, 0.02) (DiT initialises its class embedding, the condition it adds to the
timestep embedding, as N(0, 0.02) too), the position embedding truncated N(0, 0.02) (learned, the
paper's wording, where DiT uses fixed sin-cos), and -- the point of adaLN-Zero -- every
modulation linear and the final projection zero, so at initialisation every block is the
identity and the denoiser outputs exactly 0. With the context projection at N(0, 0.02) the
condition's context part starts at 0.6-4x the RMS of its timestep part (measured at our smoke,
quick and paper sizes); a Xavier projection made it 6-26x, which leaves the network little
signal to tell `t = 0` (the residual) from `t >= 1` (denoising) apart.

Noise schedule: DDPM's linear betas from 1e-4 to 0.02 over 1000 steps (DiT's default);
`x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps`.

Choices (the paper is silent):
- frames whose size is not a multiple of `p` are zero-padded at the bottom/right before patching
  and the output is cropped back, so any patch size works with any frame size;
- attention is plain multi-head self-attention with a biased `qkv` projection (DiT's), computed
  with `scaled_dot_product_attention`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

NUM_TIMESTEPS = 1000
BETA_START, BETA_END = 1e-4, 0.02
FREQUENCY_EMBEDDING_SIZE = 256


def linear_beta_schedule(num_steps: int = NUM_TIMESTEPS) -> torch.Tensor:
    """`abar_t = prod_{s <= t} (1 - beta_s)` for DDPM's linear betas, as float64, shape `(num_steps,)`."""
    betas = torch.linspace(BETA_START, BETA_END, num_steps, dtype=torch.float64)
    return torch.cumprod(1.0 - betas, dim=0)


def add_noise(x0: torch.Tensor, eps: torch.Tensor, t: torch.Tensor, alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """`x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps` with one `t` per leading index of `x0`."""
    abar = alphas_cumprod[t].to(x0.dtype).view(-1, *([1] * (x0.dim() - 1)))
    return abar.sqrt() * x0 + (1.0 - abar).sqrt() * eps


def timestep_embedding(t: torch.Tensor, dim: int = FREQUENCY_EMBEDDING_SIZE, max_period: float = 10_000.0):
    """Sinusoidal embedding `(N,) -> (N, dim)`: cosines then sines of `t` at geometric frequencies."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    angles = t.float()[:, None] * freqs[None]
    embedding = torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1)
    if dim % 2:
        embedding = F.pad(embedding, (0, 1))
    return embedding


class TimestepEmbedder(nn.Module):
    """Diffusion step `t` -> vector of width `hidden`: sinusoidal features, then Linear-SiLU-Linear."""

    def __init__(self, hidden: int, frequency_size: int = FREQUENCY_EMBEDDING_SIZE):
        super().__init__()
        self.frequency_size = frequency_size
        self.mlp = nn.Sequential(nn.Linear(frequency_size, hidden), nn.SiLU(), nn.Linear(hidden, hidden))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        """`(N,) -> (N, hidden)`."""
        return self.mlp(timestep_embedding(t, self.frequency_size))


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """adaLN: `x * (1 + scale) + shift`, one shift/scale per sample broadcast over the tokens."""
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


class Attention(nn.Module):
    """Multi-head self-attention over the tokens of one frame."""

    def __init__(self, hidden: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.proj = nn.Linear(hidden, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """`(N, tokens, hidden) -> (N, tokens, hidden)`."""
        n, length, hidden = x.shape
        qkv = self.qkv(x).reshape(n, length, 3, self.num_heads, hidden // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each (N, heads, tokens, head_dim)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(n, length, hidden))


class DiTBlock(nn.Module):
    """A DiT block with adaLN-Zero conditioning: attention and MLP, each modulated and gated by `c`."""

    def __init__(self, hidden: int, num_heads: int, mlp_ratio: float = 4.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(hidden, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(hidden, num_heads)
        self.norm2 = nn.LayerNorm(hidden, elementwise_affine=False, eps=1e-6)
        mlp_hidden = int(hidden * mlp_ratio)
        self.mlp = nn.Sequential(
            nn.Linear(hidden, mlp_hidden), nn.GELU(approximate="tanh"), nn.Linear(mlp_hidden, hidden)
        )
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden, 6 * hidden))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """`x: (N, tokens, hidden)`, `c: (N, hidden)` -> `(N, tokens, hidden)`."""
        shift1, scale1, gate1, shift2, scale2, gate2 = self.adaLN_modulation(c).chunk(6, dim=-1)
        x = x + gate1.unsqueeze(1) * self.attn(modulate(self.norm1(x), shift1, scale1))
        x = x + gate2.unsqueeze(1) * self.mlp(modulate(self.norm2(x), shift2, scale2))
        return x


class FinalLayer(nn.Module):
    """adaLN-modulated LayerNorm, then a linear map of each token to its `patch x patch x C` pixels."""

    def __init__(self, hidden: int, patch_size: int, channels: int):
        super().__init__()
        self.norm = nn.LayerNorm(hidden, elementwise_affine=False, eps=1e-6)
        self.linear = nn.Linear(hidden, patch_size * patch_size * channels)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden, 2 * hidden))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """`(N, tokens, hidden), (N, hidden) -> (N, tokens, patch * patch * C)`."""
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=-1)
        return self.linear(modulate(self.norm(x), shift, scale))


class FrameDiT(nn.Module):
    """Conditional DiT denoiser of single frames: `(frame, t, context) -> eps_hat` of the frame's shape.

    Args:
        channels, height, width: the frame shape `(C, H, W)`.
        context_dim: width of the per-frame context vector (DIFFUMA's pooled Mamba features).
        hidden, depth, num_heads, mlp_ratio: transformer width, number of DiT blocks, heads, MLP ratio.
        patch_size: side of the square patches (frames are zero-padded up to a multiple of it).
        grad_checkpoint: recompute each DiT block's activations in the backward pass instead of
            storing them (activation checkpointing; same values and gradients, less memory).
    """

    def __init__(
        self,
        channels: int,
        height: int,
        width: int,
        *,
        context_dim: int,
        hidden: int,
        depth: int,
        num_heads: int,
        patch_size: int,
        mlp_ratio: float = 4.0,
        grad_checkpoint: bool = False,
    ):
        super().__init__()
        self.channels, self.height, self.width, self.patch_size = channels, height, width, patch_size
        self.grad_checkpoint = grad_checkpoint
        self.grid = (math.ceil(height / patch_size), math.ceil(width / patch_size))
        self.patch_embed = nn.Conv2d(channels, hidden, kernel_size=patch_size, stride=patch_size)
        self.pos_embed = nn.Parameter(torch.zeros(1, self.grid[0] * self.grid[1], hidden))
        self.t_embedder = TimestepEmbedder(hidden)
        self.context_proj = nn.Linear(context_dim, hidden)
        self.blocks = nn.ModuleList(DiTBlock(hidden, num_heads, mlp_ratio) for _ in range(depth))
        self.final_layer = FinalLayer(hidden, patch_size, channels)
        self.initialize_weights()

    def initialize_weights(self) -> None:
        """DiT's initialisation; the zero modulation and zero final layer make the output exactly 0."""

        def basic_init(module: nn.Module) -> None:
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

        self.apply(basic_init)
        # The patch embedding is a linear map of the flattened patch: initialise it like one.
        nn.init.xavier_uniform_(self.patch_embed.weight.view(self.patch_embed.weight.shape[0], -1))
        nn.init.zeros_(self.patch_embed.bias)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.normal_(self.t_embedder.mlp[0].weight, std=0.02)
        nn.init.normal_(self.t_embedder.mlp[2].weight, std=0.02)
        # Like DiT's condition embeddings: with Xavier the projected context would swamp the
        # timestep embedding (RMS ~0.01-0.04 at init), see the module docstring.
        nn.init.normal_(self.context_proj.weight, std=0.02)
        for block in self.blocks:
            nn.init.zeros_(block.adaLN_modulation[-1].weight)
            nn.init.zeros_(block.adaLN_modulation[-1].bias)
        nn.init.zeros_(self.final_layer.adaLN_modulation[-1].weight)
        nn.init.zeros_(self.final_layer.adaLN_modulation[-1].bias)
        nn.init.zeros_(self.final_layer.linear.weight)
        nn.init.zeros_(self.final_layer.linear.bias)

    def unpatchify(self, tokens: torch.Tensor) -> torch.Tensor:
        """`(N, gh * gw, p * p * C) -> (N, C, H, W)`, cropping the padding."""
        n, p, c = tokens.shape[0], self.patch_size, self.channels
        gh, gw = self.grid
        x = tokens.reshape(n, gh, gw, p, p, c).permute(0, 5, 1, 3, 2, 4)
        return x.reshape(n, c, gh * p, gw * p)[:, :, : self.height, : self.width]

    def forward(self, x: torch.Tensor, t: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """`x: (N, C, H, W)`, `t: (N,)` integer steps, `context: (N, context_dim)` -> `(N, C, H, W)`."""
        p = self.patch_size
        x = F.pad(x, (0, self.grid[1] * p - self.width, 0, self.grid[0] * p - self.height))
        x = self.patch_embed(x).flatten(2).transpose(1, 2) + self.pos_embed  # (N, tokens, hidden)
        c = self.t_embedder(t) + self.context_proj(context)
        for block in self.blocks:
            if self.grad_checkpoint and torch.is_grad_enabled():
                # keep only each block's inputs; its attention and MLP activations are recomputed in backward
                x = checkpoint(block, x, c, use_reentrant=False)
            else:
                x = block(x, c)
        return self.unpatchify(self.final_layer(x, c))
