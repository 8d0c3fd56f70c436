"""A finished run brought back to life: its record, its dataset and its model with the weights it was scored with.

What `bench predict` and `bench ensemble` start from. The model is rebuilt from the record's
resolved config (`model_args`) and loads the best-validation checkpoint the record names
(`best.checkpoint`, the weights its test metrics were computed with); a model without parameters to
train (persistence) has no checkpoint and needs none.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from benchmark.core.errors import BenchError
from benchmark.data.base import ForecastData
from benchmark.results.records import RunRecord, read_record, record_path


@dataclass
class FinishedRun:
    """A finished run's record, folder, data and model (in eval mode, on the CPU)."""

    record: RunRecord
    run_dir: Path
    data: ForecastData
    model: torch.nn.Module


def load_finished_run(results: Path, run_id: str) -> FinishedRun:
    """The run `run_id` under `results`, with its best checkpoint loaded; `BenchError` saying what is missing."""
    from benchmark.data.registry import load_dataset
    from benchmark.registry import create_model, get_model_spec

    path = record_path(results, run_id)
    if not path.exists():
        raise BenchError(f"No finished run {run_id!r} in {results}/ (no {path}). `bench status --results {results}` "
                         "lists the runs there; pass --results with the folder the run was written to.")
    record = read_record(path)
    config = record.config
    data = load_dataset(config.dataset, config.data)
    model = create_model(config.model, data.shape, **config.model_args)
    run_dir = path.parent
    if get_model_spec(config.model).trainable:
        checkpoint = record.best.checkpoint
        if not checkpoint or not (run_dir / checkpoint).exists():
            raise BenchError(f"The run {run_id} has no best checkpoint to load ({run_dir / str(checkpoint)} is "
                             "missing). Delete its folder and run it again to get one.")
        state = torch.load(run_dir / checkpoint, map_location="cpu", weights_only=False)["state_dict"]
        prefix = "model."  # `benchmark.run.training.ForecastModule` holds the model as `.model`
        model.load_state_dict({key[len(prefix):]: value for key, value in state.items() if key.startswith(prefix)})
    model.eval()
    return FinishedRun(record=record, run_dir=run_dir, data=data, model=model)
