"""Expand a sweep into runs, skip the finished ones, resume broken ones, execute the rest.

The path from `bench run` to a record: `plan_runs` (configs) -> `plan_sweep` (the one place that
decides which runs are finished) -> `execute_sweep` -> `execute_run` -> `training.fit` and
`training.test` -> `records.make_record` -> `records.write_record`.

`execute_run` writes `results/<run_id>/record.json` atomically at the very end; a run without
that file is not finished and is resumed from its last checkpoint the next time the same sweep
is started.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
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

from benchmark.core.errors import BenchError, ConfigError, DataError, UnknownNameError
from benchmark.data.base import ForecastData
from benchmark.data.registry import load_dataset, resolve_dataset_names
from benchmark.registry import (
    ModelSpec,
    check_model_overrides,
    create_model,
    get_model_spec,
    resolve_model_names,
)
from benchmark.registry.model_api import count_parameters
from benchmark.registry.shapes import DataShape
from benchmark.results.outcomes import FitOutcome
from benchmark.results.records import (
    EnvironmentInfo,
    ModelInfo,
    RunRecord,
    is_finished,
    make_record,
    now,
    write_json_atomic,
    write_record,
)
from benchmark.run.config import RunConfig, deep_merge, load_profile, resolve_run
from benchmark.run.hardware import cpu_bf16_native
from benchmark.run.status import first_process, heartbeat


def plan_runs(
    models: str,
    datasets: str,
    profile: str,
    seeds: list[int],
    overrides: dict[str, dict[str, Any]] | None = None,
    pred_lens: list[int] | None = None,
) -> list[RunConfig]:
    """Every (dataset, model, pred_len, seed) run of a sweep, fully resolved, in execution order.

    `pred_lens` (`bench run --pred-lens`): one run per prediction length, each with `data.t_out` set
    at command-line precedence, so its run id is that of the same run with `--set data.t_out=L`.
    None: no such axis (t_out as the profile and `overrides` give it). Every run is resolved (and its
    data settings checked, e.g. a length a CHDL sequence cannot hold; its model keys against the model's
    config) before any run starts.
    """
    model_names = resolve_model_names(models)
    check_model_overrides((overrides or {}).get("model") or {}, model_names)
    dataset_names = resolve_dataset_names(datasets)
    if not dataset_names:
        raise BenchError("No dataset given. Pass --dataset NAME[:task]; `bench datasets` lists them.")
    profile_values = load_profile(profile)
    length_overrides = [overrides] if pred_lens is None else [
        deep_merge(overrides or {}, {"data": {"t_out": length}}) for length in check_pred_lens(pred_lens, overrides)]
    return [
        resolve_run(profile, model, dataset, seed, run_overrides, profile=profile_values)
        for dataset in dataset_names
        for model in model_names
        for run_overrides in length_overrides
        for seed in seeds
    ]


def check_pred_lens(pred_lens: list[int], overrides: dict[str, dict[str, Any]] | None = None) -> list[int]:
    """`pred_lens` when they are distinct positive integers and `overrides` sets no `data.t_out`;
    a `ConfigError` otherwise (duplicates are refused, not merged)."""
    if not pred_lens:
        raise ConfigError("--pred-lens needs at least one prediction length, for example --pred-lens 3,6,12.")
    bad = [length for length in pred_lens if isinstance(length, bool) or not isinstance(length, int) or length < 1]
    if bad:
        raise ConfigError(f"--pred-lens takes positive whole numbers of frames (data.t_out), for example "
                          f"--pred-lens 3,6,12; {', '.join(repr(b) for b in bad)} "
                          f"{'is not one' if len(bad) == 1 else 'are not'}.")
    repeated = sorted({length for length in pred_lens if pred_lens.count(length) > 1})
    if repeated:
        raise ConfigError(f"--pred-lens lists {', '.join(map(str, repeated))} more than once; give each "
                          "prediction length once (a repeated length would be the same run).")
    if "t_out" in ((overrides or {}).get("data") or {}):
        raise ConfigError(f"Both --pred-lens and --set data.t_out={overrides['data']['t_out']} set the prediction "
                          "length; use one of them: --pred-lens L1,L2,... for a sweep, --set data.t_out=L for one "
                          "length.")
    return list(pred_lens)


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def run_device(accelerator: str) -> str:
    """The device ("cuda" or "cpu") a run with `train.accelerator = accelerator` trains and is scored on."""
    if accelerator in ("auto", "gpu", "cuda"):
        if torch.cuda.is_available():
            return "cuda"
        if accelerator != "auto":
            raise ConfigError(f"train.accelerator={accelerator!r} asks for a GPU, but CUDA is not available on "
                              "this machine. Use --set train.accelerator=cpu (or auto).")
    return "cpu"


def environment_info(model: torch.nn.Module, device: str) -> EnvironmentInfo:
    """Versions, hardware and backend facts stored with every record.

    Raises `ConfigError` when the model's selective-scan backend cannot run on `device`.
    """
    import lightning
    import numpy

    cuda = device == "cuda"
    return EnvironmentInfo(
        python=platform.python_version(),
        torch=torch.__version__,
        lightning=lightning.__version__,
        numpy=numpy.__version__,
        platform=platform.platform(),
        processor=platform.processor() or platform.machine(),
        cpu_count=os.cpu_count(),
        torch_threads=torch.get_num_threads(),
        device=torch.cuda.get_device_name(0) if cuda else "cpu",
        cuda=torch.version.cuda if cuda else None,
        hostname=socket.gethostname(),
        git_commit=_git_commit(),
        selective_scan_backend=model.selective_scan_backend(device),
        cpu_bf16=cpu_bf16_native(),
    )


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


def planned_steps(config: RunConfig, train_samples: int) -> tuple[int, int]:
    """`(steps per epoch, total optimizer steps)` of `config` over `train_samples` training windows.

    The same count as Lightning's `estimated_stepping_batches` (last partial batch kept, batches
    split over `devices x num_nodes` processes, capped by `limit_train_batches`).
    """
    cfg = config.train
    world = int(cfg["devices"]) * int(cfg["num_nodes"]) if isinstance(cfg["devices"], int) else 1
    per_epoch = math.ceil(math.ceil(train_samples / world) / int(cfg["batch_size"]))
    if cfg["limit_train_batches"] is not None:
        per_epoch = min(per_epoch, int(cfg["limit_train_batches"]))
    return per_epoch, per_epoch * int(cfg["epochs"])


def describe_plan(config: RunConfig, data_cache: DataCache | None = None) -> dict[str, Any]:
    """What a run will do, resolved against its data: optimizer steps and the model's schedule in steps."""
    data = (data_cache or DataCache()).get(config)
    spec = get_model_spec(config.model)
    if not spec.trainable:
        return {"trainable": False}
    per_epoch, total = planned_steps(config, len(data.train))
    model = create_model(config.model, data.shape, **config.model_args)
    return {
        "train_samples": len(data.train),
        "steps_per_epoch": per_epoch,
        "total_steps": total,
        "parameters": count_parameters(model),
        "schedule": model.plan_schedule(total),
    }


