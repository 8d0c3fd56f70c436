"""The paper's tables as pure functions of run records: main table, epoch sweep, length sweep.

Each builder takes the long DataFrame of `records.records_to_frame` and returns a `Table`: wide
DataFrames of the means over seeds, their sample standard deviations and the seed counts, from which
the 95% confidence interval of the mean follows (Student t over seeds: mean ± t_{0.975, n-1} * std /
sqrt(n); one seed gives no interval, its std and interval bounds are NaN). `render` writes a table as
CSV (per cell: mean, std, n, ci_low, ci_high), LaTeX (pandas Styler: mean ± CI half-width, best mean
bold) and Markdown; the caption says over how many seeds, and a cell whose count differs from the
table's usual one says `(n=k)`.

Which runs fill a cell: for each (model, dataset) -- and T_out for the length sweep -- the runs of
the most recently finished configuration; runs of that configuration that differ only by seed
are averaged. Filter by profile with `profile=` to compare like with like.

Row order comes from the records alone (no model package is imported): persistence first, then
the models by family in `FAMILY_ORDER` (the paper's order: reference forecasts, recurrent, CNN,
physics-guided, then the Mamba-diffusion models it evaluates; families not listed follow,
alphabetically), and by name within a family. In the sweep tables this holds within each dataset.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from benchmark.core.atomic import write_text_atomic

LOWER_IS_BETTER = {"mse": True, "mae": True, "rmse": True, "rmse_wb2": True, "lat_rmse": True, "ssim": False,
                   "psnr": False, "acc": False, "crps": True, "ens_mse": True}  # crps: a deterministic run's is its MAE
CLOSEST_TO_ONE = frozenset({"detail_ratio", "spread_skill"})  # best = nearest 1 (in ratio: |log value| smallest)
METRICS = (*LOWER_IS_BETTER, *sorted(CLOSEST_TO_ONE))  # every metric a table can show
METRIC_LABELS = {"mse": "MSE", "mae": "MAE", "rmse": "RMSE", "rmse_wb2": "RMSE (WB2)", "lat_rmse": "RMSE (lat-w., WB1)",
                 "ssim": "SSIM", "psnr": "PSNR", "acc": "ACC", "detail_ratio": "detail", "crps": "CRPS",
                 "ens_mse": "ens. mean MSE", "spread_skill": "spread/skill"}
FORMATS = ("csv", "latex", "markdown")
BASELINE_MODEL = "persistence"
FAMILY_ORDER = ("reference", "recurrent", "cnn", "physics-guided", "mamba-diffusion")
CI_LEVEL = 0.95  # two-sided confidence level of the interval over seeds
CSV_STATS = ("mean", "std", "n", "ci_low", "ci_high")


def ci_half_width(std: object, n: object, level: float = CI_LEVEL) -> object:
    """Half-width of the two-sided `level` confidence interval of a mean over `n` seeds (Student t).

    `t_{(1+level)/2, n-1} * std / sqrt(n)` with `std` the sample standard deviation (ddof=1);
    NaN where n < 2 (one seed: no interval). Works elementwise on scalars, arrays and DataFrames.
    """
    n_values = np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        df = np.where(n_values >= 2, n_values - 1, np.nan)
        width = stats.t.ppf(0.5 + level / 2, df) * np.asarray(std, dtype=float) / np.sqrt(n_values)
    if isinstance(std, pd.DataFrame):
        return pd.DataFrame(width, index=std.index, columns=std.columns)
    return width if np.ndim(width) else float(width)


@dataclass
class Table:
    """A rendered-ready table: means, standard deviations (NaN with one seed), seed counts and a caption."""

    name: str
    mean: pd.DataFrame
    std: pd.DataFrame
    seeds: pd.DataFrame
    caption: str
    flagged: set[str]  # marked †: not better than persistence on MSE
    column_prefix: str = ""  # how the non-metric column level reads: "" (datasets), "epoch ", "T_out="
    improving: set[str] = field(default_factory=set)  # marked ‡: best validation epoch = last epoch
    marks: pd.DataFrame | None = None  # like `mean`: "▲" / "▼" / "" after a baseline's cell (`with_significance`)
    bold: pd.DataFrame | None = None  # like `mean`: True where bold (tested best); None: the best mean is bold
    ties: pd.DataFrame | None = None  # like `mean`: True where the best and the runner-up tie (TIE_MARK)

    @property
    def empty(self) -> bool:
        """True when no record matched."""
        return self.mean.empty

    @property
    def half_width(self) -> pd.DataFrame:
        """Half-width of each cell's 95% confidence interval over seeds (Student t); NaN with one seed."""
        return ci_half_width(self.std, self.seeds)

    @property
    def ci_low(self) -> pd.DataFrame:
        return self.mean - self.half_width

    @property
    def ci_high(self) -> pd.DataFrame:
        return self.mean + self.half_width

    @property
    def usual_seeds(self) -> int | None:
        """The table's usual seed count, `usual_seeds(seeds)`."""
        return usual_seeds(self.seeds)


