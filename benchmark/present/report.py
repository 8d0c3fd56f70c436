"""`bench report`: one self-contained HTML page of the stored runs, and the same content as Markdown.

`build_report(results_dir, out_dir, figures)` reads the run records (`benchmark.results.records`) and writes

- `report.html`: a single file that reads the same opened from disk anywhere: CSS in one <style>
  block, every image embedded as a `data:image/png;base64,...` URI, no script, font, stylesheet or
  other resource from the network or from a file path;
- `report.md`: the same sections; its images are relative links to `figures/*.png` under `out_dir`
  (PNGs given from elsewhere are copied there).

Sections: a note when any run is on generated stand-in data; a summary; per profile the main table
(normalized units with the detail ratio, physical units with the weather scores: WeatherBench 2's
and 1's RMSE and ACC), the epoch sweep (runs with --eval-at), the
length sweep (several T_out), each with its significance marks and beside the paper's numbers where
they match, the significance tests and the paper's claims with verdicts; the figures; the data each
run used; the environments the runs executed in; what was not run (the paper's (model, dataset)
pairs without runs, the tables that could not be built, the runs without per-sample errors).

Nothing is computed here that `benchmark.analysis.tables`, `benchmark.analysis.compare` or
`benchmark.analysis.claims` computes:
this module only selects, labels and lays out their results.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from benchmark.analysis import claims, compare, precision_drift, tables
from benchmark.core.atomic import write_text_atomic
from benchmark.core.errors import BenchError
from benchmark.paper.numbers import DEFAULT_SWEEP_DATASET, MODEL_NAMES, PAPER_DATASETS
from benchmark.results.records import EnvironmentInfo, RunRecord, load_records, records_to_frame

DEFAULT_TITLE = "diffuma-bench report"
HTML_NAME = "report.html"
MARKDOWN_NAME = "report.md"
FIGURES_DIR = "figures"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MODEL = "diffuma"  # the model the significance tests and claims are about
# private-use characters around the best cell's text: each renderer turns them into its bold (<strong> or **),
# so one formatted table serves both formats and no cell text can collide with them
BOLD = ("\ue000", "\ue001")
DETAIL_METRICS = ["mse", "mae", "ssim", "detail_ratio"]
SKILL_METRICS = ["mse", "mae", "ssim", "rmse_wb2", "lat_rmse", "acc"]  # the physical main table as shown
SKILL_NOTE = ("RMSE (WB2): WeatherBench 2's, the square root after the mean over the test samples; RMSE (lat-w., "
              "WB1): WeatherBench 1's, the mean over samples of each sample's root (both latitude-weighted on "
              "latitude grids). ACC ↑: anomaly correlation against the training split's climatology (the "
              "climatology row scores 0); `benchmark.scoring.metrics`.")
DETAIL_NOTE = ("detail →1: the prediction's fine-scale power over the truth's (upper half of the wavenumbers, "
               "`benchmark.scoring.spectra`); 1: as much detail as the truth, below 1: blurred, above 1: noisier.")
FIGURE_TITLES = {  # figure name (benchmark.present.figures.plot_all) -> heading
    "prediction_grid": "Predictions beside the truth",
    "learning_curves": "Learning curves",
    "epoch_sweep": "Scores by training epoch",
    "per_lead": "Scores by lead time",
    "acc_by_lead": "Anomaly correlation by lead time",
    "spectra": "Power spectra",
}
ENVIRONMENT_FIELDS = {  # EnvironmentInfo field -> row label of the environment table
    "device": "device", "cuda": "CUDA", "processor": "processor", "cpu_count": "CPU cores",
    "torch_threads": "torch threads", "platform": "platform", "hostname": "host", "python": "Python",
    "torch": "PyTorch", "lightning": "Lightning", "numpy": "NumPy", "git_commit": "git commit",
}
CLAIM_WIDTHS = (15, 8, 9, 20, 12, 25, 11)  # percent of the page, per column of CLAIM_LABELS
CLAIM_LABELS = {"claim": "claim", "where": "where", "paper_figure": "paper's figure",
                "recomputed": "recomputed from the paper's tables", "verdict": "verdict (paper)",
                "our_runs": "our runs", "our_verdict": "verdict (ours)"}
PAPER_MODELS = list(dict.fromkeys(MODEL_NAMES.values()))  # in the paper's order
NOT_RUN = "not run"


# ---------------------------------------------------------------- blocks: one content, two renderings


@dataclass
class Heading:
    level: int
    text: str
    anchor: str


@dataclass
class Paragraph:
    text: str  # inline markup: `code` and **bold**


@dataclass
class Bullets:
    items: list[str]


@dataclass
class TableBlock:
    frame: pd.DataFrame  # cells as text
    caption: str = ""
    kind: str = "numbers"  # "numbers": right-aligned, no wrap; "text": left-aligned, wrapped
    index: bool = True
    widths: tuple[int, ...] = ()  # text tables: the columns' shares of the page width, in percent


@dataclass
class FigureBlock:
    name: str
    images: list[tuple[Path, str]]  # (PNG to embed, its Markdown link relative to out_dir)
    others: list[str] = field(default_factory=list)  # other formats (PDF), relative to out_dir


Block = Heading | Paragraph | Bullets | TableBlock | FigureBlock


def slug(text: str) -> str:
    """An HTML id from `text`: lower case, runs of other characters as one hyphen."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


