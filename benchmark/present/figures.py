"""Every figure of a results folder: the deterministic ones (`benchmark.present.plots`) and the ensemble ones
(`benchmark.present.plots_ensemble`), in one place so that neither module imports the other."""

from __future__ import annotations

from pathlib import Path

from benchmark.present.plots import (
    FORMATS,
    plot_acc_by_lead,
    plot_epoch_sweep,
    plot_learning_curves,
    plot_per_lead,
    plot_prediction_grid,
    plot_spectra,
)
from benchmark.present.plots_ensemble import plot_crps_by_lead, plot_ensemble_members, plot_rank_histogram

FUNCTIONS = {"prediction_grid": plot_prediction_grid, "learning_curves": plot_learning_curves,
             "epoch_sweep": plot_epoch_sweep, "per_lead": plot_per_lead, "acc_by_lead": plot_acc_by_lead,
             "spectra": plot_spectra, "crps_by_lead": plot_crps_by_lead, "rank_histogram": plot_rank_histogram,
             "ensemble_members": plot_ensemble_members}
FIGURES = tuple(FUNCTIONS)  # every figure `plot_all` draws, in order


def plot_all(results_dir: Path, out_dir: Path, formats: tuple[str, ...] = FORMATS) -> dict[str, list[Path]]:
    """Every figure from the records under `results_dir` (loaded once): figure name -> paths written
    ([] for a figure the records lack the material for)."""
    from benchmark.results.records import load_records

    records = load_records(Path(results_dir))
    return {name: draw(records, results_dir, out_dir, formats=tuple(formats)) for name, draw in FUNCTIONS.items()}
