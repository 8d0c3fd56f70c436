"""`bench status`: the state of each run folder (finished, running, stale, failed, corrupt, queued, not started)."""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

import benchmark.cli as cli
from benchmark.cli import app
from benchmark.results.records import now, write_json_atomic
from benchmark.run.config import RunConfig, resolve_run
from benchmark.run.launchers import JOB_FILE
from benchmark.run.status import Heartbeat, heartbeat, run_states, summary

DATASET = "synthetic-weather:t2m"
LONG_NAMES = ("diffuma-randcond", "predrnn-v2", "e3dlstm", "convlstm", "pastnet", "simvp")


def smoke(model: str, seed: int = 0) -> RunConfig:
    return resolve_run("smoke", model, DATASET, seed)


def started(results: Path, config: RunConfig) -> Path:
    """A run folder as `execute_run` leaves it when it starts: config.json only."""
    run_dir = results / config.run_id
    write_json_atomic(run_dir / "config.json", config.to_dict())
    return run_dir


def ago(seconds: float) -> str:
    return (dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=seconds)).isoformat(timespec="seconds")


def beat(run_dir: Path, pid: int, host: str | None = None, age: float = 0) -> None:
    write_json_atomic(run_dir / "running.json", {"pid": pid, "host": host or socket.gethostname(),
                                                 "started_at": ago(age + 60), "heartbeat_at": ago(age)})


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


@pytest.fixture(scope="module")
def finished_results(tmp_path_factory) -> tuple[Path, RunConfig]:
    """A results folder with one finished persistence run (seconds)."""
    from benchmark.run.runner import execute_run

    results = tmp_path_factory.mktemp("finished") / "results"
    config = smoke("persistence")
    execute_run(config, results)
    return results, config


@pytest.fixture
def mixed(finished_results, tmp_path) -> tuple[Path, dict[str, RunConfig]]:
    """A results folder with a run in each state, and a stray folder."""
    source, finished = finished_results
    results = tmp_path / "results"
    results.mkdir()
    os.symlink(source / finished.run_id, results / finished.run_id)
    configs = {"finished": finished}
    configs["failed"] = smoke("convlstm")
    run_dir = started(results, configs["failed"])
    write_json_atomic(run_dir / "error.json", {"error": "RuntimeError: simulated power cut\nsecond line",
                                               "traceback": "..."})
    configs["running"] = smoke("predrnn-v2")
    beat(started(results, configs["running"]), os.getpid())
    configs["dead pid"] = smoke("e3dlstm")
    beat(started(results, configs["dead pid"]), dead_pid())
    configs["old heartbeat"] = smoke("pastnet")
    beat(started(results, configs["old heartbeat"]), 1, host="some-other-node", age=3600)
    configs["corrupt"] = smoke("simvp")
    (started(results, configs["corrupt"]) / "record.json").write_text('{"schema_version": 2, "run_id": ')
    configs["old schema"] = smoke("simvp", seed=1)
    (started(results, configs["old schema"]) / "record.json").write_text('{"schema_version": 1}')
    configs["incomplete"] = smoke("diffuma-randcond")
    started(results, configs["incomplete"])
    (results / "notes").mkdir()
    (results / "notes" / "todo.txt").write_text("not a run")
    (results / ".slurm").mkdir()  # job arrays keep their files here: skipped without a word
    return results, configs


def test_each_state_is_read_from_the_run_folder(mixed):
    results, configs = mixed
    with pytest.warns(UserWarning, match="notes is not a run folder"):
        rows = {row.run_id: row for row in run_states(results)}
    assert len(rows) == len(configs)
    state = {name: rows[config.run_id] for name, config in configs.items()}
    assert state["finished"].state == "finished" and state["finished"].detail.startswith("MSE ")
    assert state["failed"].state == "failed" and state["failed"].detail == "RuntimeError: simulated power cut"
    assert state["running"].state == "running" and f"pid {os.getpid()}" in state["running"].detail
    assert state["dead pid"].state == "stale" and "gone" in state["dead pid"].detail
    assert state["old heartbeat"].state == "stale" and "no heartbeat for 60 min" in state["old heartbeat"].detail
    assert state["corrupt"].state == "corrupt" and "not valid JSON" in state["corrupt"].detail
    assert state["old schema"].state == "corrupt" and "schema version 1" in state["old schema"].detail
    assert state["incomplete"].state == "incomplete"
    assert state["failed"].model == "convlstm" and state["failed"].dataset == DATASET and state["failed"].seed == 0


def test_planned_runs_never_started_are_listed_first(mixed):
    results, configs = mixed
    never = smoke("persistence", seed=7)
    with pytest.warns(UserWarning):
        rows = run_states(results, planned=[never, configs["failed"], never])
    assert [row.run_id for row in rows[:2]] == [never.run_id, configs["failed"].run_id]
    assert (rows[0].state, rows[0].model, rows[0].seed) == ("not started", "persistence", 7)
    assert rows[1].state == "failed" and len(rows) == len(configs) + 1
    assert summary(rows) == ("9 runs: 1 finished, 1 running, 2 stale, 1 failed, 2 corrupt, 1 incomplete, "
                             "1 not started.")