# ---------------------------------------------------------------- the report


def build_report(results_dir: Path, out_dir: Path, figures: dict[str, list[Path]] | None = None,
                 title: str = DEFAULT_TITLE) -> tuple[Path, Path]:
    """Write `out_dir/report.html` (self-contained) and `out_dir/report.md` from the records in
    `results_dir` and the `figures` (name -> PNG and PDF paths, as `benchmark.present.figures.plot_all` returns);
    returns (html path, markdown path). Raises BenchError when `results_dir` holds no finished record."""
    results_dir, out_dir = Path(results_dir), Path(out_dir)
    records = load_records(results_dir) if results_dir.is_dir() else []
    if not records:
        raise BenchError(f"No finished run records in {results_dir}/: nothing to report. Run `bench run` or "
                         "`bench reproduce` first, or point --results at the folder they wrote to.")
    out_dir.mkdir(parents=True, exist_ok=True)
    notes = generated_data_notes(records)
    blocks = report_blocks(records, results_dir, out_dir, figures or {})
    html_path, markdown_path = out_dir / HTML_NAME, out_dir / MARKDOWN_NAME
    write_text_atomic(html_path, render_html(title, notes, blocks))
    write_text_atomic(markdown_path, render_markdown(title, notes, blocks))
    return html_path, markdown_path


def report_blocks(records: list[RunRecord], results_dir: Path, out_dir: Path,
                  figures: dict[str, list[Path]]) -> list[Block]:
    """All sections of the report, in order, as blocks."""
    frame = records_to_frame(records)
    profiles = list(dict.fromkeys(r.config.profile for r in sorted(records, key=lambda r: r.finished_at)))
    blocks: list[Block] = summary_blocks(records, results_dir, profiles)
    not_built: list[str] = []
    for profile in profiles:
        section, missing = results_blocks(frame[frame["profile"] == profile], results_dir, profile)
        blocks += section
        not_built += [f"{profile} profile: {reason}" if len(profiles) > 1 else reason for reason in missing]
    blocks += ensemble_blocks(records)
    blocks += figure_blocks(figures, out_dir)
    blocks += data_blocks(records)
    blocks += environment_blocks(records)
    blocks += not_run_blocks(records, results_dir, not_built)
    return blocks


def generated_data_notes(records: list[RunRecord]) -> list[str]:
    """The note at the top when any run is on generated data (none when every run is on real data)."""
    generated = [r for r in records if is_generated_run(r)]
    if not generated:
        return []
    names = sorted({r.config.dataset for r in generated})
    stand_ins = [f"`{n}` for `{compare.paper_dataset_of(n)}`" for n in names if compare.paper_dataset_of(n)]
    text = (f"**Generated data.** {len(generated)} of {len(records)} runs use generated stand-in data, not the "
            f"paper's datasets: {', '.join(f'`{n}`' for n in names)}.")
    if stand_ins:
        text += f" They stand in for the paper's datasets ({', '.join(stand_ins)}) only to exercise the pipeline:"
        text += " their numbers say nothing about how the models do on the real data."
    return [text]


def is_generated_run(record: RunRecord) -> bool:
    """True when the run's data was generated (a `synthetic-*` dataset, or flagged so in its data summary)."""
    return compare.is_generated(record.config.dataset) or bool(record.data.get("generated"))


def summary_blocks(records: list[RunRecord], results_dir: Path, profiles: list[str]) -> list[Block]:
    """What the report is built from: how many runs of which models, datasets, profiles and seeds."""
    finished = sorted(r.finished_at for r in records)
    built = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")

    def names(values: Iterable[object]) -> str:
        return ", ".join(f"`{v}`" for v in dict.fromkeys(values))

    return [
        Heading(2, "Summary", "summary"),
        Bullets([f"{len(records)} finished runs in `{results_dir}`, finished {finished[0]} to {finished[-1]}; "
                 f"report built {built}.",
                 f"Models: {names(sorted(r.config.model for r in records))}.",
                 f"Datasets: {names(sorted(r.config.dataset for r in records))}.",
                 f"Profiles: {names(profiles)}; seeds: {names(sorted(r.config.seed for r in records))}.",
                 "Tables: per (model, dataset) the most recently finished configuration, averaged over its "
                 "seeds (`benchmark.analysis.tables`); one set of tables per profile."]),
    ]


