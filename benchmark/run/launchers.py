"""`--launcher slurm`: each run as a SLURM job (submitit), executing the same `execute_run` as a local run.

`submit_runs` skips the finished runs (`plan_sweep`) and the runs already queued or running (a
`results/<run_id>/slurm/job.json` whose job is still active, or a live heartbeat), and submits the
rest: one job per run, or with `array_parallelism` one job array (per job shape) with that many
runs at once. A job's submitit files and logs go to `results/<run_id>/slurm/<job id>/` (an array's
to `results/.slurm/<array>/`, linked from each run's `slurm/log.out` and `slurm/log.err`);
`slurm/job.json` keeps the job id. `wait_for` waits for the jobs and reports like `execute_sweep`.

A job runs `train.devices` tasks per node on `train.num_nodes` nodes, one GPU each (unless
`gpus_per_node` says otherwise); Lightning's DDP picks its ranks from SLURM's environment. The
`local` executor (submitit's LocalExecutor, for tests and for machines without SLURM) runs the same
pickled job in a local subprocess, with one task: Lightning starts its own DDP processes there.

This module imports neither torch nor submitit at the top, so that `bench status` stays fast.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmark.core.errors import BenchError, ConfigError
from benchmark.run.config import AUTO_PRECISION, RunConfig, load_profile
from benchmark.run.jobs import ACTIVE_STATES, JOB_FILE, JobInfo, job_states, read_job

EXECUTORS = ("slurm", "local")
LOCAL_TIMEOUT_MIN = 24 * 60  # the local executor kills a job after its timeout; it has no --time default of its own
# #SBATCH keys that have options of their own, or that submitit sets
_OWN_KEYS = {"partition": "--partition", "time": "--time", "nodes": "--nodes", "gpus_per_node": "--gpus-per-node",
             "cpus_per_task": "--cpus-per-task", "mem": "--mem", "account": "--account",
             "ntasks_per_node": "train.devices (--set train.devices=N)", "array": "--array-parallelism"}
_SUBMITIT_KEYS = {"output", "error", "job_name", "open_mode", "signal", "wckey"}
_TIME = re.compile(r"^(?:(?P<days>\d+)-)?(?P<hours>\d+):(?P<minutes>\d\d):(?P<seconds>\d\d)$")
_MEM = re.compile(r"^(\d+)([KMGT]?)B?$")  # 64G (SLURM's form), also 64g and 64GB


@dataclass(frozen=True)
class SlurmOptions:
    """What every job of a `--launcher slurm` sweep asks SLURM for (checked when made)."""

    executor: str = "slurm"  # "slurm", or "local": submitit's LocalExecutor (subprocesses, no SLURM)
    partition: str | None = None
    time_min: int | None = None  # wall-clock limit in minutes; required by the slurm executor
    gpus_per_node: int | None = None  # None: train.devices (0 for runs with train.accelerator=cpu)
    nodes: int | None = None  # None: train.num_nodes
    cpus_per_task: int | None = None
    mem: str | None = None  # per node, SLURM's form: 64G, 500M
    account: str | None = None
    additional: dict[str, Any] = field(default_factory=dict)  # extra #SBATCH lines: key -> value (True: a flag)
    array_parallelism: int | None = None  # None: one job per run; N: job arrays running N runs at once

    def __post_init__(self) -> None:
        if self.executor not in EXECUTORS:
            raise ConfigError(f"--slurm-executor {self.executor!r}: choose slurm (sbatch) or local (subprocesses).")
        for flag, value, least in (("--gpus-per-node", self.gpus_per_node, 0), ("--nodes", self.nodes, 1),
                                   ("--cpus-per-task", self.cpus_per_task, 1), ("--time", self.time_min, 1),
                                   ("--array-parallelism", self.array_parallelism, 1)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < least):
                raise ConfigError(f"{flag} must be a whole number of at least {least} (got {value!r}).")
        if self.mem is not None and not re.fullmatch(r"\d+[KMGT]?", self.mem):
            raise ConfigError(f"--mem {self.mem!r} is not a SLURM memory size; write it like 64G or 500M.")
        if self.executor == "slurm" and self.time_min is None:
            raise ConfigError("--launcher slurm needs --time (minutes, or HH:MM:SS such as --time 24:00:00): "
                              "without it submitit would ask SLURM for 5 minutes.")

    @classmethod
    def from_cli(cls, executor: str = "slurm", partition: str | None = None, wall_time: str | None = None,
                 gpus_per_node: int | None = None, nodes: int | None = None, cpus_per_task: int | None = None,
                 mem: str | None = None, account: str | None = None, sbatch: list[str] | None = None,
                 array_parallelism: int | None = None) -> SlurmOptions:
        """The options as the command line gives them (`--time 24:00:00`, `--sbatch qos=high`, ...)."""
        return cls(executor=executor, partition=partition,
                   time_min=None if wall_time is None else parse_time(wall_time),
                   gpus_per_node=gpus_per_node, nodes=nodes, cpus_per_task=cpus_per_task,
                   mem=None if mem is None else _slurm_memory(mem), account=account,
                   additional=parse_sbatch(sbatch or []), array_parallelism=array_parallelism)

    def check_runs(self, configs: list[RunConfig]) -> None:
        """A ConfigError when a run's training setup does not fit the job these options describe."""
        for config in configs:
            devices, num_nodes = int(config.train["devices"]), int(config.train["num_nodes"])
            where = f"{config.model} on {config.dataset}"
            if self.nodes is not None and self.nodes != num_nodes:
                raise ConfigError(f"--nodes {self.nodes} differs from train.num_nodes = {num_nodes} ({where}): "
                                  f"Lightning trains on train.num_nodes nodes. Pass --set train.num_nodes="
                                  f"{self.nodes} too, or leave --nodes out (it follows train.num_nodes).")
            if self.executor == "local" and num_nodes > 1:
                raise ConfigError(f"The local executor runs on this machine only, but train.num_nodes = {num_nodes} "
                                  f"({where}). Use --slurm-executor slurm, or --set train.num_nodes=1.")
            gpus, accelerator = self.gpus_per_node, str(config.train["accelerator"]).lower()
            # (--gpus-per-node 0 with accelerator auto: a CPU run on purpose)
            if gpus is not None and uses_gpu(config) and gpus < devices and (gpus > 0 or accelerator != "auto"):
                raise ConfigError(f"--gpus-per-node {self.gpus_per_node} is less than train.devices = {devices} "
                                  f"({where}): each DDP process of a run needs a GPU of its own. Pass "
                                  f"--gpus-per-node {devices} (or more), or --set train.devices="
                                  f"{self.gpus_per_node}.")


