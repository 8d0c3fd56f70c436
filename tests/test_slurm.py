"""`--launcher slurm`: runs as submitit jobs. End to end with submitit's LocalExecutor (real subprocesses, no
SLURM), and the sbatch path against stand-in sbatch/srun/squeue commands that only print."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from benchmark.cli import app
from benchmark.results.records import now, record_path, write_json_atomic
from benchmark.run.config import resolve_run
from benchmark.run.launchers import JOB_FILE, JobInfo, SlurmOptions, SubmittedRun, parse_time, submit_runs, wait_for

LOCAL = ["--launcher", "slurm", "--slurm-executor", "local"]
DATASET = "synthetic-weather:t2m"


def invoke(*args: str):
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})


@pytest.fixture
def one_thread_jobs(monkeypatch):
    """Job subprocesses inherit this environment: one thread each on a shared machine."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


@pytest.fixture
def fake_slurm(tmp_path, monkeypatch) -> Path:
    """sbatch, srun and squeue stand-ins first on the PATH: sbatch answers job 4242, squeue says it is pending."""
    bin_dir = tmp_path / "fake-slurm"
    bin_dir.mkdir()
    for name, body in (("sbatch", 'echo "Submitted batch job 4242"'), ("srun", "exit 0"),
                       ("squeue", 'echo "4242|PENDING"')):
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return bin_dir


def test_runs_as_local_jobs_end_to_end(tmp_path, one_thread_jobs):
    results = tmp_path / "results"
    args = ["run", "--models", "persistence,simvp", "--dataset", "synthetic-weather", "--profile", "smoke",
            *LOCAL, "--results", str(results)]
    first = invoke(*args, "--wait")
    assert first.exit_code == 0, first.output
    assert "2 runs planned: 2 submitted." in first.output and "Finished 2, skipped 0" in first.output
    configs = [resolve_run("smoke", model, DATASET, 0) for model in ("persistence", "simvp")]
    for config in configs:
        run_dir = results / config.run_id
        assert record_path(results, config.run_id).exists()
        job = json.loads((run_dir / JOB_FILE).read_text())
        assert f"job {job['job_id']}: {config.model}" in first.output
        assert Path(job["stdout"]).is_relative_to(run_dir / "slurm")  # the job's own files, in the run folder
        assert Path(job["result"]).exists() and not (run_dir / "running.json").exists()
    table = invoke("table", "--results", str(results), "--out", str(tmp_path / "tables"), "--format", "csv")
    assert table.exit_code == 0, table.output
    assert "simvp" in (tmp_path / "tables" / "main_normalized.csv").read_text()

    files = sorted(results.rglob("*"))
    second = invoke(*args)
    assert second.exit_code == 0, second.output
    assert "2 runs planned: 2 already finished; nothing to submit." in second.output
    assert sorted(results.rglob("*")) == files  # nothing submitted, nothing written

    status = invoke("status", "--results", str(results))
    assert status.exit_code == 0 and "2 runs: 2 finished." in status.output


def test_an_array_runs_the_pending_runs(tmp_path, one_thread_jobs):
    results = tmp_path / "results"
    result = invoke("run", "--models", "persistence", "--seeds", "1,2", "--profile", "smoke", *LOCAL,
                    "--array-parallelism", "1", "--wait", "--results", str(results))
    assert result.exit_code == 0, result.output
    assert "Finished 2" in result.output
    (array,) = (results / ".slurm").iterdir()  # one array for both runs
    for seed in (1, 2):
        config = resolve_run("smoke", "persistence", DATASET, seed)
        assert record_path(results, config.run_id).exists()
        job = json.loads((results / config.run_id / JOB_FILE).read_text())
        assert Path(job["stdout"]).is_relative_to(array)
        assert (results / config.run_id / "slurm" / "log.out").resolve() == Path(job["stdout"]).resolve()


def test_a_queued_run_is_not_submitted_twice(tmp_path):
    config = resolve_run("smoke", "persistence", DATASET, 0)
    run_dir = tmp_path / config.run_id
    info = JobInfo(str(os.getpid()), "local", socket.gethostname(), now(), str(run_dir / "slurm"), "out", "err",
                   str(run_dir / "slurm" / "none.pkl"))  # a live process, no result yet: still running
    write_json_atomic(run_dir / JOB_FILE, info.to_dict())
    (entry,) = submit_runs([config], tmp_path, SlurmOptions(executor="local"))
    assert (entry.action, entry.state, entry.job_id) == ("queued", "RUNNING", str(os.getpid()))
    assert json.loads((run_dir / JOB_FILE).read_text()) == info.to_dict()  # no new job


def test_wait_reports_the_reason_a_job_failed(tmp_path):
    import subprocess
    import sys

    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    config = resolve_run("smoke", "simvp", DATASET, 0)
    run_dir = tmp_path / config.run_id
    info = JobInfo(str(process.pid), "local", socket.gethostname(), now(), str(run_dir / "slurm"), "out", "err.log",
                   str(run_dir / "slurm" / "none.pkl"))  # its process has ended without a result
    write_json_atomic(run_dir / JOB_FILE, info.to_dict())
    write_json_atomic(run_dir / "error.json", {"error": "RuntimeError: CUDA out of memory\n(details)"})
    events = []
    report = wait_for([SubmittedRun(0, config, "submitted", info)], tmp_path,
                      on_event=lambda kind, index, c, payload: events.append((kind, payload)), poll_seconds=0)
    assert report.failed == {config.run_id: "RuntimeError: CUDA out of memory (log: err.log)"}
    assert events == [("fail", report.failed[config.run_id])]


