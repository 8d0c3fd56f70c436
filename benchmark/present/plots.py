"""The paper's figures from stored runs (`bench plot`): nothing is trained, only records and their files are read.

Which runs: per (model, dataset), the runs of the most recently finished configuration at the dataset's
main prediction length (`benchmark.analysis.tables.main_length`, `_latest_configuration`), the rule the tables
use; models in the tables' order (persistence first, DIFFUMA last). Curves and scores are means over
seeds (a band or error bars of ±1 standard deviation where there are several); the prediction grid
shows one seed, the lowest.

Figures (one function each, `plot_<name>(records, results_dir, out_dir, ...) -> list[Path]`, PNG at
150 dpi and PDF, ~7 inches wide; each returns [] when the records lack what it needs):

- `prediction_grid` (the paper's Figs 5-9), per dataset, stored test sample and channel: rows are the
  input frames (one row by default), the truth, each model's prediction, then each model's error
  (prediction - truth); columns are up to six evenly spaced lead times. Physical units; inputs, truth
  and predictions share one colour scale, the errors one symmetric scale, each with its colour bar.
- `learning_curves`: training loss and validation MSE per epoch, per dataset (learned models only).
- `epoch_sweep`: test MSE, MAE and SSIM (normalized) after each --eval-at epoch; the paper's Tables 3-4
  dashed beside them where the dataset maps to the paper's sweep dataset, paper epoch e drawn at
  e * E / paper_final_epoch (E: our run's epochs), the mapping `--eval-at` used.
- `per_lead`: test MSE and SSIM (normalized) against lead time.
- `acc_by_lead`: test ACC (anomaly correlation against the training climatology; the same in both
  spaces) against lead time, the climatology forecast's 0 as a reference line; datasets with a
  climatology only (records from before ACC have none).
- `spectra`: the mean power spectrum of each model's predictions against the truth's (log-log) at the
  first, middle and last lead, the upper half of the wavenumbers (the detail ratio's band) shaded,
  each model's detail ratio in the legend.

Readability: field maps use `cividis` (`gray` for grey-level video), errors the diverging `RdBu_r`
centred at 0; lines differ by colour (Okabe-Ito), marker and line style, so that they survive
grey-scale printing and colour-blind readers.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display, and the same output everywhere

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter  # noqa: E402

from benchmark.analysis.tables import METRIC_LABELS, _latest_configuration, _model_rank, main_length  # noqa: E402
from benchmark.core.errors import BenchError, BenchWarning  # noqa: E402
from benchmark.data.base import Normalizer  # noqa: E402
from benchmark.results.records import RunRecord, records_to_frame  # noqa: E402

FORMATS = ("png", "pdf")
KNOWN_FORMATS = ("png", "pdf", "svg")
DPI = 150
WIDTH = 7.0  # inches: one figure across a paper's text width
# Okabe-Ito, black first and yellow last (weakest on white)
PALETTE = ("#000000", "#E69F00", "#56B4E9", "#009E73", "#0072B2", "#D55E00", "#CC79A7", "#F0E442")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")
LINESTYLES = ("-", "--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1, 1, 1)), (0, (1, 2)), (0, (8, 2, 2, 2)))
FIELD_CMAP, GREY_CMAP, ERROR_CMAP = "cividis", "gray", "RdBu_r"
STYLE = {"font.size": 8, "axes.titlesize": 8, "axes.labelsize": 8, "xtick.labelsize": 7, "ytick.labelsize": 7,
         "legend.fontsize": 7, "figure.titlesize": 9, "lines.linewidth": 1.3, "lines.markersize": 4,
         "axes.spines.top": False, "axes.spines.right": False}
SWEEP_METRICS = ("mse", "mae", "ssim")
LEAD_METRICS = ("mse", "ssim")
PAPER_SWEEP_TABLES = (3, 4)


# --- which runs, and how each model looks ------------------------------------------------------------


def select_runs(records: list[RunRecord]) -> dict[str, dict[str, list[RunRecord]]]:
    """Per dataset (sorted), per model (table order): the runs of its latest configuration at the dataset's
    main prediction length, lowest seed first."""
    frame = records_to_frame(records)
    if frame.empty:
        return {}
    kept = set(_latest_configuration(main_length(frame), ["model", "dataset"])["run_id"])
    chosen: dict[str, dict[str, list[RunRecord]]] = {}
    for record in sorted((r for r in records if r.run_id in kept), key=_record_rank):
        chosen.setdefault(record.config.dataset, {}).setdefault(record.config.model, []).append(record)
    return {dataset: chosen[dataset] for dataset in sorted(chosen)}


def _record_rank(record: RunRecord) -> tuple:
    return (*_model_rank(record.config.model, record.model_info.family), record.config.seed)


@dataclass(frozen=True)
class LineStyle:
    """How one model is drawn in every line plot: colour, marker, line style and legend label."""

    color: str
    marker: str
    linestyle: Any
    label: str

    def kwargs(self, **extra: Any) -> dict[str, Any]:
        """Keyword arguments for `Axes.plot`."""
        return {"color": self.color, "marker": self.marker, "linestyle": self.linestyle, "label": self.label,
                **extra}


def model_styles(runs: dict[str, dict[str, list[RunRecord]]]) -> dict[str, LineStyle]:
    """One style per model over all datasets, so that a model looks the same in every figure."""
    first: dict[str, RunRecord] = {}
    for by_model in runs.values():
        for model, records in by_model.items():
            first.setdefault(model, records[0])
    order = sorted(first, key=lambda m: _record_rank(first[m]))
    names = Counter(first[m].model_info.paper_name for m in order)
    styles = {}
    for i, model in enumerate(order):
        paper_name = first[model].model_info.paper_name
        styles[model] = LineStyle(PALETTE[i % len(PALETTE)], MARKERS[i % len(MARKERS)],
                                  LINESTYLES[i % len(LINESTYLES)], paper_name if names[paper_name] == 1 else model)
    return styles


# --- shared helpers ----------------------------------------------------------------------------------


@contextmanager
def _style() -> Iterator[None]:
    with plt.rc_context(STYLE):
        yield


def _styled(function: Callable[..., list[Path]]) -> Callable[..., list[Path]]:
    """Run a figure function under the module's font sizes (they are read when artists are created)."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> list[Path]:
        with _style():
            return function(*args, **kwargs)

    return wrapper


