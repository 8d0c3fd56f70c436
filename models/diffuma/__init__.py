"""DIFFUMA (arXiv 2507.06738): the dual-path Mamba + diffusion forecaster and its ablations.

Importing this package registers `diffuma`, `diffuma-mamba` and `diffuma-randcond`.
- `mamba`: the paper's bidirectional Mamba block and its selective scan (mamba_ssm's CUDA kernel,
  our lean scan or mambapy's pure-PyTorch parallel scan, chosen by the device of the input);
- `scan`: the lean selective scan (exact recurrence, states recomputed in backward; the CPU default);
- `diffusion`: the DiT denoiser, timestep embedding and noise schedule;
- `model`: the spatial encoder/decoder, the DIFFUMA model, its training loss, one config
  dataclass per variant and the builders.
"""

from models.diffuma.model import (
    DIFFUMA,
    DiffumaConfig,
    MambaPathConfig,
    RandCondConfig,
    build_diffuma,
    build_diffuma_mamba,
    build_diffuma_randcond,
)

__all__ = [
    "DIFFUMA",
    "DiffumaConfig",
    "MambaPathConfig",
    "RandCondConfig",
    "build_diffuma",
    "build_diffuma_mamba",
    "build_diffuma_randcond",
]
