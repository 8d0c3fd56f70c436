"""Table 1 of the paper: the datasets, as configured by a profile and as found on disk.

For each dataset (and task) the profile's data settings are resolved exactly as `bench run`
resolves them, the data is loaded, and its sample counts, frame shape and frame counts are put
beside the numbers the DIFFUMA paper prints. Data that cannot be loaded (not downloaded yet) gives
a row that says why instead of numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from benchmark.core.atomic import write_text_atomic
from benchmark.core.errors import BenchError


@dataclass(frozen=True)
class PaperDataset:
    """One row of the paper's Table 1."""

    dataset: str
    task: str
    train: int
    test: int
    shape: tuple[int, int, int]
    t_in: int
    t_out: int


PAPER_TABLE1 = {
    "weatherbench:tcc": PaperDataset("WeatherBench", "Cloud_cover", 2300, 657, (1, 32, 64), 12, 12),
    "weatherbench:uv10": PaperDataset("WeatherBench", "Component_of_wind", 2300, 657, (1, 32, 64), 12, 12),
    "weatherbench:r": PaperDataset("WeatherBench", "Humidity", 2300, 657, (1, 32, 64), 12, 12),
    "weatherbench:t2m": PaperDataset("WeatherBench", "Temperature", 2300, 657, (1, 32, 64), 12, 12),
    "chdl": PaperDataset("CHDL", "dicing lane", 4874, 1216, (1, 600, 800), 5, 1),
}
# generated stand-ins and the paper dataset they stand in for
STAND_INS = {
    "synthetic-weather:t2m": "weatherbench:t2m",
    "synthetic-weather:uv10": "weatherbench:uv10",
    "synthetic-chdl": "chdl",
}
DEFAULT_SELECTION = "weatherbench,chdl,synthetic-weather,synthetic-chdl"
COLUMNS = ["dataset", "train", "val", "test", "(C, H, W)", "T_in", "T_out",
           "paper train", "paper test", "paper (C, H, W)", "paper T_in", "paper T_out", "note"]


def _shape_text(shape: tuple[int, ...] | list[int]) -> str:
    return "(" + ", ".join(str(v) for v in shape) + ")"


def _first_sentence(text: str) -> str:
    head = text.split(". ")[0].strip()
    return head if head.endswith(".") else head + "."


def dataset_row(name: str, profile: str, overrides: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """One Table 1 row for `name[:task]` under `profile`; data that cannot be loaded gives a note."""
    from benchmark.data.registry import load_dataset
    from benchmark.run.config import resolve_run

    config = resolve_run(profile, "persistence", name, 0, overrides)
    row: dict[str, Any] = dict.fromkeys(COLUMNS, "–")
    row["dataset"] = name
    row["T_in"], row["T_out"] = config.t_in, config.t_out
    paper = PAPER_TABLE1.get(STAND_INS.get(name, name))
    if paper is not None:
        row.update({"paper train": paper.train, "paper test": paper.test, "paper (C, H, W)": _shape_text(paper.shape),
                    "paper T_in": paper.t_in, "paper T_out": paper.t_out})
    notes = [f"stand-in for {STAND_INS[name]}"] if name in STAND_INS else []
    try:
        data = load_dataset(name, config.data)
    except BenchError as error:
        row["note"] = "; ".join([*notes, f"not loaded: {_first_sentence(str(error))}"])
        return row
    row.update({"train": len(data.train), "val": len(data.val), "test": len(data.test),
                "(C, H, W)": _shape_text(data.shape[2:])})
    row["note"] = "; ".join(notes) or ""
    return row


def dataset_table(selection: str, profile: str, overrides: dict[str, dict[str, Any]] | None = None) -> pd.DataFrame:
    """Table 1 for every dataset of `selection` (`--dataset` syntax: a bare name means its tasks)."""
    from benchmark.data.registry import resolve_dataset_names

    names = resolve_dataset_names(selection)
    if not names:
        raise BenchError("No dataset given for the dataset table; pass --dataset NAME[,NAME...].")
    return pd.DataFrame([dataset_row(name, profile, overrides) for name in names], columns=COLUMNS)


def render_dataset_table(frame: pd.DataFrame, out_dir: Path, formats: tuple[str, ...], profile: str) -> list[Path]:
    """Write Table 1 as `datasets.{csv,tex,md}` in `out_dir`; returns the paths written."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    caption = (f"Datasets ({profile} profile): our sample counts and shapes as loaded, beside the DIFFUMA "
               "paper's Table 1. Val: held out from the training years or sequences.")
    written = []
    if "csv" in formats:
        written.append(out_dir / "datasets.csv")
        write_text_atomic(written[-1], frame.to_csv(index=False))
    if "latex" in formats:
        escaped = frame.astype(str).map(lambda s: s.replace("_", "\\_"))
        escaped.columns = [c.replace("_", "\\_") for c in frame.columns]
        latex = escaped.style.hide(axis="index").to_latex(
            hrules=True, caption=caption.replace("_", "\\_"), position_float="centering", environment="table")
        written.append(out_dir / "datasets.tex")
        write_text_atomic(written[-1], latex)
    if "markdown" in formats:
        written.append(out_dir / "datasets.md")
        write_text_atomic(written[-1], f"{caption}\n\n{frame.to_markdown(index=False)}\n")
    return written
