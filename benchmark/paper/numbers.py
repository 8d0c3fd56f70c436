"""The DIFFUMA paper's Tables 1-5 as data: `diffuma_paper.csv`, loaded, validated and pivoted.

**Provenance.** Xie et al., "DIFFUMA: High-Fidelity Spatio-Temporal Video Prediction via Dual-Path
Mamba and Diffusion Enhancement", arXiv 2507.06738, Section 5, transcribed from a text extraction of
the PDF. One CSV row per printed cell (368 cells); every value exactly as printed (four decimals;
Table 1 integers). Each model row of Tables 2-5, joined back with " | ", reproduces its extracted
line verbatim, and so do Table 1's cells. Nothing here is derived: claims and percentages are
computed elsewhere from this data.

**Reading the extraction** (captions and some header cells are lost; tables are numbered in their
order of appearance, which matches the text's references):

- Table 1 (datasets): its column labels are empty in the extraction. The five cells per row are read
  as train samples, test samples, (C, H, W), T_in, T_out (as `benchmark.analysis.dataset_table.PAPER_TABLE1`);
  (C, H, W) is stored as `channels`, `height`, `width`. The CHDL row has no Type cell.
- Table 2 (main results): "Weatherbench | CHDL" over "Cloud_cover | Component_of_wind | Humidity |
  Temperature" (the CHDL group has no sub-label) over fifteen MSE/MAE/SSIM columns: read as the four
  WeatherBench groups, then CHDL.
- Table 3: epochs 10, 20, 40, 60, 80, 100, each over an MSE, MAE pair.
- Table 4: one "SSIM" label over twelve epoch columns 1, 10, 20, ..., 110 (the text speaks of 100).
- Table 5: "PL n" is the prediction length n (our `t_out`), each over MSE, MAE, SSIM. Five models
  only (no PredRNN-v1, no E3D-LSTM), printed in the reverse of the other tables' order.

**What the paper does not say, and what is assumed here:**

- The dataset of Tables 3-5. The CSV leaves it empty; `load_paper_numbers(sweep_dataset=...)` fills
  it in (column `dataset_stated` says which rows were filled), default `DEFAULT_SWEEP_DATASET` =
  `weatherbench:r` (humidity). Why: Table 5 predicts up to 12 frames, which CHDL's 10-frame samples
  (5 in) cannot give, so Table 5 is WeatherBench; Tables 3-5 form one section (5.4) and are taken to
  share a dataset. No Table 2 column equals the sweeps' final values, but humidity's is the closest
  WeatherBench one: median |log ratio| to Table 4 at epoch 110 and Table 5 at PL 12 is 0.026 and
  0.10 (temperature 0.09 and 0.37, wind 0.14 and 0.21, cloud cover 0.33 and 0.23); temperature is
  ruled out by SimVP and PastNet (Table 2 MSE 0.0030, 0.0080; 0.08-0.19 in the sweeps). CHDL is as
  close for Tables 3-4 (0.017 at epoch 110), so pass `sweep_dataset="chdl"` for those if preferred.
- The space. `PAPER_SPACE = "normalized"`: the weather MSEs (temperature 0.0028) are far below the
  physical-unit values of the reference benchmark (OpenSTL: 1.1-1.5 K^2), so compare with our
  normalized-space tables. How the data were normalized, SSIM's window and data range, and whether
  MSE is a per-pixel mean or a per-frame sum are not stated (values below 1 suggest a per-pixel mean).
- Table 5's input length (presumably 12, as Table 1) and which lead times are averaged (presumably
  all predicted frames); which epoch Table 2 reports; seeds or error bars (none are given).
- CHDL: Section 3 says 3000 train / 3000 validation samples and 5 -> 5 frames; Table 1 says
  4874 / 1216 and 5 -> 1. Component_of_wind is printed with C = 1 (u10 and v10 would give 2;
  which component, or the speed, is not said); nor is the humidity level.
- The abstract gives CHDL's SSIM as "0.926 to 0.988"; Table 2 has CHDL DIFFUMA 0.9254 and
  Temperature DIFFUMA 0.9878, and Section 5.3 reads them that way round (rows' `note`).

**Naming.** `model` is our registry name, `paper_model` the table's spelling (`MODEL_NAMES`, which
also covers the text's spellings); `dataset` is ours (`weatherbench:<task>`, `chdl`), with the
paper's `paper_dataset` / `paper_task` beside it (Cloud_cover = tcc, Component_of_wind = uv10,
Humidity = r, Temperature = t2m); `metric` uses `benchmark.scoring.metrics` names (mse, mae, ssim) or, in
Table 1, the quantity (`TABLE_METRICS`); `epoch` (Tables 3-4) and `t_out` (Table 5) are integers.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import pandas as pd

from benchmark.core.errors import DataError, UnknownNameError

PAPER_CSV = Path(__file__).with_name("diffuma_paper.csv")
PAPER_SPACE = "normalized"  # assumed: see the module docstring
DEFAULT_SWEEP_DATASET = "weatherbench:r"  # assumed dataset of Tables 3-5: see the module docstring
PRINTED_DECIMALS = 4  # the paper prints every metric with four decimals

COLUMNS = ["table", "dataset", "paper_dataset", "paper_task", "model", "paper_model", "metric", "epoch", "t_out",
           "value", "note"]
TABLES = {1: "datasets", 2: "main results", 3: "MSE and MAE by training epoch", 4: "SSIM by training epoch",
          5: "MSE, MAE and SSIM by prediction length"}
SWEEP_TABLES = (3, 4, 5)  # the tables that do not say their dataset
TABLE_METRICS = {
    1: ("train_samples", "test_samples", "channels", "height", "width", "t_in", "t_out"),
    2: ("mse", "mae", "ssim"),
    3: ("mse", "mae"),
    4: ("ssim",),
    5: ("mse", "mae", "ssim"),
}
PAPER_DATASETS = {  # our name -> (paper's dataset, paper's task)
    "weatherbench:tcc": ("Weatherbench", "Cloud_cover"),
    "weatherbench:uv10": ("Weatherbench", "Component_of_wind"),
    "weatherbench:r": ("Weatherbench", "Humidity"),
    "weatherbench:t2m": ("Weatherbench", "Temperature"),
    "chdl": ("CHDL", ""),
}
MODEL_NAMES = {  # the paper's spellings (tables and text; PredRNN++ has no model here) -> our registry names
    "Convlstm": "convlstm", "ConvLSTM": "convlstm",
    "Predrnn-v1": "predrnn", "PredRNN-v1": "predrnn", "PredRNN": "predrnn",
    "Predrnn-v2": "predrnn-v2", "PredRNN-v2": "predrnn-v2",
    "E3D LSTM": "e3dlstm", "E3D-LSTM": "e3dlstm",
    "SimVP": "simvp",
    "PastNet": "pastnet", "Pastnet": "pastnet",
    "DiffuMa": "diffuma", "DIFFUMA": "diffuma",
}
_KEY = ["table", "dataset", "model", "metric", "epoch", "t_out"]


def _check_dataset(name: str) -> str:
    if name not in PAPER_DATASETS:
        raise UnknownNameError(f"{name!r} is not one of the paper's datasets: {', '.join(PAPER_DATASETS)}.")
    return name


def _int(text: str, what: str) -> int:
    try:
        number = int(text)
    except ValueError:
        raise ValueError(f"{what} {text!r} is not a whole number") from None
    if number < 1:
        raise ValueError(f"{what} {number} is not positive")
    return number


def _parse_row(row: dict[str, str]) -> dict[str, object]:
    """One CSV row as typed values; ValueError saying what is wrong."""
    table = _int(row["table"], "table")
    if table not in TABLES:
        raise ValueError(f"unknown table {table} (the paper's are {', '.join(map(str, TABLES))})")
    if row["metric"] not in TABLE_METRICS[table]:
        raise ValueError(f"metric {row['metric']!r} is not one of Table {table}'s: {', '.join(TABLE_METRICS[table])}")
    try:
        value = float(row["value"])
    except ValueError:
        raise ValueError(f"value {row['value']!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"value {row['value']!r} is not finite")
    if table == 1 and value != int(value):
        raise ValueError(f"Table 1 value {row['value']!r} is not a whole number")
    dataset = row["dataset"]
    if dataset or table not in SWEEP_TABLES:
        if dataset not in PAPER_DATASETS:
            raise ValueError(f"dataset {dataset!r} is not one of {', '.join(PAPER_DATASETS)}")
        if (row["paper_dataset"], row["paper_task"]) != PAPER_DATASETS[dataset]:
            raise ValueError(f"paper_dataset/paper_task {row['paper_dataset']!r}/{row['paper_task']!r} "
                             f"do not match {dataset!r} (expected {PAPER_DATASETS[dataset]})")
    if table == 1:
        if row["model"] or row["paper_model"]:
            raise ValueError("Table 1 rows name no model")
    elif MODEL_NAMES.get(row["paper_model"]) != row["model"] or not row["model"]:
        raise ValueError(f"paper_model {row['paper_model']!r} does not map to model {row['model']!r} "
                         "(see MODEL_NAMES)")
    for column, tables in (("epoch", (3, 4)), ("t_out", (5,))):
        if bool(row[column]) != (table in tables):
            raise ValueError(f"{column} must be {'given' if table in tables else 'empty'} in Table {table}")
    return {**row, "table": table, "value": value,
            "epoch": _int(row["epoch"], "epoch") if row["epoch"] else None,
            "t_out": _int(row["t_out"], "t_out") if row["t_out"] else None}


def _split_header(text: str) -> tuple[str, str]:
    """The leading `#` comment lines and the CSV body."""
    lines = text.splitlines(keepends=True)
    n = next((i for i, line in enumerate(lines) if not line.startswith("#")), len(lines))
    return "".join(lines[:n]), "".join(lines[n:])


def load_paper_numbers(path: str | Path | None = None, sweep_dataset: str = DEFAULT_SWEEP_DATASET) -> pd.DataFrame:
    """The stored numbers, one row per printed cell, validated; Tables 3-5 get `sweep_dataset`.

    Columns: `COLUMNS` plus `dataset_stated` (False where the dataset was filled in). A broken file
    raises `DataError` naming the file, the line and what is wrong.
    """
    path = Path(path) if path is not None else PAPER_CSV
    _check_dataset(sweep_dataset)
    try:
        header, body = _split_header(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise DataError(f"Cannot read the paper's numbers from {path}: {error}.") from None
    first_line = header.count("\n") + 2  # file line of the first data row
    raw = pd.read_csv(io.StringIO(body), dtype=str, keep_default_na=False)
    if list(raw.columns) != COLUMNS:
        raise DataError(f"{path}: columns are {list(raw.columns)}, expected {COLUMNS}.")
    rows = []
    for i, row in enumerate(raw.to_dict("records")):
        try:
            rows.append(_parse_row(row))
        except ValueError as error:
            raise DataError(f"{path}, line {first_line + i}: {error}. Row: {','.join(row.values())}") from None
    frame = pd.DataFrame(rows, columns=COLUMNS)
    frame["epoch"] = frame["epoch"].astype("Int64")
    frame["t_out"] = frame["t_out"].astype("Int64")
    frame["dataset_stated"] = frame["dataset"] != ""
    frame.loc[~frame["dataset_stated"], "dataset"] = sweep_dataset
    duplicated = frame.duplicated(_KEY, keep=False)
    if duplicated.any():
        lines = ", ".join(str(first_line + i) for i in frame.index[duplicated])
        raise DataError(f"{path}: the same cell is given more than once, lines {lines}.")
    return frame


def write_paper_numbers(frame: pd.DataFrame, path: str | Path) -> None:
    """Write `frame` (as `load_paper_numbers` returns it) in the stored format, header comment included."""
    out = frame.copy()
    out.loc[~out["dataset_stated"], "dataset"] = ""
    out["value"] = [f"{v:.0f}" if table == 1 else f"{v:.{PRINTED_DECIMALS}f}"
                    for table, v in zip(out["table"], out["value"], strict=True)]
    header, _ = _split_header(PAPER_CSV.read_text(encoding="utf-8"))
    Path(path).write_text(header + out[COLUMNS].to_csv(index=False, lineterminator="\n"), encoding="utf-8")


def paper_table(table_id: int, sweep_dataset: str = DEFAULT_SWEEP_DATASET,
                frame: pd.DataFrame | None = None) -> pd.DataFrame:
    """One table, wide, shaped like ours in `benchmark.analysis.tables` (rows in the paper's order).

    Table 1: rows dataset, columns quantity. Table 2: rows model, columns (dataset, metric).
    Tables 3-4: rows (dataset, model), columns (epoch, metric). Table 5: rows (dataset, model),
    columns (t_out, metric).
    """
    if table_id not in TABLES:
        raise UnknownNameError(f"The paper has no Table {table_id!r}; its tables are {', '.join(map(str, TABLES))}.")
    frame = load_paper_numbers(sweep_dataset=sweep_dataset) if frame is None else frame
    rows = frame[frame["table"] == table_id]
    index, columns = {1: (["dataset"], ["metric"]), 2: (["model"], ["dataset", "metric"]),
                      3: (["dataset", "model"], ["epoch", "metric"]), 4: (["dataset", "model"], ["epoch", "metric"]),
                      5: (["dataset", "model"], ["t_out", "metric"])}[table_id]
    wide = rows.pivot(index=index, columns=columns, values="value")
    wide = wide.reindex(index=_printed_order(rows, index), columns=_printed_order(rows, columns))
    return wide.astype(int) if table_id == 1 else wide


def _printed_order(rows: pd.DataFrame, names: list[str]) -> pd.Index:
    """The distinct values of `names` in the order the CSV (the paper) gives them."""
    distinct = rows[names].drop_duplicates()
    return pd.MultiIndex.from_frame(distinct) if len(names) > 1 else pd.Index(distinct[names[0]], name=names[0])
