"""Is a run trained in a lower precision the same experiment as its fp32 run? An equivalence test.

The question `train.precision` raises: is a bf16-mixed run the same experiment as its fp32 run, as
far as the benchmark can tell? For each (dataset, model), the runs of one setting (everything but
seed and precision equal: the records frame's `setting_key`) at `32-true` and at another precision
are compared on one test metric (best-validation checkpoint, the main prediction length; learned
models only):

- both sides' mean, std and seed count over the seeds both precisions have (where they share any);
  `difference` = mean at the other precision - mean at fp32 (`relative`: over the fp32 mean);
- **equivalence**: two one-sided tests (TOST, Schuirmann 1987) of |difference| < `margin` on the
  per-window paired errors (the same seed at both precisions scores the same windows), with the
  benchmark's paired test (`benchmark.analysis.significance`: autocorrelation-robust over the windows, the
  between-seed variance of the per-seed differences added). `equivalent` is True when the 90%
  interval of the difference lies inside (-margin, margin) (TOST at alpha 0.05), False when it does
  not, NA where the per-window errors are missing or the metric has none (only normalized MSE, MAE
  and SSIM are stored per window).

The margin (ours, fixed before the re-run that applied it, issue 19): `EQUIVALENCE_MARGIN` = 2% of
the fp32 mean for an error (MSE, MAE), and 2% of the fp32 structural dissimilarity 1 - SSIM for SSIM
(2% of an SSIM of 0.92 would be a 0.018 band, wider than most gaps between models). Why 2%: it is
below the seed-to-seed variation of a learned model's quick-profile test MSE (coefficient of
variation 1-8% over three seeds) and below the gaps between most neighbouring models of the main
table, so a precision that stays inside it moves a score less than a new seed does and cannot
reorder models that the tables tell apart. A verdict for a set of models ("every model equivalent")
is an intersection-union test: each model's TOST at alpha, no adjustment needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.analysis import tables
from benchmark.core.atomic import write_text_atomic

REFERENCE_PRECISION = "32-true"
SHORT_NAMES = {"32-true": "fp32", "bf16-mixed": "bf16", "16-mixed": "fp16"}
EQUIVALENCE_MARGIN = 0.02  # relative; see the module docstring
EQUIVALENCE_ALPHA = 0.05
NUMBER_COLUMNS = ("ref_mean", "ref_std", "ref_n", "mean", "std", "n", "difference", "relative", "ci_low", "ci_high",
                  "margin", "p")


@dataclass
class DriftTable:
    """Rows indexed by (dataset, model, precision); `NUMBER_COLUMNS` plus `equivalent` (bool or NA)."""

    rows: pd.DataFrame
    metric: str
    space: str
    margin: float = EQUIVALENCE_MARGIN
    method: str = "hac-ewc"

    @property
    def empty(self) -> bool:
        """True when no (dataset, model) had runs at fp32 and at another precision."""
        return self.rows.empty

    @property
    def other_name(self) -> str:
        """The compared precision's short name (bf16) when there is one, else "other"."""
        precisions = self.rows.index.get_level_values("precision").unique()
        return SHORT_NAMES.get(precisions[0], precisions[0]) if len(precisions) == 1 else "other"

    @property
    def row_labels(self) -> list[str]:
        """A short name per row: the model, with its dataset when there are several, and the precision
        when there are several."""
        index = self.rows.index
        several_datasets = index.get_level_values("dataset").nunique() > 1
        several_precisions = index.get_level_values("precision").nunique() > 1
        return [(f"{dataset}: " if several_datasets else "") + model
                + (f" ({SHORT_NAMES.get(precision, precision)})" if several_precisions else "")
                for dataset, model, precision in index]

    @property
    def drifting(self) -> pd.DataFrame:
        """The rows not shown equivalent (the interval reaches beyond the margin)."""
        return self.rows[(~self.rows["equivalent"]).fillna(False)]

    @property
    def undecided(self) -> pd.DataFrame:
        """The rows without an equivalence test (no per-window errors for this metric and space)."""
        return self.rows[self.rows["equivalent"].isna()]

    @property
    def verdict(self) -> str:
        """One sentence: equivalent for every model, or which models were not shown equivalent."""
        if self.empty:
            return ""
        label = tables.METRIC_LABELS.get(self.metric, self.metric)
        parts = []
        for precision, group in self.rows.groupby(level="precision", sort=False):
            name = SHORT_NAMES.get(precision, precision)
            drifting = group[(~group["equivalent"]).fillna(False)]
            undecided = group[group["equivalent"].isna()]
            if drifting.empty and undecided.empty:
                parts.append(f"{name} is equivalent to fp32 for every model on the test {label} (TOST, margin "
                             f"{self.margin:.0%}; largest |difference| {group['relative'].abs().max():.1%}).")
                continue
            if not drifting.empty:
                listed = ", ".join(f"{model} ({row.relative:+.1%}, 90% CI {row.ci_low:+.1%} to {row.ci_high:+.1%})"
                                   for (_, model, _), row in drifting.iterrows())
                parts.append(f"{name} is not shown equivalent to fp32 on the test {label} of {len(drifting)} of "
                             f"{len(group)} models: {listed}.")
            if not undecided.empty:
                models = ", ".join(model for _, model, _ in undecided.index)
                parts.append(f"Not tested (no per-window {label} in {self.space} units): {models}.")
        return " ".join(parts)

    @property
    def caption(self) -> str:
        """What the columns mean, then the verdict."""
        from benchmark.analysis.significance import TEST_NAMES

        label = tables.METRIC_LABELS.get(self.metric, self.metric)
        base = "1 - SSIM of fp32" if self.metric == "ssim" else "the fp32 mean"
        return (f"Test {label} ({self.space} units, best-validation checkpoint) of the same runs trained in fp32 "
                "and in another precision: mean ± standard deviation over seeds (n seeds), the difference of "
                "the means (other - fp32, relative to fp32) with its 90% confidence interval, and the two "
                f"one-sided tests (TOST) of equivalence within ± {self.margin:.0%} of {base}, on the per-window "
                f"errors paired by seed ({TEST_NAMES.get(self.method, self.method)}, between-seed variance "
                "included); 'equivalent': the interval lies inside the margin (TOST p < "
                f"{EQUIVALENCE_ALPHA}). " + self.verdict)