def _save(fig: Figure, out_dir: Path, stem: str, formats: tuple[str, ...]) -> list[Path]:
    """Write `fig` as `out_dir/<stem>.<format>` for each format, then close it."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    try:
        for fmt in formats:
            path = out_dir / f"{stem}.{fmt}"
            metadata = {"CreationDate": None} if fmt == "pdf" else None  # reproducible PDFs
            fig.savefig(path, dpi=DPI, format=fmt, metadata=metadata)
            written.append(path)
    finally:
        plt.close(fig)
    return written


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in text)


def _mean_std(values: list[list[float | None]]) -> tuple[np.ndarray, np.ndarray]:
    """Per position, the mean over rows and the sample standard deviation (NaN with one finite value)."""
    array = np.array([[np.nan if v is None else v for v in row] for row in values], dtype=float)
    finite = np.isfinite(array).sum(axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN positions
        mean = np.nanmean(array, axis=0)
        std = np.where(finite > 1, np.nanstd(array, axis=0, ddof=1), np.nan)
    return mean, std


def _by_epoch(series: list[dict[int, float | None]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Epochs present in any of `series` (one dict epoch -> value per seed), with mean and std over seeds."""
    epochs = sorted({e for s in series for e, v in s.items() if v is not None})
    mean, std = _mean_std([[s.get(e) for e in epochs] for s in series])
    return np.array(epochs), mean, std


def _draw_mean(ax: Any, x: np.ndarray, mean: np.ndarray, std: np.ndarray, style: LineStyle, band: bool = True,
               **extra: Any) -> None:
    """A model's mean line, with a ±1 std band (or error bars when `band` is False) where there is one."""
    markevery = max(1, len(x) // 12)
    ax.plot(x, mean, markevery=markevery, **style.kwargs(**extra))
    if np.isfinite(std).any():
        if band:
            ax.fill_between(x, mean - std, mean + std, color=style.color, alpha=0.15, linewidth=0)
        else:
            ax.errorbar(x, mean, yerr=std, fmt="none", ecolor=style.color, elinewidth=0.8, capsize=2)


def _seed_note(by_model: dict[str, list[RunRecord]]) -> str:
    counts = sorted({len(runs) for runs in by_model.values()})
    if counts == [1]:
        return "one seed"
    seeds = f"{counts[0]}" if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"
    return f"mean over {seeds} seeds, ±1 std shaded"


def _legend_below(fig: Figure, axes: list[Any], extra: list[Any] | None = None, ncol: int | None = None) -> None:
    """One legend for the whole figure, under its panels (so that it never covers a curve)."""
    handles, labels = [], []
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            if label not in labels and not label.startswith("_"):
                handles.append(handle)
                labels.append(label)
    for handle in extra or []:
        handles.append(handle)
        labels.append(handle.get_label())
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncol=ncol or min(len(handles), 4), frameon=False)


def _frame_hours(record: RunRecord) -> float | None:
    hours = record.data.get("frame_hours")
    return float(hours) if isinstance(hours, (int, float)) and hours > 0 else None


def _lead_axis(record: RunRecord, t_out: int) -> tuple[np.ndarray, str]:
    """Lead times 1..t_out in hours when the data summary gives the time step, else in frames."""
    hours = _frame_hours(record)
    leads = np.arange(1, t_out + 1, dtype=float)
    return (leads * hours, "lead time [h]") if hours else (leads, "lead time [frames]")


# --- 1. prediction grid ------------------------------------------------------------------------------


@dataclass
class GridData:
    """One prediction grid's fields, in physical units: (T, H, W) arrays of one channel of one sample."""

    dataset: str
    sample_index: int
    channel_name: str
    unit: str
    inputs: np.ndarray
    truth: np.ndarray
    predictions: dict[str, np.ndarray]  # label -> (T_out, H, W), table order
    frame_hours: float | None
    extent: list[float] | None  # [lon0, lon1, lat0, lat1] cell edges, rows south to north; None: pixels
    grey: bool  # grey-level video: drawn in grey


