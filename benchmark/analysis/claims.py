"""The paper's quantitative claims, each checked against its own tables and against our runs.

One `Claim` per claim of the abstract, the introduction and Section 5 (`CLAIMS`). Each has a short
quote, the figure the paper gives, and two small functions: `paper` recomputes the figure from the
stored tables (`benchmark.paper.numbers.load_paper_numbers`, never typed in) and says whether it
holds; `ours` computes the same statistic from the run records' long frame
(`benchmark.results.records.records_to_frame`): normalized space, best checkpoint, aggregate over leads,
the most recent configuration per (model, dataset[, t_out]) and the mean over its seeds.

A printed figure "holds" when the recomputed value is within one unit of its last printed digit
(39% within 1 point, 0.988 within 0.001). "Significantly" is never tested from the paper's tables
(they give one number per cell: no seeds, no spread). For our runs it is the paired test of
`benchmark.analysis.tables.significance_marks` (per-window errors of the same test windows; a test that
respects their autocorrelation and the seeds' variance, `benchmark.analysis.significance`), on the table the
claim is about (main, epoch sweep, length sweep): a cell counts when DIFFUMA is significantly better
than every one of the paper's baselines there, the p-values adjusted over the table's whole family
(the same adjusted p-values as the table's marks).

`claims_table(frame, significance=...)` is the table (`COLUMNS`); `render_claims` writes it as csv /
markdown / LaTeX.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from benchmark.analysis.tables import LOWER_IS_BETTER, _latest_configuration, _latex_escape, main_length
from benchmark.core.atomic import write_text_atomic
from benchmark.paper import numbers

COLUMNS = ["claim", "where", "paper_figure", "recomputed", "verdict", "our_runs", "our_verdict"]
FORMATS = ("csv", "latex", "markdown")
SUFFIXES = {"csv": "csv", "markdown": "md", "latex": "tex"}
SPACE = "normalized"
NO_RUNS = "no runs"
SIGNIFICANCE_ALPHA = 0.05
NOT_TESTED = ("significance not tested (no per-sample errors of DIFFUMA and the baselines with a seed in common: "
              "`bench reproduce` or `bench table --significance` tests it)")
PAPER_MODELS = frozenset(numbers.MODEL_NAMES.values())
PAPER_BASELINES = PAPER_MODELS - {"diffuma"}
# The paper's dataset groups -> the dataset-name prefixes of our runs (real data, then its generated stand-in).
GROUPS = {"weatherbench": ("weatherbench:", "synthetic-weather:"), "chdl": ("chdl", "synthetic-chdl")}

Side = tuple[str, str]  # (what the numbers say, verdict)


@dataclass(frozen=True)
class OurRuns:
    """What our side of a claim is judged on: the records' long frame and the paired tests per table
    (`significance_marks` frames keyed by their axis: None main table, "t_out", "epoch")."""

    frame: pd.DataFrame
    significance: dict[str | None, pd.DataFrame] = field(default_factory=dict)


@dataclass(frozen=True)
class Claim:
    claim: str  # in the paper's words, short
    where: str  # section of the paper
    figure: str  # the paper's own supporting number(s)
    paper: Callable[[pd.DataFrame], Side]  # stored tables -> (recomputed, verdict)
    ours: Callable[[OurRuns], Side]  # our records and tests -> (our runs, our verdict)


# ---------------------------------------------------------------- helpers


def reduction(baseline: float, model: float) -> float:
    """Relative reduction of `model` against `baseline`, in percent (positive: lower than the baseline)."""
    return 100.0 * (baseline - model) / baseline


def _holds(value: float, printed: float, unit: float) -> bool:
    return abs(value - printed) < unit + 1e-12


def _rounding(value: float, printed: float) -> str:
    """A note when a figure that holds is not the value rounded to whole percent (21.9% printed as 21%)."""
    off = _holds(value, printed, 1.0) and round(value) != printed
    return f" ({value:.1f}% rounds to {round(value)}%)" if off else ""


def _verdict(ok: bool) -> str:
    return "holds" if ok else "does not hold"


def table2(paper: pd.DataFrame) -> pd.DataFrame:
    """Table 2 long: model, dataset, metric, value."""
    return paper.loc[paper["table"] == 2, ["model", "dataset", "metric", "value"]]


def _cell(rows: pd.DataFrame, model: str, dataset: str, metric: str) -> float:
    hit = rows[(rows["model"] == model) & (rows["dataset"] == dataset) & (rows["metric"] == metric)]
    return float(hit["value"].iloc[0])


def paper_reductions(paper: pd.DataFrame, group: str, metric: str, baseline: str = "simvp") -> dict[str, float]:
    """Table 2: DIFFUMA's reduction vs `baseline` (percent) per dataset of `group`, in the paper's order."""
    rows = table2(paper)
    datasets = [d for d in dict.fromkeys(rows["dataset"]) if d.startswith(GROUPS[group][0])]
    return {d: reduction(_cell(rows, baseline, d, metric), _cell(rows, "diffuma", d, metric)) for d in datasets}


def paper_reduction_of_means(paper: pd.DataFrame, group: str, metric: str, baseline: str = "simvp") -> float:
    """Table 2: the other reading, the reduction of the group-averaged values."""
    rows = table2(paper)
    rows = rows[rows["dataset"].str.startswith(GROUPS[group][0]) & (rows["metric"] == metric)]
    means = rows.groupby("model")["value"].mean()
    return reduction(means[baseline], means["diffuma"])


def not_best(means: pd.DataFrame, keys: list[str], model: str = "diffuma") -> tuple[int, list[str]]:
    """Cells (one per `keys` group and metric) where `model` is not strictly the best of `means`.

    `means`: columns keys + model, metric, value. Returns (number of cells with `model` and a rival,
    descriptions of the cells it does not win: "<keys> <METRIC>: <model> v vs <winner> w").
    """
    cells, lost = 0, []
    for key, rows in means.groupby(keys + ["metric"], sort=False):
        metric = key[-1]
        mine = rows[rows["model"] == model]
        rivals = rows[rows["model"] != model]
        if mine.empty or rivals.empty:
            continue
        cells += 1
        value = float(mine["value"].iloc[0])
        lower = LOWER_IS_BETTER[metric]
        best = rivals.loc[rivals["value"].idxmin() if lower else rivals["value"].idxmax()]
        if (best["value"] <= value) if lower else (best["value"] >= value):
            where = " ".join(str(k) for k in key[:-1])
            lost.append(f"{where} {metric.upper()}: {model} {value:.4g} vs {best['model']} {best['value']:.4g}")
    return cells, lost


def _not_best_text(cells: int, lost: list[str], what: str) -> str:
    if not cells:
        return ""
    text = f"best in {cells - len(lost)}/{cells} {what} cells"
    return text + ("; not in " + "; ".join(lost) if lost else "")


# ---------------------------------------------------------------- our runs


def our_means(frame: pd.DataFrame, by_t_out: bool = False, epochs: bool = False) -> pd.DataFrame:
    """Mean over seeds of our aggregate normalized scores of the paper's models.

    Columns model, dataset[, t_out | epoch], metric, value, n (seeds). `epochs`: the --eval-at epochs
    (as int) instead of the best checkpoint.
    """
    columns = ["model", "dataset", "t_out" if by_t_out else "epoch", "metric", "value", "n"]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    rows = frame[(frame["space"] == SPACE) & (frame["lead"] == 0) & frame["metric"].isin(["mse", "mae", "ssim"])
                 & frame["model"].isin(PAPER_MODELS)]
    rows = rows[rows["epoch"] != "best"] if epochs else rows[rows["epoch"] == "best"]
    keys = ["model", "dataset"] + (["t_out"] if by_t_out else [])
    rows = _latest_configuration(rows if by_t_out else main_length(rows), keys)
    if rows.empty:
        return pd.DataFrame(columns=columns)
    if epochs:
        rows = rows.assign(epoch=rows["epoch"].astype(int))
    group = keys + (["epoch"] if epochs else []) + ["metric"]
    grouped = rows.groupby(group, sort=False)["value"]
    out = pd.DataFrame({"value": grouped.mean(), "n": grouped.count()}).reset_index()
    return out.sort_values(group, kind="stable")


def _group_of(dataset: str, group: str) -> str | None:
    """'real' / 'stand-in' when `dataset` belongs to the paper's `group`, else None."""
    real, stand_in = GROUPS[group]
    return "real" if dataset.startswith(real) else "stand-in" if dataset.startswith(stand_in) else None