# ---------------------------------------------------------------- results: tables, comparisons, claims


def results_blocks(frame: pd.DataFrame, results_dir: Path, profile: str) -> tuple[list[Block], list[str]]:
    """One profile's tables (with significance marks), their comparisons with the paper, the tests and the
    claims; and the reasons of the tables that could not be built."""
    significance = tables.significance_by_axis(frame, results_dir, profile=profile, model=MODEL)
    best = {axis: tables.best_vs_runner_up(frame, results_dir, profile=profile, axis=axis) for axis in significance}
    blocks: list[Block] = [Heading(2, f"Results: {profile} profile", slug(f"results {profile}"))]
    shown, missing = profile_tables(frame, profile)
    for entry in shown:
        section, reason = table_section(entry, significance, profile, best)
        blocks += section
        missing += [reason] if reason else []
    blocks += significance_blocks(significance, profile, {entry.name for entry in shown})
    if tables.TABLE_AXES["main"] not in significance:
        missing.append(f"Significance tests: no {MODEL} run and baseline run with per-sample errors of a seed in "
                       "common, so no table has ▲ / ▼ marks.")
    blocks += precision_drift_blocks(frame, profile, results_dir)
    claim_rows = claims.claims_table(frame, significance=significance).rename(columns=CLAIM_LABELS)
    blocks += [Heading(3, "The paper's claims", slug(f"{profile} claims")),
               TableBlock(claim_rows, "Each quantitative claim of the paper, recomputed from its own tables and "
                          f"checked on our runs of the {profile} profile (`benchmark.analysis.claims`).", "text",
                          index=False, widths=CLAIM_WIDTHS)]
    return blocks, missing


def precision_drift_blocks(frame: pd.DataFrame, profile: str, results_dir: Path | None = None) -> list[Block]:
    """Where the profile's runs of one setting were trained in fp32 and in another precision: how far the
    precision moved each model's test MSE, and whether it is equivalent to fp32
    (`benchmark.analysis.precision_drift`)."""
    drift = precision_drift.precision_drift(frame, metric="mse", profile=profile, results_dir=results_dir)
    if drift.empty:
        return []
    text = precision_drift.formatted(drift)
    text.index = drift.row_labels
    return [Heading(3, "Training precision", slug(f"{profile} precision drift")), TableBlock(text, drift.caption)]


@dataclass
class ShownTable:
    name: str  # main / epoch_sweep / length_sweep (`benchmark.analysis.tables.TABLE_AXES`)
    space: str
    title: str
    table: tables.Table  # the table compared with the paper
    displayed: tables.Table  # the table shown (the main one with the detail ratio)


def profile_tables(frame: pd.DataFrame, profile: str) -> tuple[list[ShownTable], list[str]]:
    """The tables the runs of `profile` support, and why each other one is missing: main (both spaces,
    normalized with the detail ratio), the epoch sweep (runs with --eval-at), the length sweep (several T_out)."""
    normalized = tables.main_table(frame, "normalized", profile=profile)
    detail = tables.main_table(frame, "normalized", metrics=DETAIL_METRICS, profile=profile)
    if "detail_ratio" in {c[-1] for c in detail.mean.columns}:
        detail = replace(detail, caption=f"{detail.caption} {DETAIL_NOTE}")
    physical = tables.main_table(frame, "physical", profile=profile)
    skill = tables.main_table(frame, "physical", metrics=SKILL_METRICS, profile=profile)
    if {"acc", "rmse_wb2"} & {c[-1] for c in skill.mean.columns}:
        skill = replace(skill, caption=f"{skill.caption} {SKILL_NOTE}")
    shown = [ShownTable("main", "normalized", "Main table, normalized units", normalized, detail),
             ShownTable("main", "physical", "Main table, physical units", physical, skill)]
    missing = []
    if (frame["epoch"] != "best").any():
        sweep = tables.epoch_sweep_table(frame, "normalized", profile=profile)
        shown.append(ShownTable("epoch_sweep", "normalized", "Epoch sweep (--eval-at), normalized units", sweep, sweep))
    else:
        missing.append("Epoch sweep: no run was scored after intermediate epochs (`bench run --eval-at`).")
    if (frame.groupby("dataset")["t_out"].nunique() > 1).any():
        sweep = tables.length_sweep_table(frame, "normalized", profile=profile)
        shown.append(ShownTable("length_sweep", "normalized", "Length sweep, normalized units", sweep, sweep))
    else:
        found = ", ".join(str(t) for t in sorted(frame["t_out"].unique()))
        missing.append(f"Length sweep: every dataset was run at one prediction length only (T_out {found}; "
                       "`bench run --pred-lens` adds others).")
    return shown, missing


