"""Our tables beside the paper's: `bench table --compare paper`.

`compare_with_paper(table, space)` puts each cell of one of our tables (`benchmark.analysis.tables`: main
table, epoch sweep, length sweep) beside the paper's (`benchmark.paper.numbers`): the main table
beside Table 2, the epoch sweep beside Tables 3 (MSE, MAE) and 4 (SSIM), the length sweep beside
Table 5. Per cell: our mean over seeds, the paper's printed value and the relative difference
(ours - paper) / paper. Per column (dataset x metric, and epoch or T_out for the sweeps): Kendall's
tau (`scipy.stats.kendalltau`, tau-b) between the paper's and our values over the models both have,
i.e. how far the two rankings of the models agree (1: same order, -1: reversed; NaN under 2 models).

**Matching.** Our dataset names map to the paper's with the generated stand-ins taken for what they
stand in for (`STAND_INS`: `synthetic-weather:<task>` -> `weatherbench:<task>`, `synthetic-chdl` ->
`chdl`); the caption then says "ours on generated stand-in data". The comparison has our table's
columns: the paper's datasets, epochs and lengths we have no runs of are left out (our datasets the
paper lacks too). Models only one side has keep their row ("–" on the other side). The paper's
Tables 3-5 do not state their dataset: `sweep_dataset` (default `DEFAULT_SWEEP_DATASET`, an
assumption) is the one their numbers are matched to.

**Cell format.** `ours | paper (+rel%)` in one cell per metric rather than three sub-columns: Markdown
has one header row, so sub-columns would read `weatherbench:t2m / MSE ↓ / paper`, and the main table
would grow from 15 to 45 columns; one cell keeps the paper's layout, and the numbers read left to
right. The CSV has them apart, one row per cell (long format), with the tau rows after them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from benchmark.analysis.significance import p_phrase
from benchmark.analysis.tables import FORMATS, Table, _column_label, _latex_escape
from benchmark.core.atomic import write_text_atomic
from benchmark.paper.numbers import DEFAULT_SWEEP_DATASET, PAPER_DATASETS, PAPER_SPACE, load_paper_numbers

STAND_INS = {"synthetic-weather": "weatherbench", "synthetic-chdl": "chdl"}  # generated data -> the paper's
PAPER_TABLES = {"main": (2,), "epoch_sweep": (3, 4), "length_sweep": (5,)}  # which of the paper's tables
KEY_COLUMN = {"main": None, "epoch_sweep": "epoch", "length_sweep": "t_out"}
TAU_ROW = "Kendall's τ"
MISSING = "–"


def paper_dataset_of(dataset: str) -> str | None:
    """The paper's name of one of our datasets (stand-ins mapped), None when the paper has no such dataset."""
    name, _, task = dataset.partition(":")
    name = STAND_INS.get(name, name)
    mapped = f"{name}:{task}" if task else name
    return mapped if mapped in PAPER_DATASETS else None


def is_generated(dataset: str) -> bool:
    return dataset.startswith("synthetic-")


@dataclass
class Comparison:
    """One of our tables beside the paper's, long (`cells`: one row per model x column) and per column tau."""

    name: str  # e.g. "main_vs_paper"
    cells: pd.DataFrame  # dataset, paper_dataset, key, metric, model, ours, ours_n, paper, rel_diff
    tau: pd.DataFrame  # dataset, paper_dataset, key, metric, tau, tau_p, models
    caption: str
    key_column: str | None  # "epoch" / "t_out" for the sweeps, None for the main table
    column_prefix: str = ""

    @property
    def empty(self) -> bool:
        return self.cells["paper"].notna().sum() == 0 or self.cells["ours"].notna().sum() == 0


def _ours_long(table: Table, key_column: str | None) -> pd.DataFrame:
    """Our table's filled cells, long: dataset, key, metric, model, ours, ours_n."""
    rows = []
    for index in table.mean.index:
        for column in table.mean.columns:
            value = table.mean.at[index, column]
            if pd.isna(value):
                continue
            if key_column is None:  # rows: model; columns: (dataset, metric)
                model, (dataset, metric), key = index, column, None
            else:  # rows: (dataset, model); columns: (key, metric)
                (dataset, model), (key, metric) = index, column
                key = int(key)
            rows.append({"dataset": dataset, "key": key, "metric": metric, "model": model, "ours": float(value),
                         "ours_n": int(table.seeds.at[index, column])})
    return pd.DataFrame(rows, columns=["dataset", "key", "metric", "model", "ours", "ours_n"])


