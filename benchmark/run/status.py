"""The state of every run in a results folder (`bench status`), and the heartbeat a running run keeps.

What a run folder `results/<run_id>/` holds, and what `run_states` reads from it (first match wins):

    record.json     a valid record: finished
    running.json    the heartbeat of a run in progress (`Heartbeat`: pid, host, started_at, heartbeat_at,
                    refreshed every HEARTBEAT_SECONDS by `execute_run`, removed when it returns or raises):
                    running; older than STALE_SECONDS, or naming a pid that no longer exists on this host:
                    stale (the process died without cleaning up: killed, out of memory, a node lost)
    slurm/job.json  a job submitted by `benchmark.run.launchers`, still queued or running: pending / submitted
    record.json     an unreadable one: corrupt (with the reason)
    error.json      failed, with the one-line reason
    slurm/job.json  a job that ended without a record or error: failed (the job's state)
    config.json     started, but nothing else: incomplete (interrupted; `bench run` resumes it)

A folder with none of these files is not a run folder: it is skipped with a warning. Folders whose
name starts with a dot (`results/.slurm/`, where job arrays keep their files) are skipped silently.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import socket
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmark.core.errors import BenchWarning, DataError
from benchmark.results.records import RECORD_NAME, SCHEMA_VERSION, RunRecord, now, read_record, write_json_atomic
from benchmark.run.config import RunConfig
from benchmark.run.jobs import ACTIVE_STATES, JOB_FILE, JobInfo, job_states, pid_alive, read_job

RUNNING_NAME = "running.json"
ERROR_NAME = "error.json"
CONFIG_NAME = "config.json"
HEARTBEAT_SECONDS = 30.0
STALE_SECONDS = 300.0  # ten missed heartbeats
# The order of the summary line; every state a `RunState` can have.
STATES = ("finished", "running", "pending", "submitted", "stale", "failed", "corrupt", "incomplete", "not started")
_MARKERS = (RECORD_NAME, RUNNING_NAME, ERROR_NAME, CONFIG_NAME, JOB_FILE)
_RANK_VARIABLES = ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID", "SUBMITIT_LOCAL_GLOBALID")


class Heartbeat:
    """`running.json` in a run folder for as long as the `with` block runs, refreshed by a daemon thread."""

    def __init__(self, run_dir: Path, interval: float = HEARTBEAT_SECONDS) -> None:
        self.path = Path(run_dir) / RUNNING_NAME
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        job_id = os.environ.get("SLURM_JOB_ID") or os.environ.get("SUBMITIT_LOCAL_JOB_ID")
        self._info = {"pid": os.getpid(), "host": socket.gethostname(), "started_at": now(), "job_id": job_id}

    def __enter__(self) -> Heartbeat:
        self._beat()
        self._thread = threading.Thread(target=self._loop, name="bench-heartbeat", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.path.unlink(missing_ok=True)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._beat()

    def _beat(self) -> None:
        # a full or vanished disk must not stop the run: the heartbeat only informs `bench status`
        with contextlib.suppress(OSError):
            write_json_atomic(self.path, {**self._info, "heartbeat_at": now()})


def first_process() -> bool:
    """False in the other processes of a multi-process (DDP) run, which leave the run's files to rank 0."""
    for name in _RANK_VARIABLES:
        value = os.environ.get(name, "0").strip()
        if value.isdigit() and int(value) != 0:
            return False
    return True


def heartbeat(run_dir: Path) -> contextlib.AbstractContextManager[Any]:
    """A `Heartbeat` for `run_dir` in the first process of a run; nothing in the others."""
    return Heartbeat(run_dir) if first_process() else contextlib.nullcontext()


def heartbeat_problem(beat: dict[str, Any], clock: float | None = None) -> str | None:
    """Why the heartbeat `beat` (a running.json) is stale, or None while its run is alive."""
    clock = time.time() if clock is None else clock
    age = _age_seconds(beat.get("heartbeat_at"), clock)
    host, pid = beat.get("host"), beat.get("pid")
    if host == socket.gethostname() and isinstance(pid, int) and not pid_alive(pid):
        return f"pid {pid} gone"
    if age is None:
        return "unreadable heartbeat time"
    if age > STALE_SECONDS:
        return f"no heartbeat for {_duration(age)}" + (f" (on {host})" if host else "")
    return None