def _slurm_memory(text: str) -> str:
    """`64g` or `64GB` as SLURM writes it (`64G`); anything else as given, for `SlurmOptions` to refuse."""
    match = _MEM.match(text.strip().upper())
    return f"{match[1]}{match[2]}" if match else text


def parse_time(text: str) -> int:
    """`--time` in minutes: `90` (minutes), `24:00:00` (HH:MM:SS) or `1-12:00:00` (D-HH:MM:SS)."""
    text = str(text).strip()
    if text.isdigit():
        minutes = int(text)
    else:
        match = _TIME.match(text)
        if match is None or int(match["minutes"]) > 59 or int(match["seconds"]) > 59:
            raise ConfigError(f"--time {text!r} is not a duration: give minutes (--time 90) or HH:MM:SS "
                              "(--time 24:00:00, or with days D-HH:MM:SS such as --time 2-00:00:00).")
        seconds = ((int(match["days"] or 0) * 24 + int(match["hours"])) * 60 + int(match["minutes"])) * 60 \
            + int(match["seconds"])
        minutes = math.ceil(seconds / 60)
    if minutes < 1:
        raise ConfigError(f"--time {text!r} is shorter than a minute; a run needs at least --time 1.")
    return minutes


def parse_sbatch(assignments: list[str]) -> dict[str, Any]:
    """`--sbatch qos=high --sbatch exclusive` as submitit's `slurm_additional_parameters` ({"qos": "high",
    "exclusive": True}); keys with options of their own, or that submitit sets, are refused."""
    parameters: dict[str, Any] = {}
    for assignment in assignments:
        key, sep, value = assignment.partition("=")
        key = key.strip().lstrip("-").replace("-", "_")
        if not re.fullmatch(r"[a-z][a-z0-9_]*", key) or (sep and not value.strip()):
            raise ConfigError(f"--sbatch {assignment!r}: write an #SBATCH option as KEY=VALUE (--sbatch qos=high, "
                              "--sbatch constraint=a100) or a bare KEY for a flag (--sbatch exclusive).")
        if key in _OWN_KEYS:
            raise ConfigError(f"--sbatch {assignment!r}: use {_OWN_KEYS[key]} for that.")
        if key in _SUBMITIT_KEYS:
            raise ConfigError(f"--sbatch {assignment!r}: submitit sets --{key.replace('_', '-')} itself (the logs "
                              "go to results/<run id>/slurm/).")
        parameters[key] = value.strip() if sep else True
    return parameters


