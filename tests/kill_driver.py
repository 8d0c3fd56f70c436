"""Test driver (not a test module): run `bench ARGS...` in this process and SIGKILL it at the N-th hit
of one point, as a crash or an OOM killer would: `python kill_driver.py POINT N ARGS...`.

Points: `train` (a training step), `val` (a validation step), `test` (a test-scoring batch of a
trained model), `record` (the rename that puts a trained model's record.json in place: its temporary
file is complete, the record not yet there). Only the points are patched; the run is the real one.
"""

import os
import signal
import sys

point, nth, args = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
hits = {"n": 0, "testing": False}


def hit() -> None:
    hits["n"] += 1
    if hits["n"] == nth:
        os.kill(os.getpid(), signal.SIGKILL)


import benchmark.core.atomic as atomic  # noqa: E402
import benchmark.run.training as training  # noqa: E402
import benchmark.scoring.metrics as metrics  # noqa: E402

if point == "train":
    step = training.ForecastModule.training_step
    training.ForecastModule.training_step = lambda self, *a: (hit(), step(self, *a))[1]
elif point == "val":
    val = training.ForecastModule.validation_step
    training.ForecastModule.validation_step = lambda self, *a: (hit(), val(self, *a))[1]
elif point == "test":
    test, update = training.test, metrics.MetricAccumulator.update

    def marked_test(model, data, config, device):
        hits["testing"] = config.model != "persistence"
        return test(model, data, config, device)

    def update_then_maybe_die(self, *a):
        if hits["testing"]:
            hit()
        return update(self, *a)

    training.test = marked_test
    metrics.MetricAccumulator.update = update_then_maybe_die
elif point == "record":
    replace = atomic.os.replace

    def replace_or_die(src, dst):
        if str(dst).endswith("record.json") and "persistence" not in str(dst):
            hit()
        return replace(src, dst)

    atomic.os.replace = replace_or_die
else:
    raise SystemExit(f"unknown point {point!r}")

from benchmark.cli import app  # noqa: E402

app(args)
