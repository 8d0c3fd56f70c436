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

from benchmark.atomic import write_text_atomic

LOWER_IS_BETTER = {"mse": True, "mae": True, "rmse": True, "lat_rmse": True, "ssim": False, "psnr": False,
                   "crps": True, "ens_mse": True}  # crps: a deterministic run's is its MAE (benchmark.ensemble)
CLOSEST_TO_ONE = frozenset({"detail_ratio", "spread_skill"})  # best = nearest 1 (in ratio: |log value| smallest)
METRICS = (*LOWER_IS_BETTER, *sorted(CLOSEST_TO_ONE))  # every metric a table can show
METRIC_LABELS = {"mse": "MSE", "mae": "MAE", "rmse": "RMSE", "lat_rmse": "RMSE (lat-w.)", "ssim": "SSIM",
                 "psnr": "PSNR", "detail_ratio": "detail", "crps": "CRPS", "ens_mse": "ens. mean MSE",
                 "spread_skill": "spread/skill"}
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
    best = _best_per_column(table.mean)
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
                         ("▲", "$\\triangle$"), ("▼", "$\\nabla$"), ("Δ", "$\\Delta$")):
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


SIGNIFICANCE_AXES = {None: "main table", "t_out": "prediction length", "epoch": "--eval-at epoch"}


def _significance_runs(frame: pd.DataFrame, axis: str | None, metrics: list[str], profile: str | None
                       ) -> pd.DataFrame:
    """The runs of the table `axis` names (columns run_id, model, dataset, cell): the main table's (cell
    None), the length sweep's (cell = t_out) or the epoch sweep's (one row per run and --eval-at epoch)."""
    if axis not in SIGNIFICANCE_AXES:
        raise ValueError(f"axis must be one of {list(SIGNIFICANCE_AXES)}, got {axis!r}")
    best = frame["epoch"] == "best"
    rows = _select(frame[~best if axis == "epoch" else best], "normalized", metrics, profile)
    if axis == "t_out":
        rows = _latest_configuration(rows, ["model", "dataset", "t_out"])
    else:
        rows = _latest_configuration(main_length(rows), ["model", "dataset"])
    rows = rows.assign(cell=rows[axis].astype(int) if axis else None)
    return rows.drop_duplicates(["run_id", "cell"])[["run_id", "model", "dataset", "cell"]]


def significance_marks(frame: pd.DataFrame, results_dir: Path, model: str = "diffuma",
                       metrics: list[str] | None = None, profile: str | None = None,
                       alpha: float = SIGNIFICANCE_ALPHA, n_boot: int = 10000, axis: str | None = None
                       ) -> pd.DataFrame:
    """Paired tests of `model` against every other model of a table, per cell (dataset, metric[, axis]).

    `axis` picks the table: None the main table (per (model, dataset) the latest configuration, best
    checkpoint), "t_out" the length sweep (one run per prediction length), "epoch" the epoch sweep (the
    errors each run stored after its --eval-at epochs). Runs are paired by seed on their stored
    per-sample normalized errors (`benchmark.significance.compare_runs`). The p-values (paired bootstrap)
    are Holm-adjusted over the baselines of each cell. One row per (baseline, dataset[, axis], metric):
    mean_diff (model - baseline), ci_low, ci_high, p, p_wilcoxon, p_holm, relative, n_samples, seeds, and
    mark: "▲" the model is significantly better, "▼" significantly worse, "" not significant at `alpha`.
    Baselines whose runs stored no per-sample errors there, or share no seed with the model, are left out.
    """
    from benchmark.errors import BenchError
    from benchmark.records import read_record, record_path
    from benchmark.significance import PER_SAMPLE_METRICS, compare_runs, holm

    metrics = [m for m in (metrics or ["mse", "mae", "ssim"]) if m in PER_SAMPLE_METRICS]
    runs = _significance_runs(frame, axis, metrics, profile)
    columns = ["baseline", "dataset", *([axis] if axis else []), "metric", "mean_diff", "ci_low", "ci_high", "p",
               "p_wilcoxon", "p_holm", "relative", "n_samples", "seeds", "mark"]
    records: dict[str, object] = {}

    def loaded(run_ids: pd.Series) -> list:
        for run_id in run_ids:
            if run_id not in records:
                records[run_id] = read_record(record_path(results_dir, run_id))
        return [records[r] for r in run_ids]

    found: list[dict] = []
    for (dataset, cell), group in runs.groupby(["dataset", "cell"], sort=True, dropna=False):
        ours = loaded(group.loc[group["model"] == model, "run_id"])
        if not ours:
            continue
        epoch = int(cell) if axis == "epoch" else None
        where = {"dataset": dataset, **({axis: int(cell)} if axis else {})}
        for metric in metrics:
            family = []
            for baseline, runs_b in group[group["model"] != model].groupby("model", sort=False):
                try:
                    result = compare_runs(ours, loaded(runs_b["run_id"]), metric, results_dir=results_dir,
                                          n_boot=n_boot, epoch=epoch)
                except BenchError:
                    continue  # no per-sample errors stored, or no seed in common
                family.append({"baseline": baseline, **where, "metric": metric,
                               "mean_diff": result.mean_diff, "ci_low": result.ci_low, "ci_high": result.ci_high,
                               "p": result.p_bootstrap, "p_wilcoxon": result.p_wilcoxon,
                               "relative": result.relative, "n_samples": result.n_samples,
                               "seeds": ",".join(map(str, result.seeds)), "better": result.model_better})
            for entry, adjusted in zip(family, holm([e["p"] for e in family]), strict=True):
                better = entry.pop("better")
                kind = "none" if adjusted > alpha else "better" if better else "worse"
                found.append({**entry, "p_holm": float(adjusted), "mark": SIGNIFICANCE_MARKS[kind]})
    return pd.DataFrame(found, columns=columns)


