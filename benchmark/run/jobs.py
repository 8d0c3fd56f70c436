"""Submitted jobs: what `slurm/job.json` keeps about a run's SLURM (or local) job, and what state the job is in.

`benchmark.run.launchers` writes job.json when it submits a run; the launchers and `benchmark.run.status` read it
back here. This module imports no other module of the benchmark, so that both the launchers (which import
the runner) and the status (which the runner imports for its heartbeat) can use it without an import
circle; it imports submitit only inside `job_states`, when sacct is on the PATH, so that `bench status`
stays fast.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

JOB_FILE = "slurm/job.json"
# SLURM job states in which a job may still run (UNKNOWN: neither sacct nor squeue answered; a job is not
# submitted twice on a guess)
ACTIVE_STATES = frozenset({"PENDING", "RUNNING", "REQUEUED", "CONFIGURING", "COMPLETING", "RESIZING", "SUSPENDED",
                           "REQUEUE_HOLD", "REQUEUE_FED", "SIGNALING", "STAGE_OUT", "READY", "UNKNOWN"})


@dataclass(frozen=True)
class JobInfo:
    """What `slurm/job.json` keeps about a submitted job."""

    job_id: str
    executor: str  # "slurm" or "local"
    host: str  # where it was submitted from
    submitted_at: str
    folder: str  # submitit's folder, with %j for the job id
    stdout: str
    stderr: str
    result: str  # submitit's result pickle (written when the job's function returns or raises)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return dict(vars(self))


def read_job(run_dir: Path) -> JobInfo | None:
    """The run folder's slurm/job.json, or None when there is none (or it cannot be read)."""
    try:
        values = json.loads((Path(run_dir) / JOB_FILE).read_text())
        return JobInfo(**values)
    except (OSError, ValueError, TypeError):
        return None


def job_states(infos: list[JobInfo]) -> dict[str, str]:
    """Each job's state by job id: SLURM's (PENDING, RUNNING, COMPLETED, FAILED, TIMEOUT, ...; from sacct
    through submitit, else squeue; ENDED when it left the queue, UNKNOWN when neither answers), or for the
    local executor RUNNING, COMPLETED (its result is stored) or LOST (its process is gone)."""
    states = {info.job_id: _local_state(info) for info in infos if info.executor == "local"}
    slurm = [info for info in infos if info.executor != "local"]
    if slurm:
        states.update(_slurm_states(slurm))
    return states


def _local_state(info: JobInfo) -> str:
    if Path(info.result).exists():
        return "COMPLETED"
    if info.host != socket.gethostname():
        return "UNKNOWN"
    return "RUNNING" if info.job_id.isdigit() and pid_alive(int(info.job_id)) else "LOST"


def _slurm_states(infos: list[JobInfo]) -> dict[str, str]:
    states = {info.job_id: "UNKNOWN" for info in infos}
    if shutil.which("sacct") is not None:
        import submitit

        jobs = [submitit.SlurmJob(folder=info.folder, job_id=info.job_id) for info in infos]
        jobs[0].watcher.update()  # one sacct call for all of them
        for job in jobs:
            states[job.job_id] = job.watcher.get_state(job.job_id, mode="cache").split()[0].upper()
    unknown = [job_id for job_id, state in states.items() if state == "UNKNOWN"]
    if unknown and shutil.which("squeue") is not None:
        states.update(_squeue_states(unknown))
    return states


def _squeue_states(job_ids: list[str]) -> dict[str, str]:
    """States of `job_ids` from squeue (ENDED for those no longer in the queue)."""
    try:
        out = subprocess.run(["squeue", "-h", "-r", "-o", "%i|%T", "-j", ",".join(job_ids)], capture_output=True,
                             text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return {}
    if out.returncode != 0 and "Invalid job id" not in out.stderr:
        return {}
    listed = dict(line.split("|", 1) for line in out.stdout.splitlines() if "|" in line)
    return {job_id: listed.get(job_id, "ENDED").strip().upper() for job_id in job_ids}


def pid_alive(pid: int) -> bool:
    """Whether process `pid` exists on this host and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[-1].split()[0] != "Z"
    return True
