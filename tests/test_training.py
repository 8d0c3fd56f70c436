"""Real Lightning runs at smoke scale: records, model selection, eval-at, resume, skipping."""

import json

import pandas as pd
import pytest
import torch
from torch.utils.data import Dataset

from benchmark.data.registry import load_dataset
from benchmark.results.records import read_record, record_path
from benchmark.run.config import resolve_run
from benchmark.run.runner import DataCache, execute_run, run_sweep

DATASET = "synthetic-weather:t2m"


def smoke(model: str, **train) -> object:
    return resolve_run("smoke", model, DATASET, 0, overrides={"train": train} if train else None)


def test_record_is_complete(tmp_path, monkeypatch):
    import benchmark.run.runner

    built = []
    real_make_record = benchmark.run.runner.make_record

    def recorded_make_record(*args, **kwargs):
        built.append(real_make_record(*args, **kwargs))
        return built[-1]

    monkeypatch.setattr(benchmark.run.runner, "make_record", recorded_make_record)
    config = smoke("convlstm", eval_at=[1, 2])
    record = execute_run(config, tmp_path)
    # the record execute_run returns and stores is the one make_record built, and it reads back equal
    assert built == [record] and record is built[0]
    assert read_record(record_path(tmp_path, config.run_id)) == record
    assert record.run_id == config.run_id and record.config == config
    assert record.best.epoch in (1, 2) and record.best.val_mse > 0
    assert (tmp_path / config.run_id / record.best.checkpoint).exists()
    assert sorted(record.eval_at) == ["1", "2"]
    for scores in (record.test, *record.eval_at.values()):
        for space in (scores.normalized, scores.physical):
            assert len(space.per_lead["mse"]) == config.t_out
            assert all(torch.isfinite(torch.tensor(v)) for v in space.aggregates().values())
        assert scores.physical.lat_rmse is not None
    assert record.model_info.parameters > 0 and record.model_info.family == "recurrent"
    assert record.cost.train_seconds > 0 and record.cost.inference_samples_per_second > 0
    assert record.cost.optimizer_steps == 2 * config.train["limit_train_batches"]
    env = record.environment
    assert env.torch == torch.__version__ and env.torch_threads >= 1 and env.selective_scan_backend is None
    assert record.data["train_samples"] > 0 and record.normalizer["std"][0] > 0
    # the model that was scored is the best-validation one: its validation MSE is the logged minimum
    logged = pd.read_csv(tmp_path / config.run_id / "logs" / "metrics.csv")
    val = logged.dropna(subset=["val/mse"])
    assert record.best.val_mse == pytest.approx(val["val/mse"].min(), rel=1e-6)
    assert record.best.epoch == int(val.loc[val["val/mse"].idxmin(), "epoch"]) + 1


class WatchedSplit(Dataset):
    """A split that remembers whether it was read (to prove training never reads the test split)."""

    def __init__(self, inner):
        self.inner, self.reads = inner, 0

    def __len__(self):
        return len(self.inner)

    def __getitem__(self, index):
        self.reads += 1
        return self.inner[index]

    def times(self, index):
        """The window's valid times (what the climatology is looked up by; not a read of the data)."""
        return self.inner.times(index)


def test_training_never_reads_the_test_split(tmp_path, monkeypatch):
    config = smoke("simvp")
    data = load_dataset(config.dataset, config.data)
    data.test = WatchedSplit(data.test)
    reads_during_fit = []

    import benchmark.run.training as training

    real_fit = training.fit

    def watched_fit(*args, **kwargs):
        outcome = real_fit(*args, **kwargs)
        reads_during_fit.append(data.test.reads)
        return outcome

    monkeypatch.setattr(training, "fit", watched_fit)
    cache = DataCache()
    monkeypatch.setattr(cache, "get", lambda _config: data)
    execute_run(config, tmp_path, data_cache=cache)
    assert reads_during_fit == [0] and data.test.reads > 0