def table_section(entry: ShownTable, significance: dict[str | None, pd.DataFrame], profile: str,
                  best: dict[str | None, pd.DataFrame] | None = None) -> tuple[list[Block], str | None]:
    """One table with its significance marks (and, with `best`, bold only for a best mean that beats the
    runner-up), and beside the paper where they share cells; the reason when either is missing."""
    if entry.table.empty:
        return [], f"{entry.title}: no run has these scores."
    displayed = entry.displayed
    marks = significance.get(tables.TABLE_AXES[entry.name])
    if marks is not None:
        axis = tables.TABLE_AXES[entry.name]
        displayed = tables.with_significance(displayed, marks, MODEL, (best or {}).get(axis))
    anchor = slug(f"{profile} {entry.name} {entry.space}")
    blocks: list[Block] = [Heading(3, entry.title, anchor), _table_block(displayed)]
    comparison = compare.compare_with_paper(entry.table, space=entry.space)
    if comparison.empty:
        return blocks, f"{entry.title} beside the paper: {_no_comparison_reason(entry.name)}"
    blocks += [Heading(3, f"{entry.title}, beside the paper", f"{anchor}-vs-paper"),
               TableBlock(compare.formatted(comparison), comparison.caption)]
    return blocks, None


def _no_comparison_reason(name: str) -> str:
    reason = "no cell has both a number of ours and one of the paper's (its models on its datasets or their " \
             "generated stand-ins)"
    if name != "main":
        reason += (f"; the paper does not state the dataset of its sweep tables, they are taken to be on "
                   f"`{DEFAULT_SWEEP_DATASET}`")
    return reason + "."


def _table_block(table: tables.Table) -> TableBlock:
    """A `benchmark.analysis.tables.Table` as text cells (the best mean per column bold) with its caption."""
    return TableBlock(tables.formatted(table, bold=BOLD), table.caption)


def significance_blocks(significance: dict[str | None, pd.DataFrame], profile: str, shown: set[str]
                        ) -> list[Block]:
    """The paired tests behind the marks, one table per table shown that has tests."""
    blocks: list[Block] = []
    for name, axis in tables.TABLE_AXES.items():
        if name not in shown or axis not in significance:
            continue
        blocks += [Heading(3, f"Significance tests: {tables.SIGNIFICANCE_AXES[axis]}",
                           slug(f"{profile} significance {name}")),
                   TableBlock(tables.significance_table(significance[axis]),
                              f"Paired tests of {MODEL} against each baseline on the same test windows (normalized "
                              f"errors, averaged over lead times). Cells: the relative difference 1 - {MODEL} / "
                              "baseline (for an error, the share by which it lowers the baseline's; for SSIM, "
                              "negative is better) with its 95% confidence interval (per test, not adjusted), "
                              "and the adjusted p-value. "
                              + tables.significance_caption(significance[axis], MODEL,
                                                            tables.primary_endpoint(significance[axis])))]
    return blocks


# ---------------------------------------------------------------- figures


def figure_blocks(figures: dict[str, list[Path]], out_dir: Path) -> list[Block]:
    """The Figures section: per figure name a heading and its PNGs (copied under `out_dir/figures/` for the
    Markdown when they are elsewhere)."""
    blocks: list[Block] = [Heading(2, "Figures", "figures")]
    if not figures:
        return [*blocks, Paragraph("No figures: the report was built without plots.")]
    claimed: dict[Path, Path] = {}  # copy target -> its source, in this build
    for name, paths in figures.items():
        pngs = [Path(p) for p in paths if Path(p).suffix.lower() == ".png" and _is_png(Path(p))]
        others = [_placed(Path(p), name, out_dir, claimed) for p in paths
                  if Path(p).suffix.lower() != ".png" and Path(p).is_file()]
        title = FIGURE_TITLES.get(name, name.replace("_", " ").capitalize())
        blocks.append(Heading(3, f"{title} ({name})", slug(f"figure {name}")))
        if not pngs:
            blocks.append(Paragraph(f"No PNG of `{name}` was written."))
            continue
        blocks.append(FigureBlock(name, [(png, _placed(png, name, out_dir, claimed)) for png in pngs], others))
    return blocks


def _is_png(path: Path) -> bool:
    if not path.is_file():
        return False
    with path.open("rb") as handle:
        return handle.read(len(PNG_MAGIC)) == PNG_MAGIC