def our_reductions(frame: pd.DataFrame, group: str, metric: str, baseline: str = "simvp") -> dict[str, float]:
    """DIFFUMA's reduction vs `baseline` (percent, means over seeds) per dataset of ours in `group`."""
    means = our_means(frame)
    means = means[means["metric"] == metric]
    out = {}
    for dataset, rows in means.groupby("dataset", sort=False):
        values = dict(zip(rows["model"], rows["value"], strict=True))
        if _group_of(dataset, group) and {"diffuma", baseline} <= set(values):
            out[dataset] = reduction(values[baseline], values["diffuma"])
    return out


def _ours_reduction(group: str, metric: str, printed: float) -> Callable[[OurRuns], Side]:
    def ours(runs: OurRuns) -> Side:
        found = our_reductions(runs.frame, group, metric)
        if not found:
            return NO_RUNS, NO_RUNS
        parts, verdicts = [], []
        for kind in ("real", "stand-in"):
            values = {d: v for d, v in found.items() if _group_of(d, group) == kind}
            if not values:
                continue
            mean = sum(values.values()) / len(values)
            listed = ", ".join(f"{d} {v:.1f}%" for d, v in values.items())
            parts.append(f"{kind}: {listed}" + (f"; mean {mean:.1f}%" if len(values) > 1 else ""))
            verdicts.append(f"{kind}: {'holds' if mean >= printed - 1 else 'smaller' if mean > 0 else 'does not hold'}"
                            f" ({mean:.1f}% vs {printed:g}%)")
        return "; ".join(parts), "; ".join(verdicts)
    return ours


