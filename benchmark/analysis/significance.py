"""Paired tests of one model against another on the same test windows, over one or more seeds.

Every run stores, next to its record, the normalized-space MSE, MAE and SSIM of each test window and
lead time (`per_sample.npz`, see `benchmark.scoring.evaluation.write_per_sample`). Two runs of the same data
configuration and seed score the very same windows in the same (time) order, so their errors pair
window by window. What the tests here must respect, and how:

- **The windows are not independent.** Consecutive test windows overlap in time (12 -> 12 frames
  every 12 frames share half their frames) and the weather is persistent, so the per-window
  differences are autocorrelated (lag-1 0.4-0.8 on the quick sweep): 242 windows carry the
  information of perhaps 30-100 independent ones. Treating them as independent pairs rejected a
  true null 25-51% of the time at alpha 0.05 (simulated, issue 19).
- **The seeds repeat the windows.** A second seed scores the same windows again: it adds
  information on the training randomness, not new windows. Concatenating seeds as if they were new
  pairs rejected a true null 16% of the time even without autocorrelation.

So the differences `d[s, t] = a[s, t] - b[s, t]` (seed s, window t, averaged over the lead times) are
reduced to the per-window mean over seeds `dbar[t]` and the per-seed means `m_s = mean_t d[s, t]`. In a
model `d[s, t] = mu + w[t] + u_s + e[s, t]` (w: the windows' effect every seed shares, u: a seed's own
effect, e: seed x window noise), the overall mean `D = mean_t dbar[t]` has the variance

    Var(D) = Var(mean_t w) + (Var(u) + Var(mean_t e_s)) / S  =  V_windows + V_seeds
    V_seeds   = s^2(m_s) / S, the between-seed variance of the per-seed means (S - 1 df)
    V_windows = the long-run variance of dbar over n (an autocorrelation-robust estimator), less the
                seed x window noise it also holds (that noise is already in s^2(m_s)): the mean over
                seeds of the long-run variance of `d[s] - dbar`, times S/(S-1), over S; truncated at 0

The seed term makes a claim cover new seeds as well as new windows: a difference that holds for
these trained models but would flip with the next seed is not significant. Removing the noise from
the window term rather than adding both (the literal "HAC of dbar + between-seed variance") avoids
counting it twice, which made the test conservative in simulation (false-positive rate 0.017-0.03
instead of 0.05 where seed x window noise dominates); truncating the window term, not the seed
term, keeps the test from being liberal when the seeds dominate (0.086 the other way). These are our
choices (method-of-moments random effects); `tests/test_significance.py` simulates the null. The
degrees of freedom of the sum come from Satterthwaite's formula. With one seed the seed term is
absent and the test covers new windows only (the caption says how many seeds).

Three window-variance methods (`TESTS`); the default is `hac-ewc`:

- `hac-ewc` (default): the equal-weighted cosine estimator of Lazarus, Lewis, Stock & Watson (2018,
  "HAR inference: recommendations for practice", JBES 36(4)), B = floor(0.4 n^(2/3)) cosine terms
  (their rule), Student t with B degrees of freedom: the fixed-b theory gives an exact reference
  distribution, which keeps the size near alpha in short, persistent series (simulated: 0.05 at
  rho 0 and 0.5, 0.077 at rho 0.8 with n = 242) and gives the degrees of freedom the seed term is
  combined with. It is analytic (milliseconds per test, hundreds of tests per table) and its p-value
  and confidence interval are one t procedure. WeatherBench-X's statistical inference offers it for
  the same reason. The cosine transform is `scipy.fft.dct` (type II).
- `stationary-bootstrap`: Politis & Romano's stationary bootstrap of the windows (`arch.bootstrap.
  StationaryBootstrap`, mean block length from `arch.bootstrap.optimal_block_length`, Politis &
  White 2004 / Patton, Politis & White 2009), the same window indices for every seed (the seeds
  share the windows), and the seeds resampled with replacement where there are several. The
  interval is the percentile interval of the bootstrap means and the p-value the same procedure
  inverted (twice the share of bootstrap means on the far side of 0), so the two never disagree.
  Its p has a Monte-Carlo floor of 1 / (B + 1), printed as `p < 0.001`. With three seeds the seed
  resampling is coarse (10 distinct draws); prefer `hac-ewc` there.
- `dm-hg`: the Diebold-Mariano test with Hering & Genton's (2011) variance, as `scores.stats.
  statistical_tests.diebold_mariano` computes it (normal reference), on dbar with h = the number of
  consecutive windows that share a frame, ceil((T_in + T_out) / stride); the seed term as above.

Effect sizes come with every test: the mean difference and `relative` = 1 - mean(a) / mean(b) (for an
error: the share by which the model lowers the baseline's error), each with its confidence interval
from the same procedure (the ratio's by the delta method on the series a - R b, R = mean(a)/mean(b)).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats
from scipy.fft import dct

from benchmark.core.errors import BenchError

PER_SAMPLE_METRICS = ("mse", "mae", "ssim")
LOWER_IS_BETTER = {"mse": True, "mae": True, "ssim": False}
TESTS = ("hac-ewc", "stationary-bootstrap", "dm-hg")
DEFAULT_TEST = "hac-ewc"
TEST_NAMES = {"hac-ewc": "HAC t-test (EWC, Lazarus et al. 2018)",
              "stationary-bootstrap": "stationary bootstrap (Politis-Romano, Politis-White block length)",
              "dm-hg": "Diebold-Mariano test (Hering-Genton variance)"}
ADJUSTMENTS = ("holm", "bh")
DEFAULT_ADJUSTMENT = "holm"
ADJUSTMENT_NAMES = {"holm": "Holm", "bh": "Benjamini-Hochberg"}
P_DISPLAY_FLOOR = 0.001  # smaller p-values are printed as "p < 0.001"
N_BOOT = 10000

__all__ = ["ADJUSTMENTS", "DEFAULT_ADJUSTMENT", "DEFAULT_TEST", "PairedTest", "TESTS", "adjust", "compare_runs",
           "difference_p_values", "ewc_variance", "format_p", "p_phrase", "paired_test", "seed_window_differences",
           "tost"]


@dataclass
class PairedTest:
    """The test of the mean difference `a - b` over windows and seeds; see the module docstring."""

    method: str
    n_windows: int
    n_seeds: int
    mean_diff: float  # mean(a) - mean(b)
    se: float  # standard error of mean_diff (NaN for the bootstrap: its interval is percentile)
    df: float  # reference t degrees of freedom (inf: normal; NaN: bootstrap)
    ci_low: float
    ci_high: float
    p_value: float
    p_floor: float  # the smallest p the method can give (0 for analytic tests)
    model_mean: float
    baseline_mean: float
    relative: float  # 1 - mean(a) / mean(b)
    relative_low: float
    relative_high: float
    se_windows: float  # the two parts of se (sqrt of V_windows and V_seeds); NaN for the bootstrap
    se_seeds: float

    @property
    def p_text(self) -> str:
        """The p-value as printed: two significant digits, or `< 0.001` below that (and at a Monte-Carlo floor)."""
        return format_p(self.p_value, self.p_floor)


def format_p(p: float, floor: float = 0.0) -> str:
    """`p` for a table: `p < 0.001` when below 0.001 or at the method's Monte-Carlo floor, else 2 digits."""
    if np.isnan(p):
        return ""
    if p < P_DISPLAY_FLOOR or (floor > 0 and p <= floor):
        bound = max(P_DISPLAY_FLOOR, 10 ** math.ceil(math.log10(floor))) if floor > 0 else P_DISPLAY_FLOOR
        return f"< {bound:g}"
    return f"{p:.2g}"