def usual_seeds(seeds: pd.DataFrame) -> int | None:
    """The most common seed count over the filled cells (ties: the larger); None for an empty table."""
    counts = pd.Series(seeds.to_numpy().ravel()).dropna().astype(int)
    if counts.empty:
        return None
    frequency = counts.value_counts()
    return int(max(frequency.index, key=lambda k: (frequency[k], k)))


def seed_note(seeds: pd.DataFrame) -> str:
    """The caption's sentence on seeds and the interval: how many seeds, what ± means, what (n=k) means."""
    usual = usual_seeds(seeds)
    if usual is None:
        return ""
    interval = f"± : {CI_LEVEL:.0%} confidence interval of the mean over"
    if set(pd.Series(seeds.to_numpy().ravel()).dropna().astype(int)) == {usual}:
        return (f"{interval} {usual} seeds (Student t)." if usual > 1 else
                "One seed per cell: no confidence interval.")
    return (f"{interval} the seeds (Student t); {usual} seed{'s' if usual > 1 else ''} per cell unless "
            "it says (n=k); one seed gives no interval.")


def main_length(frame: pd.DataFrame) -> pd.DataFrame:
    """Per dataset, only the rows at its main prediction length: the T_out the most models were run at
    (ties: the longest). Length-sweep runs (`--pred-lens`) then never stand in a main-table cell."""
    if frame.empty:
        return frame
    models = frame.groupby(["dataset", "t_out"])["model"].nunique().reset_index()
    main = (models.sort_values(["model", "t_out"]).groupby("dataset").tail(1)[["dataset", "t_out"]]
            .rename(columns={"t_out": "main_t_out"}))
    merged = frame.merge(main, on="dataset")
    return merged[merged["t_out"] == merged["main_t_out"]].drop(columns="main_t_out")