def uses_gpu(config: RunConfig) -> bool:
    """Whether the run asks for GPUs (any accelerator but cpu: auto trains on a GPU when the job has one)."""
    return str(config.train["accelerator"]).lower() != "cpu"


def _says_auto_precision(section: Any) -> bool:
    """Whether a profile (or one of its entries) sets `train.precision: auto` anywhere."""
    if not isinstance(section, dict):
        return False
    train = section.get("train")
    if isinstance(train, dict) and train.get("precision") == AUTO_PRECISION:
        return True
    return any(_says_auto_precision(value) for value in section.values())


def auto_precision_warning(configs: list[RunConfig]) -> str | None:
    """A warning for runs whose profile says `precision: auto` and that resolved to bf16-mixed on this,
    the submitting, machine: the jobs train in bf16-mixed wherever they land (a GPU node included)."""
    profiles = {c.profile for c in configs if c.train["precision"] == "bf16-mixed"}
    auto = sorted(p for p in profiles if _says_auto_precision(load_profile(p)))
    if not auto:
        return None
    return (f"The {', '.join(auto)} profile's train.precision: auto was decided on this machine, which computes "
            "bfloat16 natively: these jobs train in bf16-mixed on whatever node runs them. Pin it with --set "
            "train.precision=32-true (fp32) or =bf16-mixed to choose.")


def job_parameters(options: SlurmOptions, config: RunConfig) -> dict[str, Any]:
    """The submitit parameters (`AutoExecutor.update_parameters`) of the job that executes `config`."""
    devices, num_nodes = int(config.train["devices"]), int(config.train["num_nodes"])
    gpus = options.gpus_per_node if options.gpus_per_node is not None else devices if uses_gpu(config) else 0
    parameters = {
        "timeout_min": options.time_min or LOCAL_TIMEOUT_MIN,
        "nodes": num_nodes,
        "tasks_per_node": devices if options.executor == "slurm" else 1,
        "gpus_per_node": gpus or None,
        "cpus_per_task": options.cpus_per_task,
        "slurm_partition": options.partition,
        "slurm_mem": options.mem,
        "slurm_account": options.account,
        "slurm_additional_parameters": dict(options.additional) or None,
        "slurm_array_parallelism": options.array_parallelism,
    }
    return {key: value for key, value in parameters.items() if value is not None}


@dataclass
class SubmittedRun:
    """One run of `submit_runs`: submitted now, already queued or running (not again), or finished."""

    index: int  # its place among the configs given to `submit_runs`
    config: RunConfig
    action: str  # "submitted" | "queued" | "finished"
    info: JobInfo | None = None
    state: str | None = None  # the job's state, for a queued run
    detail: str = ""  # for a queued run: why it counts as queued
    job: Any = None  # the submitit Job, for a run submitted by this process

    @property
    def job_id(self) -> str | None:
        """The SLURM (or local process) id of the run's job, if it has one."""
        return self.info.job_id if self.info is not None else None