def p_phrase(p: float, floor: float = 0.0) -> str:
    """`p=0.012` or `p < 0.001` (`format_p`), for a sentence or a cell."""
    text = format_p(p, floor)
    return f"p {text}" if text.startswith("<") else f"p={text}"


def ewc_variance(series: np.ndarray) -> tuple[np.ndarray | float, int]:
    """(variance of the mean of `series` along its last axis, degrees of freedom): the equal-weighted
    cosine long-run variance over n, with B = max(1, floor(0.4 n^(2/3))) cosine terms (Lazarus, Lewis,
    Stock & Watson 2018). Leading axes are independent series (a float for one series)."""
    x = np.asarray(series, dtype=np.float64)
    n = x.shape[-1]
    terms = max(1, min(n - 1, int(math.floor(0.4 * n ** (2.0 / 3.0)))))
    # dct type II: y_j = 2 sum_t x_t cos(pi j (2t + 1) / (2n)); LLSW's Lambda_j = sqrt(2/n) sum_t ... = y_j / sqrt(2n)
    lam = dct(x - x.mean(axis=-1, keepdims=True), type=2, axis=-1)[..., 1:terms + 1] / math.sqrt(2.0 * n)
    variance = np.mean(lam ** 2, axis=-1) / n
    return (float(variance) if variance.ndim == 0 else variance), terms


