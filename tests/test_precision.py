"""Training precision: validated up front, part of the run id and the record, and every model trains in
bf16-mixed (bfloat16 autocast) at smoke size with a finite loss."""

import math

import pytest
import torch

from benchmark.config import resolve_run
from benchmark.errors import ConfigError
from benchmark.records import load_records, records_to_frame
from benchmark.registry import list_models
from benchmark.runner import execute_run
from benchmark.tables import main_table

DATASET = "synthetic-weather:t2m"
BF16 = {"train": {"precision": "bf16-mixed"}}


def test_precision_is_checked_and_changes_the_run_id():
    fp32 = resolve_run("smoke", "simvp", DATASET, 0)
    bf16 = resolve_run("smoke", "simvp", DATASET, 0, BF16)
    assert fp32.train["precision"] == "32-true" and bf16.train["precision"] == "bf16-mixed"
    assert fp32.run_id != bf16.run_id
    with pytest.raises(ConfigError, match=r"train.precision = 'bf16' .*32-true, bf16-mixed or 16-mixed"):
        resolve_run("smoke", "simvp", DATASET, 0, {"train": {"precision": "bf16"}})


@pytest.mark.skipif(torch.cuda.is_available(), reason="16-mixed is refused only without CUDA")
def test_float16_autocast_is_refused_on_cpu(tmp_path):
    config = resolve_run("smoke", "simvp", DATASET, 0, {"train": {"precision": "16-mixed"}})
    with pytest.raises(ConfigError, match="needs a CUDA GPU"):
        execute_run(config, tmp_path)


@pytest.mark.slow
def test_every_model_trains_in_bf16_with_a_finite_loss(tmp_path):
    for model in list_models():
        record = execute_run(resolve_run("smoke", model, DATASET, 0, BF16), tmp_path)
        assert record.config.train["precision"] == "bf16-mixed"
        if record.model_info.trainable:
            losses = [p.train_loss for p in record.curve]
            assert losses and all(math.isfinite(v) for v in losses), (model, losses)
        assert math.isfinite(record.test.normalized.mse)
    execute_run(resolve_run("smoke", "simvp", DATASET, 0), tmp_path)  # an fp32 row beside the bf16 ones
    caption = main_table(records_to_frame(load_records(tmp_path))).caption
    assert "Trained in different precisions" in caption and "32-true: simvp" in caption


def test_native_bf16_is_detected_and_recorded(tmp_path):
    from benchmark.hardware import cpu_bf16_native

    assert cpu_bf16_native("processor: 0\nflags\t\t: fpu sse avx512f avx512_bf16 amx_tile\n") is True
    assert cpu_bf16_native("flags : fpu sse avx2\n") is False
    assert cpu_bf16_native("model name : something\n") is None  # no flags line: unknown
    record = execute_run(resolve_run("smoke", "persistence", DATASET, 0), tmp_path)
    assert record.environment.cpu_bf16 == cpu_bf16_native()
