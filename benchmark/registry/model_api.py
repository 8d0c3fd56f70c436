"""The model contract shared by every registered model.

A model is an `nn.Module` built from a `DataShape` and keyword hyper-parameters.
`forward(x)` maps `x: (B, T_in, C, H, W)` to `y_hat: (B, T_out, C, H, W)`.
A model whose training objective is more than MSE on `forward` (scheduled sampling, auxiliary
losses, diffusion) overrides `training_loss`; the trainer never looks inside a model.
A model that forecasts from the training climatology of the target frames' valid times (the
`climatology` reference) sets `uses_climatology = True` and is called as
`forward(x, climatology=c)`, `c` normalized `(B, T_out, C, H, W)`; `forecast` makes either call.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from benchmark.core.errors import ConfigError


class ModelConfig:
    """Base of the models' frozen config dataclasses: validation on construction, errors that name the model.

    A subclass is a `@dataclass(frozen=True)` holding a model's hyper-parameters with the published
    settings as defaults, sets `model_name`, and implements `validate()` with `require(...)` calls.
    """

    model_name: ClassVar[str] = "model"

    def __post_init__(self) -> None:
        self.validate()

    def require(self, condition: bool, message: str) -> None:
        """Raise a `ConfigError` naming the model unless `condition` holds."""
        if not condition:
            raise ConfigError(f"Model {self.model_name!r}: {message}")


class ForecastModel(nn.Module):
    """Base class for forecasting models: subclasses implement `forward`."""

    uses_climatology: ClassVar[bool] = False  # True: forward(x, climatology=...) (see the module docstring)

    def training_loss(
        self, x: torch.Tensor, y: torch.Tensor, step: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Loss to minimise on one batch at optimizer step `step`, and scalars to log.

        The default is the mean squared error of `forward(x)` against `y`.
        """
        y_hat = self(x)
        loss = F.mse_loss(y_hat, y)
        return loss, {"mse": loss.detach()}

    def forecast_components(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The forecast `forward(x)` and, by name, forecasts of the model's own parts from the same pass.

        Each part is a `(B, T_out, C, H, W)` forecast the model computes on the way to its output
        (DIFFUMA: `y_mamba`, its Mamba path's forecast before the diffusion residual); evaluation
        scores each like the forecast and the run record keeps them under `components`, so what a
        part adds is measured in every run. The default, for models without such parts, is
        `(forward(x), {})`.
        """
        return self(x), {}

    def plan_schedule(self, total_steps: int) -> dict[str, Any]:
        """Fix any step-based training schedule for a run of `total_steps` optimizer steps.

        The trainer calls this once before training (and again, with the same value, on resume);
        `--dry-run` calls it too. A model whose objective changes with the step (scheduled
        sampling, reverse scheduled sampling) resolves its schedule here and returns it described
        in this run's optimizer steps, e.g. `{"sampling_eta_zero_at_step": 1500}`; the dict is
        stored in the run record. The default, for models without such a schedule, is `{}`.
        """
        return {}

    def selective_scan_backend(self, device: torch.device | str) -> str | None:
        """The selective-scan backend this model runs on `device` (None: it has no selective scan).

        Raises `benchmark.core.errors.ConfigError` when the model was configured for a backend that
        cannot run on `device` (for example `mamba_ssm`, a CUDA kernel, on a CPU).
        """
        return None


def forecast(model: nn.Module, x: torch.Tensor, climatology: torch.Tensor | None = None) -> torch.Tensor:
    """`model(x)`, or `model(x, climatology=climatology)` for a model with `uses_climatology`.

    `climatology`: the normalized climatology of the target frames, `(B, T_out, C, H, W)`; a model that
    uses it gets a ValueError when there is none (a dataset without a climatology).
    """
    if not getattr(model, "uses_climatology", False):
        return model(x)
    if climatology is None:
        raise ValueError("this model forecasts the climatology of the target frames, but none was given (the "
                         "dataset has no climatology)")
    return model(x, climatology=climatology.to(device=x.device, dtype=x.dtype))


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters of `model`."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