def table_baselines(table: int) -> frozenset[str]:
    """The baselines (our names) of one of the paper's tables: Table 5 has fewer models than Table 2."""
    stored = numbers.load_paper_numbers()
    return frozenset(stored.loc[stored["table"] == table, "model"]) - {"diffuma"}


def significant_cells(marks: pd.DataFrame, metrics: tuple[str, ...], alpha: float = SIGNIFICANCE_ALPHA,
                      baselines: frozenset[str] = PAPER_BASELINES) -> tuple[int, list[str]]:
    """Cells of a `significance_marks` frame where DIFFUMA is significantly better than EVERY one of
    `baselines` (default: the paper's six) there: (cells tested, descriptions of the cells where it is not).

    A cell is (dataset[, t_out | epoch], metric). A baseline counts as beaten where DIFFUMA's mean is better
    and the test's p-value, adjusted over the whole table's family (`p_adj`: every baseline x every cell x
    metric, as the table's marks), is at most `alpha`. A cell misses a baseline's test when that baseline
    has no runs there.
    """
    from benchmark.analysis.significance import p_phrase

    rows = marks[marks["baseline"].isin(baselines) & marks["metric"].isin(metrics)]
    keys = ["dataset", *[a for a in ("t_out", "epoch") if a in rows.columns], "metric"]
    cells, missed = 0, []
    for key, group in rows.groupby(keys, sort=False):
        cells += 1
        better = group["mean_diff"] < 0 if LOWER_IS_BETTER[key[-1]] else group["mean_diff"] > 0
        failing = [f"{b} ({_direction(up, p <= alpha)}, {p_phrase(p, floor)})"
                   for b, up, p, floor in zip(group["baseline"], better, group["p_adj"], group["p_floor"].fillna(0.0),
                                              strict=True) if not (up and p <= alpha)]
        absent = sorted(baselines - set(group["baseline"]))
        if failing or absent:
            where = " ".join(str(k) for k in key[:-1])
            missed.append(f"{where} {key[-1].upper()}: " + ", ".join(failing + [f"{b} (no runs)" for b in absent]))
    return cells, missed