def precision_drift(frame: pd.DataFrame, metric: str = "mse", space: str = "normalized",
                    profile: str | None = None, results_dir: Path | None = None,
                    margin: float = EQUIVALENCE_MARGIN, method: str | None = None) -> DriftTable:
    """The drift table of `frame` (`records.records_to_frame`); see the module docstring. `results_dir`:
    the folder of the runs' per-window errors (without it, or for a metric without them, no test)."""
    from benchmark.analysis.significance import DEFAULT_TEST

    method = method or DEFAULT_TEST
    rows = tables._select(frame[frame["epoch"] == "best"], space, [metric], profile)
    rows = tables.main_length(rows)
    rows = rows[rows["trainable"].astype(bool)]  # a model without parameters computes no differently
    found = []
    for (dataset, model), runs in rows.groupby(["dataset", "model"], sort=False):
        setting = _latest_paired_setting(runs)
        if setting is None:
            continue
        paired = runs[runs["setting_key"] == setting]
        reference = paired[paired["precision"] == REFERENCE_PRECISION]
        for precision, other in paired[paired["precision"] != REFERENCE_PRECISION].groupby("precision"):
            if set(other["seed"]) & set(reference["seed"]):  # the seeds both sides have: the same pairs as the test
                shared = set(other["seed"]) & set(reference["seed"])
                other, matched = other[other["seed"].isin(shared)], reference[reference["seed"].isin(shared)]
            else:
                matched = reference
            numbers = _summary(matched["value"], other["value"])
            numbers.update(_equivalence(other["run_id"], matched["run_id"], metric, space, results_dir, margin,
                                        method, numbers["ref_mean"]))
            found.append({"dataset": dataset, "model": model, "precision": precision, **numbers,
                          "family": runs["family"].iloc[0]})
    if not found:
        empty = pd.DataFrame(columns=[*NUMBER_COLUMNS, "equivalent"], index=pd.MultiIndex.from_tuples(
            [], names=["dataset", "model", "precision"]))
        return DriftTable(empty, metric, space, margin, method)
    table = pd.DataFrame(found)
    order = sorted(range(len(table)), key=lambda i: (table["dataset"][i], *tables._model_rank(
        table["model"][i], table["family"][i]), table["precision"][i]))
    table = table.iloc[order].drop(columns="family").set_index(["dataset", "model", "precision"])
    table["equivalent"] = table["equivalent"].astype("boolean")  # NA: not tested
    return DriftTable(table, metric, space, margin, method)


