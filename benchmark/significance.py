"""Paired significance tests of one model against another on the same test samples.

Every run stores, next to its record, the normalized-space MSE, MAE and SSIM of each test sample
and lead time (`per_sample.npz`, see `benchmark.evaluation.write_per_sample`). Two runs of the same
dataset configuration and seed score the very same test samples in the same order, so their errors
pair sample by sample. The tests here work on the paired differences `d = a - b` (`a`: the model,
`b`: the baseline):

- `paired_bootstrap`: mean difference, its percentile bootstrap confidence interval, and a
  two-sided p-value from the bootstrap distribution of the mean difference *centred under the null*
  (the bootstrap means minus the observed mean, so that their mean is 0): p is the share of centred
  bootstrap means at least as far from 0 as the observed mean, `(1 + #{|m* - m| >= |m|}) / (1 + B)`.
- `wilcoxon`: the Wilcoxon signed-rank test (`scipy.stats.wilcoxon`, two-sided).
- `effect_size`: the mean difference relative to the baseline's mean, and Cohen's d of the paired
  differences (mean / sample std).
- `holm`: Holm-Bonferroni step-down adjustment of a family of p-values (monotone, capped at 1).
- `compare_runs`: pools several seeds by pairing the runs of equal seed, averaging each sample's
  errors over the lead times, and concatenating the per-sample differences of all seeds.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from benchmark.errors import BenchError

PER_SAMPLE_METRICS = ("mse", "mae", "ssim")
LOWER_IS_BETTER = {"mse": True, "mae": True, "ssim": False}

__all__ = ["Comparison", "compare_runs", "effect_size", "holm", "paired_bootstrap", "wilcoxon"]


def _paired(a: Any, b: Any) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a, dtype=np.float64).reshape(-1)
    b = np.asarray(b, dtype=np.float64).reshape(-1)
    if a.shape != b.shape:
        raise ValueError(f"paired samples must have the same length, got {a.size} and {b.size}")
    if a.size < 2:
        raise ValueError(f"a paired test needs at least 2 pairs, got {a.size}")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise ValueError("paired samples must be finite")
    return a, b


def paired_bootstrap(a: Any, b: Any, n_boot: int = 10000, seed: int = 0) -> tuple[float, float, float, float]:
    """`(mean_diff, ci_low, ci_high, p_value)` of the paired differences `a - b`.

    The 95% interval is the percentile interval of `n_boot` bootstrap means (pairs resampled with
    replacement, generator seeded with `seed`); the two-sided p-value is the share of bootstrap means,
    centred at 0 under the null, at least as extreme as the observed mean (module docstring).
    """
    a, b = _paired(a, b)
    d = a - b
    n = d.size
    observed = float(d.mean())
    rng = np.random.default_rng(seed)
    means = np.empty(int(n_boot), dtype=np.float64)
    chunk = max(1, 2_000_000 // n)  # bound the index matrix to about 16 MB
    for start in range(0, int(n_boot), chunk):
        stop = min(int(n_boot), start + chunk)
        means[start:stop] = d[rng.integers(0, n, size=(stop - start, n))].mean(axis=1)
    ci_low, ci_high = np.percentile(means, [2.5, 97.5])
    extreme = np.count_nonzero(np.abs(means - observed) >= abs(observed))
    p_value = (1.0 + extreme) / (1.0 + means.size)
    return observed, float(ci_low), float(ci_high), float(p_value)


def wilcoxon(a: Any, b: Any) -> tuple[float, float]:
    """`(statistic, p_value)` of the two-sided Wilcoxon signed-rank test of `a - b`; p = 1 when every
    difference is 0."""
    a, b = _paired(a, b)
    if np.all(a == b):
        return 0.0, 1.0
    result = stats.wilcoxon(a, b, alternative="two-sided")
    return float(result.statistic), float(result.pvalue)


def effect_size(a: Any, b: Any) -> dict[str, float]:
    """`relative`: mean(a - b) / mean(b); `cohen_d`: mean(a - b) / std(a - b, ddof=1) (NaN if 0/0)."""
    a, b = _paired(a, b)
    d = a - b
    mean_b = float(b.mean())
    std = float(d.std(ddof=1))
    return {
        "relative": float(d.mean()) / mean_b if mean_b != 0 else float("nan"),
        "cohen_d": float(d.mean()) / std if std > 0 else (0.0 if d.mean() == 0 else float("inf")),
    }


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values, in the input order.

    Sorted ascending, the k-th smallest (k = 0..m-1) becomes `max_{j <= k} (m - j) p_(j)`, capped at 1:
    e.g. [0.01, 0.04, 0.03] -> [0.03, 0.06, 0.06]. Reject where the adjusted value is <= alpha.
    """
    p = np.asarray(p_values, dtype=np.float64).reshape(-1)
    if p.size == 0:
        return p
    if np.any(np.isnan(p)) or np.any((p < 0) | (p > 1)):
        raise ValueError(f"p-values must lie in [0, 1], got {p.tolist()}")
    m = p.size
    order = np.argsort(p, kind="stable")
    scaled = (m - np.arange(m)) * p[order]
    adjusted = np.minimum(np.maximum.accumulate(scaled), 1.0)
    result = np.empty(m, dtype=np.float64)
    result[order] = adjusted
    return result