def _physical(arrays: dict[str, np.ndarray], record: RunRecord, position: int) -> dict[str, np.ndarray]:
    """The stored normalized arrays of sample `position` in physical units (float32, (T, C, H, W))."""
    normalizer = Normalizer.from_dict(record.normalizer)
    return {name: normalizer.denormalize(arrays[name][position].astype(np.float32))
            for name in ("inputs", "truth", "prediction")}


def _stored_predictions(by_model: dict[str, list[RunRecord]], results_dir: Path
                        ) -> dict[str, tuple[RunRecord, dict[str, np.ndarray]]]:
    """Per model (table order), its lowest seed that stored predictions and their arrays."""
    from benchmark.scoring.evaluation import PREDICTION_ARRAYS, read_npz

    stored = {}
    for model, runs in by_model.items():
        for record in runs:
            if not record.predictions_file:
                continue
            path = Path(results_dir) / record.run_id / record.predictions_file
            if not path.exists():
                warnings.warn(f"{record.run_id}: its predictions file {path} is missing; left out of the grid.",
                              BenchWarning, stacklevel=3)
                continue
            try:
                stored[model] = (record, read_npz(path, PREDICTION_ARRAYS))
            except BenchError as error:
                warnings.warn(f"{record.run_id}: {error} Left out of the grid.", BenchWarning, stacklevel=3)
                continue
            break
    return stored


def _grid_extent(record: RunRecord, height: int, width: int) -> list[float] | None:
    """Cell-edge extent of a latitude-longitude grid: from the summary's `lat`/`lon` when it has them, or
    the WeatherBench 1 grid (coarsened as the summary says) the weather loaders put every field on."""
    summary = record.data
    lat, lon = summary.get("lat"), summary.get("lon")
    if lat is None or lon is None:
        coarsen = summary.get("coarsen")
        if not isinstance(coarsen, int) or "frame_hours" not in summary:
            return None  # not a weather grid (e.g. CHDL): native pixels
        from benchmark.data.regrid import coarsen_coordinate
        from benchmark.data.wb1_files import WB1_LAT, WB1_LON

        lat, lon = coarsen_coordinate(WB1_LAT, coarsen), coarsen_coordinate(WB1_LON, coarsen)
    lat, lon = np.asarray(lat, dtype=float), np.asarray(lon, dtype=float)
    if (len(lat), len(lon)) != (height, width) or len(lat) < 2 or len(lon) < 2:
        return None
    dlat, dlon = lat[1] - lat[0], lon[1] - lon[0]
    return [lon[0] - dlon / 2, lon[-1] + dlon / 2, lat[0] - dlat / 2, lat[-1] + dlat / 2]


def grid_data(by_model: dict[str, list[RunRecord]], results_dir: Path, styles: dict[str, LineStyle],
              samples: int = 1) -> list[GridData]:
    """The grids of one dataset: per stored sample (the first `samples` of those the most models stored)
    and channel, the models whose stored sample has the same truth as the first model's."""
    stored = _stored_predictions(by_model, results_dir)
    if not stored:
        return []
    counts = Counter(int(i) for _, arrays in stored.values() for i in arrays["sample_index"])
    wanted = sorted(counts, key=lambda i: (-counts[i], i))[:max(0, samples)]
    grids = []
    for sample in sorted(wanted):
        fields: dict[str, dict[str, np.ndarray]] = {}
        reference: RunRecord | None = None
        for model, (record, arrays) in stored.items():
            positions = np.flatnonzero(arrays["sample_index"] == sample)
            if not len(positions):
                continue
            physical = _physical(arrays, record, int(positions[0]))
            if reference is None:
                reference = record
            elif not _same_truth(physical["truth"], next(iter(fields.values()))["truth"]):
                warnings.warn(f"{record.run_id}: its stored test sample {sample} differs from {reference.run_id}'s "
                              "(another data configuration?); left out of the grid.", BenchWarning, stacklevel=2)
                continue
            fields[model] = physical
        if reference is None:
            continue
        first = next(iter(fields.values()))
        channels = reference.data.get("channels") or [f"channel {c}" for c in range(first["truth"].shape[1])]
        units = reference.data.get("units") or [""] * len(channels)
        height, width = first["truth"].shape[-2:]
        for c, name in enumerate(channels[:first["truth"].shape[1]]):
            grids.append(GridData(
                dataset=reference.config.dataset, sample_index=sample, channel_name=str(name),
                unit=str(units[c]) if c < len(units) else "", inputs=first["inputs"][:, c],
                truth=first["truth"][:, c],
                predictions={styles[m].label: f["prediction"][:, c] for m, f in fields.items()},
                frame_hours=_frame_hours(reference), extent=_grid_extent(reference, height, width),
                grey=str(name).lower() in {"gray", "grey"}))
    return grids