def _placed(path: Path, name: str, out_dir: Path, claimed: dict[Path, Path]) -> str:
    """A figure file's link relative to `out_dir`, copied into `out_dir/figures/` first when it lies elsewhere
    (as `<figure name>-<file name>` when another file of this report took that name)."""
    source, root = path.resolve(), out_dir.resolve()
    if source.is_relative_to(root):
        claimed[source] = source
        return source.relative_to(root).as_posix()
    target = root / FIGURES_DIR / path.name
    if claimed.get(target, source) != source:
        target = root / FIGURES_DIR / f"{name}-{path.name}"
    claimed[target] = source
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return target.relative_to(root).as_posix()


# ---------------------------------------------------------------- data, environment, what was not run


def data_source(record: RunRecord) -> str:
    """"real", or which of the paper's datasets the generated data stands in for."""
    if not is_generated_run(record):
        return "real"
    paper = compare.paper_dataset_of(record.config.dataset)
    return f"generated stand-in for {paper}" if paper else "generated"


def data_blocks(records: list[RunRecord]) -> list[Block]:
    """Which data each run used: runs grouped by dataset, source, profile, lengths and sample counts."""
    rows = []
    for record in records:
        summary = record.data
        shape = summary.get("shape") or []
        names = list(summary.get("channels") or [])
        units = list(summary.get("units") or []) + [""] * len(names)
        channels = [f"{name} ({unit})" if unit else str(name) for name, unit in zip(names, units, strict=False)]
        rows.append({"dataset": record.config.dataset, "data": data_source(record), "profile": record.config.profile,
                     "T_in → T_out": f"{record.config.t_in} → {record.config.t_out}",
                     "train / val / test samples": " / ".join(str(summary.get(f"{s}_samples", "–"))
                                                              for s in ("train", "val", "test")),
                     "grid C × H × W": " × ".join(map(str, shape[-3:])) if len(shape) >= 3 else "–",
                     "channels": ", ".join(channels) or "–", "model": record.config.model,
                     "seed": record.config.seed})
    frame = pd.DataFrame(rows)
    keys = [c for c in frame.columns if c not in ("model", "seed")]
    grouped = frame.groupby(keys, sort=True).agg(
        runs=("model", "size"), models=("model", lambda m: ", ".join(sorted(set(m)))),
        seeds=("seed", lambda s: ", ".join(map(str, sorted(set(s)))))).reset_index()
    grouped["runs"] = grouped["runs"].astype(str)
    return [Heading(2, "Data", "data"),
            TableBlock(grouped, "The data of the runs: one row per dataset, profile, lengths and sample counts "
                       "(from each record's data summary). Generated data is a stand-in made by this benchmark, "
                       "not the paper's data.", "text", index=False)]


def ensemble_blocks(records: list[RunRecord]) -> list[Block]:
    """The runs scored as ensembles (`bench ensemble`): their ensemble scores beside their single pass."""
    scored = sorted((r for r in records if r.ensemble is not None),
                    key=lambda r: (r.config.dataset, r.config.model, r.config.seed))
    if not scored:
        return []

    def number(value: float | None, digits: str = ".4g") -> str:
        return "–" if value is None else format(value, digits)

    rows = []
    for record in scored:
        ens, single = record.ensemble, record.test.normalized
        options = ", ".join(f"{k}={v}" for k, v in ens.get("options", {}).items())
        rows.append({"run": record.run_id, "N": str(ens["members"]), "sampling": options,
                     "MSE (single)": number(single.mse), "ens. mean MSE": number(ens["normalized"]["ens_mse"]),
                     "MAE (single)": number(single.mae), "CRPS": number(ens["normalized"]["crps"]),
                     "spread/skill": number(ens["normalized"]["spread_skill"], ".3f"),
                     "detail members / mean": f"{number(ens['detail_ratio']['members'], '.3f')} / "
                                              f"{number(ens['detail_ratio']['mean'], '.3f')}",
                     "time": f"{ens['seconds']:.1f} s ({ens.get('device', '?')})"})
    frame = pd.DataFrame(rows).set_index("run")
    return [Heading(2, "Ensembles", "ensembles"),
            TableBlock(frame, "Runs scored as ensembles (`bench ensemble`), normalized test split: fair CRPS beside "
                       "the single pass's MAE (a deterministic forecast's CRPS), the ensemble mean's MSE beside the "
                       "single pass's, the spread-skill ratio (1: reliable) and the detail ratio of the members "
                       "and of their mean; time: sampling and scoring the test split.")]