@dataclass
class Comparison:
    """A model against a baseline on one metric, pooled over the seeds both have."""

    metric: str
    seeds: list[int]
    n_samples: int  # pairs, over all seeds
    model_mean: float
    baseline_mean: float
    mean_diff: float  # model - baseline
    ci_low: float
    ci_high: float
    p_bootstrap: float
    p_wilcoxon: float
    relative: float
    cohen_d: float

    @property
    def model_better(self) -> bool:
        """The model's mean is better than the baseline's (lower error, or higher SSIM)."""
        return self.mean_diff < 0 if LOWER_IS_BETTER[self.metric] else self.mean_diff > 0


def _load_run(run: Any, results_dir: Path | None, epoch: int | None = None
              ) -> tuple[int, dict[str, np.ndarray], str]:
    """(seed, per-sample arrays, name) of a RunRecord (with `results_dir`) or of a run folder; the
    best checkpoint's errors, or those scored after `epoch` (`train.eval_at`)."""
    from benchmark.evaluation import read_per_sample
    from benchmark.records import RECORD_NAME, RunRecord, read_record

    if isinstance(run, RunRecord):
        if results_dir is None:
            raise BenchError("compare_runs needs results_dir to find the per-sample files of run records")
        record, folder = run, Path(results_dir) / run.run_id
    else:
        folder = Path(run)
        record = read_record(folder / RECORD_NAME)
    if epoch is None:
        name = record.per_sample_file
        if not name:
            raise BenchError(f"The run {record.run_id} stored no per-sample errors (it predates them): re-run it "
                             "to test its significance.")
    else:
        name = record.eval_at_per_sample_files.get(str(int(epoch)))
        if not name:
            scored = ", ".join(sorted(record.eval_at_per_sample_files, key=int)) or "none"
            raise BenchError(f"The run {record.run_id} stored no per-sample errors after epoch {epoch} (stored: "
                             f"{scored}): re-run it with that epoch in --eval-at to test its significance there.")
    return record.config.seed, read_per_sample(folder / name), record.run_id


def _by_seed(runs: Iterable[Any], results_dir: Path | None, epoch: int | None = None
             ) -> dict[int, tuple[dict[str, np.ndarray], str]]:
    loaded: dict[int, tuple[dict[str, np.ndarray], str]] = {}
    for run in runs:
        seed, arrays, name = _load_run(run, results_dir, epoch)
        if seed in loaded:
            raise BenchError(f"Two runs of seed {seed} ({loaded[seed][1]} and {name}): pass one run per seed.")
        loaded[seed] = (arrays, name)
    return loaded


def compare_runs(model_runs: Iterable[Any], baseline_runs: Iterable[Any], metric: str,
                 results_dir: Path | None = None, n_boot: int = 10000, seed: int = 0,
                 epoch: int | None = None) -> Comparison:
    """Paired comparison of `model_runs` against `baseline_runs` on `metric` ("mse", "mae" or "ssim").

    Runs are `RunRecord`s (their folders under `results_dir`) or run folders. Runs of the same seed
    are paired; their `sample_index` arrays must be equal (same test samples in the same order).
    Each sample's errors are averaged over the lead times, and the differences of all paired seeds
    are concatenated before testing. Seeds only one side has are left out; none in common is an error.
    `epoch`: compare the errors scored after that --eval-at epoch instead of the best checkpoint's.
    """
    if metric not in PER_SAMPLE_METRICS:
        raise BenchError(f"Per-sample errors exist for {', '.join(PER_SAMPLE_METRICS)}, not {metric!r}.")
    model, baseline = _by_seed(model_runs, results_dir, epoch), _by_seed(baseline_runs, results_dir, epoch)
    seeds = sorted(set(model) & set(baseline))
    if not seeds:
        raise BenchError(f"No seed in common between the model runs (seeds {sorted(model)}) and the baseline "
                         f"runs (seeds {sorted(baseline)}): a paired test needs runs of equal seed.")
    a_parts, b_parts = [], []
    for s in seeds:
        (a, a_name), (b, b_name) = model[s], baseline[s]
        if not np.array_equal(a["sample_index"], b["sample_index"]):
            raise BenchError(f"The runs {a_name} and {b_name} (seed {s}) scored different test samples "
                             f"({a['sample_index'].size} vs {b['sample_index'].size}, or in another order): "
                             "they cannot be paired. Compare runs of the same data configuration.")
        if a[metric].shape != b[metric].shape:
            raise BenchError(f"The runs {a_name} and {b_name} (seed {s}) have per-sample {metric} of shapes "
                             f"{a[metric].shape} and {b[metric].shape} (different lead times?).")
        a_parts.append(np.asarray(a[metric], dtype=np.float64).mean(axis=1))
        b_parts.append(np.asarray(b[metric], dtype=np.float64).mean(axis=1))
    a_all, b_all = np.concatenate(a_parts), np.concatenate(b_parts)
    mean_diff, ci_low, ci_high, p_boot = paired_bootstrap(a_all, b_all, n_boot=n_boot, seed=seed)
    _, p_wil = wilcoxon(a_all, b_all)
    effect = effect_size(a_all, b_all)
    return Comparison(metric=metric, seeds=seeds, n_samples=int(a_all.size), model_mean=float(a_all.mean()),
                      baseline_mean=float(b_all.mean()), mean_diff=mean_diff, ci_low=ci_low, ci_high=ci_high,
                      p_bootstrap=p_boot, p_wilcoxon=p_wil, relative=effect["relative"],
                      cohen_d=effect["cohen_d"])
