"""Run records: one `record.json` per run, written atomically, read back into a DataFrame.

A record is the only thing tables and figures read. Its layout (schema version 1):

    schema_version, run_id, status ("finished"), started_at, finished_at,
    config      the resolved RunConfig (model, dataset, seed, profile, train, data, model_args)
    data        dataset summary (sample counts per split, shape, channels, units, ...)
    normalizer  per-channel training statistics used to report physical units
    environment versions, device, thread count, git commit, selective-scan backend if any
    model_info  parameter count, family, paper name, trainable
    cost        train_seconds, epochs_run, optimizer_steps, inference_samples_per_second, ...
    best        epoch (1-based) and validation MSE of the checkpoint used for the test split, and
                still_improving (the best epoch is the last one: the budget ended training)
    curve       per epoch: {"epoch", "step", "val_mse", "train_loss"} (the validation curve)
    schedule    the model's step-based schedules resolved for this run, in its optimizer steps
    test        metrics of the best checkpoint on the test split (see benchmark.metrics)
    eval_at     {"<epoch>": metrics} for each epoch requested with --eval-at
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import pandas as pd

from benchmark.errors import DataError

SCHEMA_VERSION = 1
RECORD_NAME = "record.json"


def write_json_atomic(path: Path, payload: dict[str, Any]) -> None:
    """Write `payload` as JSON to `path` so that readers see the old file or the new one, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(payload, handle, indent=2, sort_keys=False, default=_json_default)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def record_path(results_dir: Path, run_id: str) -> Path:
    """Where the record of `run_id` lives."""
    return Path(results_dir) / run_id / RECORD_NAME


def write_record(results_dir: Path, record: dict[str, Any]) -> Path:
    """Store a finished run's record atomically; returns its path."""
    path = record_path(results_dir, record["run_id"])
    write_json_atomic(path, {"schema_version": SCHEMA_VERSION, **record})
    return path


def read_record(path: Path) -> dict[str, Any]:
    """Read one record, with a clear error if it is unreadable or of another schema."""
    try:
        record = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise DataError(
            f"The run record {path} cannot be read ({error}). Delete its folder to re-run that run."
        ) from None
    if record.get("schema_version") != SCHEMA_VERSION:
        raise DataError(
            f"The run record {path} has schema version {record.get('schema_version')!r}, this version of "
            f"diffuma-bench reads version {SCHEMA_VERSION}. Re-run it, or read it with the version that wrote it."
        )
    return record


def is_finished(results_dir: Path, run_id: str) -> bool:
    """True when `run_id` has a readable, finished record."""
    path = record_path(results_dir, run_id)
    if not path.exists():
        return False
    try:
        return read_record(path).get("status") == "finished"
    except DataError:
        return False


def load_records(results_dir: Path) -> list[dict[str, Any]]:
    """All finished records under `results_dir` (unreadable ones are skipped with a warning)."""
    records = []
    for path in sorted(Path(results_dir).glob(f"*/{RECORD_NAME}")):
        try:
            record = read_record(path)
        except DataError as error:
            warnings.warn(str(error), stacklevel=2)
            continue
        if record.get("status") == "finished":
            records.append(record)
    return records


def config_key(config: dict[str, Any]) -> str:
    """Hash of a run's configuration without its seed: runs that differ only by seed share it."""
    from benchmark.config import RunConfig

    identity = RunConfig.from_dict(config).identity()
    identity.pop("seed")
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:10]


def _trainable(record: dict[str, Any]) -> bool:
    """Whether the record's model learns (from the record, else from the model registry)."""
    stored = (record.get("model_info") or {}).get("trainable")
    if stored is not None:
        return bool(stored)
    from benchmark.registry import get_model_spec

    try:
        return get_model_spec(record["config"]["model"]).trainable
    except KeyError:  # a model this version no longer registers
        return True


def records_to_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """Long table, one row per (run, evaluation point, space, metric[, lead]).

    Columns: run_id, model, dataset, seed, t_in, t_out, profile, epochs, batch_size,
    optimizer_steps, trainable, still_improving, epoch ("best" or the --eval-at epoch as a
    string), space ("normalized" / "physical"), metric, lead (0 = aggregate, 1..T_out = lead
    time), value.
    """
    rows: list[dict[str, Any]] = []
    for record in records:
        config = record["config"]
        base = {
            "run_id": record["run_id"],
            "config_key": config_key(config),
            "finished_at": record.get("finished_at", ""),
            "model": config["model"],
            "dataset": config["dataset"],
            "seed": config["seed"],
            "t_in": config["data"]["t_in"],
            "t_out": config["data"]["t_out"],
            "profile": config["profile"],
            "epochs": config["train"]["epochs"],
            "batch_size": config["train"]["batch_size"],
            "optimizer_steps": (record.get("cost") or {}).get("optimizer_steps"),
            "trainable": _trainable(record),
            "still_improving": bool((record.get("best") or {}).get("still_improving")),
        }
        evaluations = {"best": record.get("test", {})}
        evaluations.update({str(k): v for k, v in (record.get("eval_at") or {}).items()})
        for epoch, metrics in evaluations.items():
            for space in ("normalized", "physical"):
                values = metrics.get(space, {})
                for metric, value in values.items():
                    if metric == "per_lead":
                        for name, per_lead in value.items():
                            rows += [
                                {**base, "epoch": epoch, "space": space, "metric": name, "lead": i + 1, "value": v}
                                for i, v in enumerate(per_lead)
                            ]
                    else:
                        rows.append({**base, "epoch": epoch, "space": space, "metric": metric, "lead": 0,
                                     "value": value})
    columns = ["run_id", "config_key", "finished_at", "model", "dataset", "seed", "t_in", "t_out", "profile",
               "epochs", "batch_size", "optimizer_steps", "trainable", "still_improving", "epoch", "space", "metric",
               "lead", "value"]
    return pd.DataFrame(rows, columns=columns)
