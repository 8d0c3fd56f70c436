"""The command line, in-process (typer's CliRunner), plus two true subprocess checks."""

import json
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from benchmark.cli import app

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args), env={"COLUMNS": "250"})


def test_models_lists_parameter_counts_at_paper_size():
    result = invoke("models", "--shape", "12,1,32,64")
    assert result.exit_code == 0, result.output
    for expected in ("persistence", "convlstm", "simvp", "11.52M", "14.67M"):
        assert expected in result.output


def test_models_at_a_smaller_profile_counts_fewer_parameters():
    paper = invoke("models", "--shape", "12,1,32,64", "--profile", "paper")
    smoke = invoke("models", "--shape", "12,1,32,64", "--profile", "smoke")
    assert paper.exit_code == 0 and smoke.exit_code == 0

    def convlstm_row(output: str) -> str:
        return next(line for line in output.splitlines() if "convlstm" in line)

    assert convlstm_row(paper.output).count("11.52M") == 2  # ours and the reference
    assert convlstm_row(smoke.output).count("11.52M") == 1  # the reference only


def test_datasets_lists_registered_datasets():
    result = invoke("datasets")
    assert result.exit_code == 0
    assert "synthetic-weather" in result.output and "weatherbench" in result.output and "uv10" in result.output


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["run", "--models", "convlstmm", "--profile", "smoke"],
         ["Unknown model 'convlstmm'", "convlstm", "bench models"]),
        (["run", "--dataset", "weatherbnch", "--profile", "smoke"],
         ["Unknown dataset", "weatherbench", "bench datasets"]),
        (["run", "--dataset", "synthetic-weather:z500", "--profile", "smoke"], ["no task 'z500'", "t2m"]),
        (["run", "--profile", "tiny"], ["Unknown profile 'tiny'", "smoke"]),
        (["run", "--set", "lr=1", "--profile", "smoke"], ["section.key=value"]),
        (["run", "--eval-at", "1,x", "--profile", "smoke"], ["--eval-at"]),
        (["table", "--results", "nowhere"], ["no results folder", "bench run"]),
    ],
)
def test_bad_input_gets_one_clear_paragraph(args, fragments):
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in result.output


def test_weatherbench_without_data_says_what_to_do(tmp_path):
    result = invoke("run", "--models", "persistence", "--dataset", "weatherbench:t2m", "--profile", "smoke",
                    "--results", str(tmp_path / "results"))
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "--data-root" in result.output and "synthetic-weather" in result.output


def test_missing_data_folder_is_named(tmp_path):
    missing = tmp_path / "my-weatherbench"
    result = invoke("run", "--models", "persistence", "--dataset", "weatherbench:t2m", "--profile", "smoke",
                    "--data-root", str(missing), "--results", str(tmp_path / "results"))
    assert result.exit_code == 2 and str(missing) in result.output.replace("\n", "")


