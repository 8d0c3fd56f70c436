"""Training precision: validated up front, part of the run id and the record, and every model trains in
bf16-mixed (bfloat16 autocast) at smoke size with a finite loss."""

import math

import pytest
import torch

from benchmark.analysis.tables import main_table
from benchmark.core.errors import ConfigError
from benchmark.registry import list_models
from benchmark.results.records import load_records, records_to_frame
from benchmark.run.config import resolve_run
from benchmark.run.runner import execute_run

DATASET = "synthetic-weather:t2m"
BF16 = {"train": {"precision": "bf16-mixed"}}


def test_precision_is_checked_and_changes_the_run_id():
    fp32 = resolve_run("smoke", "simvp", DATASET, 0)
    bf16 = resolve_run("smoke", "simvp", DATASET, 0, BF16)
    assert fp32.train["precision"] == "32-true" and bf16.train["precision"] == "bf16-mixed"
    assert fp32.run_id != bf16.run_id
    with pytest.raises(ConfigError, match=r"train.precision = 'bf16' .*32-true, bf16-mixed, 16-mixed or auto"):
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
    from benchmark.run.hardware import cpu_bf16_native

    assert cpu_bf16_native("processor: 0\nflags\t\t: fpu sse avx512f avx512_bf16 amx_tile\n") is True
    assert cpu_bf16_native("flags : fpu sse avx2\n") is False
    assert cpu_bf16_native("Features\t: fp asimd sve bf16 i8mm\n") is True  # Arm (e.g. Graviton3)
    assert cpu_bf16_native("Features\t: fp asimd\n") is False
    assert cpu_bf16_native("model name : something\n") is None  # no flags line: unknown
    record = execute_run(resolve_run("smoke", "persistence", DATASET, 0), tmp_path)
    assert record.environment.cpu_bf16 == cpu_bf16_native()


def _drift_results(folder, per_window: bool = True):
    """fp32 and bf16 runs of three seeds with per-window errors: convlstm moves by 0.3% (inside the 2%
    margin), simvp by 25%; persistence and an unpaired bf16 run (another learning rate) must not show."""
    import dataclasses

    import numpy as np

    from benchmark.results.records import write_record
    from benchmark.scoring.evaluation import write_per_sample
    from tests.test_records_tables import fake_record

    scores = {("convlstm", "32-true"): (0.30, 0.32, 0.28), ("convlstm", "bf16-mixed"): (0.301, 0.321, 0.281),
              ("simvp", "32-true"): (0.20, 0.21, 0.19), ("simvp", "bf16-mixed"): (0.25, 0.26, 0.24)}
    windows = 1 + 0.3 * np.sin(np.arange(60) / 4.0)  # an autocorrelated per-window profile, mean ~1
    windows /= windows.mean()
    for (model, precision), values in scores.items():
        for seed, mse in enumerate(values):
            record = fake_record(model, mse, seed=seed, precision=precision)
            if per_window:
                jitter = 1 + 0.002 * np.random.default_rng(seed + 10 * len(precision)).standard_normal(60)
                errors = np.repeat((mse * windows * jitter / jitter.mean())[:, None], 3, axis=1)
                record = dataclasses.replace(record, per_sample_file=write_per_sample(
                    folder / record.run_id, {"mse": errors, "mae": errors, "ssim": 1 - errors,
                                             "sample_index": np.arange(60)}))
            write_record(folder, record)
    for precision in ("32-true", "bf16-mixed"):
        write_record(folder, fake_record("persistence", 0.5, precision=precision))
    write_record(folder, fake_record("convlstm", 0.9, precision="bf16-mixed", lr=0.5, finished_at="2026-02-01"))
    return folder


def test_precision_drift_pairs_the_same_setting_and_tests_equivalence(tmp_path):
    from benchmark.analysis.precision_drift import precision_drift, render

    results = _drift_results(tmp_path / "results")
    drift = precision_drift(records_to_frame(load_records(results)), results_dir=results)
    rows = drift.rows.droplevel("dataset")
    assert list(rows.index) == [("convlstm", "bf16-mixed"), ("simvp", "bf16-mixed")]  # no persistence
    convlstm, simvp = rows.loc[("convlstm", "bf16-mixed")], rows.loc[("simvp", "bf16-mixed")]
    assert convlstm["ref_n"] == convlstm["n"] == 3  # the lr=0.5 run is another setting: not averaged in
    assert convlstm["difference"] == pytest.approx(0.001) and simvp["relative"] == pytest.approx(0.25)
    assert convlstm["margin"] == pytest.approx(0.02)
    # convlstm: the 90% interval of +0.3% lies inside +-2%; simvp's +25% is far outside
    assert -0.02 < convlstm["ci_low"] < convlstm["relative"] < convlstm["ci_high"] < 0.02 and convlstm["p"] < 0.05
    assert simvp["ci_low"] > 0.02 and simvp["p"] > 0.5
    assert rows["equivalent"].tolist() == [True, False]
    assert list(drift.drifting.index.get_level_values("model")) == ["simvp"]
    assert "bf16 is not shown equivalent to fp32 on the test MSE of 1 of 2 models: simvp (+25.0%" in drift.verdict
    paths = render(drift, tmp_path / "tables")
    assert sorted(p.name for p in paths) == [f"precision_drift_mse_normalized.{e}" for e in ("csv", "md", "tex")]
    markdown = (tmp_path / "tables" / "precision_drift_mse_normalized.md").read_text()
    assert "synthetic-weather:t2m / simvp / bf16" in markdown and "| NO " in markdown and "TOST" in markdown
    # without the per-window errors: no test (not a guess)
    untested = precision_drift(records_to_frame(load_records(results)))
    assert untested.rows["equivalent"].isna().all() and untested.drifting.empty


