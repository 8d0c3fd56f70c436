"""How far a lower training precision moves each model's test score, against the seed-to-seed spread.

The question `train.precision` raises: is a bf16-mixed run the same experiment as its fp32 run, as
far as the benchmark can tell? For each (dataset, model), the runs of one setting (everything but
seed and precision equal: the records frame's `setting_key`) at `32-true` and at another precision
are compared on one test metric (best-validation checkpoint, the main prediction length; learned
models only):

- `difference` = mean over seeds at the other precision - mean at fp32 (`relative`: over the fp32 mean);
- `spread` = the pooled seed-to-seed standard deviation, sqrt((std_fp32^2 + std_other^2) / 2)
  (ddof=1 each), the noise a change of seed alone brings;
- `ratio` = difference / spread; `within` is |ratio| <= 1: the precision moved the score by no
  more than a change of seed does;
- `p`: Welch's two-sample t-test of the two means over seeds (unequal variances), beside the rule.

That criterion (ours, issue 14) decides whether a profile may train in bf16 by default; it needs at
least two seeds at each precision (else `within` is undecided, NA). Three seeds make the spread
itself rough, so a ratio near 1 is a near thing either way; the table says how many seeds each
side had.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from benchmark import tables
from benchmark.atomic import write_text_atomic

REFERENCE_PRECISION = "32-true"
SHORT_NAMES = {"32-true": "fp32", "bf16-mixed": "bf16", "16-mixed": "fp16"}
NUMBER_COLUMNS = ("ref_mean", "ref_std", "ref_n", "mean", "std", "n", "difference", "relative", "spread", "ratio",
                  "p")


@dataclass
class DriftTable:
    """Rows indexed by (dataset, model, precision); `NUMBER_COLUMNS` plus `within` (bool or NA)."""

    rows: pd.DataFrame
    metric: str
    space: str

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
        """The rows whose difference exceeds the seed spread."""
        return _beyond_spread(self.rows)

    @property
    def undecided(self) -> pd.DataFrame:
        """The rows with fewer than two seeds on a side (no spread to judge by)."""
        return self.rows[self.rows["within"].isna()]

    @property
    def verdict(self) -> str:
        """One sentence: within the seed spread for every model, or which models drift and by how much."""
        if self.empty:
            return ""
        label = tables.METRIC_LABELS.get(self.metric, self.metric)
        parts = []
        for precision, group in self.rows.groupby(level="precision", sort=False):
            name = SHORT_NAMES.get(precision, precision)
            drifting = _beyond_spread(group)
            undecided = group[group["within"].isna()]
            if drifting.empty and undecided.empty:
                parts.append(f"{name} moved every model's test {label} by no more than the seed-to-seed spread "
                             f"(the largest difference: {group['ratio'].abs().max():.2f} spreads).")
                continue
            if not drifting.empty:
                listed = ", ".join(f"{model} ({row.relative:+.1%}, {row.ratio:+.2f} spreads)"
                                   for (_, model, _), row in drifting.iterrows())
                parts.append(f"{name} moved the test {label} of {len(drifting)} of {len(group)} models by more "
                             f"than the seed-to-seed spread: {listed}.")
            if not undecided.empty:
                models = ", ".join(model for _, model, _ in undecided.index)
                parts.append(f"Undecided (fewer than two seeds at a precision): {models}.")
        return " ".join(parts)

    @property
    def caption(self) -> str:
        """What the columns mean, then the verdict."""
        label = tables.METRIC_LABELS.get(self.metric, self.metric)
        return (f"Test {label} ({self.space} units, best-validation checkpoint) of the same runs trained in fp32 "
                "and in another precision: mean ± standard deviation over seeds (n seeds), the difference of "
                "the means (other - fp32; relative to fp32), the pooled seed-to-seed standard deviation "
                "('spread') and their ratio, Welch's t-test p of the two means; 'within': the difference is at most "
                "one spread either way. "
                + self.verdict)


def precision_drift(frame: pd.DataFrame, metric: str = "mse", space: str = "normalized",
                    profile: str | None = None) -> DriftTable:
    """The drift table of `frame` (`records.records_to_frame`); see the module docstring."""
    rows = tables._select(frame[frame["epoch"] == "best"], space, [metric], profile)
    rows = tables.main_length(rows)
    rows = rows[rows["trainable"].astype(bool)]  # a model without parameters computes no differently
    found = []
    for (dataset, model), runs in rows.groupby(["dataset", "model"], sort=False):
        setting = _latest_paired_setting(runs)
        if setting is None:
            continue
        paired = runs[runs["setting_key"] == setting]
        reference = paired.loc[paired["precision"] == REFERENCE_PRECISION, "value"]
        for precision, other in paired[paired["precision"] != REFERENCE_PRECISION].groupby("precision"):
            found.append({"dataset": dataset, "model": model, "precision": precision,
                          **_compare(reference, other["value"]), "family": runs["family"].iloc[0]})
    if not found:
        empty = pd.DataFrame(columns=[*NUMBER_COLUMNS, "within"], index=pd.MultiIndex.from_tuples(
            [], names=["dataset", "model", "precision"]))
        return DriftTable(empty, metric, space)
    table = pd.DataFrame(found)
    order = sorted(range(len(table)), key=lambda i: (table["dataset"][i], *tables._model_rank(
        table["model"][i], table["family"][i]), table["precision"][i]))
    table = table.iloc[order].drop(columns="family").set_index(["dataset", "model", "precision"])
    table["within"] = table["within"].astype("boolean")  # NA: undecided
    return DriftTable(table, metric, space)


def _latest_paired_setting(runs: pd.DataFrame) -> str | None:
    """The most recently finished setting among those with runs at fp32 and at another precision."""
    precisions = runs.groupby("setting_key")["precision"].agg(set)
    paired = [key for key, found in precisions.items() if REFERENCE_PRECISION in found and len(found) > 1]
    if not paired:
        return None
    latest = runs[runs["setting_key"].isin(paired)].groupby("setting_key")["finished_at"].max()
    return str(latest.idxmax())


def _compare(reference: pd.Series, other: pd.Series) -> dict[str, object]:
    """The numbers of one row: both sides' mean, std and n, the difference, the spread, their ratio."""
    ref_mean, ref_std, mean, std = reference.mean(), reference.std(ddof=1), other.mean(), other.std(ddof=1)
    difference = mean - ref_mean
    spread = float(np.sqrt((ref_std ** 2 + std ** 2) / 2))  # NaN when a side has one seed
    if spread > 0:
        ratio = difference / spread
    else:  # no spread: NaN with one seed; 0 when every seed scored the same (bit-identical runs)
        ratio = spread if np.isnan(spread) else 0.0 if difference == 0 else np.copysign(np.inf, difference)
    p = np.nan
    if len(reference) > 1 and len(other) > 1 and spread > 0:
        p = float(stats.ttest_ind(other, reference, equal_var=False).pvalue)
    return {"ref_mean": ref_mean, "ref_std": ref_std, "ref_n": len(reference), "mean": mean, "std": std,
            "n": len(other), "difference": difference, "relative": difference / ref_mean if ref_mean else np.nan,
            "spread": spread, "ratio": ratio, "p": p,
            "within": pd.NA if np.isnan(ratio) else bool(abs(ratio) <= 1.0)}