def _latest_configuration(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Keep, per `keys` group, only the rows of the most recently finished configuration."""
    if frame.empty:
        return frame
    latest = (frame.sort_values("finished_at").groupby(keys, sort=False)["config_key"].last()
              .rename("latest_key").reset_index())
    merged = frame.merge(latest, on=keys)
    return merged[merged["config_key"] == merged["latest_key"]].drop(columns="latest_key")


def _select(frame: pd.DataFrame, space: str, metrics: list[str], profile: str | None) -> pd.DataFrame:
    rows = frame[(frame["space"] == space) & (frame["lead"] == 0) & frame["metric"].isin(metrics)]
    if profile:
        rows = rows[rows["profile"] == profile]
    return rows


def _pivot(rows: pd.DataFrame, index: list[str], columns: list[str], metrics: list[str]) -> tuple[pd.DataFrame, ...]:
    grouped = rows.groupby(index + columns)["value"]
    cells = pd.DataFrame({"mean": grouped.mean(), "std": grouped.std(ddof=1), "n": grouped.count()})
    wide = {k: cells[k].unstack(columns) for k in ("mean", "std", "n")}
    order = [m for m in metrics if m in set(rows["metric"])]
    for key, table in wide.items():
        table = table.reindex(columns=sorted(table.columns, key=lambda c: (*c[:-1], order.index(c[-1]))))
        wide[key] = table
    return wide["mean"], wide["std"], wide["n"]


def _model_rank(model: str, family: str) -> tuple:
    """Sort key of a table row's model: persistence, then family (FAMILY_ORDER, others after), then name."""
    known = FAMILY_ORDER.index(family) if family in FAMILY_ORDER else len(FAMILY_ORDER)
    return (model != BASELINE_MODEL, known, family, model)


def _in_model_order(tables: tuple[pd.DataFrame, ...], rows: pd.DataFrame) -> tuple[pd.DataFrame, ...]:
    """`tables` (indexed by model, or by (dataset, model)) with their rows in the documented model order."""
    families = dict(zip(rows["model"], rows["family"], strict=True))
    index = tables[0].index

    def rank(key: object) -> tuple:
        *leading, model = key if isinstance(key, tuple) else (key,)
        return (*leading, *_model_rank(model, families.get(model, "")))

    order = sorted(index, key=rank)
    return tuple(t.reindex(order) for t in tables)


def _flag_not_beating_persistence(mean: pd.DataFrame) -> set[str]:
    """Models whose MSE is not below persistence's on some dataset of the table."""
    if BASELINE_MODEL not in mean.index:
        return set()
    flagged = set()
    for column in mean.columns:
        if column[-1] != "mse":
            continue
        reference = mean.loc[BASELINE_MODEL, column]
        flagged |= {m for m, v in mean[column].items() if m != BASELINE_MODEL and pd.notna(v) and v >= reference}
    return flagged


def budget_rule(rows: pd.DataFrame) -> str:
    """One sentence on the training budget of the learned models in `rows` (the table's caption says it)."""
    learned = rows[rows["trainable"].astype(bool)].drop_duplicates("run_id")
    if learned.empty:
        return ""
    budgets = learned.groupby(["epochs", "batch_size"])["model"].agg(lambda m: sorted(set(m)))
    steps = sorted({int(s) for s in learned["optimizer_steps"].dropna()})
    step_text = (f"{steps[0]} optimizer steps" if len(steps) == 1 else
                 f"{steps[0]}-{steps[-1]} optimizer steps" if steps else "")
    if len(budgets) == 1:
        (epochs, batch), _ = next(iter(budgets.items()))
        return f"Every learned model: {epochs} epochs at batch {batch}{f' ({step_text})' if steps else ''}."
    parts = [f"{epochs} epochs at batch {batch}: {', '.join(models)}" for (epochs, batch), models in budgets.items()]
    return f"Unequal budgets -- {'; '.join(parts)}."


def precision_note(rows: pd.DataFrame) -> str:
    """The caption's sentence on training precision: nothing when every learned model trained in fp32,
    the precision when all share another, the models per precision when they differ."""
    learned = rows[rows["trainable"].astype(bool)].drop_duplicates("run_id")
    if learned.empty or "precision" not in learned:
        return ""
    by_precision = learned.groupby("precision")["model"].agg(lambda m: sorted(set(m)))
    if len(by_precision) == 1:
        precision = by_precision.index[0]
        return "" if precision == "32-true" else f"Every learned model trained in {precision} precision."
    parts = [f"{precision}: {', '.join(models)}" for precision, models in by_precision.items()]
    return f"Trained in different precisions -- {'; '.join(parts)}."


def _sentences(*parts: str) -> str:
    """A caption from its sentences, the empty ones left out."""
    return " ".join(p for p in parts if p)


def main_table(frame: pd.DataFrame, space: str = "normalized", metrics: list[str] | None = None,
               profile: str | None = None) -> Table:
    """Rows: models; columns: dataset x metric; the best-checkpoint test scores."""
    metrics = metrics or ["mse", "mae", "ssim"]
    rows = _select(frame[frame["epoch"] == "best"], space, metrics, profile)
    rows = _latest_configuration(main_length(rows), ["model", "dataset"])
    mean, std, n = _in_model_order(_pivot(rows, ["model"], ["dataset", "metric"], metrics), rows)
    improving = set(rows.loc[rows["still_improving"].astype(bool), "model"])
    caption = _sentences(f"Test scores of the best-validation checkpoint, {space} units, per-pixel means, "
                         "averaged over seeds.", seed_note(n), budget_rule(rows), precision_note(rows),
                         "† : not better than persistence on MSE.",
                         "‡ : still improving (its best validation epoch is its last: budget-bound).")
    return Table("main", mean, std, n, caption, _flag_not_beating_persistence(mean), improving=improving)


def epoch_sweep_table(frame: pd.DataFrame, space: str = "normalized", metrics: list[str] | None = None,
                      profile: str | None = None) -> Table:
    """Rows: (dataset, model); columns: epoch x metric; test scores after each --eval-at epoch."""
    metrics = metrics or ["mse", "mae", "ssim"]
    rows = _select(frame[frame["epoch"] != "best"], space, metrics, profile)
    rows = _latest_configuration(main_length(rows), ["model", "dataset"]).copy()
    rows["epoch"] = rows["epoch"].astype(int)
    mean, std, n = _in_model_order(_pivot(rows, ["dataset", "model"], ["epoch", "metric"], metrics), rows)
    caption = _sentences(f"Test scores after N training epochs (--eval-at), {space} units, averaged over seeds.",
                         seed_note(n), precision_note(rows))
    return Table("epoch_sweep", mean, std, n, caption, set(), column_prefix="epoch ")


def length_sweep_table(frame: pd.DataFrame, space: str = "normalized", metrics: list[str] | None = None,
                       profile: str | None = None) -> Table:
    """Rows: (dataset, model); columns: predicted length T_out x metric; best-checkpoint scores."""
    metrics = metrics or ["mse", "mae", "ssim"]
    rows = _select(frame[frame["epoch"] == "best"], space, metrics, profile)
    rows = _latest_configuration(rows, ["model", "dataset", "t_out"])
    mean, std, n = _in_model_order(_pivot(rows, ["dataset", "model"], ["t_out", "metric"], metrics), rows)
    caption = _sentences(f"Test scores by prediction length T_out, {space} units, averaged over seeds.",
                         seed_note(n), precision_note(rows))
    return Table("length_sweep", mean, std, n, caption, set(), column_prefix="T_out=")


def _best_per_column(mean: pd.DataFrame) -> pd.DataFrame:
    """Boolean frame: True where a cell is the best of its column (per dataset block for sweeps)."""
    best = pd.DataFrame(False, index=mean.index, columns=mean.columns)
    groups = [mean.index] if mean.index.nlevels == 1 else [
        mean.index[mean.index.get_level_values(0) == d] for d in mean.index.get_level_values(0).unique()]
    for column in mean.columns:
        lower = LOWER_IS_BETTER.get(column[-1], True)
        for index in groups:
            values = mean.loc[index, column].dropna()
            if column[-1] in CLOSEST_TO_ONE:
                values = np.log(values[values > 0]).abs()
                lower = True
            if not values.empty:
                best.loc[values.idxmin() if lower else values.idxmax(), column] = True
    return best


def formatted(table: Table, bold: tuple[str, str] = ("", "")) -> pd.DataFrame:
    """Cells as text: `mean ± CI half-width` (several seeds; one seed: the mean alone), best mean per column
    wrapped in `bold`; `(n=k)` after a cell whose seed count k is not the table's usual one (the caption's)."""
    best = table.bold if table.bold is not None else _best_per_column(table.mean)
    half_width = table.half_width
    usual = table.usual_seeds

    def cell(row: object, column: object) -> str:
        value = table.mean.at[row, column]
        if pd.isna(value):
            return "–"
        fixed = {"ssim": 4, "psnr": 2, "detail_ratio": 3}  # decimals; the others: 4 significant digits
        digits = fixed.get(column[-1], 4)
        text = f"{value:.{digits}f}" if column[-1] in fixed else f"{value:.{digits}g}"
        width = half_width.at[row, column]
        if pd.notna(width):
            text += f" ± {width:.{digits}f}" if column[-1] in fixed else f" ± {width:.2g}"
        if best.at[row, column]:
            text = f"{bold[0]}{text}{bold[1]}"
        seeds = int(table.seeds.at[row, column])
        if seeds != usual:
            text = f"{text} (n={seeds})"
        mark = table.marks.at[row, column] if table.marks is not None else ""
        if table.ties is not None and table.ties.at[row, column]:
            mark = f"{TIE_MARK}{mark}"
        return f"{text} {mark}" if mark else text

    text = pd.DataFrame({c: [cell(r, c) for r in table.mean.index] for c in table.mean.columns},
                        index=table.mean.index)
    text.columns = pd.MultiIndex.from_tuples([_column_label(c, table.column_prefix) for c in table.mean.columns])
    text.index = table.mean.index.map(lambda key: _mark_models(key, table))
    return text


def _mark_models(key: object, table: Table) -> object:
    """Append † (flagged) and ‡ (still improving) to the model part (the last level) of a row key."""
    parts = key if isinstance(key, tuple) else (key,)
    marks = ("†" if parts[-1] in table.flagged else "") + ("‡" if parts[-1] in table.improving else "")
    if marks:
        parts = (*parts[:-1], f"{parts[-1]} {marks}")
    return parts if isinstance(key, tuple) else parts[0]


def _column_label(column: tuple, prefix: str) -> tuple:
    arrow = "→1" if column[-1] in CLOSEST_TO_ONE else "↓" if LOWER_IS_BETTER.get(column[-1], True) else "↑"
    return (*(f"{prefix}{c}" for c in column[:-1]), f"{METRIC_LABELS.get(column[-1], column[-1])} {arrow}")


def to_markdown(table: Table) -> str:
    """GitHub Markdown table with a caption line."""
    text = formatted(table, bold=("**", "**"))
    flat = text.copy()
    flat.columns = [" / ".join(str(p) for p in c) for c in text.columns]
    flat.index = [" / ".join(map(str, i)) if isinstance(i, tuple) else str(i) for i in text.index]
    flat.index.name = " / ".join(n or "" for n in text.index.names) or "model"
    return f"{table.caption}\n\n{flat.to_markdown()}\n"


def _latex_escape(text: str) -> str:
    """Make a cell, label or caption LaTeX-safe: underscores, ±, and the † / ‡ marks."""
    for plain, latex in (("_", "\\_"), ("%", "\\%"), ("±", "$\\pm$"), ("†", "$^\\dagger$"), ("‡", "$^\\ddagger$"),
                         ("▲", "$\\triangle$"), ("▼", "$\\nabla$"), ("Δ", "$\\Delta$"),
                         ("≈", "$\\approx$")):
        text = text.replace(plain, latex)
    return text


def to_latex(table: Table) -> str:
    """LaTeX tabular (booktabs rules, multicolumn headers) via pandas Styler."""
    text = formatted(table, bold=("\\textbf{", "}"))
    text = text.map(_latex_escape)
    text.index = text.index.map(
        lambda i: tuple(_latex_escape(str(p)) for p in i) if isinstance(i, tuple) else _latex_escape(str(i)))
    text.columns = pd.MultiIndex.from_tuples(
        [tuple(str(p).replace("_", "\\_").replace("↓", "$\\downarrow$").replace("↑", "$\\uparrow$")
               .replace("→", "$\\to$") for p in c)
         for c in text.columns])
    styler = text.style
    caption = _latex_escape(table.caption)
    # "naive": the (dataset, model) row label without \multirow, so booktabs is the only package needed
    return styler.to_latex(hrules=True, multicol_align="c", multirow_align="naive", caption=caption,
                           position_float="centering", environment="table")


def to_csv_frame(table: Table) -> pd.DataFrame:
    """The numbers of `table`, five columns per cell: `<column>/<metric>/{mean,std,n,ci_low,ci_high}`.

    std, ci_low and ci_high are NaN (empty in the CSV) for a cell over one seed; n is empty where a model
    has no score for that column.
    """
    values = {"mean": table.mean, "std": table.std, "n": table.seeds.astype("Int64"), "ci_low": table.ci_low,
              "ci_high": table.ci_high}
    numbers = pd.DataFrame({f"{'/'.join(map(str, c))}/{key}": values[key][c]
                            for c in table.mean.columns for key in CSV_STATS}, index=table.mean.index)
    numbers.index.names = table.mean.index.names
    return numbers


def render(table: Table, out_dir: Path, formats: tuple[str, ...] = FORMATS, suffix: str = "") -> list[Path]:
    """Write `table` in each of `formats` to `out_dir/<name><suffix>.{csv,tex,md}`; returns the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    stem = f"{table.name}{suffix}"
    if "csv" in formats:
        path = out_dir / f"{stem}.csv"
        write_text_atomic(path, to_csv_frame(table).to_csv())
        written.append(path)
    if "latex" in formats:
        path = out_dir / f"{stem}.tex"
        write_text_atomic(path, to_latex(table))
        written.append(path)
    if "markdown" in formats:
        path = out_dir / f"{stem}.md"
        write_text_atomic(path, to_markdown(table))
        written.append(path)
    return written


SIGNIFICANCE_ALPHA = 0.05
SIGNIFICANCE_MARKS = {"better": "▲", "worse": "▼", "none": ""}
TIE_MARK = "≈"  # the best mean of a column is not significantly better than the runner-up's


SIGNIFICANCE_AXES = {None: "main table", "t_out": "prediction length", "epoch": "--eval-at epoch"}
MARK_COLUMNS = ("seeds", "n_windows", "model_mean", "baseline_mean", "mean_diff", "ci_low", "ci_high", "relative",
                "relative_low", "relative_high", "df", "p", "p_adj", "method", "adjustment", "mark")


def _significance_runs(frame: pd.DataFrame, axis: str | None, metrics: list[str], profile: str | None
                       ) -> pd.DataFrame:
    """The runs of the table `axis` names (columns run_id, model, dataset, cell, value per metric): the main
    table's (cell None), the length sweep's (cell = t_out) or the epoch sweep's (one row per run and
    --eval-at epoch)."""
    if axis not in SIGNIFICANCE_AXES:
        raise ValueError(f"axis must be one of {list(SIGNIFICANCE_AXES)}, got {axis!r}")
    best = frame["epoch"] == "best"
    rows = _select(frame[~best if axis == "epoch" else best], "normalized", metrics, profile)
    if axis == "t_out":
        rows = _latest_configuration(rows, ["model", "dataset", "t_out"])
    else:
        rows = _latest_configuration(main_length(rows), ["model", "dataset"])
    rows = rows.assign(cell=rows[axis].astype(int) if axis else None)
    return rows[["run_id", "model", "dataset", "cell", "metric", "value"]]


class _PairedRuns:
    """Loads run records once and runs the paired test of two models' runs in one cell."""

    def __init__(self, results_dir: Path, axis: str | None, method: str, alpha: float, n_boot: int):
        self.results_dir, self.axis, self.method, self.alpha, self.n_boot = results_dir, axis, method, alpha, n_boot
        self.records: dict[str, object] = {}

    def loaded(self, run_ids: object) -> list:
        from benchmark.results.records import read_record, record_path

        for run_id in run_ids:
            if run_id not in self.records:
                self.records[run_id] = read_record(record_path(self.results_dir, run_id))
        return [self.records[r] for r in run_ids]

    def test(self, ours: object, theirs: object, metric: str, cell: object) -> dict | None:
        """The test's numbers as a row (None where a side stored no per-sample errors or no seed is shared)."""
        from benchmark.analysis.significance import compare_runs
        from benchmark.core.errors import BenchError

        epoch = int(cell) if self.axis == "epoch" else None
        try:
            seeds, result = compare_runs(self.loaded(ours), self.loaded(theirs), metric, results_dir=self.results_dir,
                                         method=self.method, alpha=self.alpha, n_boot=self.n_boot, epoch=epoch)
        except BenchError:
            return None
        better = result.mean_diff < 0 if LOWER_IS_BETTER.get(metric, True) else result.mean_diff > 0
        return {"seeds": ",".join(map(str, seeds)), "n_windows": result.n_windows, "model_mean": result.model_mean,
                "baseline_mean": result.baseline_mean, "mean_diff": result.mean_diff, "ci_low": result.ci_low,
                "ci_high": result.ci_high, "relative": result.relative, "relative_low": result.relative_low,
                "relative_high": result.relative_high, "df": result.df, "p": result.p_value,
                "p_floor": result.p_floor, "method": self.method, "better": better}