def _direction(better: bool, significant: bool) -> str:
    """How DIFFUMA stands against a baseline in a cell it does not significantly beat."""
    if better:
        return "better, n.s."
    return "significantly worse" if significant else "worse, n.s."


def _significance_text(marks: pd.DataFrame | None, metrics: tuple[str, ...], what: str,
                       baselines: frozenset[str] = PAPER_BASELINES) -> Side:
    """(text, verdict) of 'significantly better than all `baselines`' in the cells of `marks`."""
    if marks is None or marks.empty:
        return NOT_TESTED, "not tested"
    cells, missed = significant_cells(marks, metrics, baselines=baselines)
    if not cells:
        return NOT_TESTED, "not tested"
    from benchmark.analysis.significance import ADJUSTMENT_NAMES, TEST_NAMES

    method, adjustment = marks["method"].iloc[0], marks["adjustment"].iloc[0]
    text = (f"significantly better than all {len(baselines)} baselines in {cells - len(missed)}/{cells} "
            f"{what} cells ({TEST_NAMES.get(method, method)}, {ADJUSTMENT_NAMES.get(adjustment, adjustment)} "
            f"over the table's {len(marks)} tests, alpha {SIGNIFICANCE_ALPHA})")
    if missed:
        shown = "; ".join(missed[:3]) + (f"; and {len(missed) - 3} more cells" if len(missed) > 3 else "")
        text += f"; not in {shown}"
    return text, "significant: " + _verdict(not missed)


def _ours_best(keys: list[str], what: str, by_t_out: bool = False, epochs: bool = False,
               metrics: tuple[str, ...] = ("mse", "mae", "ssim"), significance: bool = True,
               group: str | None = None) -> Callable[[OurRuns], Side]:
    """Our side of a "best of all models" claim; `group` ("weatherbench" / "chdl") keeps the datasets of
    that group of the paper (real data or its stand-in) only."""
    axis = "epoch" if epochs else "t_out" if by_t_out else None

    def ours(runs: OurRuns) -> Side:
        means = our_means(runs.frame, by_t_out=by_t_out, epochs=epochs)
        means = means[means["metric"].isin(metrics)]
        if group is not None:
            means = means[means["dataset"].map(lambda d: _group_of(d, group) is not None).astype(bool)]
        if "diffuma" not in set(means["model"]):
            return NO_RUNS, NO_RUNS
        cells, lost = not_best(means, keys)
        if not cells:
            return "no baseline runs beside DIFFUMA", NO_RUNS
        text = _not_best_text(cells, lost, what)
        verdict = "best: " + _verdict(not lost) if significance else _verdict(not lost)
        if significance:
            # the claim's baselines: those of the paper's table it rests on (Table 5 has four)
            baselines = table_baselines(5) if axis == "t_out" else PAPER_BASELINES
            tested, significant = _significance_text(runs.significance.get(axis), metrics, what, baselines)
            text, verdict = f"{text}. {tested}", f"{verdict}; {significant}"
        return text, verdict
    return ours


def _not_testable(why: str) -> Callable[[OurRuns], Side]:
    return lambda runs: (why, "not testable here")


# ---------------------------------------------------------------- the paper's side