def _latest_paired_setting(runs: pd.DataFrame) -> str | None:
    """The most recently finished setting among those with runs at fp32 and at another precision."""
    precisions = runs.groupby("setting_key")["precision"].agg(set)
    paired = [key for key, found in precisions.items() if REFERENCE_PRECISION in found and len(found) > 1]
    if not paired:
        return None
    latest = runs[runs["setting_key"].isin(paired)].groupby("setting_key")["finished_at"].max()
    return str(latest.idxmax())


def _summary(reference: pd.Series, other: pd.Series) -> dict[str, object]:
    """Both sides' mean, std (ddof=1) and seed count, and the difference of the means."""
    ref_mean, mean = float(reference.mean()), float(other.mean())
    return {"ref_mean": ref_mean, "ref_std": reference.std(ddof=1), "ref_n": len(reference), "mean": mean,
            "std": other.std(ddof=1), "n": len(other), "difference": mean - ref_mean,
            "relative": (mean - ref_mean) / ref_mean if ref_mean else np.nan}


def _equivalence(other_runs: pd.Series, reference_runs: pd.Series, metric: str, space: str,
                 results_dir: Path | None, margin: float, method: str, ref_mean: float) -> dict[str, object]:
    """The TOST of one row: the 90% interval of the difference (relative to the fp32 mean), the margin
    (relative), p and the verdict; NA where the per-window errors are missing."""
    from benchmark.analysis.significance import PER_SAMPLE_METRICS, seed_window_differences, tost
    from benchmark.core.errors import BenchError

    untested = {"ci_low": np.nan, "ci_high": np.nan, "margin": margin, "p": np.nan, "equivalent": pd.NA}
    if results_dir is None or space != "normalized" or metric not in PER_SAMPLE_METRICS or not ref_mean:
        return untested
    from benchmark.results.records import read_record, record_path

    try:
        others = [read_record(record_path(results_dir, r)) for r in other_runs.unique()]
        references = [read_record(record_path(results_dir, r)) for r in reference_runs.unique()]
        _, a, b, h = seed_window_differences(others, references, metric, results_dir)
    except BenchError:
        return untested
    absolute = margin * ((1.0 - float(b.mean())) if metric == "ssim" else abs(float(b.mean())))
    try:
        p, low, high = tost(a, b, absolute, method=method, h=h)
    except ValueError:
        return untested
    scale = abs(float(b.mean()))  # the same windows' fp32 mean (the record's, to float32 rounding)
    return {"ci_low": low / scale, "ci_high": high / scale, "margin": absolute / scale, "p": p,
            "equivalent": bool(p < EQUIVALENCE_ALPHA)}


def _interval(low: float, high: float) -> str:
    return "" if np.isnan(low) else f"{low:+.1%} to {high:+.1%}"