def environment_blocks(records: list[RunRecord]) -> list[Block]:
    """The distinct environments of the runs (hardware, versions, git commit, selective-scan backend)."""
    groups: dict[tuple, list[RunRecord]] = {}
    for record in records:
        groups.setdefault(_environment_key(record.environment), []).append(record)
    columns = {}
    for number, (key, runs) in enumerate(groups.items(), start=1):
        values = dict(zip(ENVIRONMENT_FIELDS.values(), key, strict=True))
        values["git commit"] = values["git commit"][:12] if values["git commit"] else "unknown (no git checkout)"
        values["CUDA"] = values["CUDA"] or "none"
        values["selective scan"] = _backends(runs)
        values["runs"] = str(len(runs))
        values["models"] = ", ".join(sorted({r.config.model for r in runs}))
        columns[f"environment {number}" if len(groups) > 1 else "environment"] = values
    frame = pd.DataFrame(columns).fillna("–").astype(str)
    return [Heading(2, "Environment", "environment"),
            TableBlock(frame, "Where the runs executed, one column per distinct environment (as each record "
                       "stores it). Selective scan: the backend of the models with a Mamba selective scan.",
                       "text")]


def _environment_key(environment: EnvironmentInfo) -> tuple:
    return tuple(getattr(environment, name) for name in ENVIRONMENT_FIELDS)


def _backends(runs: list[RunRecord]) -> str:
    used: dict[str, set[str]] = {}
    for run in runs:
        backend = run.environment.selective_scan_backend or "none"
        used.setdefault(backend, set()).add(run.config.model)
    return "; ".join(f"{backend}: {', '.join(sorted(models))}" for backend, models in sorted(used.items()))


def not_run_blocks(records: list[RunRecord], results_dir: Path, not_built: list[str]) -> list[Block]:
    """The paper's (model, dataset) pairs without runs, the tables not built, and the runs without
    per-sample errors (which the significance tests need)."""
    coverage = coverage_frame(records)
    absent = int((coverage == NOT_RUN).to_numpy().sum())
    extra = sorted({r.config.model for r in records} - set(PAPER_MODELS))
    text = (f"{absent} of {coverage.size} of the paper's (model, dataset) pairs have no run, neither on the real "
            "data nor on a generated stand-in.")
    if extra:
        text += f" Also run, not one of the paper's models: {', '.join(f'`{m}`' for m in extra)}."
    blocks: list[Block] = [Heading(2, "What was not run", "not-run"),
                           Heading(3, "The paper's models and datasets", "not-run-pairs"), Paragraph(text),
                           TableBlock(coverage, "Runs per paper model (rows) and paper dataset (columns): real "
                                      "data and generated stand-ins counted apart.", "text"),
                           Heading(3, "Tables not built", "not-built"),
                           Bullets(not_built) if not_built else Paragraph("Every table was built.")]
    lacking = per_sample_gaps(records, results_dir)
    blocks.append(Heading(3, "Runs without per-sample errors", "no-per-sample"))
    if lacking.empty:
        blocks.append(Paragraph("Every run stored its per-sample errors: all of them can enter significance tests."))
    else:
        blocks += [Paragraph("These runs stored no per-sample errors for the evaluations listed: they take no part "
                             "in the significance tests there (re-run them to store the errors)."),
                   TableBlock(lacking, kind="text", index=False)]
    return blocks


def coverage_frame(records: list[RunRecord]) -> pd.DataFrame:
    """Rows: the paper's models; columns: the paper's datasets; cells: how many runs, real and stand-in."""
    counts: dict[tuple[str, str, bool], int] = {}
    for record in records:
        paper = compare.paper_dataset_of(record.config.dataset)
        if paper is not None:
            key = (record.config.model, paper, is_generated_run(record))
            counts[key] = counts.get(key, 0) + 1

    def cell(model: str, dataset: str) -> str:
        parts = [f"{counts[(model, dataset, generated)]} {label}"
                 for generated, label in ((False, "real"), (True, "stand-in")) if (model, dataset, generated) in counts]
        return ", ".join(parts) or NOT_RUN

    frame = pd.DataFrame({d: [cell(m, d) for m in PAPER_MODELS] for d in PAPER_DATASETS}, index=PAPER_MODELS)
    frame.index.name = "model"
    return frame


def per_sample_gaps(records: list[RunRecord], results_dir: Path) -> pd.DataFrame:
    """Runs missing per-sample error files: run id, model, dataset and which evaluations lack them."""
    rows = []
    for record in records:
        folder = Path(results_dir) / record.run_id
        lacking = []
        if not record.per_sample_file or not (folder / record.per_sample_file).is_file():
            lacking.append("test split")
        epochs = [e for e in record.eval_at if not (e in record.eval_at_per_sample_files and
                                                    (folder / record.eval_at_per_sample_files[e]).is_file())]
        if epochs:
            lacking.append(f"--eval-at epoch{'s' if len(epochs) > 1 else ''} {', '.join(epochs)}")
        if lacking:
            rows.append({"run": record.run_id, "model": record.config.model, "dataset": record.config.dataset,
                         "no per-sample errors for": "; ".join(lacking)})
    return pd.DataFrame(rows, columns=["run", "model", "dataset", "no per-sample errors for"])


# ---------------------------------------------------------------- HTML