def _paper_reduction(group: str, metric: str, printed: float) -> Callable[[pd.DataFrame], Side]:
    def paper(stored: pd.DataFrame) -> Side:
        per = paper_reductions(stored, group, metric)
        mean = sum(per.values()) / len(per)
        listed = ", ".join(f"{d.split(':')[-1]} {v:.1f}%" for d, v in per.items())
        text = f"Table 2 DIFFUMA vs SimVP {metric.upper()}: {listed}"
        if len(per) == 1:
            return text, _verdict(_holds(mean, printed, 1.0)) + _rounding(mean, printed)
        of_means = paper_reduction_of_means(stored, group, metric)
        readings = {"mean of per-variable reductions": mean, "reduction of the averages": of_means}
        giving = [name for name, value in readings.items() if _holds(value, printed, 1.0)]
        text += f"; mean of per-variable reductions {mean:.1f}%; reduction of the averages {of_means:.1f}%"
        verdict = (f"holds on the {giving[0]} reading" + _rounding(readings[giving[0]], printed) if giving else
                   f"does not hold (neither reading gives {printed:g}%)")
        return text, verdict
    return paper


def _paper_abstract_mse(stored: pd.DataFrame) -> Side:
    chdl = paper_reductions(stored, "chdl", "mse")["chdl"]
    weather = paper_reductions(stored, "weatherbench", "mse")
    weather_mean = sum(weather.values()) / len(weather)
    return (f"Table 2 CHDL MSE: DIFFUMA vs SimVP {chdl:.1f}% lower; 39% is WeatherBench's "
            f"(mean per-variable reduction {weather_mean:.1f}%)" if _holds(weather_mean, 39, 1.0) else
            f"Table 2 CHDL MSE: DIFFUMA vs SimVP {chdl:.1f}% lower"), _verdict(_holds(chdl, 39, 1.0))


def _matching_cells(stored: pd.DataFrame, value: float, metric: str, unit: float = 0.001) -> list[str]:
    rows = table2(stored)
    rows = rows[(rows["metric"] == metric) & ((rows["value"] - value).abs() < unit)]
    return [f"{m} {d} {v:.4f}" for m, d, v in zip(rows["model"], rows["dataset"], rows["value"], strict=True)]


def _paper_abstract_ssim(stored: pd.DataFrame) -> Side:
    rows = table2(stored)
    chdl = rows[(rows["dataset"] == "chdl") & (rows["metric"] == "ssim")]
    diffuma = _cell(rows, "diffuma", "chdl", "ssim")
    rivals = chdl[chdl["model"] != "diffuma"]
    best = rivals.loc[rivals["value"].idxmax()]
    text = (f"Table 2 CHDL SSIM: best baseline {best['model']} {best['value']:.4f} -> DIFFUMA {diffuma:.4f}; "
            f"Table 2 cells within 0.001 of 0.926: {', '.join(_matching_cells(stored, 0.926, 'ssim')) or 'none'}; "
            f"of 0.988: {', '.join(_matching_cells(stored, 0.988, 'ssim')) or 'none'}")
    ok = _holds(best["value"], 0.926, 0.001) and _holds(diffuma, 0.988, 0.001)
    return text, _verdict(ok)


def _paper_ssim_values(stored: pd.DataFrame) -> Side:
    rows = table2(stored)
    chdl = _cell(rows, "diffuma", "chdl", "ssim")
    weather = rows[rows["dataset"].str.startswith("weatherbench:") & (rows["model"] == "diffuma")
                   & (rows["metric"] == "ssim")]
    peak = weather.loc[weather["value"].idxmax()]
    ok = _holds(chdl, 0.926, 0.001) and _holds(peak["value"], 0.988, 0.001)
    return (f"Table 2 DIFFUMA SSIM: CHDL {chdl:.4f}; WeatherBench peak {peak['value']:.4f} ({peak['dataset']}); "
            "the ±0.018 is in no table"), _verdict(ok) + " (to within 0.001; the ± is not testable)"