def _paper_long(name: str, sweep_dataset: str) -> pd.DataFrame:
    numbers = load_paper_numbers(sweep_dataset=sweep_dataset)
    rows = numbers[numbers["table"].isin(PAPER_TABLES[name])]
    key_column = KEY_COLUMN[name]
    keys = rows[key_column].astype(int) if key_column else pd.Series([None] * len(rows), index=rows.index)
    return pd.DataFrame({"paper_dataset": rows["dataset"], "key": keys.astype(object), "metric": rows["metric"],
                         "model": rows["model"], "paper": rows["value"].astype(float)}).reset_index(drop=True)


def _rel_diff(ours: float, paper: float) -> float:
    return (ours - paper) / paper if pd.notna(ours) and pd.notna(paper) and paper != 0 else np.nan


def kendall_tau(ours: pd.Series, paper: pd.Series) -> tuple[float, float, int]:
    """Kendall's tau-b between two value series (indexed by model) over the models both have; (tau, p, count).

    p: two-sided, of the null that the two rankings are unrelated (`scipy.stats.kendalltau`: exact for
    small samples without ties, else the normal approximation); NaN under two models."""
    both = pd.concat([ours.rename("ours"), paper.rename("paper")], axis=1).dropna()
    if len(both) < 2:
        return np.nan, np.nan, len(both)
    result = stats.kendalltau(both["ours"], both["paper"])
    return float(result.statistic), float(result.pvalue), len(both)


def compare_with_paper(table: Table, space: str = "normalized", sweep_dataset: str = DEFAULT_SWEEP_DATASET
                       ) -> Comparison:
    """`table` (from `main_table`, `epoch_sweep_table` or `length_sweep_table`) beside the paper's numbers."""
    if table.name not in PAPER_TABLES:
        raise ValueError(f"No paper table to compare {table.name!r} with; comparable: {', '.join(PAPER_TABLES)}.")
    key_column = KEY_COLUMN[table.name]
    ours = _ours_long(table, key_column)
    ours["paper_dataset"] = ours["dataset"].map(paper_dataset_of)
    ours = ours[ours["paper_dataset"].notna()]
    metrics = list(dict.fromkeys(ours["metric"]))
    paper = _paper_long(table.name, sweep_dataset)
    paper = paper[paper["metric"].isin(metrics)]
    pairs = ours[["dataset", "paper_dataset"]].drop_duplicates()  # each of our datasets with its paper dataset
    paper = paper.merge(pairs, on="paper_dataset")
    # our columns only: the paper's datasets, epochs and lengths we have no runs of are left out
    ours_columns = ours[["dataset", "key", "metric"]].drop_duplicates()
    paper = paper.merge(ours_columns.assign(key=ours_columns["key"].astype(object)), on=["dataset", "key", "metric"])
    cells = ours.merge(paper, on=["dataset", "paper_dataset", "key", "metric", "model"], how="outer")
    cells["rel_diff"] = [_rel_diff(o, p) for o, p in zip(cells["ours"], cells["paper"], strict=True)]
    # order: datasets as in our table, then key, then metric as in our table; models: ours first, then the paper's
    dataset_order = list(dict.fromkeys(ours["dataset"]))
    model_order = list(dict.fromkeys([*ours["model"], *paper["model"]]))
    cells["_d"] = cells["dataset"].map(dataset_order.index)
    cells["_m"] = cells["metric"].map(metrics.index)
    cells["_model"] = cells["model"].map(model_order.index)
    cells["_k"] = cells["key"].map(lambda k: -1 if k is None or pd.isna(k) else int(k))
    cells = (cells.sort_values(["_d", "_k", "_m", "_model"]).drop(columns=["_d", "_m", "_model", "_k"])
             .reset_index(drop=True))
    cells["key"] = cells["key"].map(lambda k: None if k is None or pd.isna(k) else int(k)).astype(object)
    cells["ours_n"] = cells["ours_n"].astype("Int64")
    taus = []
    for (dataset, paper_dataset, key, metric), group in cells.groupby(
            ["dataset", "paper_dataset", "key", "metric"], sort=False, dropna=False):
        tau, p, count = kendall_tau(group.set_index("model")["ours"], group.set_index("model")["paper"])
        taus.append({"dataset": dataset, "paper_dataset": paper_dataset, "key": key, "metric": metric, "tau": tau,
                     "tau_p": p, "models": count})
    tau_frame = pd.DataFrame(taus, columns=["dataset", "paper_dataset", "key", "metric", "tau", "tau_p", "models"])
    return Comparison(f"{table.name}_vs_paper", cells, tau_frame, _caption(table.name, cells, space, sweep_dataset),
                      key_column, table.column_prefix)