def _same_truth(a: np.ndarray, b: np.ndarray) -> bool:
    if a.shape != b.shape:
        return False
    scale = float(np.max(np.abs(b))) or 1.0
    return bool(np.allclose(a, b, rtol=1e-3, atol=1e-3 * scale))


def _evenly(count: int, n: int, stride: int | None = None) -> list[int]:
    """Up to `n` positions of 0..count-1 at one fixed stride, ending at the last: by default the smallest
    stride that covers them all (12 leads, n = 6: every second one, +2 .. +12; a uniform stride reads
    better than rounded, uneven steps)."""
    stride = stride or max(1, math.ceil(count / max(1, n)))
    return list(range(count - 1, -1, -stride))[:max(0, n)][::-1]


def _time_label(offset: int, hours: float | None, lead: bool) -> str:
    """Column title: a lead `+6 h` / `t+1`, or an input frame's offset from the last input `-6 h` / `t-1`."""
    if hours:
        return f"+{offset * hours:g} h" if lead else ("0 h" if offset == 0 else f"\u2212{offset * hours:g} h")
    return f"t+{offset}" if lead else ("t" if offset == 0 else f"t\u2212{offset}")


def _range(values: list[np.ndarray], low: float = 0.5, high: float = 99.5) -> tuple[float, float, str]:
    """A robust shared colour range (percentiles of all values), and the colour bar's `extend`."""
    flat = np.concatenate([v.ravel() for v in values])
    flat = flat[np.isfinite(flat)]
    if not flat.size:
        return 0.0, 1.0, "neither"
    vmin, vmax = (float(p) for p in np.percentile(flat, [low, high]))
    if vmax <= vmin:
        vmin, vmax = vmin - 0.5, vmax + 0.5
    below, above = flat.min() < vmin, flat.max() > vmax
    return vmin, vmax, {(False, False): "neither", (True, False): "min", (False, True): "max"}.get(
        (bool(below), bool(above)), "both")


def _row_label(label: str) -> str:
    """A model's row label in at most a few short lines: "DIFFUMA (random cond.)" -> two lines."""
    return label.replace(" (", "\n(")


@dataclass(frozen=True)
class GridLayout:
    """Where a prediction grid's panels go, in inches from the figure's bottom left corner."""

    n_input_rows: int
    n_models: int
    n_cols: int
    panel_width: float
    panel_height: float
    left: float
    width: float
    height: float
    TITLE = 0.2  # above a row with column titles
    GAP = 0.06  # between panels
    BLOCK_GAP = 0.14  # between the field block and the error block
    TOP = 0.35  # the figure title
    BOTTOM = 0.1
    RIGHT = 1.0  # colour bars with their ticks and labels

    @property
    def n_rows(self) -> int:
        """Image rows: the inputs, the truth, one prediction row and one error row per model."""
        return self.n_input_rows + 1 + 2 * self.n_models

    @classmethod
    def make(cls, n_input_rows: int, n_models: int, n_cols: int, aspect: float, labels: list[str]) -> GridLayout:
        """A layout about `WIDTH` wide with room on the left for the longest row label."""
        longest = max((len(line) for text in ["input", "truth", *labels] for line in text.split("\n")), default=5)
        left = 0.2 + 0.055 * longest
        panel_width = min(1.5, (WIDTH - left - cls.RIGHT - cls.GAP * (n_cols - 1)) / n_cols)
        panel_height = panel_width * aspect
        n_rows = n_input_rows + 1 + 2 * n_models
        width = left + n_cols * panel_width + (n_cols - 1) * cls.GAP + cls.RIGHT
        height = cls.TOP + cls.BOTTOM + cls.BLOCK_GAP + n_rows * (panel_height + cls.GAP) + \
            (n_input_rows + 1) * cls.TITLE
        return cls(n_input_rows, n_models, n_cols, panel_width, panel_height, left, width, height)

    def row_top(self, row: int) -> float:
        """The top edge (inches from the bottom) of image row `row` (0 = the first input row)."""
        top = self.height - self.TOP
        titled = min(row + 1, self.n_input_rows + 1)  # rows up to and including the truth have titles
        top -= titled * self.TITLE + row * (self.panel_height + self.GAP)
        if row >= self.n_input_rows + 1 + self.n_models:
            top -= self.BLOCK_GAP
        return top

    def panel(self, row: int, col: int) -> list[float]:
        """`Figure.add_axes` rectangle (fractions of the figure) of one panel."""
        x = self.left + col * (self.panel_width + self.GAP)
        y = self.row_top(row) - self.panel_height
        return [x / self.width, y / self.height, self.panel_width / self.width, self.panel_height / self.height]

    def colorbar(self, first_row: int, last_row: int) -> list[float]:
        """Rectangle of a colour bar beside rows `first_row`..`last_row`."""
        x = self.left + self.n_cols * self.panel_width + (self.n_cols - 1) * self.GAP + 0.15
        top, bottom = self.row_top(first_row), self.row_top(last_row) - self.panel_height
        return [x / self.width, bottom / self.height, 0.12 / self.width, (top - bottom) / self.height]