def test_sbatch_jobs_ask_for_what_the_run_needs(tmp_path, fake_slurm):
    results = tmp_path / "results"
    args = ["run", "--models", "simvp", "--profile", "smoke", "--launcher", "slurm", "--partition", "gpu",
            "--time", "1-00:00:00", "--mem", "64G", "--account", "proj", "--cpus-per-task", "4",
            "--sbatch", "qos=high", "--sbatch", "exclusive", "--set", "train.devices=2", "--results", str(results)]
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    assert "job 4242: simvp" in result.output and "bench status" in result.output
    config = resolve_run("smoke", "simvp", DATASET, 0, {"train": {"devices": 2}})
    script = (results / config.run_id / "slurm" / "4242" / "4242_submission.sh").read_text()
    for line in ("--partition=gpu", "--time=1440", "--mem=64G", "--account=proj", "--cpus-per-task=4",
                 "--qos=high", "--exclusive", "--ntasks-per-node=2", "--gpus-per-node=2", "--nodes=1"):
        assert f"#SBATCH {line}\n" in script, line
    again = invoke(*args)  # squeue says 4242 is pending
    assert again.exit_code == 0 and "already job 4242 PENDING, not submitted again" in again.output
    status = invoke("status", "--results", str(results))
    assert "pending" in status.output and "job 4242" in status.output


@pytest.mark.parametrize("extra, fragments", [
    (["--time", "1:2"], ["--time '1:2' is not a duration", "HH:MM:SS"]),
    (["--time", "0"], ["shorter than a minute"]),
    (["--gpus-per-node", "1", "--set", "train.devices=2"], ["--gpus-per-node 1 is less than train.devices = 2",
                                                            "--gpus-per-node 2"]),
    (["--nodes", "2"], ["--nodes 2 differs from train.num_nodes = 1", "--set train.num_nodes=2"]),
    (["--mem", "lots"], ["--mem 'lots' is not a SLURM memory size", "64G"]),
    (["--sbatch", "partition=gpu"], ["use --partition for that"]),
    (["--sbatch", "output=x.log"], ["submitit sets --output itself"]),
    (["--jobs", "2"], ["--array-parallelism"]),
])
def test_bad_slurm_options_get_one_clear_paragraph(tmp_path, extra, fragments):
    result = invoke("run", "--models", "persistence", "--profile", "smoke", *LOCAL, *extra,
                    "--results", str(tmp_path))
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and not any(tmp_path.iterdir())
    for fragment in fragments:
        assert fragment in result.output


def test_slurm_options_need_the_slurm_launcher_and_sbatch(tmp_path, monkeypatch):
    local = invoke("run", "--models", "persistence", "--profile", "smoke", "--partition", "gpu", "--wait",
                   "--results", str(tmp_path))
    assert local.exit_code == 2 and "--partition, --wait only apply to SLURM jobs" in local.output
    no_time = invoke("run", "--models", "persistence", "--profile", "smoke", "--launcher", "slurm",
                     "--results", str(tmp_path))
    assert no_time.exit_code == 2 and "needs --time" in no_time.output
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    no_sbatch = invoke("run", "--models", "persistence", "--profile", "smoke", "--launcher", "slurm", "--time", "60",
                       "--results", str(tmp_path))
    assert no_sbatch.exit_code == 2 and "sbatch and srun are not on the PATH" in no_sbatch.output
    assert "--slurm-executor local" in no_sbatch.output


def test_parse_time():
    assert [parse_time(t) for t in ("90", "24:00:00", "0:30:01", "2-00:00:00")] == [90, 1440, 31, 2880]


def test_reproduce_without_wait_says_to_run_it_again(tmp_path, monkeypatch):
    import benchmark.run.launchers as launchers

    submitted = []

    def fake_submit(configs, results_dir, options):
        submitted.extend(configs)
        return [SubmittedRun(i, c, "submitted", JobInfo(str(i), "local", "here", now(), "", "", "", ""))
                for i, c in enumerate(configs)]

    monkeypatch.setattr(launchers, "submit_runs", fake_submit)
    out = tmp_path / "tables"
    result = invoke("reproduce", "diffuma-paper", "--profile", "smoke", "--models", "persistence", *LOCAL,
                    "--results", str(tmp_path / "results"), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert [c.model for c in submitted] == ["persistence"] and "job 0: persistence" in result.output
    assert "run this same `bench reproduce` command again" in " ".join(result.output.split())
    assert not out.exists()  # no tables from runs that have not finished


def test_a_submission_says_when_auto_precision_was_decided_on_the_submitting_machine(monkeypatch, tmp_path):
    import torch

    import benchmark.run.hardware as hardware
    from benchmark.run.config import resolve_run
    from benchmark.run.launchers import auto_precision_warning

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(hardware, "cpu_bf16_native", lambda: True)
    profile = tmp_path / "cpu-auto.yaml"  # a profile that says auto (quick said so until issue 19)
    profile.write_text("train:\n  epochs: 1\n  precision: auto\ndata:\n  t_in: 4\n  t_out: 4\n")
    quick = resolve_run(str(profile), "simvp", "synthetic-weather:t2m", 0)
    assert quick.train["precision"] == "bf16-mixed"
    assert "profile's train.precision: auto was decided on this machine" in auto_precision_warning([quick])
    pinned = resolve_run("quick", "simvp", "synthetic-weather:t2m", 0, {"train": {"precision": "32-true"}})
    assert auto_precision_warning([pinned]) is None
    assert auto_precision_warning([resolve_run("smoke", "simvp", "synthetic-weather:t2m", 0,
                                               {"train": {"precision": "bf16-mixed"}})]) is None  # named, not auto