def _caption(name: str, cells: pd.DataFrame, space: str, sweep_dataset: str) -> str:
    tables = " and ".join(f"Table {t}" for t in PAPER_TABLES[name])
    pairs = cells[["dataset", "paper_dataset"]].drop_duplicates()
    parts = [f"Ours beside the paper's {tables} (DIFFUMA, arXiv 2507.06738): each cell is ours | paper "
             "(relative difference (ours - paper) / paper).",
             f"Ours: {space} space, mean over seeds. The paper's: presumed {PAPER_SPACE} space (not stated), "
             "as printed (four decimals)."]
    if space != PAPER_SPACE:
        parts.append(f"The spaces differ ({space} vs {PAPER_SPACE}): the differences mix units.")
    generated = pairs[pairs["dataset"].map(is_generated)]
    if not generated.empty:
        matched = ", ".join(f"{d} as {p}" for d, p in zip(generated["dataset"], generated["paper_dataset"],
                                                         strict=True))
        parts.append(f"Ours on generated stand-in data, not the paper's: {matched}.")
    if name != "main":
        parts.append(f"The paper does not state the dataset of {tables}; assumed {sweep_dataset}.")
    parts.append(f"{TAU_ROW}: agreement of the paper's and our rankings of the models over the models both have "
                 "(Kendall tau-b; 1 same order, -1 reversed; p: two-sided exact test of unrelated rankings: with seven "
                 "models |tau| must reach about 0.7 for p < 0.05), per column. The paper's datasets, epochs and "
                 f"lengths without runs of ours are left out; {MISSING}: no number on that side.")
    return " ".join(parts)


def _number(value: float, metric: str, paper: bool) -> str:
    if pd.isna(value):
        return MISSING
    return f"{value:.4f}" if paper or metric in ("ssim",) else f"{value:.4g}"


def _cell(row: pd.Series) -> str:
    text = f"{_number(row['ours'], row['metric'], False)} | {_number(row['paper'], row['metric'], True)}"
    return f"{text} ({row['rel_diff']:+.0%})" if pd.notna(row["rel_diff"]) else text


def formatted(comparison: Comparison) -> pd.DataFrame:
    """The comparison as text, wide like our table, with one `Kendall's τ` row (per dataset for the sweeps)."""
    cells = comparison.cells.copy()
    cells["text"] = [_cell(row) for _, row in cells.iterrows()]
    tau = comparison.tau.copy()
    tau["text"] = [MISSING if pd.isna(t) else f"{t:+.2f} (n={n}, {p_phrase(p)})"
                   for t, p, n in zip(tau["tau"], tau["tau_p"], tau["models"], strict=True)]
    tau["model"] = TAU_ROW
    both = pd.concat([cells[["dataset", "key", "metric", "model", "text"]],
                      tau[["dataset", "key", "metric", "model", "text"]]], ignore_index=True)
    column_keys = list(dict.fromkeys(zip(cells["dataset"], cells["key"], cells["metric"], strict=True)))
    if comparison.key_column is None:
        rows = [*dict.fromkeys(cells["model"]), TAU_ROW]
        columns = [(d, m) for d, _, m in column_keys]
        lookup = {(r.model, (r.dataset, r.metric)): r.text for r in both.itertuples()}
        index = pd.Index(rows, name="model")
    else:
        datasets = list(dict.fromkeys(cells["dataset"]))
        rows = [(d, m) for d in datasets for m in [*dict.fromkeys(cells.loc[cells["dataset"] == d, "model"]),
                                                    TAU_ROW]]
        columns = list(dict.fromkeys((k, m) for _, k, m in column_keys))
        lookup = {((r.dataset, r.model), (r.key, r.metric)): r.text for r in both.itertuples()}
        index = pd.MultiIndex.from_tuples(rows, names=["dataset", "model"])
    text = pd.DataFrame([[lookup.get((r, c), MISSING) for c in columns] for r in rows], index=index)
    text.columns = pd.MultiIndex.from_tuples([_column_label(c, comparison.column_prefix) for c in columns])
    return text