def run_job(config: RunConfig, results_dir: str) -> Any:
    """What each submitted job executes: `execute_run`, with a failure's reason kept in the run's error.json."""
    from benchmark.run.runner import execute_run_keeping_errors

    return execute_run_keeping_errors(config, Path(results_dir))


def submit_runs(configs: list[RunConfig], results_dir: Path, options: SlurmOptions) -> list[SubmittedRun]:
    """Submit each run of `configs` that is neither finished nor already queued; one entry per run, in order."""
    from benchmark.run.runner import plan_sweep

    options.check_runs(configs)
    missing = [tool for tool in ("sbatch", "srun") if options.executor == "slurm" and shutil.which(tool) is None]
    if missing:
        raise BenchError(f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not on the PATH here: "
                         "submit from a SLURM login node (or, to try the jobs on this machine, pass "
                         "--slurm-executor local).")
    results_dir = Path(results_dir).absolute()
    plan = plan_sweep(configs, results_dir, jobs=1)
    entries = [SubmittedRun(index, config, "finished") for index, config in plan.skipped]
    queued, to_submit = _split_queued(plan.pending, results_dir)
    entries += queued
    if to_submit:
        submit = _submit_arrays if options.array_parallelism else _submit_each
        entries += submit(to_submit, results_dir, options)
    return sorted(entries, key=lambda entry: entry.index)


def _split_queued(pending: list[tuple[int, RunConfig]], results_dir: Path
                  ) -> tuple[list[SubmittedRun], list[tuple[int, RunConfig]]]:
    """The pending runs already queued or running (their job is active, or their heartbeat alive), and the rest."""
    from benchmark.run.status import heartbeat_problem, read_heartbeat

    infos = {config.run_id: read_job(results_dir / config.run_id) for _, config in pending}
    states = job_states([info for info in infos.values() if info is not None])
    queued, rest = [], []
    for index, config in pending:
        info, beat = infos[config.run_id], read_heartbeat(results_dir / config.run_id)
        state = states.get(info.job_id) if info is not None else None
        if beat is not None and heartbeat_problem(beat) is None:
            where = f"running on {beat.get('host')} (pid {beat.get('pid')})"
            queued.append(SubmittedRun(index, config, "queued", info, state or "RUNNING", where))
        elif info is not None and state in ACTIVE_STATES:
            queued.append(SubmittedRun(index, config, "queued", info, state, f"job {info.job_id} {state}"))
        else:
            rest.append((index, config))
    return queued, rest


def _executor(folder: Path, options: SlurmOptions, config: RunConfig, name: str) -> Any:
    import submitit

    executor = submitit.AutoExecutor(folder=folder, cluster=options.executor)
    executor.update_parameters(name=name, **job_parameters(options, config))
    return executor


def _submit_each(to_submit: list[tuple[int, RunConfig]], results_dir: Path,
                 options: SlurmOptions) -> list[SubmittedRun]:
    """One job per run, its files in the run's slurm/ folder."""
    from benchmark.run.runner import open_run_dir

    entries = []
    for index, config in to_submit:
        run_dir = open_run_dir(config, results_dir)
        # the local executor names its files by job id too, but would leave an empty folder named %j
        folder = run_dir / "slurm" / ("%j" if options.executor == "slurm" else "")
        executor = _executor(folder, options, config, name=config.run_id)
        job = _submitted(lambda e=executor, c=config: e.submit(run_job, c, str(results_dir)))
        info = _record_job(run_dir, job, options, executor.folder)
        entries.append(SubmittedRun(index, config, "submitted", info, job=job))
    return entries