def _grid_scales(grid: GridData, errors: dict[str, np.ndarray], leads: list[int], shown_inputs: list[int]
                 ) -> tuple[tuple[dict[str, Any], str], tuple[dict[str, Any], str]]:
    """imshow styles and colour-bar `extend` of the two row types: one shared scale over the shown inputs,
    truth and predictions; one symmetric scale around 0 over the shown errors."""
    vmin, vmax, field_extend = _range([grid.inputs[shown_inputs], grid.truth[leads],
                                       *(p[leads] for p in grid.predictions.values())])
    field = {"cmap": GREY_CMAP if grid.grey else FIELD_CMAP, "vmin": vmin, "vmax": vmax}
    _, spread, beyond = _range([np.abs(e[leads]) for e in errors.values()], 0.0, 99.5) if errors else (0, 1, "")
    err_max = max(spread, 1e-12)
    error = {"cmap": ERROR_CMAP, "vmin": -err_max, "vmax": err_max}
    return (field, field_extend), (error, "both" if beyond in ("max", "both") else "neither")


@dataclass
class GridFigure:
    """A drawn prediction grid and its layout (which image row is which)."""

    figure: Figure
    layout: GridLayout


def grid_figure(grid: GridData, max_leads: int = 6, input_rows: int = 1) -> GridFigure:
    """The prediction grid of `grid` (layout in the module docstring): `input_rows` rows of the latest input
    frames (at the leads' spacing, ending at the last input), the truth, one row per model's prediction,
    then one row per model's error; columns are up to `max_leads` evenly spaced lead times, the last included."""
    t_in, t_out = len(grid.inputs), len(grid.truth)
    leads = _evenly(t_out, max_leads)
    n_cols = len(leads)
    stride = leads[1] - leads[0] if len(leads) > 1 else 1
    shown_inputs = _evenly(t_in, n_cols * max(1, input_rows), stride)  # the latest, spaced as the leads
    labels = list(grid.predictions)
    height, width = grid.truth.shape[-2:]
    aspect = (grid.extent[3] - grid.extent[2]) / (grid.extent[1] - grid.extent[0]) if grid.extent else height / width
    row_labels = [_row_label(label) for label in labels]
    layout = GridLayout.make(math.ceil(len(shown_inputs) / n_cols), len(labels), n_cols, aspect,
                             [*row_labels, *(f"{label}\nerror" for label in row_labels)])
    fig = plt.figure(figsize=(layout.width, layout.height))

    errors = {label: grid.predictions[label] - grid.truth for label in labels}
    (field, field_extend), (error, err_extend) = _grid_scales(grid, errors, leads, shown_inputs)

    def show(row: int, col: int, image: np.ndarray, style: dict[str, Any], title: str = "",
             label: str = "") -> Any:
        ax = fig.add_axes(layout.panel(row, col))
        kwargs = {"extent": grid.extent, "aspect": "auto"} if grid.extent else {"aspect": "auto"}
        drawn = ax.imshow(image, origin="lower" if grid.extent else "upper", interpolation="nearest",
                          **style, **kwargs)
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(True)
            spine.set_linewidth(0.5)
        if title:
            ax.set_title(title, pad=3)
        if label:
            ax.set_ylabel(label, rotation=0, ha="right", va="center", labelpad=4)
        return drawn

    for i, frame in enumerate(shown_inputs):
        field_image = show(i // n_cols, i % n_cols, grid.inputs[frame], field,
                           _time_label(t_in - 1 - frame, grid.frame_hours, lead=False), "input" if i == 0 else "")
    truth_row = layout.n_input_rows
    for col, lead in enumerate(leads):
        field_image = show(truth_row, col, grid.truth[lead], field, _time_label(lead + 1, grid.frame_hours, True),
                           "truth" if col == 0 else "")
    for k, label in enumerate(labels):
        for col, lead in enumerate(leads):
            show(truth_row + 1 + k, col, grid.predictions[label][lead], field, label=row_labels[k] if col == 0 else "")
            error_image = show(truth_row + 1 + len(labels) + k, col, errors[label][lead], error,
                               label=f"{row_labels[k]}\nerror" if col == 0 else "")
    unit = f" [{grid.unit}]" if grid.unit else ""
    last_field_row = truth_row + len(labels)
    colorbar = {"label": "<colorbar>"}  # the name matplotlib gives its own colour-bar axes
    fig.colorbar(field_image, cax=fig.add_axes(layout.colorbar(0, last_field_row), **colorbar),
                 extend=field_extend, label=f"{grid.channel_name}{unit}")
    if labels:
        fig.colorbar(error_image, cax=fig.add_axes(layout.colorbar(last_field_row + 1, layout.n_rows - 1), **colorbar),
                     extend=err_extend, label=f"prediction \u2212 truth{unit}")
    if grid.extent:
        lon0, lon1, lat0, lat1 = grid.extent
        where = f"lat {lat0:.0f}\u2026{lat1:.0f}\u00b0, lon {lon0:.0f}\u2026{lon1:.0f}\u00b0"
    else:
        where = f"{height}\u00d7{width} pixels"
    fig.suptitle(f"{grid.dataset}: test sample {grid.sample_index}, {grid.channel_name} ({where})",
                 y=1 - 0.08 / layout.height, va="top")
    return GridFigure(fig, layout)


