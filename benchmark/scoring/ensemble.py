"""Ensemble scores: a forecaster scored by several forecasts of the same case (DIFFUMA's noise draws).

Members have shape `(M, B, T, C, H, W)`, the truth `(B, T, C, H, W)`; everything is computed in
float64. Per lead time, in normalized and physical space (as `benchmark.scoring.metrics`), means over
(sample, channel, lat, lon) with no latitude weighting, like MAE, so that CRPS and MAE compare:

- **fair CRPS** (ensemble-size unbiased; Ferro 2014, "Fair scores for ensemble forecasts", QJRMS
  140; Zamo & Naveau 2018): `mean_i |x_i - y| - sum_{i,j} |x_i - x_j| / (2 M (M - 1))`. For one
  member the second term is taken as 0, so the CRPS of a deterministic forecast is its MAE (the
  `crps` column of a deterministic model is its MAE).
- **ensemble-mean MSE** `mean (xbar - y)^2` and its RMSE.
- **spread** `sqrt(mean s^2)`, `s^2` the unbiased (M - 1) variance over members, and the
  **spread-skill ratio** `sqrt((M + 1) / M) * spread / RMSE(ensemble mean)`: 1 for a reliable
  ensemble of any size (the (M + 1) / M correction of Fortin et al. 2014, "Why should ensemble
  spread match the RMSE of the ensemble mean?", J. Hydrometeorology 15). Over all leads: from the
  mean variance and the mean MSE of the leads. Needs M >= 2.
- **rank histogram** (Talagrand): the rank of the truth among the members at every pixel, the
  number of members strictly below it (0..M), counted over all pixels; flat for a reliable
  ensemble, U-shaped when it is under-dispersed. The same in both spaces (ranks are unchanged by
  the per-channel affine denormalization), so stored once.
- **detail ratio** (`benchmark.scoring.spectra`) of the members (their spectra averaged) and of the
  ensemble mean against the truth: averaging members blurs, the members themselves should not.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from benchmark.core.atomic import atomic_write
from benchmark.core.errors import BenchError
from benchmark.data.base import Normalizer
from benchmark.scoring.spectra import SpectrumAccumulator

SPACES = ("normalized", "physical")
MEMBERS_NAME = "ensemble_members.npz"
MEMBER_ARRAYS = ("truth", "prediction", "members", "sample_index")
SCORES = ("crps", "ens_mse", "ens_rmse", "spread", "spread_skill")

__all__ = ["EnsembleAccumulator", "evaluate_ensemble", "fair_crps", "rank_counts", "spread_skill_ratio",
           "write_members"]


def _check_members(members: torch.Tensor, target: torch.Tensor) -> None:
    if members.shape[1:] != target.shape:
        raise ValueError(f"members of shape {tuple(members.shape)} do not match targets of shape "
                         f"{tuple(target.shape)}: expected (M, *target.shape)")


def fair_crps(members: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Fair CRPS at every point: `members (M, ...)`, `target (...)` -> `(...)` float64 (module docstring)."""
    _check_members(members, target)
    x, y = members.to(torch.float64), target.to(torch.float64)
    m = x.shape[0]
    skill = (x - y).abs().mean(dim=0)
    if m == 1:
        return skill
    # sum_{i,j} |x_i - x_j| = 2 sum_k (2k - M + 1) x_(k) over the sorted members (k = 0 .. M-1)
    ordered = x.sort(dim=0).values
    weights = (2 * torch.arange(m, dtype=torch.float64, device=x.device) - m + 1).view(-1, *[1] * (x.dim() - 1))
    pair_sum = 2 * (weights * ordered).sum(dim=0)
    return skill - pair_sum / (2 * m * (m - 1))