def read_heartbeat(run_dir: Path) -> dict[str, Any] | None:
    """The run folder's running.json, or None when there is none (or it cannot be read)."""
    values = _read_json(Path(run_dir) / RUNNING_NAME)
    return values if isinstance(values, dict) else None


@dataclass
class RunState:
    """One row of `bench status`: a run, what state it is in, and a short detail."""

    run_id: str
    state: str  # one of STATES
    detail: str = ""
    model: str | None = None
    dataset: str | None = None
    seed: int | None = None
    t_out: int | None = None
    log: str | None = None  # the job's log, for a failed SLURM run


def run_states(results_dir: Path, planned: list[RunConfig] | None = None,
               clock: float | None = None) -> list[RunState]:
    """The state of each run folder in `results_dir`, and of each `planned` run (never started: no folder).

    With `planned`, its runs come first in plan order, then the other folders by name.
    A folder that is not a run folder is skipped with a warning.
    """
    folders = _run_folders(Path(results_dir))
    order: list[tuple[str, RunConfig | None]] = []
    listed: set[str] = set()
    for config in planned or []:
        if config.run_id not in listed:
            order.append((config.run_id, config))
            listed.add(config.run_id)
    order += [(run_id, None) for run_id in sorted(folders) if run_id not in listed]
    jobs = {run_id: read_job(folders[run_id]) for run_id, _ in order if run_id in folders}
    states = job_states([info for info in jobs.values() if info is not None])
    clock = time.time() if clock is None else clock
    rows = []
    for run_id, config in order:
        if run_id not in folders:
            rows.append(_with_identity(RunState(run_id, "not started"), config))
            continue
        info = jobs.get(run_id)
        row = folder_state(folders[run_id], info, states.get(info.job_id) if info else None, clock)
        rows.append(_with_identity(row, config or _stored_config(folders[run_id])))
    return rows


def summary(rows: list[RunState]) -> str:
    """`"5 runs: 3 finished, 1 running, 1 failed."` (states in the order of STATES, empty ones left out)."""
    counts = {state: sum(row.state == state for row in rows) for state in STATES}
    parts = [f"{count} {state}" for state, count in counts.items() if count]
    return f"{len(rows)} run{'s' if len(rows) != 1 else ''}: {', '.join(parts) or 'none'}."


def folder_state(run_dir: Path, job: JobInfo | None = None, job_state: str | None = None,
                 clock: float | None = None) -> RunState:
    """The state of the run whose folder is `run_dir` (the order of this module's docstring).

    `job` is its slurm/job.json and `job_state` that job's state (`benchmark.run.jobs.job_states`).
    """
    run_dir = Path(run_dir)
    run_id = run_dir.name
    job_state = job_state or ("UNKNOWN" if job is not None else None)
    record, problem = _record_or_problem(run_dir)
    if record is not None:
        trained = f", {_duration(record.cost.train_seconds)}" if record.model_info.trainable else ""
        return RunState(run_id, "finished", f"MSE {record.test.normalized.mse:.4g}{trained}")
    beat = read_heartbeat(run_dir)
    stale = heartbeat_problem(beat, clock) if beat else None
    if beat and stale is None:
        return RunState(run_id, "running", _running_detail(beat, clock))
    if job is not None and job_state in ACTIVE_STATES:
        return _queued_state(run_id, job, job_state)
    if beat:
        ended = f"; job {job.job_id} {job_state}" if job is not None and job_state else ""
        return RunState(run_id, "stale", f"crashed? {stale}{ended}", log=job.stderr if job else None)
    if problem:
        return RunState(run_id, "corrupt", problem)
    error = error_reason(run_dir, job)
    if error is not None:
        return RunState(run_id, "failed", error, log=job.stderr if job else None)
    if job is not None:
        return RunState(run_id, "failed", f"job {job.job_id} ended ({job_state}) without a record; "
                                          "see its log", log=job.stderr)
    return RunState(run_id, "incomplete", "interrupted? bench run resumes it")