def prediction_grid_figures(records: list[RunRecord], results_dir: Path, samples: int = 1, max_leads: int = 6,
                            input_rows: int = 1) -> list[tuple[str, GridFigure]]:
    """The prediction grids as (file stem, drawn grid): one per dataset, stored sample and channel."""
    runs = select_runs(records)
    styles = model_styles(runs)
    figures = []
    for dataset, by_model in runs.items():
        grids = grid_data(by_model, results_dir, styles, samples)
        channels = len({g.channel_name for g in grids})
        for grid in grids:
            suffix = f"_{_slug(grid.channel_name)}" if channels > 1 else ""
            figures.append((f"prediction_grid_{_slug(dataset)}_sample{grid.sample_index}{suffix}",
                            grid_figure(grid, max_leads, input_rows)))
    return figures


@_styled
def plot_prediction_grid(records: list[RunRecord], results_dir: Path, out_dir: Path,
                         formats: tuple[str, ...] = FORMATS, samples: int = 1, max_leads: int = 6,
                         input_rows: int = 1) -> list[Path]:
    """Figs 5-9: inputs, truth, each model's prediction and error at a few lead times (physical units)."""
    written = []
    for stem, drawn in prediction_grid_figures(records, results_dir, samples, max_leads, input_rows):
        written += _save(drawn.figure, out_dir, stem, formats)
    return written


# --- 2. learning curves ------------------------------------------------------------------------------


@_styled
def plot_learning_curves(records: list[RunRecord], results_dir: Path, out_dir: Path,
                         formats: tuple[str, ...] = FORMATS) -> list[Path]:
    """Training loss and validation MSE per epoch, one line per learned model, one figure per dataset."""
    runs = select_runs(records)
    styles = model_styles(runs)
    written = []
    for dataset, by_model in runs.items():
        curves = {m: rs for m, rs in by_model.items() if any(r.curve for r in rs)}
        if not curves:
            continue
        fig, axes = plt.subplots(1, 2, figsize=(WIDTH, 3.0), layout="constrained")
        for ax, key, title in ((axes[0], "train_loss", "training loss (each model's own loss)"),
                               (axes[1], "val_mse", "validation MSE (normalized)")):
            for model, model_runs in curves.items():
                series = [{p.epoch: getattr(p, key) for p in r.curve} for r in model_runs]
                epochs, mean, std = _by_epoch(series)
                if len(epochs):
                    _draw_mean(ax, epochs, mean, std, styles[model])
            _log_if_wide(ax)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_xlabel("epoch")
            ax.set_title(title)
            ax.grid(alpha=0.3)
        fig.suptitle(f"{dataset}: learning curves ({_seed_note(curves)})")
        _legend_below(fig, list(axes))
        written += _save(fig, out_dir, f"learning_curves_{_slug(dataset)}", formats)
    return written


def _log_if_wide(ax: Any) -> None:
    """Log scale on y when the positive values span more than a factor of 20."""
    values = np.concatenate([line.get_ydata() for line in ax.get_lines()] or [np.array([])]).astype(float)
    values = values[np.isfinite(values)]
    if values.size and values.min() > 0 and values.max() / values.min() > 20:
        ax.set_yscale("log")


# --- 3. epoch sweep ----------------------------------------------------------------------------------


def _paper_sweep(dataset: str, sweep_dataset: str | None) -> Any:
    """The paper's Tables 3-4 rows for one of our datasets (empty when the paper's sweep is another)."""
    from benchmark.analysis.compare import paper_dataset_of
    from benchmark.paper.numbers import DEFAULT_SWEEP_DATASET, load_paper_numbers

    numbers = load_paper_numbers(sweep_dataset=sweep_dataset or DEFAULT_SWEEP_DATASET)
    paper = paper_dataset_of(dataset)
    return numbers[numbers["table"].isin(PAPER_SWEEP_TABLES) & (numbers["dataset"] == paper)]


def _default_paper_final_epoch() -> int:
    from benchmark.run.reproduce import load_suite

    return load_suite("diffuma-paper").paper_final_epoch