def _dm_variance(series: np.ndarray, h: int) -> tuple[np.ndarray, float]:
    """(variance of the mean along the last axis, inf): Diebold-Mariano with Hering-Genton's variance
    (`scores.stats.statistical_tests.diebold_mariano`, one call for all the leading axes' series)."""
    import xarray as xr
    from scores.stats.statistical_tests import diebold_mariano

    x = np.asarray(series, dtype=np.float64)
    flat = x.reshape(-1, x.shape[-1])
    h = int(min(max(1, h), x.shape[-1] - 1))
    data = xr.DataArray(flat, dims=("pair", "window"), coords={"h": ("pair", [h] * flat.shape[0])})
    found = diebold_mariano(data, "pair", "h", method="HG", confidence_level=0.95)
    half = (found["ci_upper"].to_numpy() - found["ci_lower"].to_numpy()) / 2.0
    return ((half / stats.norm.ppf(0.975)) ** 2).reshape(x.shape[:-1]), math.inf


def _window_variance(series: np.ndarray, method: str, h: int) -> tuple[np.ndarray, float]:
    if method == "hac-ewc":
        variance, df = ewc_variance(series)
        return np.asarray(variance), df
    if method == "dm-hg":
        return _dm_variance(series, h)
    raise ValueError(f"no analytic window variance for {method!r}")


def _mean_variance(d: np.ndarray, method: str, h: int) -> tuple[np.ndarray, ...]:
    """(Var(D), df, V_windows, V_seeds) of the mean of `d` (..., seeds, windows), per leading index;
    module docstring."""
    seeds = d.shape[-2]
    dbar = d.mean(axis=-2)
    v_dbar, df_windows = _window_variance(dbar, method, h)
    df_windows = np.full(v_dbar.shape, float(df_windows))
    if seeds < 2:
        return v_dbar, df_windows, v_dbar, np.zeros_like(v_dbar)
    v_seeds = d.mean(axis=-1).var(axis=-1, ddof=1) / seeds
    noise = _window_variance(d - dbar[..., None, :], method, h)[0].mean(axis=-1) * seeds / (seeds - 1)
    v_windows = np.maximum(0.0, v_dbar - noise / seeds)  # the windows' shared part: dbar's less the seed x window noise
    total = v_windows + v_seeds
    with np.errstate(divide="ignore", invalid="ignore"):
        denominator = (np.where(v_windows > 0, v_windows ** 2 / df_windows, 0.0)
                       + np.where(v_seeds > 0, v_seeds ** 2 / (seeds - 1), 0.0))
        df = np.where(total > 0, total ** 2 / denominator, df_windows)
    return total, df, v_windows, v_seeds


def _two_sided(statistic: np.ndarray, df: np.ndarray) -> np.ndarray:
    """Two-sided p of a t statistic with `df` degrees of freedom (normal where df is infinite)."""
    return 2 * np.where(np.isfinite(df), stats.t.sf(np.abs(statistic), np.where(np.isfinite(df), df, 1.0)),
                        stats.norm.sf(np.abs(statistic)))


def difference_p_values(d: Any, method: str = DEFAULT_TEST, h: int = 1) -> np.ndarray:
    """Two-sided p-values of mean(d) = 0 for a batch of paired differences `d` (..., seeds, windows): the
    analytic test of `paired_test` (window and seed variance, Satterthwaite df), one per leading index.
    What the null simulation in the tests checks."""
    d = np.asarray(d, dtype=np.float64)
    variance, df, _, _ = _mean_variance(d, method, h)
    mean = d.mean(axis=(-2, -1))
    with np.errstate(divide="ignore", invalid="ignore"):
        p = _two_sided(mean / np.sqrt(variance), df)
    return np.where(variance > 0, p, np.where(mean == 0, 1.0, 0.0))