def _adjusted(found: list[dict], adjustment: str, alpha: float) -> list[dict]:
    """`found` with `p_adj` (the whole list one family) and its mark."""
    from benchmark.analysis.significance import adjust

    for entry, p_adj in zip(found, adjust([e["p"] for e in found], adjustment), strict=True):
        better = entry.pop("better")
        kind = "none" if p_adj > alpha else "better" if better else "worse"
        entry.update(p_adj=float(p_adj), adjustment=adjustment, mark=SIGNIFICANCE_MARKS[kind])
    return found


def significance_marks(frame: pd.DataFrame, results_dir: Path, model: str = "diffuma",
                       metrics: list[str] | None = None, profile: str | None = None,
                       alpha: float = SIGNIFICANCE_ALPHA, axis: str | None = None, method: str | None = None,
                       adjustment: str | None = None, n_boot: int | None = None) -> pd.DataFrame:
    """Paired tests of `model` against every other model of a table, per cell (dataset, metric[, axis]).

    `axis` picks the table: None the main table (per (model, dataset) the latest configuration, best
    checkpoint), "t_out" the length sweep (one run per prediction length), "epoch" the epoch sweep (the
    errors each run stored after its --eval-at epochs). Runs are paired by seed on their stored
    per-window normalized errors and tested by `method` (`benchmark.analysis.significance`: windows'
    autocorrelation and the seeds' variance respected). All the tests of the table -- every baseline x
    every cell x the metrics shown -- are ONE family: their p-values are adjusted together (`adjustment`:
    Holm or Benjamini-Hochberg). One row per (baseline, dataset[, axis], metric): `MARK_COLUMNS`, the
    mean difference (model - baseline) with its CI, `relative` = 1 - model / baseline with its CI, the
    raw and adjusted p, and `mark`: "▲" the model is significantly better, "▼" worse, "" not significant.
    Baselines whose runs stored no per-sample errors there, or share no seed with the model, are left out.
    """
    from benchmark.analysis.significance import DEFAULT_ADJUSTMENT, DEFAULT_TEST, N_BOOT, PER_SAMPLE_METRICS

    metrics = [m for m in (metrics or ["mse", "mae", "ssim"]) if m in PER_SAMPLE_METRICS]
    runs = _significance_runs(frame, axis, metrics, profile).drop_duplicates(["run_id", "cell"])
    columns = ["baseline", "dataset", *([axis] if axis else []), "metric", *MARK_COLUMNS, "p_floor"]
    pairs = _PairedRuns(results_dir, axis, method or DEFAULT_TEST, alpha, n_boot or N_BOOT)
    found: list[dict] = []
    for (dataset, cell), group in runs.groupby(["dataset", "cell"], sort=True, dropna=False):
        ours = group.loc[group["model"] == model, "run_id"]
        if ours.empty:
            continue
        where = {"dataset": dataset, **({axis: int(cell)} if axis else {})}
        for metric in metrics:
            for baseline, runs_b in group[group["model"] != model].groupby("model", sort=False):
                row = pairs.test(ours, runs_b["run_id"], metric, cell)
                if row is not None:
                    found.append({"baseline": baseline, **where, "metric": metric, **row})
    return pd.DataFrame(_adjusted(found, adjustment or DEFAULT_ADJUSTMENT, alpha), columns=columns)