def _queued_state(run_id: str, job: JobInfo, state: str) -> RunState:
    """A run whose SLURM job is still in the queue or starting (no heartbeat yet)."""
    if state == "PENDING":
        return RunState(run_id, "pending", f"job {job.job_id}")
    if state == "RUNNING":
        return RunState(run_id, "running", f"job {job.job_id}, starting")
    if state == "UNKNOWN":
        return RunState(run_id, "submitted", f"job {job.job_id}, state unknown")
    return RunState(run_id, "submitted", f"job {job.job_id} {state}")


def _run_folders(results_dir: Path) -> dict[str, Path]:
    """The run folders of `results_dir` by run id; other folders are skipped with a warning."""
    folders: dict[str, Path] = {}
    if not results_dir.is_dir():
        return folders
    for path in sorted(results_dir.iterdir()):
        if not path.is_dir() or path.name.startswith("."):
            continue
        if any((path / marker).exists() for marker in _MARKERS):
            folders[path.name] = path
        else:
            warnings.warn(f"{path} is not a run folder (it has none of {', '.join(_MARKERS)}); skipped.",
                          BenchWarning, stacklevel=3)
    return folders


def _record_or_problem(run_dir: Path) -> tuple[RunRecord | None, str | None]:
    """The folder's finished record, or why its record.json cannot be used (None, None: there is none)."""
    path = run_dir / RECORD_NAME
    if not path.exists():
        return None, None
    try:
        record = read_record(path)
    except DataError:
        return None, _record_problem(path)
    if record.status != "finished":
        return None, f"status {record.status!r}"
    return record, None


def _record_problem(path: Path) -> str:
    """A short reason why the record at `path` does not read (the long one is `read_record`'s message)."""
    try:
        values = json.loads(path.read_text())
    except OSError as error:
        return f"unreadable ({error.strerror})"
    except json.JSONDecodeError as error:
        return f"not valid JSON (line {error.lineno})"
    if not isinstance(values, dict):
        return "not a JSON object"
    version = values.get("schema_version")
    if version != SCHEMA_VERSION:
        return f"schema version {version!r}, not {SCHEMA_VERSION}"
    try:
        RunRecord.from_dict(values)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        return f"{type(error).__name__}: {error}"
    return "unreadable"


def error_reason(run_dir: Path, job: JobInfo | None) -> str | None:
    """The first line of the reason in the run's error.json; None without one, or when it predates the run's
    SLURM job `job` (a reason from an earlier attempt)."""
    path = run_dir / ERROR_NAME
    if not path.exists():
        return None
    job_file = run_dir / JOB_FILE
    if job is not None and job_file.exists() and path.stat().st_mtime < job_file.stat().st_mtime:
        return None  # from an earlier attempt: the job submitted since then has ended otherwise
    values = _read_json(path)
    message = str(values.get("error", "")) if isinstance(values, dict) else ""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    return lines[0] if lines else "error.json gives no reason"


def _stored_config(run_dir: Path) -> RunConfig | None:
    """The run's configuration from its config.json (or its record's), when readable."""
    for name, key in ((CONFIG_NAME, None), (RECORD_NAME, "config")):
        values = _read_json(run_dir / name)
        if isinstance(values, dict) and key is not None:
            values = values.get(key)
        if isinstance(values, dict):
            try:
                return RunConfig.from_dict(values)
            except (KeyError, TypeError, ValueError):
                continue
    return None


def _with_identity(row: RunState, config: RunConfig | None) -> RunState:
    if config is not None:
        row.model, row.dataset, row.seed = config.model, config.dataset, config.seed
        row.t_out = config.data.get("t_out") if isinstance(config.data, dict) else None
    elif not row.detail:
        row.detail = "no readable config.json"
    return row


def _running_detail(beat: dict[str, Any], clock: float | None) -> str:
    clock = time.time() if clock is None else clock
    started = _age_seconds(beat.get("started_at"), clock)
    where = f"pid {beat.get('pid')} on {beat.get('host')}"
    return f"{where}, for {_duration(started)}" if started is not None else where


def _age_seconds(stamp: Any, clock: float) -> float | None:
    try:
        return max(0.0, clock - dt.datetime.fromisoformat(str(stamp)).timestamp())
    except (TypeError, ValueError):
        return None


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def _read_json(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None