@_styled
def plot_epoch_sweep(records: list[RunRecord], results_dir: Path, out_dir: Path, formats: tuple[str, ...] = FORMATS,
                     sweep_dataset: str | None = None, paper_final_epoch: int | None = None) -> list[Path]:
    """Test MSE, MAE and SSIM (normalized) after each --eval-at epoch, one figure per dataset; the paper's
    Tables 3-4 dashed beside ours where `sweep_dataset` (default: the paper module's) is this dataset's."""
    runs = select_runs(records)
    styles = model_styles(runs)
    final = paper_final_epoch or _default_paper_final_epoch()
    written = []
    for dataset, by_model in runs.items():
        swept = {m: rs for m, rs in by_model.items() if any(r.eval_at for r in rs)}
        if not swept:
            continue
        paper = _paper_sweep(dataset, sweep_dataset)
        fig, axes = plt.subplots(1, len(SWEEP_METRICS), figsize=(WIDTH, 2.9), layout="constrained")
        drew_paper = False
        for ax, metric in zip(axes, SWEEP_METRICS, strict=True):
            for model, model_runs in swept.items():
                series = [{int(e): getattr(s.normalized, metric) for e, s in r.eval_at.items()} for r in model_runs]
                epochs, mean, std = _by_epoch(series)
                _draw_mean(ax, epochs, mean, std, styles[model], band=False, linestyle="-")  # paper: dashed
                ours_epochs = int(model_runs[0].config.train["epochs"])
                rows = paper[(paper["model"] == model) & (paper["metric"] == metric)].sort_values("epoch")
                if len(rows):
                    ax.plot(rows["epoch"].astype(float) * ours_epochs / final, rows["value"],
                            **styles[model].kwargs(linestyle="--", markerfacecolor="none", label="_paper",
                                                   alpha=0.8))
                    drew_paper = True
            _draw_persistence(ax, by_model.get("persistence"), metric)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_xlabel("epoch")
            ax.set_title(f"test {METRIC_LABELS.get(metric, metric)} (normalized)")
            ax.grid(alpha=0.3)
        extra = []
        if drew_paper:
            extra.append(Line2D([], [], color="0.3", linestyle="--", marker="o", markerfacecolor="none",
                                label=f"paper, Tables 3-4 (epoch e drawn at e\u00b7E/{final})"))
        fig.suptitle(f"{dataset}: test scores by training epoch ({_seed_note(swept).replace('shaded', 'bars')})")
        _legend_below(fig, list(axes), extra)
        written += _save(fig, out_dir, f"epoch_sweep_{_slug(dataset)}", formats)
    return written


def _draw_persistence(ax: Any, runs: list[RunRecord] | None, metric: str) -> None:
    """Persistence's test score as a grey horizontal reference line (it is not trained)."""
    if not runs:
        return
    values = [getattr(r.test.normalized, metric) for r in runs]
    ax.axhline(float(np.mean(values)), color="0.5", linestyle=":", linewidth=1.0, label="Persistence (untrained)")


# --- 4. per lead -------------------------------------------------------------------------------------


@_styled
def plot_per_lead(records: list[RunRecord], results_dir: Path, out_dir: Path,
                  formats: tuple[str, ...] = FORMATS) -> list[Path]:
    """Test MSE and SSIM (normalized) against lead time, one line per model, one figure per dataset."""
    runs = select_runs(records)
    styles = model_styles(runs)
    written = []
    for dataset, by_model in runs.items():
        scored = {m: rs for m, rs in by_model.items()
                  if all(r.test.normalized.per_lead.get(k) for r in rs for k in LEAD_METRICS)}
        if not scored:
            continue
        fig, axes = plt.subplots(1, len(LEAD_METRICS), figsize=(WIDTH, 2.9), layout="constrained")
        for ax, metric in zip(axes, LEAD_METRICS, strict=True):
            for model, model_runs in scored.items():
                mean, std = _mean_std([r.test.normalized.per_lead[metric] for r in model_runs])
                x, xlabel = _lead_axis(model_runs[0], len(mean))
                _draw_mean(ax, x, mean, std, styles[model])
            ax.set_xlabel(xlabel)
            ax.set_title(f"test {METRIC_LABELS.get(metric, metric)} (normalized)")
            ax.grid(alpha=0.3)
            if len(x) <= 12:
                ax.set_xticks(x)
        fig.suptitle(f"{dataset}: error by lead time ({_seed_note(scored)})")
        _legend_below(fig, list(axes))
        written += _save(fig, out_dir, f"per_lead_{_slug(dataset)}", formats)
    return written


@_styled
def plot_acc_by_lead(records: list[RunRecord], results_dir: Path, out_dir: Path,
                     formats: tuple[str, ...] = FORMATS) -> list[Path]:
    """Test ACC against lead time, one line per model, one figure per dataset (runs that have ACC)."""
    runs = select_runs(records)
    styles = model_styles(runs)
    written = []
    for dataset, by_model in runs.items():
        scored = {m: rs for m, rs in by_model.items() if all(r.test.normalized.per_lead.get("acc") for r in rs)}
        if not scored:
            continue
        fig, ax = plt.subplots(figsize=(WIDTH, 2.9), layout="constrained")
        for model, model_runs in scored.items():
            mean, std = _mean_std([r.test.normalized.per_lead["acc"] for r in model_runs])
            x, xlabel = _lead_axis(model_runs[0], len(mean))
            _draw_mean(ax, x, mean, std, styles[model])
        ax.axhline(0.0, color="0.5", linestyle=":", linewidth=1.0, label="_zero")  # the climatology's ACC
        ax.set_xlabel(xlabel)
        ax.set_ylabel("ACC (1 = perfect, 0 = climatology)")
        ax.set_title(f"test {METRIC_LABELS.get('acc', 'acc')} against the training climatology")
        ax.grid(alpha=0.3)
        if len(x) <= 12:
            ax.set_xticks(x)
        fig.suptitle(f"{dataset}: anomaly correlation by lead time ({_seed_note(scored)})")
        _legend_below(fig, [ax])
        written += _save(fig, out_dir, f"acc_by_lead_{_slug(dataset)}", formats)
    return written