def best_vs_runner_up(frame: pd.DataFrame, results_dir: Path, metrics: list[str] | None = None,
                      profile: str | None = None, alpha: float = SIGNIFICANCE_ALPHA, axis: str | None = None,
                      method: str | None = None, adjustment: str | None = None, n_boot: int | None = None
                      ) -> pd.DataFrame:
    """Per column of a table (dataset, metric[, axis]): is the best mean significantly better than the
    runner-up's? The same paired test as `significance_marks`, the columns of the table one family.
    Columns best, runner_up, plus `MARK_COLUMNS` (model = best, baseline = runner-up); `mark` "▲" where
    the best is significantly better (bold in the table), "" where not (a tie: `TIE_MARK`)."""
    from benchmark.analysis.significance import DEFAULT_ADJUSTMENT, DEFAULT_TEST, N_BOOT, PER_SAMPLE_METRICS

    metrics = [m for m in (metrics or ["mse", "mae", "ssim"]) if m in PER_SAMPLE_METRICS]
    runs = _significance_runs(frame, axis, metrics, profile)
    columns = ["dataset", *([axis] if axis else []), "metric", "best", "runner_up", *MARK_COLUMNS, "p_floor"]
    pairs = _PairedRuns(results_dir, axis, method or DEFAULT_TEST, alpha, n_boot or N_BOOT)
    found: list[dict] = []
    for (dataset, cell, metric), group in runs.groupby(["dataset", "cell", "metric"], sort=True, dropna=False):
        means = group.groupby("model")["value"].mean().sort_values(ascending=LOWER_IS_BETTER.get(metric, True))
        if len(means) < 2:
            continue
        best, runner_up = means.index[0], means.index[1]
        row = pairs.test(group.loc[group["model"] == best, "run_id"].unique(),
                         group.loc[group["model"] == runner_up, "run_id"].unique(), metric, cell)
        if row is not None:
            found.append({"dataset": dataset, **({axis: int(cell)} if axis else {}), "metric": metric,
                          "best": best, "runner_up": runner_up, **row})
    return pd.DataFrame(_adjusted(found, adjustment or DEFAULT_ADJUSTMENT, alpha), columns=columns)