def test_a_slurm_job_is_pending_until_it_ends(tmp_path, monkeypatch):
    from benchmark.run.launchers import JobInfo

    monkeypatch.setenv("PATH", str(tmp_path / "no-slurm-here"))  # no sacct, no squeue: the state is unknown
    results = tmp_path / "results"

    def submitted(config: RunConfig, executor: str, job_id: str) -> Path:
        run_dir = started(results, config)
        info = JobInfo(job_id, executor, socket.gethostname(), now(), str(run_dir / "slurm"), "out.log",
                       str(run_dir / "slurm" / "err.log"), str(run_dir / "slurm" / "result.pkl"))
        write_json_atomic(run_dir / JOB_FILE, info.to_dict())
        return run_dir

    alive, lost, queued = smoke("simvp"), smoke("convlstm"), smoke("predrnn")
    submitted(alive, "local", str(os.getpid()))
    lost_dir = submitted(lost, "local", str(dead_pid()))
    submitted(queued, "slurm", "4242")
    rows = {row.run_id: row for row in run_states(results)}
    assert (rows[alive.run_id].state, rows[alive.run_id].detail) == ("running", f"job {os.getpid()}, starting")
    assert rows[lost.run_id].state == "failed" and "ended (LOST) without a record" in rows[lost.run_id].detail
    assert rows[lost.run_id].log == str(lost_dir / "slurm" / "err.log")
    assert (rows[queued.run_id].state, rows[queued.run_id].detail) == ("submitted", "job 4242, state unknown")
    # an error.json from an attempt before the job does not explain how the job ended ...
    error = lost_dir / "error.json"
    write_json_atomic(error, {"error": "ValueError: from last week"})
    os.utime(error, (1, 1))
    assert "ended (LOST)" in {row.run_id: row for row in run_states(results)}[lost.run_id].detail
    # ... one written since does
    write_json_atomic(error, {"error": "ValueError: this attempt"})
    assert {row.run_id: row for row in run_states(results)}[lost.run_id].detail == "ValueError: this attempt"


def test_heartbeat_is_kept_while_the_block_runs_and_removed_after(tmp_path, monkeypatch):
    import benchmark.run.status as status

    stamps = iter(range(1000))
    monkeypatch.setattr(status, "now", lambda: f"stamp {next(stamps)}")
    path = tmp_path / "running.json"
    with Heartbeat(tmp_path, interval=0.01):
        first = json.loads(path.read_text())
        assert first["pid"] == os.getpid() and first["host"] == socket.gethostname()
        import time

        deadline = time.time() + 5
        while json.loads(path.read_text())["heartbeat_at"] == first["heartbeat_at"] and time.time() < deadline:
            time.sleep(0.01)
        assert json.loads(path.read_text())["heartbeat_at"] != first["heartbeat_at"]  # refreshed
    assert not path.exists()
    monkeypatch.setenv("LOCAL_RANK", "1")  # a DDP process but the first leaves the run's files alone
    with heartbeat(tmp_path):
        assert not path.exists()


def test_execute_run_keeps_a_heartbeat_until_it_ends(tmp_path, monkeypatch):
    import benchmark.run.runner as runner

    config = smoke("persistence", seed=3)
    seen = []
    real = runner.environment_info

    def looking(model, device):
        seen.append(json.loads((tmp_path / config.run_id / "running.json").read_text())["pid"])
        return real(model, device)

    monkeypatch.setattr(runner, "environment_info", looking)
    runner.execute_run(config, tmp_path)
    assert seen == [os.getpid()] and not (tmp_path / config.run_id / "running.json").exists()

    def broken(model, device):
        raise RuntimeError("no backend")

    monkeypatch.setattr(runner, "environment_info", broken)
    report = runner.run_sweep([smoke("persistence", seed=4)], tmp_path)
    failed_dir = tmp_path / smoke("persistence", seed=4).run_id
    assert report.failed and (failed_dir / "error.json").exists() and not (failed_dir / "running.json").exists()


@pytest.fixture
def console_from_env(monkeypatch) -> None:
    """A console that reads COLUMNS when it prints (the module's was made at import, maybe with a width)."""
    monkeypatch.delenv("COLUMNS", raising=False)
    console, error_console = Console(), Console(stderr=True)
    for module in (cli.common, cli.run):  # `bench status` (cli/run.py) and the warnings (cli/common.py)
        monkeypatch.setattr(module, "console", console)
        monkeypatch.setattr(module, "error_console", error_console)


def test_cli_table_reads_at_80_columns(mixed, console_from_env):
    results, configs = mixed
    long_failure = smoke("diffuma-randcond", seed=2)
    write_json_atomic(started(results, long_failure) / "error.json",
                      {"error": "ConfigError: " + "a very long reason that goes on and on " * 6})
    result = CliRunner().invoke(app, ["status", "--results", str(results)], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert all(len(line) <= 80 for line in lines), [line for line in lines if len(line) > 80]
    table = [line for line in lines if DATASET in line]
    for name in ("persistence", *LONG_NAMES):
        assert any(f" {name} " in f" {line} " for line in table), f"{name} is not whole on one line"
    for state in ("finished", "running", "stale", "failed", "corrupt", "incomplete"):
        assert any(state in line for line in table), state
    assert "is not a run folder" in " ".join(result.output.split())  # the stray folder, as a warning
    assert "9 runs: 1 finished, 1 running, 2 stale, 2 failed, 2 corrupt, 1 incomplete." in result.output
    assert configs["finished"].run_id not in result.output  # run ids only with --wide


def test_cli_wide_adds_run_ids_and_planned_runs(mixed, console_from_env):
    results, configs = mixed
    result = CliRunner().invoke(app, ["status", "--results", str(results), "--wide", "--profile", "smoke",
                                      "--models", "persistence,simvp", "--seeds", "0,5"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    for config in configs.values():
        assert config.run_id in result.output
    assert smoke("simvp", seed=5).run_id in result.output and "not started" in result.output


def test_cli_without_a_results_folder_says_what_to_do(tmp_path):
    result = CliRunner().invoke(app, ["status", "--results", str(tmp_path / "nowhere")])
    assert result.exit_code == 2 and "There is no results folder" in result.output and "bench run" in result.output