def _submit_arrays(to_submit: list[tuple[int, RunConfig]], results_dir: Path,
                   options: SlurmOptions) -> list[SubmittedRun]:
    """One job array per job shape (the runs of an array share its resources), its files in results/.slurm/."""
    from benchmark.run.runner import open_run_dir

    groups: dict[str, list[tuple[int, RunConfig]]] = {}
    for index, config in to_submit:
        key = json.dumps(job_parameters(options, config), sort_keys=True)
        groups.setdefault(key, []).append((index, config))
    entries = []
    for group in groups.values():
        run_dirs = [open_run_dir(config, results_dir) for _, config in group]
        array_dir = results_dir / ".slurm" / f"array-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
        folder = array_dir / ("%j" if options.executor == "slurm" else "")
        executor = _executor(folder, options, group[0][1], name=f"bench-{len(group)}-runs")
        configs = [config for _, config in group]
        jobs = _submitted(lambda e=executor, c=configs: e.map_array(run_job, c, [str(results_dir)] * len(c)))
        for (index, config), run_dir, job in zip(group, run_dirs, jobs, strict=True):
            info = _record_job(run_dir, job, options, executor.folder)
            _link_logs(run_dir, info)
            entries.append(SubmittedRun(index, config, "submitted", info, job=job))
    return entries


def _submitted(submit: Callable[[], Any]) -> Any:
    """The result of a submitit submission; sbatch's refusal as a BenchError that quotes it."""
    try:
        return submit()
    except subprocess.CalledProcessError as error:
        output = (error.output or b"").decode() if isinstance(error.output, bytes) else str(error.output or "")
        raise BenchError(f"sbatch refused the job: {output.strip() or error}. Check --partition, --account, "
                         "--time and the --sbatch options against your cluster (sinfo, sacctmgr).") from None
    except (FileNotFoundError, PermissionError) as error:
        raise BenchError(f"Cannot submit the job ({error}). Is SLURM installed here?") from None


def _record_job(run_dir: Path, job: Any, options: SlurmOptions, folder: Path) -> JobInfo:
    """Write the run's slurm/job.json for `job`, submitted with submitit folder `folder`; returns what it holds."""
    from benchmark.results.records import now, write_json_atomic

    info = JobInfo(job_id=str(job.job_id), executor=options.executor, host=socket.gethostname(), submitted_at=now(),
                   folder=str(folder), stdout=str(job.paths.stdout),
                   stderr=str(job.paths.stderr), result=str(job.paths.result_pickle))
    write_json_atomic(run_dir / JOB_FILE, info.to_dict())
    return info


def _link_logs(run_dir: Path, info: JobInfo) -> None:
    """`slurm/log.out` and `slurm/log.err` in the run folder, pointing at the array job's logs."""
    for name, target in (("log.out", info.stdout), ("log.err", info.stderr)):
        link = run_dir / "slurm" / name
        with contextlib.suppress(OSError):  # a file system without links: job.json still names the logs
            link.unlink(missing_ok=True)
            link.symlink_to(target)


def submission_lines(submitted: list[SubmittedRun], results_dir: Path) -> list[str]:
    """What `submit_runs` did, for the terminal: the counts, then one line per submitted or queued run."""
    counts = {action: sum(entry.action == action for entry in submitted) for action in _ACTIONS}
    done = [f"{counts[action]} {text}" for action, text in _ACTIONS.items() if counts[action]]
    lines = [f"{len(submitted)} runs planned: {', '.join(done)}" +
             ("." if counts["submitted"] else "; nothing to submit.")]
    for entry in submitted:
        config = entry.config
        where = f"{config.model} on {config.dataset} (seed {config.seed}, T_out {config.t_out})"
        if entry.action == "submitted":
            lines.append(f"  job {entry.job_id}: {where}")
        elif entry.action == "queued":
            lines.append(f"  already {entry.detail}, not submitted again: {where}")
    if counts["submitted"]:
        lines.append(f"Each job's logs and submitit files: {results_dir}/<run id>/slurm/ (its job.json names them).")
    return lines