def significance_caption(marks: pd.DataFrame, model: str = "diffuma", primary: str | None = None) -> str:
    """The sentence a table's caption gets about its marks: the test, the family, the adjustment, alpha."""
    from benchmark.analysis.significance import ADJUSTMENT_NAMES, TEST_NAMES

    method = marks["method"].iloc[0]
    adjustment = marks["adjustment"].iloc[0]
    seeds = sorted({len(s.split(",")) for s in marks["seeds"]})
    if seeds == [1]:
        seed_text = "one seed (covers new test windows, not new seeds)"
    elif len(seeds) == 1:
        seed_text = f"over {seeds[0]} seeds (between-seed variance included)"
    else:
        seed_text = "over the seeds both models have (between-seed variance included)"
    text = (f"▲ / ▼ after a cell: {model} is significantly better / worse than that model there: "
            f"{TEST_NAMES.get(method, method)} of the per-window normalized errors averaged over the lead "
            f"times, {seed_text}; all {len(marks)} tests of this table ({model} vs every baseline x every "
            f"cell x the metrics shown) form one family, {ADJUSTMENT_NAMES.get(adjustment, adjustment)}-"
            f"adjusted, alpha {SIGNIFICANCE_ALPHA}; no mark: not significant or not tested.")
    if primary:
        text += f" Primary endpoint: {primary}."
    return text