def execute_run(
    config: RunConfig, results_dir: Path, progress: bool = False, data_cache: DataCache | None = None
) -> RunRecord | None:
    """Train (unless the model has no parameters to train), test, and store one run's record.

    Returns the record; None in the processes of a multi-process (DDP) run but the first, which
    store nothing. While it runs, the first process keeps a heartbeat in the run folder
    (`running.json`, see `benchmark.run.status`), removed when the run ends, however it ends.
    """
    started = now()
    run_dir = open_run_dir(config, results_dir)
    with heartbeat(run_dir):
        return _execute(config, results_dir, run_dir, started, progress, data_cache or DataCache())


def _execute(config: RunConfig, results_dir: Path, run_dir: Path, started: str, progress: bool,
             data_cache: DataCache) -> RunRecord | None:
    import lightning as L

    from benchmark.run.training import fit, test
    from benchmark.scoring.evaluation import write_per_sample, write_predictions

    data = _load_checked(config, data_cache)
    L.seed_everything(config.seed, workers=True, verbose=False)
    spec = get_model_spec(config.model)
    model = create_model(config.model, data.shape, **config.model_args)
    device = run_device(config.train["accelerator"])
    environment = environment_info(model, device)  # before training: a backend that cannot run here fails now
    fitted = fit(model, data, config, run_dir, progress=progress) if spec.trainable else FitOutcome.untrained()
    if not fitted.is_global_zero:  # in a DDP run, only the first process scores and records
        return None
    tested = test(model, data, config, device)
    per_sample_file = write_per_sample(run_dir, tested.per_sample) if tested.per_sample else None
    predictions_file, spectra_file = write_predictions(run_dir, tested.kept or {})
    record = make_record(config, data, environment, _model_info(spec, model), fitted, tested, started,
                         per_sample_file=per_sample_file, predictions_file=predictions_file,
                         spectra_file=spectra_file)
    write_record(results_dir, record)
    (run_dir / "error.json").unlink(missing_ok=True)
    return record


