"""The paper's tables as pure functions of run records: main table, epoch sweep, length sweep.

Each builder takes the long DataFrame of `records.records_to_frame` and returns a wide
DataFrame of means over seeds (and a matching one of standard deviations). `render` writes a
table as CSV (numbers), LaTeX (pandas Styler: mean ± std, best bold) and Markdown.

Which runs fill a cell: for each (model, dataset) -- and T_out for the length sweep -- the runs of
the most recently finished configuration; runs of that configuration that differ only by seed
are averaged. Filter by profile with `profile=` to compare like with like.

Row order comes from the records alone (no model package is imported): persistence first, then
the models by family in `FAMILY_ORDER` (the paper's order: reference forecasts, recurrent, CNN,
physics-guided, then the Mamba-diffusion models it evaluates; families not listed follow,
alphabetically), and by name within a family. In the sweep tables this holds within each dataset.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

LOWER_IS_BETTER = {"mse": True, "mae": True, "rmse": True, "lat_rmse": True, "ssim": False, "psnr": False}
METRIC_LABELS = {"mse": "MSE", "mae": "MAE", "rmse": "RMSE", "lat_rmse": "RMSE (lat-w.)", "ssim": "SSIM",
                 "psnr": "PSNR"}
FORMATS = ("csv", "latex", "markdown")
BASELINE_MODEL = "persistence"
FAMILY_ORDER = ("reference", "recurrent", "cnn", "physics-guided", "mamba-diffusion")


@dataclass
class Table:
    """A rendered-ready table: means, standard deviations, seed counts and a caption."""

    name: str
    mean: pd.DataFrame
    std: pd.DataFrame
    seeds: pd.DataFrame
    caption: str
    flagged: set[str]  # marked †: not better than persistence on MSE
    column_prefix: str = ""  # how the non-metric column level reads: "" (datasets), "epoch ", "T_out="
    improving: set[str] = field(default_factory=set)  # marked ‡: best validation epoch = last epoch

    @property
    def empty(self) -> bool:
        """True when no record matched."""
        return self.mean.empty


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
    stats = pd.DataFrame({"mean": grouped.mean(), "std": grouped.std(ddof=1).fillna(0.0), "n": grouped.count()})
    wide = {k: stats[k].unstack(columns) for k in ("mean", "std", "n")}
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


def main_table(frame: pd.DataFrame, space: str = "normalized", metrics: list[str] | None = None,
               profile: str | None = None) -> Table:
    """Rows: models; columns: dataset x metric; the best-checkpoint test scores."""
    metrics = metrics or ["mse", "mae", "ssim"]
    rows = _select(frame[frame["epoch"] == "best"], space, metrics, profile)
    rows = _latest_configuration(rows, ["model", "dataset"])
    mean, std, n = _in_model_order(_pivot(rows, ["model"], ["dataset", "metric"], metrics), rows)
    improving = set(rows.loc[rows["still_improving"].astype(bool), "model"])
    caption = (f"Test scores of the best-validation checkpoint, {space} units, per-pixel means "
               f"(mean ± std over seeds). {budget_rule(rows)} † : not better than persistence on MSE. "
               f"‡ : still improving (its best validation epoch is its last: budget-bound).")
    return Table("main", mean, std, n, caption, _flag_not_beating_persistence(mean), improving=improving)


def epoch_sweep_table(frame: pd.DataFrame, space: str = "normalized", metrics: list[str] | None = None,
                      profile: str | None = None) -> Table:
    """Rows: (dataset, model); columns: epoch x metric; test scores after each --eval-at epoch."""
    metrics = metrics or ["mse", "mae", "ssim"]
    rows = _select(frame[frame["epoch"] != "best"], space, metrics, profile)
    rows = _latest_configuration(rows, ["model", "dataset"]).copy()
    rows["epoch"] = rows["epoch"].astype(int)
    mean, std, n = _in_model_order(_pivot(rows, ["dataset", "model"], ["epoch", "metric"], metrics), rows)
    caption = f"Test scores after N training epochs (--eval-at), {space} units (mean ± std over seeds)."
    return Table("epoch_sweep", mean, std, n, caption, set(), column_prefix="epoch ")


def length_sweep_table(frame: pd.DataFrame, space: str = "normalized", metrics: list[str] | None = None,
                       profile: str | None = None) -> Table:
    """Rows: (dataset, model); columns: predicted length T_out x metric; best-checkpoint scores."""
    metrics = metrics or ["mse", "mae", "ssim"]
    rows = _select(frame[frame["epoch"] == "best"], space, metrics, profile)
    rows = _latest_configuration(rows, ["model", "dataset", "t_out"])
    mean, std, n = _in_model_order(_pivot(rows, ["dataset", "model"], ["t_out", "metric"], metrics), rows)
    caption = f"Test scores by prediction length T_out, {space} units (mean ± std over seeds)."
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
            if not values.empty:
                best.loc[values.idxmin() if lower else values.idxmax(), column] = True
    return best


def formatted(table: Table, bold: tuple[str, str] = ("", "")) -> pd.DataFrame:
    """Cells as text: `mean ± std` (std only with several seeds), best per column wrapped in `bold`."""
    best = _best_per_column(table.mean)

    def cell(row: object, column: object) -> str:
        value = table.mean.at[row, column]
        if pd.isna(value):
            return "–"
        digits = 4 if column[-1] in ("ssim",) else 2 if column[-1] == "psnr" else 4
        text = f"{value:.{digits}g}" if column[-1] not in ("ssim", "psnr") else f"{value:.{digits}f}"
        if table.seeds.at[row, column] > 1:
            std = table.std.at[row, column]
            text += f" ± {std:.2g}" if column[-1] not in ("ssim", "psnr") else f" ± {std:.{digits}f}"
        return f"{bold[0]}{text}{bold[1]}" if best.at[row, column] else text

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
    arrow = "↓" if LOWER_IS_BETTER.get(column[-1], True) else "↑"
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
    for plain, latex in (("_", "\\_"), ("%", "\\%"), ("±", "$\\pm$"), ("†", "$^\\dagger$"), ("‡", "$^\\ddagger$")):
        text = text.replace(plain, latex)
    return text


def to_latex(table: Table) -> str:
    """LaTeX tabular (booktabs rules, multicolumn headers) via pandas Styler."""
    text = formatted(table, bold=("\\textbf{", "}"))
    text = text.map(_latex_escape)
    text.index = text.index.map(
        lambda i: tuple(_latex_escape(str(p)) for p in i) if isinstance(i, tuple) else _latex_escape(str(i)))
    text.columns = pd.MultiIndex.from_tuples(
        [tuple(str(p).replace("_", "\\_").replace("↓", "$\\downarrow$").replace("↑", "$\\uparrow$") for p in c)
         for c in text.columns])
    styler = text.style
    caption = _latex_escape(table.caption)
    return styler.to_latex(hrules=True, multicol_align="c", caption=caption, position_float="centering",
                           environment="table")


def render(table: Table, out_dir: Path, formats: tuple[str, ...] = FORMATS, suffix: str = "") -> list[Path]:
    """Write `table` in each of `formats` to `out_dir/<name><suffix>.{csv,tex,md}`; returns the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    stem = f"{table.name}{suffix}"
    if "csv" in formats:
        path = out_dir / f"{stem}.csv"
        numbers = table.mean.copy()
        numbers.columns = ["/".join(map(str, c)) for c in numbers.columns]
        stds = table.std.copy()
        stds.columns = [f"{'/'.join(map(str, c))}/std" for c in stds.columns]
        pd.concat([numbers, stds], axis=1).to_csv(path)
        written.append(path)
    if "latex" in formats:
        path = out_dir / f"{stem}.tex"
        path.write_text(to_latex(table))
        written.append(path)
    if "markdown" in formats:
        path = out_dir / f"{stem}.md"
        path.write_text(to_markdown(table))
        written.append(path)
    return written