CSS = """
:root { color-scheme: light; }
body { margin: 0; background: #fff; color: #1f2328;
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 32px 72px; }
h1 { font-size: 1.8em; margin: 0.2em 0 0.6em; padding-bottom: 0.3em; border-bottom: 2px solid #d0d7de; }
h2 { font-size: 1.4em; margin: 2.2em 0 0.6em; padding-bottom: 0.25em; border-bottom: 1px solid #d0d7de; }
h3 { font-size: 1.1em; margin: 1.8em 0 0.4em; }
code { font: 0.9em ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace;
  background: #f3f4f6; padding: 0 0.25em; border-radius: 3px; }
.note { background: #fff8c5; border: 1px solid #d4a72c; border-left: 6px solid #bf8700; border-radius: 4px;
  padding: 10px 16px; margin: 0 0 1.2em; }
nav.toc { background: #f6f8fa; border: 1px solid #d0d7de; border-radius: 4px; padding: 8px 20px; font-size: 0.92em; }
nav.toc ul { margin: 0.2em 0; padding-left: 1.3em; }
nav.toc li > ul { font-size: 0.95em; }
a { color: #0969da; text-decoration: none; }
a:hover { text-decoration: underline; }
p.caption { color: #444; font-size: 0.88em; margin: 0.2em 0 0.5em; }
.scroll { overflow-x: auto; max-width: 100%; margin: 0 0 1.4em; }
table { border-collapse: collapse; font-size: 13.5px; font-variant-numeric: tabular-nums;
  border-top: 2px solid #24292f; border-bottom: 2px solid #24292f; }
th, td { padding: 4px 12px; border-bottom: 1px solid #d8dee4; vertical-align: top; }
thead th { border-bottom: 1px solid #8c959f; text-align: center; font-weight: 600; }
thead tr:last-child th { border-bottom: 1.5px solid #24292f; }
tbody th { text-align: left; white-space: nowrap; font-weight: 600; background: #fafbfc; }
table.numbers tbody th { position: sticky; left: 0; }  /* row labels stay in view when a wide table scrolls */
tbody tr:last-child th, tbody tr:last-child td { border-bottom: none; }
table.numbers td { text-align: right; white-space: nowrap; }
table.text td { text-align: left; min-width: 3em; max-width: 32em; }
td.absent { color: #8c959f; }
table.text thead th { text-align: left; }
table.fixed { table-layout: fixed; width: 100%; font-size: 12.5px; }
table.fixed th, table.fixed td { padding: 4px 8px; min-width: 0; max-width: none; overflow-wrap: break-word; }
.better { color: #1a7f37; font-weight: 700; }
.worse { color: #cf222e; font-weight: 700; }
figure { margin: 0.8em 0 1.6em; }
figure img { display: block; max-width: 100%; height: auto; border: 1px solid #d0d7de; margin-bottom: 0.6em; }
figcaption { color: #444; font-size: 0.88em; }
""".strip()


def render_html(title: str, notes: list[str], blocks: list[Block]) -> str:
    """The whole report as one self-contained HTML page."""
    parts = [f"<h1>{html.escape(title)}</h1>", *(f'<div class="note">{_inline_html(n)}</div>' for n in notes),
             _html_toc(blocks), *(_html_block(b) for b in blocks)]
    body = "\n".join(parts)
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{html.escape(title)}</title>\n<style>\n{CSS}\n</style>\n</head>\n<body>\n<main>\n{body}\n"
            "</main>\n</body>\n</html>\n")


def _inline_html(text: str) -> str:
    """Escape `text`, then `code` -> <code>, **bold** -> <strong>, and colour the significance marks."""
    escaped = html.escape(text, quote=False)
    escaped = re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped)
    escaped = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", escaped)
    return _marks_html(escaped)


def _marks_html(text: str) -> str:
    text = text.replace(BOLD[0], "<strong>").replace(BOLD[1], "</strong>")
    text = text.replace(tables.SIGNIFICANCE_MARKS["better"],
                        f'<span class="better" title="{MODEL} significantly better">▲</span>')
    return text.replace(tables.SIGNIFICANCE_MARKS["worse"],
                        f'<span class="worse" title="{MODEL} significantly worse">▼</span>')


def _html_toc(blocks: list[Block]) -> str:
    """Contents: the sections (h2), each with its subsections (h3), as links to their ids."""
    sections: list[tuple[Heading, list[Heading]]] = []
    for block in blocks:
        if isinstance(block, Heading) and block.level == 2:
            sections.append((block, []))
        elif isinstance(block, Heading) and block.level == 3 and sections:
            sections[-1][1].append(block)

    def link(heading: Heading) -> str:
        return f'<a href="#{heading.anchor}">{html.escape(heading.text)}</a>'

    items = "".join(f"<li>{link(h2)}" + (f"<ul>{''.join(f'<li>{link(h3)}</li>' for h3 in subs)}</ul>" if subs else "")
                    + "</li>" for h2, subs in sections)
    return f'<nav class="toc"><strong>Contents</strong><ul>{items}</ul></nav>'