def execute_run_keeping_errors(
    config: RunConfig, results_dir: Path, progress: bool = False, data_cache: DataCache | None = None
) -> RunRecord | None:
    """`execute_run`, and when it fails, the reason in the run's error.json (then the error is raised again).

    What a SLURM job runs (`benchmark.run.launchers.run_job`): nobody watches its terminal, so every
    failure, a configuration error included, is kept where `bench status` reads it.
    """
    try:
        return execute_run(config, results_dir, progress=progress, data_cache=data_cache)
    except Exception as error:
        if first_process():
            record_failure(config, results_dir, error)
        raise


def record_failure(config: RunConfig, results_dir: Path, error: BaseException) -> str:
    """Write why `config`'s run failed to its error.json (message and traceback); returns the message.

    A disk that is full (or refuses writes) cannot take the error.json either: the message is returned all the same."""
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        message = (f"The disk holding {results_dir} is full ({error.strerror}). Free some space and run the same "
                   "command again: finished runs are kept and this run resumes from its last checkpoint.")
    else:
        message = str(error) if isinstance(error, BenchError) else f"{type(error).__name__}: {error}"
    with contextlib.suppress(OSError):  # best effort: the message reaches the user through the return value
        write_json_atomic(Path(results_dir) / config.run_id / "error.json",
                          {"error": message, "traceback": "".join(traceback.format_exception(error))})
    return message


def open_run_dir(config: RunConfig, results_dir: Path) -> Path:
    """The run's folder, with the resolved config written into it before anything can fail.

    A --results path that is a file, or a folder that cannot be written to, is a `ConfigError` (it fails
    every run alike)."""
    run_dir = Path(results_dir) / config.run_id
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(run_dir / "config.json", config.to_dict())
    except NotADirectoryError:
        raise ConfigError(f"The results path {results_dir} is not a folder (it, or a folder above it, is a file). "
                          "Pass a folder (new or existing) with --results DIR.") from None
    except OSError as error:
        if error.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise
        raise ConfigError(f"The results folder {results_dir} is not writable ({error.strerror}). Pass a folder you "
                          "can write to with --results DIR (finished runs in the old one stay as they are).") from None
    return run_dir


def _load_checked(config: RunConfig, data_cache: DataCache) -> ForecastData:
    """The run's dataset, checked to yield the sample shape the run expects."""
    data = data_cache.get(config)
    expected = DataShape(config.t_in, config.t_out, *data.shape[2:])
    if tuple(data.shape) != tuple(expected):
        raise BenchError(f"{config.dataset} yields samples of shape {data.shape}, the run expects {expected}.")
    return data


def _model_info(spec: ModelSpec, model: torch.nn.Module) -> ModelInfo:
    return ModelInfo(parameters=count_parameters(model), family=spec.family, paper_name=spec.paper_name,
                     trainable=spec.trainable)


@dataclass
class SweepReport:
    """What happened to each run of a sweep."""

    finished: list[str]
    skipped: list[str]
    failed: dict[str, str]


@dataclass
class SweepPlan:
    """A sweep split into the runs still to execute and those already finished, and how many at once."""

    pending: list[tuple[int, RunConfig]]  # (index in the planned configs, config), in execution order
    skipped: list[tuple[int, RunConfig]]  # runs with a finished record
    jobs: int


def plan_sweep(configs: list[RunConfig], results_dir: Path, jobs: int | None = None) -> SweepPlan:
    """Which runs of `configs` still have to execute, and how many at once (`default_jobs` unless given).

    This is the one place where a sweep checks for finished records.
    """
    pending: list[tuple[int, RunConfig]] = []
    skipped: list[tuple[int, RunConfig]] = []
    for index, config in enumerate(configs):
        (skipped if is_finished(results_dir, config.run_id) else pending).append((index, config))
    jobs = default_jobs([config for _, config in pending]) if jobs is None else jobs
    _check_jobs(jobs, configs)
    return SweepPlan(pending, skipped, jobs)


def default_jobs(pending: list[RunConfig]) -> int:
    """How many of the `pending` runs to execute at once when `--jobs` is not given.

    One on a CUDA machine (the runs share the GPU) or when a run trains on several devices itself
    (DDP); on a CPU-only machine one run per core (up to the number of runs), each with
    `cores // jobs` threads: the small models of the `smoke` and `quick` profiles use one core far
    better than two.
    """
    if torch.cuda.is_available() or any(_multi_device(c) for c in pending):
        return 1
    return max(1, min(len(pending), os.cpu_count() or 1))


def _multi_device(config: RunConfig) -> bool:
    return int(config.train["devices"]) > 1 or int(config.train["num_nodes"]) > 1


def _check_jobs(jobs: int, configs: list[RunConfig]) -> None:
    if jobs < 1:
        raise ConfigError(f"--jobs must be at least 1 (got {jobs}); leave it out to pick one run per CPU core.")
    if jobs > 1 and any(_multi_device(c) for c in configs):
        raise ConfigError("Parallel runs (--jobs > 1) cannot be combined with multi-device training "
                          "(train.devices or train.num_nodes > 1); use --jobs 1.")