def to_markdown(comparison: Comparison) -> str:
    text = formatted(comparison)
    flat = text.copy()
    flat.columns = [" / ".join(str(p) for p in c) for c in text.columns]
    flat.index = [" / ".join(map(str, i)) if isinstance(i, tuple) else str(i) for i in text.index]
    flat.index.name = " / ".join(n or "" for n in text.index.names)
    flat = flat.map(lambda s: s.replace("|", "\\|"))  # a literal | inside a Markdown table cell
    return f"{comparison.caption}\n\n{flat.to_markdown()}\n"


def _latex(text: str) -> str:
    text = _latex_escape(str(text)).replace("|", "\\textbar{}").replace("τ", "$\\tau$")
    return text.replace("↓", "$\\downarrow$").replace("↑", "$\\uparrow$")


def to_latex(comparison: Comparison) -> str:
    """LaTeX tabular (booktabs rules, multicolumn headers), escaped as `benchmark.analysis.tables` escapes."""
    text = formatted(comparison).map(_latex)
    text.index = text.index.map(lambda i: tuple(map(_latex, i)) if isinstance(i, tuple) else _latex(i))
    text.columns = pd.MultiIndex.from_tuples([tuple(map(_latex, c)) for c in text.columns])
    return text.style.to_latex(hrules=True, multicol_align="c", multirow_align="naive",
                               caption=_latex(comparison.caption), position_float="centering", environment="table")


def to_csv_frame(comparison: Comparison) -> pd.DataFrame:
    """Long: one row per (dataset, key, metric, model) cell, then one `Kendall's τ` row per column."""
    key = comparison.key_column or "key"
    cells = comparison.cells.assign(row="cell", tau=np.nan, tau_p=np.nan, tau_models=pd.NA)
    tau = comparison.tau.rename(columns={"models": "tau_models"}).assign(row="kendall_tau", model="")
    frame = pd.concat([cells, tau], ignore_index=True)
    frame["tau_models"] = frame["tau_models"].astype("Int64")
    columns = ["row", "dataset", "paper_dataset", "key", "metric", "model", "ours", "ours_n", "paper", "rel_diff",
               "tau", "tau_p", "tau_models"]
    frame = frame[columns].rename(columns={"key": key})
    return frame.drop(columns="key") if comparison.key_column is None else frame


def render(comparison: Comparison, out_dir: Path, formats: tuple[str, ...] = FORMATS, suffix: str = "") -> list[Path]:
    """Write `out_dir/<name><suffix>.{csv,tex,md}` (as `benchmark.analysis.tables.render`); returns the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem, written = f"{comparison.name}{suffix}", []
    for fmt, ext, text in (("csv", "csv", lambda: to_csv_frame(comparison).to_csv(index=False)),
                           ("latex", "tex", lambda: to_latex(comparison)),
                           ("markdown", "md", lambda: to_markdown(comparison))):
        if fmt in formats:
            path = out_dir / f"{stem}.{ext}"
            write_text_atomic(path, text())
            written.append(path)
    return written


__all__ = ["Comparison", "compare_with_paper", "formatted", "kendall_tau", "paper_dataset_of",
           "render", "to_csv_frame", "to_latex", "to_markdown"]
