"""Run records: one `record.json` per run, written atomically, read back as typed `RunRecord`s.

A record is the only thing tables and figures read. `RunRecord` below is its one definition;
`RunRecord.to_dict()` is the JSON layout (schema version 2) and `RunRecord.from_dict()` reads it:

    schema_version, run_id, status ("finished"), started_at, finished_at,
    config       the resolved RunConfig (model, dataset, seed, profile, train, data, model_args)
    data         dataset summary (sample counts per split, shape, channels, units, ...)
    normalizer   per-channel training statistics used to report physical units
    environment  versions, device, thread count, git commit, selective-scan backend (`EnvironmentInfo`)
    model_info   parameter count, family, paper name, trainable (`ModelInfo`)
    cost         train_seconds, epochs_run, optimizer_steps, resumed_from and the test split's
                 inference_seconds, inference_samples, inference_samples_per_second (`CostInfo`)
    best         epoch (1-based), val_mse and checkpoint (relative to the run folder) of the weights
                 scored on the test split, and still_improving (the best epoch is the last one: the
                 budget ended training) (`BestCheckpoint`)
    curve        per epoch: {"epoch", "step", "val_mse", "train_loss"} (the validation curve, `CurvePoint`)
    schedule     the model's step-based schedules resolved for this run, in its optimizer steps
    test         metrics of the best checkpoint on the test split (`Scores`, see benchmark.scoring.metrics)
    eval_at      {"<epoch>": Scores} for each epoch requested with --eval-at
    per_sample_file  optional: the run folder's file of per-(test sample, lead) normalized MSE, MAE and
                 SSIM (`benchmark.scoring.evaluation.write_per_sample`); None (or absent, in older files) when not
                 stored
    eval_at_per_sample_files  optional: {"<epoch>": file} the same errors after each --eval-at epoch
                 ({} or absent when not stored)
    predictions_file  optional: a few test samples' normalized inputs, truth and prediction (float16;
                 `train.stored_predictions` of them, the same samples for every model of a dataset)
    attempts     optional: the training attempts (`benchmark.run.resume.AttemptLog`): started_at, resumed_from,
                 resumed_at_epoch, checkpoint_at, train_seconds, ended_at ([] in older files)
    spectra_file optional: the test split's mean power spectra of predictions and truth per lead and
                 channel (`benchmark.scoring.spectra`), from which `detail_ratio` is computed
    ensemble     optional: the best checkpoint's test split scored as an ensemble (`bench ensemble`,
                 `benchmark.scoring.ensemble.evaluate_ensemble`): members, seed, options, fair CRPS, ensemble-mean
                 MSE, spread-skill per space and lead, rank histogram, detail ratios, seconds; None if not scored so
    components   optional: {"<name>": Scores} the test metrics of the model's own part forecasts
                 (`ForecastModel.forecast_components`; DIFFUMA: "y_mamba", its Mamba path's output inside
                 the full model), from the same weights and pass as `test` ({} or absent when none)

Version 2 has the keys of version 1, but every one of them is now required: version 1 files were
written over several releases that added `curve`, `schedule`, `best.still_improving` and
`model_info.trainable` along the way, so a version 1 file cannot be trusted to hold them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from benchmark.core.atomic import atomic_write, remove_stale_temporaries
from benchmark.core.errors import BenchWarning, DataError
from benchmark.run.config import RunConfig

if TYPE_CHECKING:
    from benchmark.data.base import ForecastData
    from benchmark.results.outcomes import FitOutcome, TestOutcome

SCHEMA_VERSION = 2
RECORD_NAME = "record.json"
# the order benchmark.scoring.metrics uses
AGGREGATE_METRICS = ("mse", "mae", "rmse", "rmse_wb2", "ssim", "psnr", "lat_rmse", "acc", "detail_ratio")


@dataclass
class SpaceScores:
    """One space's metrics (normalized or physical units): aggregates over all leads, and per lead."""

    mse: float
    mae: float
    rmse: float
    ssim: float
    psnr: float
    per_lead: dict[str, list[float]]
    lat_rmse: float | None = None  # only for data on a latitude grid
    detail_ratio: float | None = None  # None in records written before it, or for a constant truth
    rmse_wb2: float | None = None  # None in records written before it
    acc: float | None = None  # only for data with a climatology (None in records written before it)

    def aggregates(self) -> dict[str, float]:
        """The aggregate metrics by name (lat_rmse only when the data has latitudes, acc with a climatology)."""
        values = {name: getattr(self, name) for name in AGGREGATE_METRICS}
        return {name: value for name, value in values.items() if value is not None}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, the layout `benchmark.scoring.metrics.MetricAccumulator.compute` returns."""
        return {**self.aggregates(), "per_lead": {name: list(v) for name, v in self.per_lead.items()}}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SpaceScores:
        """Inverse of `to_dict`."""
        return cls(**{**values, "per_lead": {name: list(v) for name, v in values["per_lead"].items()}})


@dataclass
class Scores:
    """One evaluation of the test split: metrics in both spaces and the number of samples scored."""

    normalized: SpaceScores
    physical: SpaceScores
    count: int

    def spaces(self) -> dict[str, SpaceScores]:
        """The two spaces by name, normalized first."""
        return {"normalized": self.normalized, "physical": self.physical}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {**{name: space.to_dict() for name, space in self.spaces().items()}, "count": self.count}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Scores:
        """Inverse of `to_dict` (also reads `benchmark.scoring.evaluation.evaluate`'s metrics as they come)."""
        return cls(normalized=SpaceScores.from_dict(values["normalized"]),
                   physical=SpaceScores.from_dict(values["physical"]), count=int(values["count"]))


@dataclass
class EnvironmentInfo:
    """Where a run executed: versions, hardware, and the selective-scan backend its model used."""

    python: str
    torch: str
    lightning: str
    numpy: str
    platform: str
    processor: str
    cpu_count: int | None
    torch_threads: int
    device: str  # the GPU's name, or "cpu"
    cuda: str | None
    hostname: str
    git_commit: str | None
    selective_scan_backend: str | None  # None: the model has no selective scan
    cpu_bf16: bool | None = None  # the CPU has native bfloat16 (benchmark.run.hardware); None: unknown or older record


@dataclass
class ModelInfo:
    """What the registry says about the run's model, and its parameter count as built."""

    parameters: int
    family: str
    paper_name: str
    trainable: bool


@dataclass
class CostInfo:
    """What a run cost: training time and steps, and the inference timing of the test split."""

    train_seconds: float
    epochs_run: int
    optimizer_steps: int
    resumed_from: str | None  # the checkpoint a broken earlier attempt left, if training resumed
    inference_seconds: float  # the model's forward passes only
    inference_samples: int
    inference_samples_per_second: float


@dataclass
class BestCheckpoint:
    """The weights scored on the test split: the epoch with the lowest validation MSE."""

    epoch: int | None  # 1-based; None for a model that does not train
    val_mse: float | None
    checkpoint: str | None  # relative to the run folder
    still_improving: bool | None  # the best epoch is the last: the budget, not the model, ended training


@dataclass
class CurvePoint:
    """One epoch of the validation curve."""

    epoch: int
    step: int  # optimizer steps reached at the end of the epoch
    val_mse: float | None
    train_loss: float | None  # mean training loss over the epoch


@dataclass
class RunRecord:
    """The record of one finished run (the layout in this module's docstring)."""

    run_id: str
    started_at: str
    finished_at: str
    config: RunConfig
    data: dict[str, Any]
    normalizer: dict[str, list[float]]
    environment: EnvironmentInfo
    model_info: ModelInfo
    cost: CostInfo
    best: BestCheckpoint
    curve: list[CurvePoint]
    schedule: dict[str, Any]
    test: Scores
    eval_at: dict[str, Scores] = field(default_factory=dict)
    status: str = "finished"
    per_sample_file: str | None = None  # optional (no schema bump): relative to the run folder
    eval_at_per_sample_files: dict[str, str] = field(default_factory=dict)  # optional, as per_sample_file
    predictions_file: str | None = None  # optional, as per_sample_file
    spectra_file: str | None = None  # optional, as per_sample_file
    attempts: list[dict[str, Any]] = field(default_factory=list)  # optional (absent in older files)
    ensemble: dict[str, Any] | None = None  # optional, as per_sample_file
    components: dict[str, Scores] = field(default_factory=dict)  # optional (absent in older files)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, `schema_version` first."""
        return {
            "schema_version": SCHEMA_VERSION,
            "run_id": self.run_id,
            "status": self.status,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "config": self.config.to_dict(),
            "data": self.data,
            "normalizer": self.normalizer,
            "environment": dataclasses.asdict(self.environment),
            "model_info": dataclasses.asdict(self.model_info),
            "cost": dataclasses.asdict(self.cost),
            "best": dataclasses.asdict(self.best),
            "curve": [dataclasses.asdict(point) for point in self.curve],
            "schedule": self.schedule,
            "test": self.test.to_dict(),
            "eval_at": {epoch: scores.to_dict() for epoch, scores in self.eval_at.items()},
            "per_sample_file": self.per_sample_file,
            "eval_at_per_sample_files": self.eval_at_per_sample_files,
            "predictions_file": self.predictions_file,
            "spectra_file": self.spectra_file,
            "attempts": self.attempts,
            "ensemble": self.ensemble,
            "components": {name: scores.to_dict() for name, scores in self.components.items()},
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> RunRecord:
        """Inverse of `to_dict`; raises KeyError or TypeError on a missing or unknown field."""
        return cls(
            run_id=values["run_id"],
            status=values["status"],
            started_at=values["started_at"],
            finished_at=values["finished_at"],
            config=RunConfig.from_dict(values["config"]),
            data=dict(values["data"]),
            normalizer=dict(values["normalizer"]),
            environment=EnvironmentInfo(**values["environment"]),
            model_info=ModelInfo(**values["model_info"]),
            cost=CostInfo(**values["cost"]),
            best=BestCheckpoint(**values["best"]),
            curve=[CurvePoint(**point) for point in values["curve"]],
            schedule=dict(values["schedule"]),
            test=Scores.from_dict(values["test"]),
            eval_at={str(epoch): Scores.from_dict(scores) for epoch, scores in values["eval_at"].items()},
            per_sample_file=values.get("per_sample_file"),  # optional: absent in files written before it
            eval_at_per_sample_files={str(k): str(v) for k, v in values.get("eval_at_per_sample_files", {}).items()},
            predictions_file=values.get("predictions_file"),
            spectra_file=values.get("spectra_file"),
            attempts=[dict(a) for a in values.get("attempts", [])],
            ensemble=values.get("ensemble"),
            components={str(name): Scores.from_dict(scores) for name, scores in values.get("components", {}).items()},
        )


def now() -> str:
    """The current UTC time as the records store it (ISO 8601, seconds)."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def make_record(
    config: RunConfig,
    data: ForecastData,
    environment: EnvironmentInfo,
    model_info: ModelInfo,
    fitted: FitOutcome,
    tested: TestOutcome,
    started_at: str,
    per_sample_file: str | None = None,
    predictions_file: str | None = None,
    spectra_file: str | None = None,
) -> RunRecord:
    """The record of a run that just finished, from what its steps produced."""
    return RunRecord(
        run_id=config.run_id,
        started_at=started_at,
        finished_at=now(),
        config=config,
        data=_plain(data.summary()),
        normalizer=data.normalizer.to_dict(),
        environment=environment,
        model_info=model_info,
        cost=CostInfo(
            train_seconds=fitted.train_seconds,
            epochs_run=fitted.epochs_run,
            optimizer_steps=fitted.optimizer_steps,
            resumed_from=fitted.resumed_from,
            inference_seconds=tested.inference_seconds,
            inference_samples=tested.inference_samples,
            inference_samples_per_second=tested.inference_samples_per_second,
        ),
        best=BestCheckpoint(epoch=fitted.best_epoch, val_mse=fitted.best_val_mse,
                            checkpoint=fitted.best_checkpoint, still_improving=fitted.still_improving),
        curve=[CurvePoint(**point) for point in fitted.curve],
        schedule=_plain(fitted.schedule),
        test=Scores.from_dict(tested.metrics),
        eval_at={str(epoch): Scores.from_dict(scores) for epoch, scores in fitted.eval_at.items()},
        per_sample_file=per_sample_file,
        predictions_file=predictions_file,
        spectra_file=spectra_file,
        attempts=_plain(fitted.attempts),
        eval_at_per_sample_files={str(epoch): name for epoch, name in fitted.eval_at_per_sample.items()},
        components={str(name): Scores.from_dict(scores) for name, scores in (tested.components or {}).items()},
    )


def write_json_atomic(path: Path, payload: dict[str, Any]) -> None:
    """Write `payload` as JSON to `path` so that readers see the old file or the new one, never half."""
    text = json.dumps(payload, indent=2, sort_keys=False, default=_json_default)
    atomic_write(Path(path), lambda handle: handle.write(text.encode("utf-8")))


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def _plain(value: dict[str, Any]) -> dict[str, Any]:
    """`value` as it reads back from JSON (tuples as lists, numpy values as numbers), so that a
    record in memory equals the record read from its file."""
    return json.loads(json.dumps(value, default=_json_default))


def record_path(results_dir: Path, run_id: str) -> Path:
    """Where the record of `run_id` lives."""
    return Path(results_dir) / run_id / RECORD_NAME


def write_record(results_dir: Path, record: RunRecord) -> Path:
    """Store a finished run's record atomically; returns its path. The temporary files that earlier,
    interrupted attempts left in the run folder (a kill during a write) go with it."""
    path = record_path(results_dir, record.run_id)
    remove_stale_temporaries(path.parent)
    write_json_atomic(path, record.to_dict())
    return path


def read_record(path: Path) -> RunRecord:
    """Read one record, with a clear error if it is unreadable, of another schema or incomplete."""
    try:
        values = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise DataError(
            f"The run record {path} cannot be read ({error}). Delete its folder to re-run that run."
        ) from None
    version = values.get("schema_version") if isinstance(values, dict) else None
    if version != SCHEMA_VERSION:
        raise DataError(
            f"The run record {path} has schema version {version!r}, this version of "
            f"diffuma-bench reads version {SCHEMA_VERSION}. Re-run it, or read it with the version that wrote it."
        )
    try:
        return RunRecord.from_dict(values)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise DataError(f"The run record {path} is incomplete or malformed ({type(error).__name__}: {error}). "
                        "Delete its folder to re-run that run.") from None


def is_finished(results_dir: Path, run_id: str) -> bool:
    """True when `run_id` has a readable, finished record."""
    path = record_path(results_dir, run_id)
    if not path.exists():
        return False
    try:
        return read_record(path).status == "finished"
    except DataError:
        return False


def load_records(results_dir: Path) -> list[RunRecord]:
    """All finished records under `results_dir`.

    A record that cannot be read (truncated, of another schema, malformed) is skipped with a
    `BenchWarning` naming it and what to do; so is a folder that is not a run's (neither a record
    nor a `config.json`: a run folder holds one from its start). Files and hidden folders are ignored.
    """
    records = []
    for folder in sorted(p for p in Path(results_dir).iterdir() if p.is_dir() and not p.name.startswith(".")):
        path = folder / RECORD_NAME
        if not path.exists():
            if not (folder / "config.json").exists():
                warnings.warn(f"{folder} is not a run folder (no {RECORD_NAME}, no config.json): skipped. Move it "
                              "out of the results folder to silence this.", BenchWarning, stacklevel=2)
            continue
        try:
            record = read_record(path)
        except DataError as error:
            warnings.warn(f"{error} Skipped.", BenchWarning, stacklevel=2)
            continue
        if record.status == "finished":
            records.append(record)
    return records


def config_key(config: RunConfig, *, any_precision: bool = False) -> str:
    """Hash of a run's configuration without its seed: runs that differ only by seed share it.

    With `any_precision`, without `train.precision` too: the runs of one setting at every precision
    share it (what the precision-drift table pairs).
    """
    identity = config.identity()
    identity.pop("seed")
    if any_precision:
        identity["train"].pop("precision", None)
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:10]


FRAME_COLUMNS = ["run_id", "config_key", "setting_key", "finished_at", "model", "family", "dataset", "seed", "t_in",
                 "t_out", "profile", "epochs", "batch_size", "precision", "optimizer_steps", "trainable",
                 "still_improving", "epoch", "space", "metric", "lead", "value"]


def records_to_frame(records: list[RunRecord]) -> pd.DataFrame:
    """Long table, one row per (run, evaluation point, space, metric[, lead]).

    Columns: run_id, config_key, setting_key (config_key without the precision), finished_at, model,
    family, dataset, seed, t_in, t_out, profile, epochs, batch_size, precision, optimizer_steps,
    trainable, still_improving, epoch ("best" or the --eval-at epoch as a string), space ("normalized"
    / "physical"), metric, lead (0 = aggregate, 1..T_out = lead time), value.
    """
    rows: list[dict[str, Any]] = []
    for record in records:
        base = _run_columns(record)
        for epoch, scores in {"best": record.test, **record.eval_at}.items():
            rows += [{**base, "epoch": epoch, **row} for row in _score_rows(scores)]
            if epoch != "best" or record.ensemble is None:  # a deterministic forecast's CRPS is its MAE
                rows += [{**base, "epoch": epoch, **row, "metric": "crps"}
                         for row in _score_rows(scores) if row["metric"] == "mae"]
        if record.ensemble is not None:
            rows += [{**base, "epoch": "best", **row} for row in _ensemble_rows(record.ensemble)]
    return pd.DataFrame(rows, columns=FRAME_COLUMNS)


def components_to_frame(records: list[RunRecord]) -> pd.DataFrame:
    """The test scores of the runs' part forecasts (`RunRecord.components`) as `records_to_frame` rows.

    Each part is a row of its own model, named `"<model> (<part>)"` (e.g. `diffuma (y_mamba)`), at
    epoch "best", so the main table can show it beside the model's full forecast.
    """
    rows: list[dict[str, Any]] = []
    for record in records:
        base = _run_columns(record)
        for name, scores in record.components.items():
            part = {**base, "model": f"{base['model']} ({name})", "epoch": "best"}
            rows += [{**part, **row} for row in _score_rows(scores)]
    return pd.DataFrame(rows, columns=FRAME_COLUMNS)


def _run_columns(record: RunRecord) -> dict[str, Any]:
    """The columns every row of one run shares."""
    config = record.config
    return {
        "run_id": record.run_id,
        "config_key": config_key(config),
        "setting_key": config_key(config, any_precision=True),
        "finished_at": record.finished_at,
        "model": config.model,
        "family": record.model_info.family,
        "dataset": config.dataset,
        "seed": config.seed,
        "t_in": config.t_in,
        "t_out": config.t_out,
        "profile": config.profile,
        "epochs": config.train["epochs"],
        "batch_size": config.train["batch_size"],
        "precision": config.train.get("precision", "32-true"),
        "optimizer_steps": record.cost.optimizer_steps,
        "trainable": record.model_info.trainable,
        "still_improving": bool(record.best.still_improving),
    }


def _ensemble_rows(ensemble: dict[str, Any]) -> list[dict[str, Any]]:
    """(space, metric, lead, value) rows of an ensemble evaluation: `crps`, `ens_mse`, `spread_skill`."""
    rows = []
    for space in ("normalized", "physical"):
        for metric in ("crps", "ens_mse", "spread_skill"):
            values = ensemble[space]
            rows.append({"space": space, "metric": metric, "lead": 0, "value": values[metric]})
            rows += [{"space": space, "metric": metric, "lead": lead, "value": value}
                     for lead, value in enumerate(values["per_lead"][metric], start=1)]
    return rows


def _score_rows(scores: Scores) -> list[dict[str, Any]]:
    """(space, metric, lead, value) rows of one evaluation: aggregates (lead 0), then per lead."""
    rows = []
    for space, values in scores.spaces().items():
        rows += [{"space": space, "metric": metric, "lead": 0, "value": value}
                 for metric, value in values.aggregates().items()]
        rows += [{"space": space, "metric": metric, "lead": lead, "value": value}
                 for metric, per_lead in values.per_lead.items() for lead, value in enumerate(per_lead, start=1)]
    return rows