def _html_block(block: Block) -> str:
    if isinstance(block, Heading):
        return f'<h{block.level} id="{block.anchor}">{html.escape(block.text)}</h{block.level}>'
    if isinstance(block, Paragraph):
        return f"<p>{_inline_html(block.text)}</p>"
    if isinstance(block, Bullets):
        return "<ul>" + "".join(f"<li>{_inline_html(item)}</li>" for item in block.items) + "</ul>"
    if isinstance(block, TableBlock):
        return _html_table(block)
    return _html_figure(block)


def _html_table(block: TableBlock) -> str:
    caption = f'<p class="caption">{_inline_html(block.caption)}</p>' if block.caption else ""
    if block.frame.empty:
        return f"{caption}<p>(empty)</p>"
    named = block.index and block.frame.index.nlevels > 1  # a one-level index: its name row is left out
    table = block.frame.to_html(escape=True, border=0, index=block.index, index_names=named, na_rep="–",
                                classes=[block.kind], justify="center")
    table = table.replace(' class="dataframe ', ' class="').replace(' style="text-align: center;"', "")
    if block.widths:  # a fixed layout over the page's width, each column its share
        columns = "".join(f'<col style="width: {w}%">' for w in block.widths)
        table = table.replace(f'class="{block.kind}">', f'class="{block.kind} fixed"><colgroup>{columns}</colgroup>', 1)
    table = table.replace(f"<td>{NOT_RUN}</td>", f'<td class="absent">{NOT_RUN}</td>')
    for arrow in ("↓", "↑", "→1"):  # a metric's label and its arrow stay on one line
        table = table.replace(f" {arrow}", f"&nbsp;{arrow}")
    return f'{caption}<div class="scroll">{_marks_html(table)}</div>'


def _html_figure(block: FigureBlock) -> str:
    images = "".join(f'<img src="data:image/png;base64,{base64.b64encode(png.read_bytes()).decode("ascii")}" '
                     f'alt="{html.escape(block.name)}: {html.escape(png.name)}">' for png, _ in block.images)
    files = ", ".join(f"<code>{html.escape(link)}</code>" for link in [*(link for _, link in block.images),
                                                                        *block.others])
    return f"<figure>{images}<figcaption>Written as {files} (beside the report).</figcaption></figure>"


# ---------------------------------------------------------------- Markdown


def render_markdown(title: str, notes: list[str], blocks: list[Block]) -> str:
    """The report as Markdown: the same sections; images as relative links."""
    parts = [f"# {title}", *(f"> {n}" for n in notes), *(_markdown_block(b) for b in blocks)]
    return "\n\n".join(parts) + "\n"


def _markdown_block(block: Block) -> str:
    if isinstance(block, Heading):
        return f"{'#' * block.level} {block.text}"
    if isinstance(block, Paragraph):
        return block.text
    if isinstance(block, Bullets):
        return "\n".join(f"- {item}" for item in block.items)
    if isinstance(block, TableBlock):
        return _markdown_table(block)
    images = "\n\n".join(f"![{block.name}: {Path(link).name}]({link})" for _, link in block.images)
    if block.others:
        images += "\n\nAlso as " + ", ".join(f"[{Path(o).name}]({o})" for o in block.others) + "."
    return images


def _markdown_table(block: TableBlock) -> str:
    frame = block.frame
    if frame.empty:
        return f"{block.caption}\n\n(empty)".strip()
    flat = frame.reset_index() if block.index else frame.copy()
    if block.index and frame.index.nlevels == 1 and frame.index.name is None:
        flat = flat.rename(columns={"index": ""})
    flat.columns = [" / ".join(str(p) for p in c if str(p)) if isinstance(c, tuple) else str(c)
                    for c in flat.columns]
    flat = flat.astype(str).map(_markdown_cell)
    flat.columns = [_markdown_cell(c) for c in flat.columns]
    labels = frame.index.nlevels if block.index else 0
    align = ["left"] * labels + ["right" if block.kind == "numbers" else "left"] * (len(flat.columns) - labels)
    table = flat.to_markdown(index=False, colalign=align)
    return f"{block.caption}\n\n{table}" if block.caption else table


def _markdown_cell(text: str) -> str:
    text = str(text).replace(BOLD[0], "**").replace(BOLD[1], "**")
    return text.replace("|", "\\|").replace("\n", " ")


__all__ = ["build_report", "coverage_frame", "data_source", "generated_data_notes", "per_sample_gaps",
           "render_html", "render_markdown", "report_blocks"]