def _check(a: Any, b: Any) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.ndim == 1:
        a, b = a[None, :], b.reshape(1, -1)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"paired errors must be (seeds, windows) arrays of one shape, got {a.shape} and {b.shape}")
    if a.shape[1] < 3:
        raise ValueError(f"a paired test needs at least 3 windows, got {a.shape[1]}")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise ValueError("paired errors must be finite")
    return a, b


def _critical(alpha: float, df: float) -> float:
    """The two-sided 1 - alpha critical value of t with `df` degrees of freedom (normal where infinite)."""
    return float(stats.t.ppf(1 - alpha / 2, df) if math.isfinite(df) else stats.norm.ppf(1 - alpha / 2))


def paired_test(a: Any, b: Any, method: str = DEFAULT_TEST, alpha: float = 0.05, h: int = 1,
                n_boot: int = N_BOOT, seed: int = 0) -> PairedTest:
    """Test mean(a) = mean(b) on paired errors `a`, `b` of shape (seeds, windows) (or (windows,)).

    `method` one of `TESTS`; the interval is at level 1 - `alpha`; `h` is Diebold-Mariano's horizon
    (windows sharing a frame, `dm-hg` only); `n_boot`, `seed` the bootstrap's size and generator seed.
    """
    if method not in TESTS:
        raise BenchError(f"Unknown significance test {method!r}: choose one of {', '.join(TESTS)}.")
    a, b = _check(a, b)
    d = a - b
    seeds, n = d.shape
    model_mean, baseline_mean = float(a.mean()), float(b.mean())
    mean_diff = model_mean - baseline_mean
    ratio = model_mean / baseline_mean if baseline_mean != 0 else math.nan
    if method == "stationary-bootstrap":
        return _bootstrap_test(a, b, alpha, n_boot, seed)
    variance, df, v_windows, v_seeds = (float(v) for v in _mean_variance(d, method, h))
    se = math.sqrt(variance)
    crit = _critical(alpha, df)
    p = float(difference_p_values(d, method, h))  # identical errors everywhere: 1 (or 0 for an exact shift)
    rel_low = rel_high = math.nan
    if math.isfinite(ratio):
        # delta method: Var(mean a / mean b) ~ Var(mean(a - R b)) / mean(b)^2
        ratio_var, ratio_df, _, _ = (float(v) for v in _mean_variance(a - ratio * b, method, h))
        ratio_se = math.sqrt(ratio_var) / abs(baseline_mean)
        ratio_crit = _critical(alpha, ratio_df)
        rel_low, rel_high = 1 - (ratio + ratio_crit * ratio_se), 1 - (ratio - ratio_crit * ratio_se)
    return PairedTest(method=method, n_windows=n, n_seeds=seeds, mean_diff=mean_diff, se=se, df=float(df),
                      ci_low=mean_diff - crit * se, ci_high=mean_diff + crit * se, p_value=min(1.0, p), p_floor=0.0,
                      model_mean=model_mean, baseline_mean=baseline_mean, relative=1 - ratio,
                      relative_low=rel_low, relative_high=rel_high, se_windows=math.sqrt(v_windows),
                      se_seeds=math.sqrt(v_seeds))