def primary_endpoint(marks: pd.DataFrame) -> str | None:
    """The primary endpoint of a table's tests: MSE (at the main prediction length), if it was tested."""
    if marks.empty or "mse" not in set(marks["metric"]):
        return None
    return "MSE at the main prediction length" if "t_out" not in marks.columns else "MSE at each length"


def with_significance(table: Table, marks: pd.DataFrame, model: str = "diffuma",
                      best: pd.DataFrame | None = None) -> Table:
    """`table` with the marks of `significance_marks` after its baselines' cells, the best-vs-runner-up
    tests (`best_vs_runner_up`) deciding bold and ties, and a caption saying so.

    The main table takes the marks of `axis=None` (cells (dataset, metric)); the length and epoch
    sweeps those of `axis="t_out"` / `"epoch"` (cells (dataset, model) x (t_out | epoch, metric)).
    A baseline cell's ▲ reads "`model` is significantly better than this baseline here", ▼ "worse";
    no mark: not significant, or not tested (no per-sample errors, no seed in common). With `best`,
    a column's best mean is bold only where it is significantly better than the runner-up; where
    not, both carry `TIE_MARK` and nothing is bold.
    """
    aligned = pd.DataFrame("", index=table.mean.index, columns=table.mean.columns, dtype=object)
    axis = next((a for a in ("t_out", "epoch") if a in marks.columns), None)

    def position(dataset: str, model_name: str, metric: str, cell: object) -> tuple[object, object]:
        row = model_name if table.mean.index.nlevels == 1 else (dataset, model_name)
        column = (dataset, metric) if axis is None else (cell, metric)
        return row, column

    tested = 0
    for entry in marks.itertuples(index=False):
        row, column = position(entry.dataset, entry.baseline, entry.metric, getattr(entry, axis) if axis else None)
        if row in aligned.index and column in aligned.columns:
            aligned.at[row, column] = entry.mark
            tested += 1
    if not tested:
        return table
    caption = _sentences(table.caption, significance_caption(marks, model, primary_endpoint(marks)))
    bold = ties = None
    if best is not None and not best.empty:
        bold = _best_per_column(table.mean)
        ties = pd.DataFrame(False, index=table.mean.index, columns=table.mean.columns)
        for entry in best.itertuples(index=False):
            cell = getattr(entry, axis) if axis else None
            row, column = position(entry.dataset, entry.best, entry.metric, cell)
            second, _ = position(entry.dataset, entry.runner_up, entry.metric, cell)
            if column not in bold.columns or row not in bold.index:
                continue
            if entry.mark != SIGNIFICANCE_MARKS["better"]:
                bold.at[row, column] = False
                ties.at[row, column] = True
                if second in ties.index:
                    ties.at[second, column] = True
        from benchmark.analysis.significance import ADJUSTMENT_NAMES

        caption = _sentences(caption, f"Bold: the best mean of a column, significantly better than the runner-up's "
                             f"(same test; the {len(best)} columns one family, "
                             f"{ADJUSTMENT_NAMES.get(best['adjustment'].iloc[0], '')}-adjusted); {TIE_MARK}: the "
                             "best and the runner-up are not significantly different (a tie: neither is bold); a "
                             "column without per-window errors (detail ratio) bolds its best mean, untested.")
    return replace(table, marks=aligned, caption=caption, bold=bold, ties=ties)


TABLE_AXES = {"main": None, "length_sweep": "t_out", "epoch_sweep": "epoch"}  # table name -> significance axis