def test_precision_drift_without_per_window_errors_is_not_tested(tmp_path):
    from benchmark.analysis.precision_drift import precision_drift

    results = _drift_results(tmp_path, per_window=False)
    drift = precision_drift(records_to_frame(load_records(results)), results_dir=results)
    assert drift.rows["equivalent"].isna().all() and drift.drifting.empty
    assert "Not tested (no per-window MSE in normalized units): convlstm, simvp." in drift.verdict


def test_bench_table_precision_drift(tmp_path):
    from typer.testing import CliRunner

    from benchmark.cli import app

    results = _drift_results(tmp_path / "results")
    runner = CliRunner()
    done = runner.invoke(app, ["table", "--precision-drift", "--results", str(results), "--out",
                               str(tmp_path / "tables"), "--metrics", "mse,ssim"], env={"COLUMNS": "80"})
    assert done.exit_code == 0, done.output
    assert "Precision drift: test MSE" in done.output and "Precision drift: test SSIM" in done.output
    assert "+25.0%" in done.output and "NO" in done.output and "yes" in done.output
    assert max(len(line) for line in done.output.splitlines() if "│" in line) <= 80
    assert (tmp_path / "tables" / "precision_drift_ssim_normalized.csv").is_file()
    empty = tmp_path / "fp32-only"
    from benchmark.results.records import write_record
    from tests.test_records_tables import fake_record

    write_record(empty, fake_record("simvp", 0.3))
    refused = runner.invoke(app, ["table", "--precision-drift", "--results", str(empty)])
    assert refused.exit_code != 0 and "--set train.precision=bf16-mixed" in refused.output
    combined = runner.invoke(app, ["table", "--precision-drift", "--epoch-sweep", "--results", str(results)])
    assert combined.exit_code != 0 and "leave out --epoch-sweep" in combined.output


def test_auto_precision_is_decided_by_the_machine_and_named_in_the_run_id(monkeypatch):
    import benchmark.run.hardware as hardware
    from benchmark.run.config import resolve_precision

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for native, expected in ((True, "bf16-mixed"), (False, "32-true"), (None, "32-true")):
        monkeypatch.setattr(hardware, "cpu_bf16_native", lambda native=native: native)
        assert resolve_precision("auto", "auto") == resolve_precision("auto", "cpu") == expected
        config = resolve_run("smoke", "simvp", DATASET, 0, {"train": {"precision": "auto"}})
        assert config.train["precision"] == expected  # concrete: the run id is that of the named precision
        assert config.run_id == resolve_run("smoke", "simvp", DATASET, 0,
                                            {"train": {"precision": expected}}).run_id
    assert resolve_precision("auto", "gpu") == "32-true"  # a GPU: the papers' fp32
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_precision("auto", "auto") == "32-true"
    assert resolve_precision("bf16-mixed", "gpu") == "bf16-mixed"  # a named precision is kept as it is


@pytest.mark.parametrize("precision,autocast", [("32-true", None), ("bf16-mixed", torch.bfloat16)])
def test_the_precision_reaches_the_training_step(tmp_path, monkeypatch, precision, autocast):
    from benchmark.run import training

    seen = []
    original = training.ForecastModule.training_step

    def spying_step(self, *args, **kwargs):
        enabled = torch.is_autocast_enabled("cpu")
        seen.append(torch.get_autocast_dtype("cpu") if enabled else None)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(training.ForecastModule, "training_step", spying_step)
    config = resolve_run("smoke", "simvp", DATASET, 0, {"train": {"precision": precision, "epochs": 1}})
    execute_run(config, tmp_path)
    assert seen and set(seen) == {autocast}  # Lightning ran every training step under that autocast (or none)


def test_the_report_has_a_precision_section_only_where_runs_differ_by_precision(tmp_path):
    from benchmark.present.report import build_report
    from benchmark.results.records import write_record
    from tests.test_records_tables import fake_record

    _, markdown = build_report(_drift_results(tmp_path / "results"), tmp_path / "report", {})
    text = markdown.read_text()
    assert "### Training precision" in text and "bf16 is not shown equivalent to fp32 on the test MSE" in text
    assert "| simvp " in text.split("### Training precision")[1]
    write_record(tmp_path / "fp32", fake_record("simvp", 0.3))
    _, markdown = build_report(tmp_path / "fp32", tmp_path / "report-fp32", {})
    assert "Training precision" not in markdown.read_text()