def test_dry_run_prints_resolved_configs_and_trains_nothing(tmp_path):
    result = invoke("run", "--models", "convlstm,simvp", "--profile", "smoke", "--dry-run", "--set",
                    "train.lr=0.003", "--results", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert result.output.count('"lr": 0.003') == 2 and "num_hidden" in result.output
    # the plan resolves each run against its data: optimizer steps, and the schedule in those steps
    assert result.output.count('"total_steps": 6') >= 2 and '"steps_per_epoch": 3' in result.output
    assert not any(tmp_path.iterdir())


def test_run_then_table_then_nothing_to_do(tmp_path, monkeypatch):
    results, tables = tmp_path / "results", tmp_path / "tables"
    args = ["run", "--models", "persistence,simvp", "--profile", "smoke", "--results", str(results)]
    first = invoke(*args, "--jobs", "2")  # two worker processes
    assert first.exit_code == 0, first.output
    assert "Finished 2" in first.output and "2 at a time" in first.output
    assert len(list(results.glob("*/record.json"))) == 2
    # a run in a worker process gives the record a run in this process gives
    from benchmark.results.records import read_record, record_path
    from benchmark.run.runner import execute_run, plan_runs

    config = plan_runs("simvp", "synthetic-weather", "smoke", [0])[0]
    serial = execute_run(config, tmp_path / "serial")
    parallel = read_record(record_path(results, config.run_id))
    assert parallel.test == serial.test
    # the one-line summary of each run is read from the typed record the worker sent back
    assert f"test MSE {parallel.test.normalized.mse:.4g}, SSIM {parallel.test.normalized.ssim:.4f}" in first.output
    # the runner decides, once per run, that nothing is left to do; the CLI says so from its plan
    import benchmark.run.runner

    checked = []
    real_is_finished = benchmark.run.runner.is_finished

    def counted_is_finished(folder, run_id):
        checked.append(run_id)
        return real_is_finished(folder, run_id)

    monkeypatch.setattr(benchmark.run.runner, "is_finished", counted_is_finished)
    second = invoke(*args)
    assert second.exit_code == 0 and "All 2 runs are already finished" in second.output
    assert sorted(checked) == sorted(c.run_id for c in plan_runs("persistence,simvp", "synthetic-weather",
                                                                 "smoke", [0]))
    table = invoke("table", "--results", str(results), "--out", str(tables), "--format", "all")
    assert table.exit_code == 0, table.output
    assert sorted(p.name for p in tables.iterdir()) == ["main_normalized.csv", "main_normalized.md",
                                                         "main_normalized.tex"]
    assert "persistence" in (tables / "main_normalized.md").read_text()
    latex = invoke("table", "--results", str(results), "--out", str(tables), "--format", "latex", "--space",
                   "physical")
    assert latex.exit_code == 0 and (tables / "main_physical.tex").exists()
    assert not (tables / "main_physical.csv").exists()


def test_bench_help_and_a_real_run_in_a_subprocess(tmp_path):
    env = {**os.environ, "COLUMNS": "200"}
    helped = subprocess.run([sys.executable, "-m", "benchmark", "--help"], capture_output=True, text=True, env=env)
    assert helped.returncode == 0 and "run" in helped.stdout and "table" in helped.stdout
    # `bench --help` must not pay for Lightning: the CLI imports it lazily
    probe = "import sys, benchmark.cli; print('lightning' in sys.modules, 'torch' in sys.modules)"
    imported = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env)
    assert imported.stdout.split() == ["False", "False"]
    ran = subprocess.run(
        [sys.executable, "-m", "benchmark", "run", "--models", "persistence", "--profile", "smoke",
         "--results", str(tmp_path / "results")],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert ran.returncode == 0, ran.stderr
    record = json.loads(next((tmp_path / "results").glob("*/record.json")).read_text())
    assert record["config"]["model"] == "persistence" and record["status"] == "finished"


def test_two_process_ddp_run_on_cpu_writes_one_record(tmp_path):
    env = {**os.environ, "COLUMNS": "200", "OMP_NUM_THREADS": "1"}
    ran = subprocess.run(
        [sys.executable, "-m", "benchmark", "run", "--models", "simvp", "--profile", "smoke", "--no-progress",
         "--set", "train.devices=2", "--set", "train.strategy=ddp", "--set", "train.accelerator=cpu",
         "--results", str(tmp_path / "results")],
        capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path,
    )
    assert ran.returncode == 0, ran.stderr[-2000:]
    records = list((tmp_path / "results").glob("*/record.json"))
    assert len(records) == 1
    record = json.loads(records[0].read_text())
    assert record["status"] == "finished" and record["config"]["train"]["devices"] == 2


def test_dataset_table_puts_loaded_counts_beside_the_papers(tmp_path):
    out = tmp_path / "tables"
    result = invoke("table", "--datasets", "--dataset", "synthetic-weather:t2m,weatherbench:t2m,chdl,synthetic-chdl",
                    "--profile", "smoke", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["datasets.csv", "datasets.md", "datasets.tex"]
    import pandas as pd

    frame = pd.read_csv(out / "datasets.csv").set_index("dataset")
    generated = frame.loc["synthetic-weather:t2m"]
    assert int(generated["train"]) > 0 and int(generated["paper train"]) == 2300
    assert generated["(C, H, W)"] == "(1, 32, 64)" and "stand-in" in generated["note"]
    missing = frame.loc["weatherbench:t2m"]  # no WeatherBench files here: a note instead of numbers
    assert missing["train"] == "–" and "not loaded" in missing["note"] and int(missing["paper test"]) == 657
    chdl = frame.loc["synthetic-chdl"]
    assert (int(chdl["train"]), int(chdl["test"]), chdl["(C, H, W)"]) == (7, 4, "(1, 24, 32)")  # 1 of 8 is val
    assert int(chdl["paper train"]) == 4874 and frame.loc["chdl", "note"].startswith("not loaded")
    assert "\\toprule" in (out / "datasets.tex").read_text()