def formatted(drift: DriftTable) -> pd.DataFrame:
    """The table as text cells: `fp32` and the other precision (named when there is one) as mean ± std (n),
    then the difference, its 90% interval, the margin, TOST's p and the verdict."""
    from benchmark.analysis.significance import format_p

    def side(mean: float, std: float, n: int) -> str:
        return f"{mean:.5f} ± {std:.5f} ({n})" if not np.isnan(std) else f"{mean:.5f} ({n})"

    r = drift.rows
    return pd.DataFrame({
        "fp32": [side(*v) for v in zip(r["ref_mean"], r["ref_std"], r["ref_n"], strict=True)],
        drift.other_name: [side(*v) for v in zip(r["mean"], r["std"], r["n"], strict=True)],
        "difference": [f"{d:+.5f} ({rel:+.1%})" for d, rel in zip(r["difference"], r["relative"], strict=True)],
        "90% CI": [_interval(lo, hi) for lo, hi in zip(r["ci_low"], r["ci_high"], strict=True)],
        "margin": r["margin"].map(lambda m: f"± {m:.1%}"),
        "p (TOST)": r["p"].map(format_p),
        "equivalent": _verdict_text(r["equivalent"]),
    }, index=r.index)


def compact(drift: DriftTable) -> pd.DataFrame:
    """The table for an 80-column terminal, rows named by `row_labels`: the means (with (n=k) where a side
    has other than the usual seed count), the relative difference, its 90% interval, TOST's p and the
    verdict; the standard deviations and the margin are in the files and the caption."""
    from benchmark.analysis.significance import format_p

    r = drift.rows
    usual = tables.usual_seeds(r[["ref_n", "n"]])

    def mean(value: float, n: int) -> str:
        return f"{value:.5f}" + ("" if n == usual else f" (n={n})")

    return pd.DataFrame({
        "fp32": [mean(*v) for v in zip(r["ref_mean"], r["ref_n"], strict=True)],
        drift.other_name: [mean(*v) for v in zip(r["mean"], r["n"], strict=True)],
        "diff": r["relative"].map(lambda x: _number(x, "+.1%")).to_list(),
        "90% CI": [_interval(lo, hi) for lo, hi in zip(r["ci_low"], r["ci_high"], strict=True)],
        "p": r["p"].map(format_p).to_list(),
        "equiv.": _verdict_text(r["equivalent"]).to_list(),
    }, index=drift.row_labels)


def _number(value: float, spec: str) -> str:
    """`value` formatted by `spec`, or empty where it is NaN."""
    return "" if np.isnan(value) else format(value, spec)


def _verdict_text(equivalent: pd.Series) -> pd.Series:
    return equivalent.map(lambda w: "n/a" if pd.isna(w) else "yes" if w else "NO")


def render(drift: DriftTable, out_dir: Path, formats: tuple[str, ...] = tables.FORMATS) -> list[Path]:
    """Write `precision_drift_<metric>_<space>.{csv,tex,md}` to `out_dir`; returns the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"precision_drift_{drift.metric}_{drift.space}"
    text = formatted(drift)
    written = []
    if "csv" in formats:
        path = out_dir / f"{stem}.csv"
        write_text_atomic(path, drift.rows.to_csv())
        written.append(path)
    if "latex" in formats:
        path = out_dir / f"{stem}.tex"
        escaped = text.rename(index=tables._latex_escape, columns=tables._latex_escape).map(tables._latex_escape)
        write_text_atomic(path, escaped.style.to_latex(caption=tables._latex_escape(drift.caption), hrules=True,
                                                       environment="table", position_float="centering",
                                                       multirow_align="naive", column_format="lll" + "r" * 7))
        written.append(path)
    if "markdown" in formats:
        path = out_dir / f"{stem}.md"
        flat = text.copy()
        flat.index = [f"{d} / {m} / {SHORT_NAMES.get(p, p)}" for d, m, p in text.index]
        flat.index.name = "dataset / model / precision"
        write_text_atomic(path, f"{drift.caption}\n\n{flat.to_markdown(disable_numparse=True)}\n")
        written.append(path)
    return written