# --- 5. spectra --------------------------------------------------------------------------------------


def _stored_spectra(by_model: dict[str, list[RunRecord]], results_dir: Path) -> dict[str, list[dict[str, Any]]]:
    """Per model, the spectra every seed stored (models with none left out)."""
    from benchmark.scoring.evaluation import SPECTRA_ARRAYS, read_npz

    stored: dict[str, list[dict[str, Any]]] = {}
    for model, runs in by_model.items():
        for record in runs:
            path = Path(results_dir) / record.run_id / record.spectra_file if record.spectra_file else None
            if path is None or not path.exists():
                continue
            try:
                stored.setdefault(model, []).append(read_npz(path, SPECTRA_ARRAYS))
            except BenchError as error:
                warnings.warn(f"{record.run_id}: {error} Left out of the spectra.", BenchWarning, stacklevel=3)
    return stored


@_styled
def plot_spectra(records: list[RunRecord], results_dir: Path, out_dir: Path,
                 formats: tuple[str, ...] = FORMATS) -> list[Path]:
    """Power spectra of each model's predictions against the truth's at the first, middle and last lead
    (log-log, one panel each, one row per channel), the detail ratio's band shaded, one figure per dataset."""
    runs = select_runs(records)
    styles = model_styles(runs)
    written = []
    for dataset, by_model in runs.items():
        stored = _stored_spectra(by_model, results_dir)
        shapes = {s["pred"].shape for spectra in stored.values() for s in spectra}
        if not stored or len(shapes) != 1:
            continue  # nothing stored, or runs of different shapes that cannot share axes
        t_out, channels, _ = shapes.pop()
        first = next(iter(stored.values()))[0]
        kind = str(first["kind"])
        k = np.asarray(first["wavenumber"], dtype=float)
        leads = sorted({0, (t_out - 1) // 2, t_out - 1})  # first, middle and last lead
        names = (by_model[next(iter(stored))][0].data.get("channels") or [])[:channels]
        fig, axes = plt.subplots(channels, len(leads), figsize=(WIDTH, 0.6 + 2.5 * channels), squeeze=False,
                                 layout="constrained", sharex=True)
        truth = np.mean([s["true"] for spectra in stored.values() for s in spectra], axis=0)
        hours = _frame_hours(by_model[next(iter(stored))][0])
        for c in range(channels):
            for col, lead in enumerate(leads):
                ax = axes[c, col]
                _spectrum_panel(ax, k, truth[lead, c], {m: np.mean([s["pred"][lead, c] for s in spectra], axis=0)
                                                        for m, spectra in stored.items()},
                                styles, {m: by_model[m] for m in stored})
                title = _time_label(lead + 1, hours, lead=True)
                ax.set_title(f"{names[c]}, {title}" if channels > 1 and c < len(names) else title)
                if c == channels - 1:
                    ax.set_xlabel(f"{kind} wavenumber" + (" [cycles / image]" if kind == "radial" else ""))
            axes[c, 0].set_ylabel("power (normalized units\u00b2)")
        band = Patch(facecolor="0.85", label="k > k_max/2 (detail-ratio band)")
        fig.suptitle(f"{dataset}: mean power spectra of the test predictions ({_seed_note(by_model)})")
        _legend_below(fig, list(axes.ravel()), [band], ncol=3)
        written += _save(fig, out_dir, f"spectra_{_slug(dataset)}", formats)
    return written


def _spectrum_panel(ax: Any, k: np.ndarray, truth: np.ndarray, predictions: dict[str, np.ndarray],
                    styles: dict[str, LineStyle], runs: dict[str, list[RunRecord]]) -> None:
    """One lead and channel: truth in thick grey, each model in its style; k = 0 (no power) left out."""
    from benchmark.scoring.spectra import upper_half

    keep = k > 0
    ax.axvspan(k[upper_half(k)].min() if upper_half(k).any() else k.max(), k.max(), color="0.85", linewidth=0,
               zorder=0)
    ax.loglog(k[keep], truth[keep], color="0.45", linewidth=3.0, alpha=0.7, label="truth", zorder=1)
    for model, power in predictions.items():
        ratios = [r.test.normalized.detail_ratio for r in runs[model] if r.test.normalized.detail_ratio is not None]
        label = f"{styles[model].label} (detail {np.mean(ratios):.2f})" if ratios else styles[model].label
        ax.loglog(k[keep], np.where(power[keep] > 0, power[keep], np.nan), markevery=max(1, keep.sum() // 8),
                  **styles[model].kwargs(label=label, linewidth=1.0))
    ax.grid(alpha=0.3, linewidth=0.4)
    # wavenumbers as plain integers: a range of one decade would otherwise get overlapping minor labels
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