_ACTIONS = {"finished": "already finished", "queued": "already queued or running", "submitted": "submitted"}


def wait_for(submitted: list[SubmittedRun], results_dir: Path,
             on_event: Callable[[str, int, RunConfig, Any], None] | None = None,
             poll_seconds: float | None = None) -> Any:
    """Wait until the job of every submitted or queued run has ended; a `runner.SweepReport` of the outcome.

    `on_event(kind, index, config, payload)` as `execute_sweep` calls it: "done" (payload: the run's
    `RunRecord`) or "fail" (payload: the reason) as each run ends.
    """
    from benchmark.run.runner import SweepReport

    notify = on_event or (lambda *args: None)
    report = SweepReport([], [entry.config.run_id for entry in submitted if entry.action == "finished"], {})
    waiting = [entry for entry in submitted if entry.action != "finished"]
    local = all(entry.info is None or entry.info.executor == "local" for entry in waiting)
    poll = poll_seconds if poll_seconds is not None else 1.0 if local else 30.0
    while waiting:
        active = _still_active(waiting, Path(results_dir))
        for entry in [entry for entry in waiting if entry.config.run_id not in active]:
            kind, payload = outcome(entry, Path(results_dir))
            if kind == "done":
                report.finished.append(entry.config.run_id)
            else:
                report.failed[entry.config.run_id] = payload
            notify(kind, entry.index, entry.config, payload)
        waiting = [entry for entry in waiting if entry.config.run_id in active]
        if waiting:
            time.sleep(poll)
    return report


def _still_active(waiting: list[SubmittedRun], results_dir: Path) -> set[str]:
    """The run ids of `waiting` whose job (or heartbeat, for a run without a job) has not ended."""
    from benchmark.run.status import heartbeat_problem, read_heartbeat

    polled = [entry.info for entry in waiting if entry.info is not None and not _own_local_job(entry)]
    states = job_states(polled)
    active = set()
    for entry in waiting:
        if _own_local_job(entry):
            running = not entry.job.done()
        else:
            running = entry.info is not None and states.get(entry.info.job_id) in ACTIVE_STATES
        if not running:  # a run can outlive what its job.json says (a run executing here, not as that job)
            beat = read_heartbeat(results_dir / entry.config.run_id)
            running = beat is not None and heartbeat_problem(beat) is None
        if running:
            active.add(entry.config.run_id)
    return active


def _own_local_job(entry: SubmittedRun) -> bool:
    return entry.job is not None and entry.info is not None and entry.info.executor == "local"


def outcome(entry: SubmittedRun, results_dir: Path) -> tuple[str, Any]:
    """How the run of an ended job came out: ("done", its RunRecord) or ("fail", the one-line reason)."""
    from benchmark.results.records import is_finished, read_record, record_path
    from benchmark.run.status import error_reason

    run_id = entry.config.run_id
    if is_finished(results_dir, run_id):
        return "done", read_record(record_path(results_dir, run_id))
    reason = error_reason(results_dir / run_id, entry.info)
    if reason is None:
        exception = _job_exception(entry)
        if exception is not None:
            reason = f"job {entry.job_id} failed: {exception}"
        else:
            reason = f"job {entry.job_id} ended ({_ended_state(entry)}) without a record"
    return "fail", reason + (f" (log: {entry.info.stderr})" if entry.info is not None else "")


def _ended_state(entry: SubmittedRun) -> str:
    if entry.info is None:
        return "UNKNOWN"
    state = job_states([entry.info]).get(entry.info.job_id, "UNKNOWN")
    return "ENDED" if state in ACTIVE_STATES else state  # a job object said done before the queue did


def _job_exception(entry: SubmittedRun) -> str | None:
    """The last line of the exception a job of this process raised outside the run (import, pickling), if any."""
    if entry.job is None:
        return None
    try:
        error = entry.job.exception()
    except Exception as failure:  # no result at all (the job was killed): submitit says so
        error = failure
    if error is None:
        return None
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[-1] if lines else type(error).__name__