def test_persistence_is_evaluated_without_training(tmp_path):
    config = smoke("persistence")
    record = execute_run(config, tmp_path)
    assert record.cost.train_seconds == 0 and record.best.epoch is None and record.curve == []
    assert not (tmp_path / config.run_id / "checkpoints").exists()
    assert 0 < record.test.normalized.mse < 1


def test_same_seed_same_numbers_other_seed_other_numbers(tmp_path):
    first = execute_run(smoke("simvp"), tmp_path / "a")
    again = execute_run(smoke("simvp"), tmp_path / "b")
    assert first.test == again.test and first.curve == again.curve
    other = execute_run(resolve_run("smoke", "simvp", DATASET, 1), tmp_path / "c")
    assert other.test.normalized.mse != first.test.normalized.mse


def test_crashed_run_resumes_from_its_last_checkpoint(tmp_path, monkeypatch):
    import benchmark.run.training as training

    config = smoke("convlstm", eval_at=[1, 2])
    real_step = training.ForecastModule.training_step
    limit = config.train["limit_train_batches"]

    def crash_in_second_epoch(self, batch, batch_idx):
        if self.global_step == limit + 1:
            raise RuntimeError("simulated power cut")
        return real_step(self, batch, batch_idx)

    monkeypatch.setattr(training.ForecastModule, "training_step", crash_in_second_epoch)
    report = run_sweep([config], tmp_path)
    assert list(report.failed) == [config.run_id] and "power cut" in report.failed[config.run_id]
    run_dir = tmp_path / config.run_id
    assert (run_dir / "checkpoints" / "last.ckpt").exists() and not record_path(tmp_path, config.run_id).exists()
    assert "power cut" in json.loads((run_dir / "error.json").read_text())["error"]

    monkeypatch.setattr(training.ForecastModule, "training_step", real_step)
    report = run_sweep([config], tmp_path)
    assert report.finished == [config.run_id]
    record = read_record(record_path(tmp_path, config.run_id))
    assert record.cost.resumed_from.endswith("last.ckpt")
    assert record.cost.optimizer_steps == 2 * limit
    assert sorted(record.eval_at) == ["1", "2"]  # epoch 1's scores came back from the checkpoint
    assert [p.epoch for p in record.curve] == [1, 2]  # so did epoch 1's validation point
    assert not (run_dir / "error.json").exists()

    events = []
    again = run_sweep([config], tmp_path, on_event=lambda kind, index, c, payload: events.append((kind, index)))
    assert again.skipped == [config.run_id] and not again.finished and events == [("skip", 0)]


def test_every_model_trains_and_is_scored_on_generated_chdl(tmp_path):
    """CHDL's 5 -> 1 grayscale frames (no latitudes) through the same runner as the weather data."""
    from benchmark.registry import list_models

    cache = DataCache()
    for model in list_models():
        config = resolve_run("smoke", model, "synthetic-chdl", 0, overrides={"data": {"t_in": 5, "t_out": 1}})
        record = execute_run(config, tmp_path, data_cache=cache)
        assert record.data["shape"] == [5, 1, 1, 24, 32], model
        metrics = record.test.normalized
        assert 0 < metrics.mse < 10 and -1 <= metrics.ssim <= 1, model
        assert record.test.physical.lat_rmse is None


def test_default_jobs_is_one_per_core_on_cpu_and_one_for_multi_device_runs(monkeypatch):
    import os

    from benchmark.run.runner import default_jobs

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    configs = [smoke(m) for m in ("convlstm", "simvp", "pastnet", "predrnn", "e3dlstm")]
    assert default_jobs(configs) == 4 and default_jobs(configs[:2]) == 2 and default_jobs(configs[:1]) == 1
    ddp = resolve_run("smoke", "simvp", DATASET, 0, overrides={"train": {"devices": 2}})
    assert default_jobs([*configs, ddp]) == 1
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert default_jobs(configs) == 1