_worker_cache: DataCache | None = None


def _start_worker(threads: int) -> None:
    global _worker_cache
    torch.set_num_threads(threads)
    _worker_cache = DataCache()


def _execute_in_worker(config: RunConfig, results_dir: Path) -> RunRecord | None:
    return _execute_and_keep_errors(config, results_dir, False, _worker_cache or DataCache())


class _RunFailed(Exception):
    """A run that broke for a reason specific to it (kept in its error.json); the sweep goes on."""


def _execute_and_keep_errors(
    config: RunConfig, results_dir: Path, progress: bool, cache: DataCache
) -> RunRecord | None:
    try:
        return execute_run(config, results_dir, progress=progress, data_cache=cache)
    except (DataError, ConfigError, UnknownNameError):
        raise  # the data or the configuration is wrong for every run: stop and say so
    except Exception as error:  # a run that breaks does not stop the others; its reason is kept
        raise _RunFailed(record_failure(config, results_dir, error)) from None


def run_sweep(
    configs: list[RunConfig],
    results_dir: Path,
    progress: bool = False,
    on_event: Callable[[str, int, RunConfig, Any], None] | None = None,
    jobs: int | None = 1,
) -> SweepReport:
    """Execute every unfinished run of `configs` (`plan_sweep`, then `execute_sweep`)."""
    return execute_sweep(plan_sweep(configs, results_dir, jobs), results_dir, progress, on_event)


def execute_sweep(
    plan: SweepPlan,
    results_dir: Path,
    progress: bool = False,
    on_event: Callable[[str, int, RunConfig, Any], None] | None = None,
) -> SweepReport:
    """Execute the pending runs of `plan`; a failing run does not stop the others.

    With `plan.jobs > 1` (and several runs pending) that many runs execute at once, each in its own
    process with an equal share of the CPU threads and no progress bars (records are written by
    each run atomically, so parallel runs never clash).

    `on_event(kind, index, config, payload)` is called with kind "skip" (each already finished
    run, first), "start", "done" (payload: the `RunRecord`, None from a DDP process that stores
    nothing) or "fail" (payload: the error message) so that a front end can show progress.
    """
    notify = on_event or (lambda *args: None)
    report = SweepReport([], [config.run_id for _, config in plan.skipped], {})
    for index, config in plan.skipped:
        notify("skip", index, config, None)
    pending, jobs = plan.pending, plan.jobs

    def settle(index: int, config: RunConfig, outcome: Callable[[], RunRecord | None]) -> None:
        try:
            record = outcome()
        except _RunFailed as failure:
            report.failed[config.run_id] = str(failure)
            notify("fail", index, config, str(failure))
        else:
            report.finished.append(config.run_id)
            notify("done", index, config, record)

    if jobs == 1 or len(pending) <= 1:
        cache = DataCache()
        for index, config in pending:
            notify("start", index, config, None)
            settle(index, config, lambda c=config: _execute_and_keep_errors(c, results_dir, progress, cache))
        return report
    _run_parallel(pending, results_dir, jobs, notify, settle)
    return report


def _result_of(future: Any, config: RunConfig) -> RunRecord | None:
    from concurrent.futures.process import BrokenProcessPool

    try:
        return future.result()
    except BrokenProcessPool:
        raise BenchError(
            f"A worker process died while running {config.run_id} (killed by the system, most often for "
            "lack of memory). Finished runs are kept: run the same command again with --jobs 1 to resume "
            "the others one at a time."
        ) from None


def _run_parallel(pending: list[tuple[int, RunConfig]], results_dir: Path, jobs: int,
                  notify: Callable[..., None], settle: Callable[..., None]) -> None:
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    # Load (and, for generated datasets, write) each distinct dataset once here, so that the
    # workers only read it and a data error stops the sweep before any run starts.
    prepared: set[str] = set()
    for _, config in pending:
        key = json.dumps([config.dataset, config.data], sort_keys=True, default=str)
        if key not in prepared:
            load_dataset(config.dataset, config.data)
            prepared.add(key)
    threads = max(1, (os.cpu_count() or 1) // jobs)
    executor = ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_start_worker, initargs=(threads,))
    try:
        queue = list(pending)
        running: dict[Any, tuple[int, RunConfig]] = {}
        while queue or running:
            while queue and len(running) < jobs:
                index, config = queue.pop(0)
                notify("start", index, config, None)
                running[executor.submit(_execute_in_worker, config, Path(results_dir))] = (index, config)
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                index, config = running.pop(future)
                settle(index, config, lambda f=future, c=config: _result_of(f, c))
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