def _paper_best_table2(metrics: tuple[str, ...]) -> Callable[[pd.DataFrame], Side]:
    def paper(stored: pd.DataFrame) -> Side:
        rows = table2(stored)
        cells, lost = not_best(rows[rows["metric"].isin(metrics)], ["dataset"])
        return f"Table 2: {_not_best_text(cells, lost, 'dataset x metric')}", _verdict(not lost)
    return paper


def _paper_best_sweep(tables: tuple[int, ...], key: str, what: str, metrics: tuple[str, ...] = ("mse", "mae", "ssim"),
                      significantly: bool = True) -> Callable[[pd.DataFrame], Side]:
    def paper(stored: pd.DataFrame) -> Side:
        rows = stored[stored["table"].isin(tables) & stored["metric"].isin(metrics)]
        cells, lost = not_best(rows[["model", key, "metric", "value"]], [key])
        label = " and ".join(f"Table {t}" for t in tables)
        verdict = _verdict(not lost) + ("; 'significantly' not testable: one number per cell, no seeds"
                                        if significantly and not lost else "")
        return f"{label}: {_not_best_text(cells, lost, what)}", verdict
    return paper


def _paper_chdl_frames(stored: pd.DataFrame) -> Side:
    rows = stored[(stored["table"] == 1) & (stored["dataset"] == "chdl")]
    value = dict(zip(rows["metric"], rows["value"].astype(int), strict=True))
    text = (f"Table 1 CHDL: T_in {value['t_in']} -> T_out {value['t_out']}, {value['train_samples']} train / "
            f"{value['test_samples']} test. Section 3: \"The first 5 frames (labeled as x) serve as the model's "
            "input ..., while the subsequent 5 frames (labeled as y) act as the prediction target\"; "
            "\"evenly split into 3,000 for training and 3,000 for validation\"")
    consistent = (value["t_in"], value["t_out"]) == (5, 5)
    return text, "consistent" if consistent else "inconsistent in the paper"


# ---------------------------------------------------------------- the claims

CLAIMS: list[Claim] = [
    Claim("WeatherBench: MSE 39% lower on average than SimVP", "5.2", "39%",
          _paper_reduction("weatherbench", "mse", 39), _ours_reduction("weatherbench", "mse", 39)),
    Claim("WeatherBench: MAE 21% lower on average than SimVP", "5.2", "21%",
          _paper_reduction("weatherbench", "mae", 21), _ours_reduction("weatherbench", "mae", 21)),
    Claim("CHDL: reducing the MSE by 28% compared to SimVP", "5.2", "28%",
          _paper_reduction("chdl", "mse", 28), _ours_reduction("chdl", "mse", 28)),
    Claim("CHDL: reducing the MAE by 37% compared to SimVP", "5.2", "37%",
          _paper_reduction("chdl", "mae", 37), _ours_reduction("chdl", "mae", 37)),
    Claim("on our CHDL benchmark ... reducing the MSE by 39%", "abstract, 1", "39%",
          _paper_abstract_mse, _ours_reduction("chdl", "mse", 39)),
    Claim("on CHDL ... improving the SSIM from 0.926 to a near-perfect 0.988", "abstract, 1", "0.926 -> 0.988",
          _paper_abstract_ssim, _ours_best(["dataset"], "CHDL SSIM", metrics=("ssim",), significance=False,
                                           group="chdl")),
    Claim("SSIM reaches 0.926±0.018 on CHDL, a peak value of 0.988 on Weatherbench", "5.3", "0.926±0.018; 0.988",
          _paper_ssim_values, _not_testable("not compared (the paper's values, not a comparison)")),
    Claim("outperforms ... across every evaluation metric (statistically significant)", "5.2",
          "Table 2, all 15 cells", _paper_best_table2(("mse", "mae", "ssim")),
          _ours_best(["dataset"], "dataset x metric")),
    Claim("superior SSIM on WeatherBench; the highest SSIM values on CHDL", "5.2", "Table 2 SSIM",
          _paper_best_table2(("ssim",)), _ours_best(["dataset"], "dataset SSIM", metrics=("ssim",),
                                                    significance=False)),
    Claim("significantly outperforms all baselines at every training epoch (MSE, MAE, SSIM)", "5.4.1",
          "Tables 3-4", _paper_best_sweep((3, 4), "epoch", "epoch x metric"),
          _ours_best(["dataset", "epoch"], "dataset x epoch x metric", epochs=True)),
    Claim("significantly surpasses all baselines at prediction lengths 3, 6, 9, 12", "5.4.2", "Table 5",
          _paper_best_sweep((5,), "t_out", "length x metric"),
          _ours_best(["dataset", "t_out"], "dataset x T_out x metric", by_t_out=True)),
    Claim("consistently achieves the highest SSIM across the entire prediction horizon", "1", "Table 5 SSIM",
          _paper_best_sweep((5,), "t_out", "length SSIM", metrics=("ssim",), significantly=False),
          _ours_best(["dataset", "t_out"], "dataset x T_out SSIM", by_t_out=True, metrics=("ssim",),
                     significance=False)),
    Claim("CHDL: 5 input frames -> 5 target frames (Section 3) vs Table 1", "3, Table 1", "5 -> 5; 5 -> 1",
          _paper_chdl_frames, _not_testable("not a number of ours: our CHDL loader's T_out is a config choice")),
    Claim("notable breakthroughs in computational efficiency; efficient training", "6", "none given",
          lambda stored: ("the paper gives no time, memory or parameter count",
                          "not testable here (no figure in the paper)"),
          _not_testable("not compared (no paper figure; see `bench table` costs)")),
]