def test_record_keeps_the_validation_curve_and_the_planned_schedule(tmp_path):
    config = smoke("convlstm", epochs=3)
    record = execute_run(config, tmp_path)
    curve = record.curve
    assert [p.epoch for p in curve] == [1, 2, 3]
    assert [p.step for p in curve] == [3, 6, 9]
    logged = pd.read_csv(tmp_path / config.run_id / "logs" / "metrics.csv").dropna(subset=["val/mse"])
    assert [p.val_mse for p in curve] == pytest.approx(list(logged["val/mse"]), rel=1e-6)
    assert all(p.train_loss > 0 for p in curve)
    best = min(range(3), key=lambda i: curve[i].val_mse)
    assert record.best.epoch == best + 1
    assert record.best.still_improving is (best == 2)
    # the scheduled-sampling schedule was fixed for this run's 9 optimizer steps
    assert record.schedule["total_steps"] == record.cost.optimizer_steps == 9


def test_planned_steps_match_lightnings_count(tmp_path):
    from benchmark.run.runner import describe_plan

    config = smoke("simvp", epochs=1, limit_train_batches=None)
    plan = describe_plan(config)
    record = execute_run(config, tmp_path)
    assert plan["total_steps"] == record.cost.optimizer_steps > 3
    assert plan["parameters"] == record.model_info.parameters


def test_still_improving_reads_the_curve():
    from benchmark.results.outcomes import still_improving

    assert still_improving([{"val_mse": 0.3}, {"val_mse": 0.2}]) is True
    assert still_improving([{"val_mse": 0.2}, {"val_mse": 0.3}]) is False
    assert still_improving([{"val_mse": 0.2}]) is None


@pytest.mark.parametrize("name", ["cosine", "constant", "onecycle"])
def test_learning_rate_schedules(name):
    from benchmark.run.config import TRAIN_DEFAULTS
    from benchmark.run.training import build_lr_scheduler

    cfg = {**TRAIN_DEFAULTS, "scheduler": name, "lr": 1e-2, "min_lr": 1e-5, "warmup_steps": 10}
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=cfg["lr"])
    scheduler = build_lr_scheduler(optimizer, cfg, total_steps=100)
    rates = []
    for _ in range(100):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    peak = max(range(100), key=rates.__getitem__)
    if name == "onecycle":  # OneCycleLR: warm up from lr/25 over the first 30%, then anneal far below
        assert rates[0] == pytest.approx(1e-2 / 25) and 28 <= peak <= 30 and rates[-1] < 1e-5
    else:  # linear warm-up over 10 steps from lr/100, then cosine to min_lr or constant
        assert rates[0] == pytest.approx(1e-4) and peak == 10 and rates[10] == pytest.approx(1e-2)
        assert 1e-5 <= rates[-1] < 2e-5 if name == "cosine" else rates[-1] == pytest.approx(1e-2)


def test_bad_schedule_settings_are_clear_errors():
    from benchmark.core.errors import BenchError
    from benchmark.run.config import TRAIN_DEFAULTS
    from benchmark.run.training import build_lr_scheduler

    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    for bad, fragment in [({"scheduler": "linear"}, "Unknown scheduler"),
                          ({"scheduler": "onecycle", "warmup_fraction": 1.5}, "warmup_fraction"),
                          ({"warmup_steps": 500}, "warmup_steps")]:
        with pytest.raises(BenchError, match=fragment):
            build_lr_scheduler(optimizer, {**TRAIN_DEFAULTS, **bad}, total_steps=100)


def test_a_gpu_run_without_cuda_is_a_clear_error(monkeypatch):
    from benchmark.core.errors import ConfigError
    from benchmark.run.runner import run_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert run_device("auto") == "cpu" and run_device("cpu") == "cpu"
    with pytest.raises(ConfigError, match="train.accelerator=cpu"):
        run_device("gpu")


def test_scoring_at_eval_at_epochs_does_not_change_training(tmp_path):
    """--eval-at only adds scores: the trained model (and so its test scores) equals the run without it."""
    plain = execute_run(smoke("diffuma"), tmp_path / "plain")  # its diffusion noise is drawn every step
    swept = execute_run(smoke("diffuma", eval_at=[1]), tmp_path / "swept")
    assert plain.run_id != swept.run_id
    assert swept.test.normalized.mse == plain.test.normalized.mse
    assert [p.val_mse for p in swept.curve] == [p.val_mse for p in plain.curve]