def with_significance(table: Table, marks: pd.DataFrame, model: str = "diffuma") -> Table:
    """`table` with the marks of `significance_marks` after its baselines' cells, and a caption saying so.

    The main table takes the marks of `axis=None` (cells (dataset, metric)); the length and epoch
    sweeps those of `axis="t_out"` / `"epoch"` (cells (dataset, model) x (t_out | epoch, metric)).
    A baseline cell's ▲ reads "`model` is significantly better than this baseline here", ▼ "worse";
    no mark: not significant, or not tested (no per-sample errors, no seed in common).
    """
    aligned = pd.DataFrame("", index=table.mean.index, columns=table.mean.columns, dtype=object)
    axis = next((a for a in ("t_out", "epoch") if a in marks.columns), None)
    tested = 0
    for entry in marks.itertuples(index=False):
        row = entry.baseline if table.mean.index.nlevels == 1 else (entry.dataset, entry.baseline)
        column = (entry.dataset, entry.metric) if axis is None else (getattr(entry, axis), entry.metric)
        if row in aligned.index and column in aligned.columns:
            aligned.at[row, column] = entry.mark
            tested += 1
    if not tested:
        return table
    caption = _sentences(table.caption, f"▲ / ▼ after a cell: {model} is significantly better / worse than "
                         "that model there (paired bootstrap of the normalized errors on the same test samples, "
                         f"seeds pooled, Holm over the baselines, alpha {SIGNIFICANCE_ALPHA}; numbers in the "
                         "significance tables); no mark: not "
                         "significant or not tested.")
    return replace(table, marks=aligned, caption=caption)


TABLE_AXES = {"main": None, "length_sweep": "t_out", "epoch_sweep": "epoch"}  # table name -> significance axis


def significance_stem(table: Table) -> str:
    """The file stem of a table's significance numbers: significance, significance_length_sweep, ..."""
    return "significance" if table.name == "main" else f"significance_{table.name}"


def mark_significance(table: Table, frame: pd.DataFrame, results_dir: Path, metrics: list[str] | None = None,
                      profile: str | None = None, model: str = "diffuma") -> tuple[Table, pd.DataFrame]:
    """`table` with its significance marks (`with_significance`) and the tests behind them
    (`significance_marks` on the axis of the table: main, length sweep or epoch sweep)."""
    if table.name not in TABLE_AXES:
        raise ValueError(f"no significance test is defined for the table {table.name!r}")
    marks = significance_marks(frame, results_dir, model=model, metrics=metrics, profile=profile,
                               axis=TABLE_AXES[table.name])
    return (with_significance(table, marks, model) if not marks.empty else table), marks


def significance_by_axis(frame: pd.DataFrame, results_dir: Path, profile: str | None = None,
                         model: str = "diffuma") -> dict[str | None, pd.DataFrame]:
    """The paired tests of all three tables (`significance_marks` per axis: None main, "t_out",
    "epoch"), the axes without any test left out; what `benchmark.claims.claims_table` reads."""
    found = {axis: significance_marks(frame, results_dir, model=model, profile=profile, axis=axis)
             for axis in TABLE_AXES.values()}
    return {axis: marks for axis, marks in found.items() if not marks.empty}


def significance_table(marks: pd.DataFrame) -> pd.DataFrame:
    """`significance_marks` as a wide table: rows baselines, columns (dataset[, t_out | epoch], metric),
    cells `<mark> p=<p_holm> (Δ <mean_diff>)`."""
    if marks.empty:
        return pd.DataFrame()
    axis = [a for a in ("t_out", "epoch") if a in marks.columns]
    prefix = {"t_out": "T_out=", "epoch": "epoch "}
    cells = marks.assign(cell=[f"{m} p={p:.3g} (Δ {d:+.3g})".strip()
                               for m, p, d in zip(marks["mark"], marks["p_holm"], marks["mean_diff"], strict=True)])
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
    caption = (f"Paired tests of {model} against each baseline on the same test samples (normalized units, "
               f"per-sample errors averaged over lead times, seeds pooled). Cells: Holm-adjusted paired-bootstrap "
               f"p over the baselines, and the mean difference Δ = {model} - baseline. ▲ {model} significantly "
               f"better, ▼ significantly worse (alpha {SIGNIFICANCE_ALPHA}).")
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