def claims_table(frame: pd.DataFrame, paper: pd.DataFrame | None = None,
                 significance: dict[str | None, pd.DataFrame] | None = None) -> pd.DataFrame:
    """One row per claim (`COLUMNS`); `frame`: `records_to_frame(...)` (may be empty); `significance`:
    the paired tests of the tables (`benchmark.analysis.tables.significance_marks` per axis: None main, "t_out",
    "epoch"), without which the "significantly" claims say "not tested"."""
    paper = numbers.load_paper_numbers() if paper is None else paper
    runs = OurRuns(frame, dict(significance or {}))
    rows = []
    for claim in CLAIMS:
        recomputed, verdict = claim.paper(paper)
        ours, our_verdict = claim.ours(runs)
        rows.append([claim.claim, claim.where, claim.figure, recomputed, verdict, ours, our_verdict])
    return pd.DataFrame(rows, columns=COLUMNS)


def to_markdown(table: pd.DataFrame) -> str:
    return table.to_markdown(index=False) + "\n"


def to_latex(table: pd.DataFrame) -> str:
    """LaTeX via pandas Styler, escaped as `benchmark.analysis.tables` does (plus &, #, $ and arrows in free text)."""
    def escape(text: str) -> str:
        for plain, latex in (("&", "\\&"), ("#", "\\#"), ("$", "\\$"), ("->", "$\\to$")):
            text = text.replace(plain, latex)
        return _latex_escape(text)

    text = table.astype(str).map(escape)
    text.columns = [escape(c) for c in text.columns]
    caption = "The paper's quantitative claims, recomputed from its own tables and from our runs."
    return text.style.hide(axis="index").to_latex(hrules=True, caption=caption, position_float="centering",
                                                  environment="table", column_format="p{3cm}" * len(COLUMNS))


def render_claims(table: pd.DataFrame, out_dir: Path, formats: tuple[str, ...] = FORMATS) -> list[Path]:
    """Write claims.csv / claims.md / claims.tex into `out_dir`; the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt in formats:
        path = out_dir / f"claims.{SUFFIXES[fmt]}"
        text = (table.to_csv(index=False) if fmt == "csv" else
                to_markdown(table) if fmt == "markdown" else to_latex(table))
        write_text_atomic(path, text)
        written.append(path)
    return written
