"""SimVP (IncepU): a purely convolutional encoder -> translator -> decoder video predictor.

Gao et al., "SimVP: Simpler yet Better Video Prediction", CVPR 2022. No recurrence: all input
frames are predicted at once.

- **Spatial encoder**: `N_S` blocks of conv + GroupNorm(2) + LeakyReLU(0.2) applied to every frame
  independently, width `hid_S`; every second block (the 2nd, 4th, ...) halves H and W with stride 2.
- **Translator**: the `T_in` frame latents are stacked on channels (`T_in * hid_S`) and pass a
  U-Net of Inception blocks: `N_T` blocks down, `N_T` blocks up, the output of each down block but
  the last concatenated to the input of the matching up block. An Inception block is a 1x1 conv to
  `hid_T // 2` channels followed by parallel grouped convs (kernels 3, 5, 7, 11, `groups=8`,
  each with GroupNorm + LeakyReLU(0.2)) whose outputs are summed.
- **Spatial decoder**: mirrors the encoder (up-sampling by a conv to 4x channels + pixel shuffle);
  the output of the first encoder block is added to the input of the last decoder block; a 1x1
  conv reads out `C` channels per frame.

Published settings (OpenSTL, WeatherBench 5.625 deg, "IncepU"), the builder's defaults:
`hid_S=32, N_S=2, hid_T=256, N_T=8`, Inception kernels (3, 5, 7, 11), `groups=8`, 3x3 spatial
kernels, loss MSE. Parameters at shape (12, 1, 32, 64): 14,666,017 (OpenSTL: 14.67M).

Implementation notes:
- `N_T=8` means 8 down and 8 up Inception blocks (16 in all), as in the reference code; the
  additive encoder->decoder skip (not a concatenation) is also the reference's, and is what makes
  the count match 14.67M.
- Spatial encoder/decoder convs start from a truncated normal (std 0.02) with zero bias, as in
  the reference; the rest uses PyTorch's default initialisation.
- LeakyReLU(0.2) in the spatial encoder/decoder follows the SimVP paper (OpenSTL v1.0 uses SiLU
  there; no parameter depends on it).
- OpenSTL's weather config sets `drop_path=0.1`, but its IncepU translator never uses it (only the
  MetaFormer translators such as gSTA do), and an Inception block has no residual branch to drop.
  We therefore build no stochastic depth and expose no `drop_path` keyword.
- *choice*: when `T_out != T_in`, a 1x1 conv over the stacked output frames (`T_in*C -> T_out*C`
  channels) maps the `T_in` decoded frames to `T_out` (OpenSTL instead truncates or re-runs the
  model). It is only built when the lengths differ, so the published shape's count is unchanged.
- *choice*: an Inception branch falls back to `groups=1` when its channel counts are not divisible by
  `groups` (only reachable with non-published widths).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from baselines.recurrent import check_positive_ints
from benchmark.core.errors import ConfigError
from benchmark.registry import register_model
from benchmark.registry.model_api import ForecastModel
from benchmark.registry.shapes import DataShape


class ConvNormAct(nn.Module):
    """Conv (optionally stride-2 down, or pixel-shuffle up by 2) + GroupNorm(2) + LeakyReLU(0.2)."""

    def __init__(
        self, c_in: int, c_out: int, kernel: int, *, downsample: bool = False, upsample: bool = False
    ):
        super().__init__()
        if upsample:
            conv = nn.Conv2d(c_in, 4 * c_out, kernel, padding=kernel // 2)
            self.conv = nn.Sequential(conv, nn.PixelShuffle(2))
        else:
            conv = nn.Conv2d(c_in, c_out, kernel, stride=2 if downsample else 1, padding=kernel // 2)
            self.conv = conv
        nn.init.trunc_normal_(conv.weight, std=0.02)
        nn.init.zeros_(conv.bias)
        self.norm = nn.GroupNorm(2, c_out)
        self.act = nn.LeakyReLU(0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """`(N, c_in, H, W) -> (N, c_out, H', W')`."""
        return self.act(self.norm(self.conv(x)))


def _downsamples(n_s: int) -> list[bool]:
    """Which of the `N_S` encoder blocks down-sample: the 2nd, 4th, ... (N_S=2 -> [False, True])."""
    return [k % 2 == 1 for k in range(n_s)]


class SpatialEncoder(nn.Module):
    """Per-frame conv encoder; returns the latent and the first block's output (for the skip)."""

    def __init__(self, c_in: int, hid: int, n_s: int, kernel: int):
        super().__init__()
        widths = [c_in] + [hid] * n_s
        self.blocks = nn.ModuleList(
            ConvNormAct(widths[k], hid, kernel, downsample=down) for k, down in enumerate(_downsamples(n_s))
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """`(N, C, H, W) -> (latent (N, hid, h, w), skip (N, hid, H, W))`."""
        skip = self.blocks[0](x)
        z = skip
        for block in self.blocks[1:]:
            z = block(z)
        return z, skip


class SpatialDecoder(nn.Module):
    """Mirror of the encoder; adds the encoder's first-block output before its last block."""

    def __init__(self, hid: int, c_out: int, n_s: int, kernel: int):
        super().__init__()
        self.blocks = nn.ModuleList(
            ConvNormAct(hid, hid, kernel, upsample=up) for up in reversed(_downsamples(n_s))
        )
        self.readout = nn.Conv2d(hid, c_out, kernel_size=1)

    def forward(self, z: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        """`(N, hid, h, w), (N, hid, H, W) -> (N, c_out, H, W)`."""
        for block in self.blocks[:-1]:
            z = block(z)
        return self.readout(self.blocks[-1](z + skip))


class InceptionBlock(nn.Module):
    """1x1 conv, then parallel grouped convs (each + GroupNorm + LeakyReLU) of several kernels, summed."""

    def __init__(self, c_in: int, c_hid: int, c_out: int, kernels: Sequence[int], groups: int):
        super().__init__()
        self.reduce = nn.Conv2d(c_in, c_hid, kernel_size=1)
        g = groups if c_hid % groups == 0 and c_out % groups == 0 else 1
        self.branches = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(c_hid, c_out, k, padding=k // 2, groups=g),
                nn.GroupNorm(g, c_out),
                nn.LeakyReLU(0.2),
            )
            for k in kernels
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """`(B, c_in, h, w) -> (B, c_out, h, w)`."""
        x = self.reduce(x)
        return sum(branch(x) for branch in self.branches)


class InceptionUNet(nn.Module):
    """The translator: `n_t` Inception blocks down, `n_t` up, U-Net skips by concatenation."""

    def __init__(self, c_in: int, hid: int, n_t: int, kernels: Sequence[int], groups: int):
        super().__init__()
        half = hid // 2
        self.down = nn.ModuleList(
            [InceptionBlock(c_in, half, hid, kernels, groups)]
            + [InceptionBlock(hid, half, hid, kernels, groups) for _ in range(n_t - 1)]
        )
        self.up = nn.ModuleList(
            [InceptionBlock(hid, half, hid, kernels, groups)]
            + [InceptionBlock(2 * hid, half, hid, kernels, groups) for _ in range(n_t - 2)]
            + [InceptionBlock(2 * hid, half, c_in, kernels, groups)]
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """`(B, c_in, h, w) -> (B, c_in, h, w)`."""
        skips = []
        for block in self.down:
            z = block(z)
            skips.append(z)
        # The last down block's output feeds the first up block directly, so it is not a skip.
        skips.pop()
        z = self.up[0](z)
        for block in self.up[1:]:
            z = block(torch.cat([z, skips.pop()], dim=1))
        return z


class SimVP(ForecastModel):
    """SimVP with the Inception-U-Net (IncepU) translator."""

    def __init__(
        self,
        shape: DataShape,
        hid_S: int,
        hid_T: int,
        N_S: int,
        N_T: int,
        groups: int,
        incep_ker: Sequence[int],
        spatio_kernel_enc: int,
        spatio_kernel_dec: int,
    ):
        super().__init__()
        self.shape = shape
        t_in, t_out, c = shape.t_in, shape.t_out, shape.channels
        self.encoder = SpatialEncoder(c, hid_S, N_S, spatio_kernel_enc)
        self.translator = InceptionUNet(t_in * hid_S, hid_T, N_T, incep_ker, groups)
        self.decoder = SpatialDecoder(hid_S, c, N_S, spatio_kernel_dec)
        self.time_map = nn.Conv2d(t_in * c, t_out * c, kernel_size=1) if t_in != t_out else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Forecast `(B, T_in, C, H, W) -> (B, T_out, C, H, W)` in one pass."""
        b, t, c, h, w = x.shape
        z, skip = self.encoder(x.reshape(b * t, c, h, w))
        _, hid, zh, zw = z.shape
        z = self.translator(z.reshape(b, t * hid, zh, zw))
        y = self.decoder(z.reshape(b * t, hid, zh, zw), skip)
        y = y.reshape(b, t * c, h, w)
        if self.time_map is not None:
            y = self.time_map(y)
        return y.reshape(b, self.shape.t_out, c, h, w)


@register_model(
    "simvp",
    family="cnn",
    paper_name="SimVP",
    reference_params={"12,1,32,64": 14_670_000},
)
def build_simvp(
    shape: DataShape,
    *,
    hid_S: int = 32,
    hid_T: int = 256,
    N_S: int = 2,
    N_T: int = 8,
    groups: int = 8,
    incep_ker: Sequence[int] = (3, 5, 7, 11),
    spatio_kernel_enc: int = 3,
    spatio_kernel_dec: int = 3,
) -> SimVP:
    """SimVP (Gao et al., 2022), IncepU translator: conv encoder, Inception U-Net, conv decoder."""
    for name, value in (("hid_S", hid_S), ("hid_T", hid_T)):
        if value < 2 or value % 2:
            raise ConfigError(
                f"Model 'simvp': {name} must be an even integer >= 2 (GroupNorm with 2 groups / a "
                f"{name} // 2 bottleneck), got {value}."
            )
    if N_S < 1 or N_T < 2 or groups < 1:
        raise ConfigError(
            f"Model 'simvp' needs N_S >= 1, N_T >= 2 and groups >= 1, got N_S={N_S}, N_T={N_T}, "
            f"groups={groups}. The published values are N_S=2, N_T=8, groups=8."
        )
    kernels = check_positive_ints("simvp", "incep_ker", incep_ker)
    for name, k in [("incep_ker", k) for k in kernels] + [
        ("spatio_kernel_enc", spatio_kernel_enc),
        ("spatio_kernel_dec", spatio_kernel_dec),
    ]:
        if k < 1 or k % 2 == 0:
            raise ConfigError(f"Model 'simvp': {name} must hold odd kernel sizes, got {k}.")
    factor = 2 ** (N_S // 2)
    if shape.height % factor or shape.width % factor:
        raise ConfigError(
            f"Model 'simvp' with N_S={N_S} down-samples frames by {factor}, which does not divide the "
            f"frame size {shape.height}x{shape.width} of shape {tuple(shape)}. Use frames whose height "
            f"and width are multiples of {factor}, or a smaller N_S (N_S=2 halves once, N_S=1 never)."
        )
    return SimVP(shape, hid_S, hid_T, N_S, N_T, groups, kernels, spatio_kernel_enc, spatio_kernel_dec)