def _bootstrap_test(a: np.ndarray, b: np.ndarray, alpha: float, n_boot: int, seed: int) -> PairedTest:
    """The stationary bootstrap of the windows (and the seeds, with replacement); module docstring."""
    from arch.bootstrap import StationaryBootstrap, optimal_block_length

    d = a - b
    seeds, n = d.shape
    block = float(optimal_block_length(d.mean(axis=0))["stationary"].iloc[0])
    block = min(max(block, 1.0), float(n))
    bootstrap = StationaryBootstrap(block, np.arange(n), seed=seed)
    rng = np.random.default_rng(seed)
    diffs = np.empty(n_boot)
    ratios = np.empty(n_boot)
    for i, (positional, _) in enumerate(bootstrap.bootstrap(n_boot)):
        windows = positional[0]
        chosen = rng.integers(0, seeds, size=seeds) if seeds > 1 else np.zeros(1, dtype=int)
        a_mean, b_mean = a[np.ix_(chosen, windows)].mean(), b[np.ix_(chosen, windows)].mean()
        diffs[i], ratios[i] = a_mean - b_mean, (a_mean / b_mean if b_mean != 0 else np.nan)
    low, high = np.percentile(diffs, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    far = min(np.count_nonzero(diffs <= 0), np.count_nonzero(diffs >= 0))
    p = min(1.0, (1.0 + 2.0 * far) / (1.0 + n_boot))
    rel_high, rel_low = (1 - np.nanpercentile(ratios, [100 * alpha / 2, 100 * (1 - alpha / 2)]))
    model_mean, baseline_mean = float(a.mean()), float(b.mean())
    return PairedTest(method="stationary-bootstrap", n_windows=n, n_seeds=seeds, mean_diff=model_mean - baseline_mean,
                      se=math.nan, df=math.nan, ci_low=float(low), ci_high=float(high), p_value=float(p),
                      p_floor=1.0 / (1.0 + n_boot), model_mean=model_mean, baseline_mean=baseline_mean,
                      relative=1 - model_mean / baseline_mean if baseline_mean else math.nan,
                      relative_low=float(rel_low), relative_high=float(rel_high), se_windows=math.nan,
                      se_seeds=math.nan)


def tost(a: Any, b: Any, margin: float, method: str = DEFAULT_TEST, alpha: float = 0.05, h: int = 1
         ) -> tuple[float, float, float]:
    """Two one-sided tests of |mean(a) - mean(b)| < `margin` (Schuirmann 1987) on paired errors of shape
    (seeds, windows): (p, ci_low, ci_high), p = the larger one-sided p, the interval at level 1 - 2 alpha
    (equivalence at `alpha` <=> that interval inside (-margin, margin)). Analytic methods only."""
    if method not in ("hac-ewc", "dm-hg"):
        raise BenchError(f"The equivalence test needs an analytic method (hac-ewc or dm-hg), not {method!r}.")
    a, b = _check(a, b)
    d = a - b
    variance, df, _, _ = (float(v) for v in _mean_variance(d, method, h))
    mean = float(d.mean())
    se = math.sqrt(variance)
    dist = stats.t(df) if math.isfinite(df) else stats.norm()
    if se == 0:
        inside = abs(mean) < margin
        return (0.0 if inside else 1.0), mean, mean
    p_lower = float(dist.sf((mean + margin) / se))  # H0: mean <= -margin
    p_upper = float(dist.cdf((mean - margin) / se))  # H0: mean >= +margin
    crit = dist.ppf(1 - alpha)
    return max(p_lower, p_upper), float(mean - crit * se), float(mean + crit * se)


def adjust(p_values: Any, method: str = DEFAULT_ADJUSTMENT) -> np.ndarray:
    """Adjusted p-values of one family, in the input order: Holm's step-down (family-wise error;
    `statsmodels.stats.multitest.multipletests`) or Benjamini-Hochberg (false discovery rate;
    `scipy.stats.false_discovery_control`)."""
    p = np.asarray(p_values, dtype=np.float64).reshape(-1)
    if p.size == 0:
        return p
    if np.any(np.isnan(p)) or np.any((p < 0) | (p > 1)):
        raise ValueError(f"p-values must lie in [0, 1], got {p.tolist()}")
    if method == "holm":
        from statsmodels.stats.multitest import multipletests

        return multipletests(p, method="holm")[1]
    if method == "bh":
        return stats.false_discovery_control(p, method="bh")
    raise BenchError(f"Unknown p-value adjustment {method!r}: choose one of {', '.join(ADJUSTMENTS)}.")


def _load_run(run: Any, results_dir: Path | None, epoch: int | None = None
              ) -> tuple[int, dict[str, np.ndarray], str, Any]:
    """(seed, per-sample arrays, run id, record) of a RunRecord (with `results_dir`) or of a run folder;
    the best checkpoint's errors, or those scored after `epoch` (`train.eval_at`)."""
    from benchmark.results.records import RECORD_NAME, RunRecord, read_record
    from benchmark.scoring.evaluation import read_per_sample

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
    return record.config.seed, read_per_sample(folder / name), record.run_id, record


def _by_seed(runs: Iterable[Any], results_dir: Path | None, epoch: int | None = None
             ) -> dict[int, tuple[dict[str, np.ndarray], str, Any]]:
    loaded: dict[int, tuple[dict[str, np.ndarray], str, Any]] = {}
    for run in runs:
        seed, arrays, name, record = _load_run(run, results_dir, epoch)
        if seed in loaded:
            raise BenchError(f"Two runs of seed {seed} ({loaded[seed][1]} and {name}): pass one run per seed.")
        loaded[seed] = (arrays, name, record)
    return loaded


def overlap_horizon(record: Any) -> int:
    """Diebold-Mariano's h for a run's test windows: how many consecutive windows share a frame,
    ceil((T_in + T_out) / sample_stride) (1 where the record names no stride)."""
    data = record.config.data
    stride = int(data.get("sample_stride") or 0) if isinstance(data, dict) else 0
    if stride <= 0:
        return 1
    return max(1, math.ceil((int(data.get("t_in", 1)) + int(data.get("t_out", 1))) / stride))


def seed_window_differences(model_runs: Iterable[Any], baseline_runs: Iterable[Any], metric: str,
                            results_dir: Path | None = None, epoch: int | None = None
                            ) -> tuple[list[int], np.ndarray, np.ndarray, int]:
    """(seeds, a, b, h): the two sides' per-window errors (averaged over lead times) as (seeds, windows)
    arrays of the seeds both have, in window order, and the runs' Diebold-Mariano horizon.

    Runs are `RunRecord`s (their folders under `results_dir`) or run folders. Runs of equal seed are
    paired; their `sample_index` arrays must be equal (same windows in the same order). Seeds only one
    side has are left out; none in common is an error. `epoch`: the errors scored after that --eval-at
    epoch instead of the best checkpoint's.
    """
    if metric not in PER_SAMPLE_METRICS:
        raise BenchError(f"Per-sample errors exist for {', '.join(PER_SAMPLE_METRICS)}, not {metric!r}.")
    model, baseline = _by_seed(model_runs, results_dir, epoch), _by_seed(baseline_runs, results_dir, epoch)
    seeds = sorted(set(model) & set(baseline))
    if not seeds:
        raise BenchError(f"No seed in common between the model runs (seeds {sorted(model)}) and the baseline "
                         f"runs (seeds {sorted(baseline)}): a paired test needs runs of equal seed.")
    a_rows, b_rows, reference = [], [], None
    for s in seeds:
        (a, a_name, _), (b, b_name, _) = model[s], baseline[s]
        if not np.array_equal(a["sample_index"], b["sample_index"]):
            raise BenchError(f"The runs {a_name} and {b_name} (seed {s}) scored different test samples "
                             f"({a['sample_index'].size} vs {b['sample_index'].size}, or in another order): "
                             "they cannot be paired. Compare runs of the same data configuration.")
        if reference is not None and not np.array_equal(a["sample_index"], reference):
            raise BenchError(f"The runs of seed {s} scored other test samples than those of seed {seeds[0]}: "
                             "seeds can be pooled only over the same windows.")
        if a[metric].shape != b[metric].shape:
            raise BenchError(f"The runs {a_name} and {b_name} (seed {s}) have per-sample {metric} of shapes "
                             f"{a[metric].shape} and {b[metric].shape} (different lead times?).")
        reference = a["sample_index"]
        order = np.argsort(reference, kind="stable")  # window order = time order of the test split
        a_rows.append(np.asarray(a[metric], dtype=np.float64).mean(axis=1)[order])
        b_rows.append(np.asarray(b[metric], dtype=np.float64).mean(axis=1)[order])
    return seeds, np.stack(a_rows), np.stack(b_rows), overlap_horizon(model[seeds[0]][2])


def compare_runs(model_runs: Iterable[Any], baseline_runs: Iterable[Any], metric: str,
                 results_dir: Path | None = None, method: str = DEFAULT_TEST, alpha: float = 0.05,
                 n_boot: int = N_BOOT, seed: int = 0, epoch: int | None = None) -> tuple[list[int], PairedTest]:
    """(seeds, test) of `model_runs` against `baseline_runs` on `metric` ("mse", "mae" or "ssim"):
    `seed_window_differences`, then `paired_test` with `method`."""
    seeds, a, b, h = seed_window_differences(model_runs, baseline_runs, metric, results_dir, epoch)
    try:
        return seeds, paired_test(a, b, method=method, alpha=alpha, h=h, n_boot=n_boot, seed=seed)
    except ValueError as error:
        raise BenchError(f"The paired {metric} test cannot run: {error}.") from None