def significance_stem(table: Table) -> str:
    """The file stem of a table's significance numbers: significance, significance_length_sweep, ..."""
    return "significance" if table.name == "main" else f"significance_{table.name}"


def mark_significance(table: Table, frame: pd.DataFrame, results_dir: Path, metrics: list[str] | None = None,
                      profile: str | None = None, model: str = "diffuma", method: str | None = None,
                      adjustment: str | None = None) -> tuple[Table, pd.DataFrame]:
    """`table` with its significance marks and tested bold (`with_significance`) and the tests behind the
    marks (`significance_marks` on the axis of the table: main, length sweep or epoch sweep)."""
    if table.name not in TABLE_AXES:
        raise ValueError(f"no significance test is defined for the table {table.name!r}")
    axis = TABLE_AXES[table.name]
    marks = significance_marks(frame, results_dir, model=model, metrics=metrics, profile=profile,
                               axis=axis, method=method, adjustment=adjustment)
    best = best_vs_runner_up(frame, results_dir, metrics=metrics, profile=profile, axis=axis, method=method,
                             adjustment=adjustment)
    return (with_significance(table, marks, model, best) if not marks.empty else table), marks


def significance_by_axis(frame: pd.DataFrame, results_dir: Path, profile: str | None = None,
                         model: str = "diffuma", method: str | None = None, adjustment: str | None = None
                         ) -> dict[str | None, pd.DataFrame]:
    """The paired tests of all three tables (`significance_marks` per axis: None main, "t_out",
    "epoch"), the axes without any test left out; what `benchmark.analysis.claims.claims_table` reads."""
    found = {axis: significance_marks(frame, results_dir, model=model, profile=profile, axis=axis, method=method,
                                      adjustment=adjustment)
             for axis in TABLE_AXES.values()}
    return {axis: marks for axis, marks in found.items() if not marks.empty}


def significance_cell(mark: str, relative: float, low: float, high: float, p_adj: float, floor: float = 0.0) -> str:
    """One test as a cell: the mark, the relative difference 1 - model / baseline with its CI, adjusted p."""
    from benchmark.analysis.significance import p_phrase

    return f"{mark} {relative:+.1%} [{low:+.1%}, {high:+.1%}] {p_phrase(p_adj, floor)}".strip()


def significance_table(marks: pd.DataFrame) -> pd.DataFrame:
    """`significance_marks` as a wide table: rows baselines, columns (dataset[, t_out | epoch], metric),
    cells `significance_cell`: mark, relative difference [CI], adjusted p."""
    if marks.empty:
        return pd.DataFrame()
    axis = [a for a in ("t_out", "epoch") if a in marks.columns]
    prefix = {"t_out": "T_out=", "epoch": "epoch "}
    cells = marks.assign(cell=[significance_cell(*values) for values in zip(
        marks["mark"], marks["relative"], marks["relative_low"], marks["relative_high"], marks["p_adj"],
        marks["p_floor"].fillna(0.0), strict=True)])
    keys = ["dataset", *axis, "metric"]
    wide = cells.set_index(["baseline", *keys])["cell"].unstack(keys).fillna("")
    wide.columns = [" ".join([str(c[0]), *(f"{prefix[a]}{v}" for a, v in zip(axis, c[1:-1], strict=True)),
                              METRIC_LABELS.get(c[-1], c[-1])]) for c in wide.columns]
    return wide


def render_significance(marks: pd.DataFrame, out_dir: Path, formats: tuple[str, ...] = FORMATS,
                        model: str = "diffuma", stem: str = "significance") -> list[Path]:
    """Write the significance table: `<stem>.csv` (the long numbers of `significance_marks`),
    `<stem>.md` and `<stem>.tex` (the wide cells; LaTeX marks: ▲ = $\\triangle$, ▼ = $\\nabla$, base
    LaTeX symbols); returns the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    wide = significance_table(marks)
    caption = (f"Paired tests of {model} against each baseline on the same test windows (normalized units). "
               f"Cells: the relative difference 1 - {model} / baseline (for an error: the share by which {model} "
               "lowers the baseline's; for SSIM negative is better) with its 95% confidence interval (per test, "
               "not adjusted), and the adjusted p-value. "
               + (significance_caption(marks, model, primary_endpoint(marks)) if not marks.empty else ""))
    written = []
    if "csv" in formats:
        path = out_dir / f"{stem}.csv"
        write_text_atomic(path, marks.to_csv(index=False))
        written.append(path)
    if "markdown" in formats:
        path = out_dir / f"{stem}.md"
        body = wide.to_markdown() if not wide.empty else "(no pairs of runs with per-sample errors)"
        write_text_atomic(path, f"{body}\n\n{caption}\n")
        written.append(path)
    if "latex" in formats:
        path = out_dir / f"{stem}.tex"
        escaped = wide.rename(index=_latex_escape, columns=_latex_escape).map(_latex_escape)
        write_text_atomic(path, escaped.style.to_latex(caption=_latex_escape(caption), environment="table",
                                                       hrules=True))
        written.append(path)
    return written