def rank_counts(members: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Rank-histogram counts: how often 0..M members lie strictly below the truth, `(M + 1,)` int64."""
    _check_members(members, target)
    ranks = (members < target.unsqueeze(0)).sum(dim=0)
    return torch.bincount(ranks.flatten().cpu(), minlength=members.shape[0] + 1)


def spread_skill_ratio(variance: float, mse: float, members: int) -> float | None:
    """`sqrt((M + 1) / M * variance / mse)` (Fortin et al. 2014); None when `mse` is 0 or M < 2."""
    if members < 2 or not mse > 0:
        return None
    return math.sqrt((members + 1) / members * variance / mse)


class EnsembleAccumulator:
    """Sums of the ensemble scores of batches of `(M, B, T, C, H, W)` members against `(B, T, C, H, W)` truths."""

    def __init__(self, t_out: int, normalizer: Normalizer, spectrum_kind: str, members: int) -> None:
        if members < 2:
            raise ValueError(f"an ensemble needs at least 2 members for its spread, got {members}")
        self.t_out, self.normalizer, self.members = int(t_out), normalizer, int(members)
        self.count = 0
        self.sums = {space: {name: torch.zeros(self.t_out, dtype=torch.float64) for name in ("crps", "ens_mse", "var")}
                     for space in SPACES}
        self.ranks = torch.zeros(self.t_out, self.members + 1, dtype=torch.int64)
        self.member_spectrum = SpectrumAccumulator(spectrum_kind)
        self.mean_spectrum = SpectrumAccumulator(spectrum_kind)

    @torch.no_grad()
    def update(self, members: torch.Tensor, target: torch.Tensor) -> None:
        """Add one batch: normalized `members (M, B, T, C, H, W)` and `target (B, T, C, H, W)`."""
        _check_members(members, target)
        if members.shape[0] != self.members or target.shape[1] != self.t_out:
            raise ValueError(f"expected {self.members} members of {self.t_out} frames, "
                             f"got shape {tuple(members.shape)}")
        if not bool(torch.isfinite(members).all()):
            raise ValueError(f"the ensemble holds non-finite values (NaN or inf), shape {tuple(members.shape)}")
        members, target = members.to(torch.float64), target.to(torch.float64)
        mean = members.mean(dim=0)
        for t in range(self.t_out):
            self.ranks[t] += rank_counts(members[:, :, t], target[:, t])
        self.member_spectrum.update(members.flatten(0, 1), target.repeat(self.members, 1, 1, 1, 1))
        self.mean_spectrum.update(mean, target)
        pairs = {"normalized": (members, target),
                 "physical": (self.normalizer.denormalize(members), self.normalizer.denormalize(target))}
        for space, (x, y) in pairs.items():
            sums = self.sums[space]
            sums["crps"] += fair_crps(x, y).mean(dim=(-3, -2, -1)).sum(dim=0).cpu()
            sums["ens_mse"] += (x.mean(dim=0) - y).square().mean(dim=(-3, -2, -1)).sum(dim=0).cpu()
            sums["var"] += x.var(dim=0, correction=1).mean(dim=(-3, -2, -1)).sum(dim=0).cpu()
        self.count += target.shape[0]

    def compute(self) -> dict[str, Any]:
        """Per space the aggregate scores and `per_lead` lists; the rank histogram; the detail ratios."""
        if self.count == 0:
            raise ValueError("no samples were scored: EnsembleAccumulator.update was never called")
        result: dict[str, Any] = {"members": self.members, "count": self.count}
        for space in SPACES:
            lead = {name: (values / self.count).tolist() for name, values in self.sums[space].items()}
            per_lead = {
                "crps": lead["crps"],
                "ens_mse": lead["ens_mse"],
                "ens_rmse": [math.sqrt(v) for v in lead["ens_mse"]],
                "spread": [math.sqrt(v) for v in lead["var"]],
                "spread_skill": [spread_skill_ratio(v, e, self.members) for v, e in zip(lead["var"], lead["ens_mse"],
                                                                                        strict=True)],
            }
            variance, mse = float(np.mean(lead["var"])), float(np.mean(lead["ens_mse"]))
            result[space] = {"crps": float(np.mean(lead["crps"])), "ens_mse": mse, "ens_rmse": math.sqrt(mse),
                             "spread": math.sqrt(variance),
                             "spread_skill": spread_skill_ratio(variance, mse, self.members), "per_lead": per_lead}
        result["rank_histogram"] = {"counts": self.ranks.sum(dim=0).tolist(), "per_lead": self.ranks.tolist()}
        members_overall, members_lead = self.member_spectrum.detail_ratios()
        mean_overall, mean_lead = self.mean_spectrum.detail_ratios()
        result["detail_ratio"] = {"members": members_overall, "mean": mean_overall,
                                  "per_lead": {"members": members_lead, "mean": mean_lead}}
        return result


@torch.no_grad()
def evaluate_ensemble(
    model: torch.nn.Module,
    loader: DataLoader,
    normalizer: Normalizer,
    spectrum_kind: str,
    members: int,
    *,
    seed: int = 0,
    device: torch.device | str = "cpu",
    limit_batches: int | None = None,
    model_name: str = "model",
    keep: int | None = None,
    kept_out: dict[str, np.ndarray] | None = None,
    **sample_options: Any,
) -> dict[str, Any]:
    """Score `model.sample_ensemble(x, members, generator, **sample_options)` over `loader`.

    The generator (CPU) is seeded with `seed` once, so the same run, seed and settings give the same
    members. Returns `EnsembleAccumulator.compute()` plus `seed`, the options, and the seconds spent
    in sampling (`sample_seconds`, forward passes only) and in all (`seconds`, scoring included).
    With `keep` (a position in the loader's order) and `kept_out`, that sample's normalized `truth`
    and single-pass `prediction` `(T, C, H, W)`, `members` `(M, T, C, H, W)` and `sample_index` go
    into `kept_out` (the single pass is one extra forward pass of that batch, not timed).
    """
    if not callable(getattr(model, "sample_ensemble", None)):
        raise BenchError(f"{model_name} forecasts one deterministic sequence: it has no sample_ensemble method, so "
                         "it cannot be scored as an ensemble (its CRPS is its MAE, in every table).")
    device = torch.device(device)
    generator = torch.Generator().manual_seed(int(seed))
    was_training = model.training
    model.eval()
    accumulator: EnsembleAccumulator | None = None
    start, sample_seconds, seen = time.perf_counter(), 0.0, 0
    try:
        for index, (x, y) in enumerate(loader):
            if limit_batches is not None and index >= limit_batches:
                break
            x, y = x.to(device), y.to(device)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            began = time.perf_counter()
            ensemble = model.sample_ensemble(x, members, generator=generator, **sample_options)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            sample_seconds += time.perf_counter() - began
            if keep is not None and kept_out is not None and seen <= keep < seen + x.shape[0]:
                offset = keep - seen
                kept_out.update({"truth": y[offset].float().cpu().numpy(),
                                 "prediction": model(x[offset:offset + 1])[0].float().cpu().numpy(),
                                 "members": ensemble[:, offset].float().cpu().numpy(),
                                 "sample_index": np.asarray(keep, dtype=np.int64)})
            seen += x.shape[0]
            if accumulator is None:
                accumulator = EnsembleAccumulator(y.shape[1], normalizer, spectrum_kind, members)
            try:
                accumulator.update(ensemble.float(), y.float())
            except ValueError as error:
                raise BenchError(f"Scoring the ensemble of {model_name} failed: {error}.") from None
    finally:
        model.train(was_training)
    if accumulator is None:
        raise BenchError(f"The test split for {model_name} is empty: no window fits in it.")
    return {**accumulator.compute(), "seed": int(seed), "options": dict(sample_options),
            "sample_seconds": sample_seconds, "seconds": time.perf_counter() - start}


def write_members(run_dir: Path, kept: dict[str, np.ndarray], name: str = MEMBERS_NAME) -> str:
    """Store what `evaluate_ensemble(..., kept_out=...)` kept as `run_dir/<name>` atomically (float16
    fields, int64 `sample_index`); returns the file name relative to the run folder."""
    arrays = {key: np.asarray(kept[key], dtype=np.float16) for key in ("truth", "prediction", "members")}
    arrays["sample_index"] = np.asarray(kept["sample_index"], dtype=np.int64)
    atomic_write(Path(run_dir) / name, lambda handle: np.savez(handle, **arrays))
    return name