def formatted(drift: DriftTable) -> pd.DataFrame:
    """The table as text cells: `fp32` and the other precision (named when there is one) as mean ± std (n),
    then the comparison."""
    def side(mean: float, std: float, n: int) -> str:
        return f"{mean:.5f} ± {std:.5f} ({n})" if not np.isnan(std) else f"{mean:.5f} ({n})"

    r = drift.rows
    return pd.DataFrame({
        "fp32": [side(*v) for v in zip(r["ref_mean"], r["ref_std"], r["ref_n"], strict=True)],
        drift.other_name: [side(*v) for v in zip(r["mean"], r["std"], r["n"], strict=True)],
        "difference": [f"{d:+.5f} ({rel:+.1%})" for d, rel in zip(r["difference"], r["relative"], strict=True)],
        "spread": r["spread"].map(lambda s: _number(s, ".5f")),
        "difference / spread": r["ratio"].map(lambda x: _number(x, "+.2f")),
        "p (Welch)": r["p"].map(lambda x: _number(x, ".2f")),
        "within": _within_text(r["within"]),
    }, index=r.index)


def compact(drift: DriftTable) -> pd.DataFrame:
    """The table for an 80-column terminal, rows named by `row_labels`: the means (with (n=k) where a side
    has other than the usual seed count), the relative difference, its ratio to the spread, Welch's p and
    the verdict; the standard deviations and the spread are in the files."""
    r = drift.rows
    usual = tables.usual_seeds(r[["ref_n", "n"]])

    def mean(value: float, n: int) -> str:
        return f"{value:.5f}" + ("" if n == usual else f" (n={n})")

    return pd.DataFrame({
        "fp32": [mean(*v) for v in zip(r["ref_mean"], r["ref_n"], strict=True)],
        drift.other_name: [mean(*v) for v in zip(r["mean"], r["n"], strict=True)],
        "diff": r["relative"].map(lambda x: _number(x, "+.1%")).to_list(),
        "Δ/spread": r["ratio"].map(lambda x: _number(x, "+.2f")).to_list(),
        "p": r["p"].map(lambda x: _number(x, ".2f")).to_list(),
        "within": _within_text(r["within"]).to_list(),
    }, index=drift.row_labels)


def _beyond_spread(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows judged outside the seed spread (not the undecided ones)."""
    return rows[(~rows["within"]).fillna(False)]


def _number(value: float, spec: str) -> str:
    """`value` formatted by `spec`, or empty where it is NaN."""
    return "" if np.isnan(value) else format(value, spec)


def _within_text(within: pd.Series) -> pd.Series:
    return within.map(lambda w: "n/a" if pd.isna(w) else "yes" if w else "NO")


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
