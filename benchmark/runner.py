"""Expand a sweep into runs, skip the finished ones, resume broken ones, execute the rest.

Each run is executed by `execute_run`, which writes `results/<run_id>/record.json` atomically at
the very end; a run without that file is not finished and is resumed from its last checkpoint
the next time the same sweep is started.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import socket
import subprocess
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from benchmark.config import RunConfig, load_profile, resolve_run
from benchmark.data.base import ForecastData
from benchmark.data.registry import load_dataset, resolve_dataset_names
from benchmark.errors import BenchError, ConfigError, DataError, UnknownNameError
from benchmark.model_api import count_parameters
from benchmark.records import is_finished, write_json_atomic, write_record
from benchmark.registry import create_model, get_model_spec, resolve_model_names
from benchmark.shapes import DataShape


def plan_runs(
    models: str,
    datasets: str,
    profile: str,
    seeds: list[int],
    overrides: dict[str, dict[str, Any]] | None = None,
) -> list[RunConfig]:
    """Every (dataset, model, seed) run of a sweep, fully resolved, in execution order."""
    model_names = resolve_model_names(models)
    dataset_names = resolve_dataset_names(datasets)
    if not dataset_names:
        raise BenchError("No dataset given. Pass --dataset NAME[:task]; `bench datasets` lists them.")
    profile_values = load_profile(profile)
    return [
        resolve_run(profile, model, dataset, seed, overrides, profile=profile_values)
        for dataset in dataset_names
        for model in model_names
        for seed in seeds
    ]


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def environment_info(model: torch.nn.Module) -> dict[str, Any]:
    """Versions, hardware and backend facts stored with every record."""
    import lightning
    import numpy

    cuda = torch.cuda.is_available()
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "lightning": lightning.__version__,
        "numpy": numpy.__version__,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": torch.cuda.get_device_name(0) if cuda else "cpu",
        "cuda": torch.version.cuda if cuda else None,
        "hostname": socket.gethostname(),
        "git_commit": _git_commit(),
        "selective_scan_backend": getattr(model, "backend", None),
    }


class DataCache:
    """Keeps the last loaded dataset so that the models of a sweep share one load."""

    def __init__(self) -> None:
        self._key: str | None = None
        self._data: ForecastData | None = None

    def get(self, config: RunConfig) -> ForecastData:
        """The dataset for `config`, loaded once per distinct (dataset, data config)."""
        key = json.dumps([config.dataset, config.data], sort_keys=True, default=str)
        if key != self._key:
            self._data, self._key = load_dataset(config.dataset, config.data), key
        assert self._data is not None
        return self._data


def execute_run(
    config: RunConfig, results_dir: Path, progress: bool = False, data_cache: DataCache | None = None
) -> dict[str, Any]:
    """Train (unless the model has no parameters to train), test, and store one run's record."""
    import lightning as L

    from benchmark.evaluation import evaluate

    run_dir = Path(results_dir) / config.run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(run_dir / "config.json", config.to_dict())
    started = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    data = (data_cache or DataCache()).get(config)
    expected = DataShape(config.t_in, config.t_out, *data.shape[2:])
    if tuple(data.shape) != tuple(expected):
        raise BenchError(f"{config.dataset} yields samples of shape {data.shape}, the run expects {expected}.")
    L.seed_everything(config.seed, workers=True, verbose=False)
    spec = get_model_spec(config.model)
    model = create_model(config.model, data.shape, **config.model_args)

    from benchmark.training import FitOutcome, ForecastDataModule, fit

    if spec.trainable:
        outcome = fit(model, data, config, run_dir, progress=progress)
    else:
        outcome = FitOutcome(None, None, None, 0.0, 0, 0, {})
    if not outcome.is_global_zero:  # in a DDP run, only the first process scores and records
        return {}
    device = "cuda" if torch.cuda.is_available() and config.train["accelerator"] in ("auto", "gpu", "cuda") else "cpu"
    model.to(device)
    loader = ForecastDataModule(data, int(config.train["batch_size"])).test_dataloader()
    test_metrics, timing = evaluate(model, loader, data.normalizer, data.lat, device,
                                    config.train["limit_test_batches"], config.model)
    record = {
        "run_id": config.run_id,
        "status": "finished",
        "started_at": started,
        "finished_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "config": config.to_dict(),
        "data": data.summary(),
        "normalizer": data.normalizer.to_dict(),
        "environment": environment_info(model),
        "model_info": {
            "parameters": count_parameters(model),
            "family": spec.family,
            "paper_name": spec.paper_name,
            "trainable": spec.trainable,
        },
        "cost": {
            "train_seconds": outcome.train_seconds,
            "epochs_run": outcome.epochs_run,
            "optimizer_steps": outcome.optimizer_steps,
            "resumed_from": outcome.resumed_from,
            **timing,
        },
        "best": {"epoch": outcome.best_epoch, "val_mse": outcome.best_val_mse, "checkpoint": outcome.best_checkpoint},
        "test": test_metrics,
        "eval_at": outcome.eval_at,
    }
    write_record(results_dir, record)
    (run_dir / "error.json").unlink(missing_ok=True)
    return record


@dataclass
class SweepReport:
    """What happened to each run of a sweep."""

    finished: list[str]
    skipped: list[str]
    failed: dict[str, str]


def run_sweep(
    configs: list[RunConfig],
    results_dir: Path,
    progress: bool = False,
    on_event: Callable[[str, int, RunConfig, Any], None] | None = None,
) -> SweepReport:
    """Execute every unfinished run of `configs` in order; a failing run does not stop the others.

    `on_event(kind, index, config, payload)` is called with kind "skip", "start", "done" (payload:
    the record) or "fail" (payload: the error message) so that a front end can show progress.
    """
    notify = on_event or (lambda *args: None)
    report = SweepReport([], [], {})
    cache = DataCache()
    for index, config in enumerate(configs):
        if is_finished(results_dir, config.run_id):
            report.skipped.append(config.run_id)
            notify("skip", index, config, None)
            continue
        notify("start", index, config, None)
        try:
            record = execute_run(config, results_dir, progress=progress, data_cache=cache)
        except (DataError, ConfigError, UnknownNameError):
            raise  # the data or the configuration is wrong for every run: stop and say so
        except Exception as error:  # a run that breaks does not stop the others; its reason is kept
            message = str(error) if isinstance(error, BenchError) else f"{type(error).__name__}: {error}"
            write_json_atomic(Path(results_dir) / config.run_id / "error.json",
                              {"error": message, "traceback": traceback.format_exc()})
        else:
            report.finished.append(config.run_id)
            notify("done", index, config, record)
            continue
        report.failed[config.run_id] = message
        notify("fail", index, config, message)
    return report
