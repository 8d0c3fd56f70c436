"""DIFFUMA (arXiv 2507.06738): the dual-path Mamba + diffusion forecaster and its ablations.

Importing this package registers `diffuma`, `diffuma-mamba` and `diffuma-randcond`.
- `mamba`: the bidirectional Mamba block and the selective-scan backend (mamba_ssm or mambapy);
- `diffusion`: the DiT denoiser, timestep embedding and noise schedule;
- `model`: the spatial encoder/decoder, the DIFFUMA model, its training loss and the builders.
"""

from models.diffuma.model import DIFFUMA, build_diffuma, build_diffuma_mamba, build_diffuma_randcond

__all__ = ["DIFFUMA", "build_diffuma", "build_diffuma_mamba", "build_diffuma_randcond"]
