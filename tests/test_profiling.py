"""`bench profile` measures real figures in a child process and writes them as CSV."""

import pandas as pd

from benchmark.registry.shapes import DataShape
from benchmark.run.profiling import profile_model
from tests.test_cli import invoke


def test_profile_counts_flops_and_times_a_training_step():
    row = profile_model("simvp", {"hid_S": 4, "hid_T": 8, "N_T": 2, "groups": 2}, DataShape(4, 2, 1, 16, 32),
                        batch=2, warmup=0, repeats=2, device="cpu", isolate=False)
    assert row.parameters > 0 and row.gflops_per_sample > 0
    assert row.train_step_seconds > 0 and row.inference_samples_per_second > 0
    wider = profile_model("simvp", {"hid_S": 8, "hid_T": 16, "N_T": 2, "groups": 2}, DataShape(4, 2, 1, 16, 32),
                          batch=2, warmup=0, repeats=1, device="cpu", isolate=False)
    assert wider.gflops_per_sample > row.gflops_per_sample and wider.parameters > row.parameters


def test_profile_command_writes_csv(tmp_path):
    result = invoke("profile", "--models", "persistence,convlstm", "--profile", "smoke", "--shape", "4,1,16,32",
                    "--batch", "2", "--warmup", "0", "--repeats", "1", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(tmp_path / "profile.csv")
    assert list(frame.model) == ["persistence", "convlstm"]
    assert frame.loc[0, "parameters"] == 0 and frame.loc[1, "parameters"] > 0
    assert frame.loc[1, "train_step_seconds"] > 0 and frame.loc[1, "peak_memory_mib"] >= 0


def test_a_model_that_does_not_fit_in_memory_is_a_row_not_a_crash(tmp_path, monkeypatch):
    import benchmark.run.profiling as profiling

    real = profiling.profile_model

    def with_small_limit(*args, **kwargs):  # 2 GiB of address space: too little for a wide ConvLSTM
        return real(*args, **kwargs, memory_limit_bytes=2 * 2**30)

    monkeypatch.setattr(profiling, "profile_model", with_small_limit)
    result = invoke("profile", "--models", "persistence,convlstm", "--profile", "paper", "--shape", "4,1,1024,1024",
                    "--batch", "16", "--warmup", "0", "--repeats", "1", "--device", "cpu", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(tmp_path / "profile.csv")
    assert list(frame.model) == ["persistence", "convlstm"]
    assert "out of memory" in frame.loc[1, "note"] and frame.loc[0, "parameters"] == 0


def test_profile_measures_precisions_side_by_side(tmp_path):
    result = invoke("profile", "--models", "persistence,simvp", "--profile", "smoke", "--shape", "4,1,16,32",
                    "--batch", "2", "--warmup", "0", "--repeats", "1", "--precision", "32-true,bf16-mixed",
                    "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(tmp_path / "profile.csv")
    assert list(zip(frame.model, frame.precision, strict=True)) == [
        ("persistence", "32-true"), ("persistence", "bf16-mixed"), ("simvp", "32-true"), ("simvp", "bf16-mixed")]
    assert "Speed relative to 32-true" in result.output and "bf16-mixed train" in result.output
    ratio = frame.loc[2, "train_step_seconds"] / frame.loc[3, "train_step_seconds"]
    assert f"{ratio:.2f}x" in result.output  # the printed ratio is the measured one
    bad = invoke("profile", "--models", "simvp", "--precision", "bf16", "--out", str(tmp_path))
    assert bad.exit_code == 2 and "choose from 32-true, bf16-mixed, 16-mixed" in bad.output


def test_profile_measures_a_model_against_other_settings_in_one_run(tmp_path):
    result = invoke("profile", "--models", "diffuma", "--profile", "smoke", "--shape", "3,2,1,16,16",
                    "--batch", "2", "--warmup", "0", "--repeats", "1", "--set", "model.grad_checkpoint=true",
                    "--against", "model.mamba_backend=mambapy", "--against", "model.dit_grad_checkpoint=false",
                    "--device", "cpu", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(tmp_path / "profile.csv", keep_default_na=False)
    assert list(zip(frame.variant, frame.backend, strict=True)) == [("", "lean"), ("against", "mambapy")]
    text = " ".join(result.output.split())  # the title wraps at the test terminal's width
    assert "Relative to --against model.mamba_backend=mambapy" in text and "train speed-up" in text
    ratio = frame.loc[1, "train_step_seconds"] / frame.loc[0, "train_step_seconds"]
    assert f"{ratio:.2f}x" in result.output  # the printed speed-up is the measured one
    bad = invoke("profile", "--models", "diffuma", "--against", "train.lr=1", "--out", str(tmp_path))
    assert bad.exit_code != 0 and "only model settings" in bad.output
