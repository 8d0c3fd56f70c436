"""What a run's training and testing produced, as the runner hands it to the record (`records.make_record`).

These types live apart from `benchmark.run.training` so that the record schema does not depend on the
training module (and its Lightning import): `training` builds them, `records` reads them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


def still_improving(curve: list[dict[str, Any]]) -> bool | None:
    """True when the lowest validation MSE of `curve` is at its last epoch (the budget, not the model,
    ended training); None without a curve of at least two points."""
    values = [p["val_mse"] for p in curve if p.get("val_mse") is not None and math.isfinite(p["val_mse"])]
    if len(values) < 2:
        return None
    return values[-1] <= min(values)


@dataclass(kw_only=True)
class FitOutcome:
    """What training produced, besides the weights loaded into the model."""

    best_epoch: int | None
    best_val_mse: float | None
    best_checkpoint: str | None
    train_seconds: float
    epochs_run: int
    optimizer_steps: int
    eval_at: dict[str, Any] = field(default_factory=dict)
    eval_at_per_sample: dict[str, str] = field(default_factory=dict)  # epoch -> per-sample file in the run folder
    curve: list[dict[str, Any]] = field(default_factory=list)
    schedule: dict[str, Any] = field(default_factory=dict)
    resumed_from: str | None = None
    attempts: list[dict[str, Any]] = field(default_factory=list)  # `benchmark.run.resume.AttemptLog`
    is_global_zero: bool = True  # False in the other processes of a multi-process (DDP) run

    @classmethod
    def untrained(cls) -> FitOutcome:
        """The outcome for a model without parameters to train: no checkpoint, no training cost."""
        return cls(best_epoch=None, best_val_mse=None, best_checkpoint=None, train_seconds=0.0, epochs_run=0,
                   optimizer_steps=0)

    @property
    def still_improving(self) -> bool | None:
        """Whether the best validation epoch is the last one (see `still_improving`)."""
        return still_improving(self.curve)


@dataclass(kw_only=True)
class TestOutcome:
    """The test split's scores with the weights the model holds, and the inference timing."""

    __test__ = False  # not a pytest test class, despite its name

    metrics: dict[str, Any]  # as `benchmark.scoring.evaluation.evaluate` returns them
    inference_seconds: float
    inference_samples: int
    inference_samples_per_second: float
    # normalized-space per-(sample, lead) mse, mae, ssim and sample_index (`evaluation.evaluate`)
    per_sample: dict[str, Any] | None = None
    # the stored test samples (inputs, truth, prediction, sample_index) and the split's spectra
    kept: dict[str, Any] | None = None
    # by name, the test metrics of the model's part forecasts (`ForecastModel.forecast_components`)
    components: dict[str, Any] | None = None
