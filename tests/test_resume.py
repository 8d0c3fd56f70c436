"""A run killed (SIGKILL) at several points and re-run gives the record of a run never interrupted.

Real subprocesses, real kills (tests/kill_driver.py patches only where it kills). One chain of
attempts of a DIFFUMA smoke run (it draws diffusion noise every step, so any generator that is not
restored shows): killed in a training step of epoch 2, then in the validation of epoch 3, then while
scoring the test split, then while its record is being put in place; the fifth attempt finishes.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmark.results.records import load_records

DRIVER = Path(__file__).with_name("kill_driver.py")
ARGS = ["run", "--models", "persistence,diffuma", "--dataset", "synthetic-weather", "--profile", "smoke",
        "--epochs", "3", "--eval-at", "2", "--jobs", "1"]
# (point, hit): smoke trains 3 batches and validates 2 per epoch
KILLS = [("train", 5), ("val", 3), ("test", 1), ("record", 1)]


def _env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "DIFFUMA_BENCH_CACHE": str(tmp_path / "cache"), "COLUMNS": "200",
            "OMP_NUM_THREADS": "1"}


def _bench(results: Path, env: dict[str, str], *driver: str) -> subprocess.CompletedProcess:
    head = [sys.executable, str(DRIVER), *driver] if driver else [sys.executable, "-m", "benchmark"]
    return subprocess.run([*head, *ARGS, "--results", str(results)], env=env, capture_output=True, text=True,
                          timeout=300)


def _diffuma(results: Path):
    return next(r for r in load_records(results) if r.config.model == "diffuma")


@pytest.mark.slow
def test_killed_at_four_points_then_resumed_equals_the_uninterrupted_run(tmp_path):
    env = _env(tmp_path)
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    done = _bench(whole, env)
    assert done.returncode == 0, done.stdout + done.stderr
    for point, nth in KILLS:
        killed = _bench(broken, env, point, str(nth))
        assert killed.returncode == -9, f"{point}: {killed.stdout}{killed.stderr}"
        run_dirs = [d for d in broken.iterdir() if d.name.startswith("diffuma")]
        record = run_dirs[0] / "record.json"
        assert not record.exists()  # killed before its record was in place: nothing partial
    persistence = next(broken.glob("persistence-*/record.json"))
    finished_at = json.loads(persistence.read_text())["finished_at"]
    resumed = _bench(broken, env)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "skipped 1" in resumed.stdout  # the finished persistence run is not run again
    assert json.loads(persistence.read_text())["finished_at"] == finished_at

    a, b = _diffuma(whole), _diffuma(broken)
    assert b.test == a.test  # every metric, per lead, both spaces: bit for bit
    assert b.eval_at == a.eval_at
    assert [(p.epoch, p.val_mse, p.train_loss) for p in b.curve] == [(p.epoch, p.val_mse, p.train_loss)
                                                                     for p in a.curve]
    assert b.best == a.best and b.cost.optimizer_steps == a.cost.optimizer_steps
    assert (tmp_path / "broken" / b.run_id / b.per_sample_file).read_bytes() == \
        (tmp_path / "whole" / a.run_id / a.per_sample_file).read_bytes()
    # the attempts: four killed (no end), one finished; each resumed from the epochs its predecessor saved
    assert len(a.attempts) == 1 and a.attempts[0]["resumed_from"] is None
    assert [x["ended_at"] is not None for x in b.attempts] == [False, False, True, True, True]
    assert [x["resumed_at_epoch"] for x in b.attempts] == [None, 1, 2, 3, 3]
    assert b.cost.train_seconds == pytest.approx(sum(x["train_seconds"] for x in b.attempts))
    assert not list((broken / b.run_id).glob(".*.tmp"))  # the killed record write left nothing behind
