"""`bench run --pred-lens`: a sweep axis over the prediction length T_out (`data.t_out`)."""

import pytest

from benchmark.core.errors import ConfigError
from benchmark.run.config import parse_overrides
from benchmark.run.runner import check_pred_lens, plan_runs
from tests.test_cli import invoke


def test_pred_lens_plans_one_run_per_length_with_the_ids_of_set_data_t_out():
    overrides = parse_overrides(["train.lr=0.003"])
    configs = plan_runs("persistence,simvp", "synthetic-weather", "smoke", [0, 1], overrides, pred_lens=[2, 3])
    assert len(configs) == 2 * 2 * 2
    # order: dataset, model, pred_len, seed
    assert [(c.model, c.t_out, c.seed) for c in configs] == [
        (model, length, seed) for model in ("persistence", "simvp") for length in (2, 3) for seed in (0, 1)]
    assert all(c.train["lr"] == 0.003 and c.t_in == 4 for c in configs)
    assert overrides == {"train": {"lr": 0.003}}  # the caller's overrides are not changed
    # each run is the run of `--set data.t_out=L`: the same config, so the same id (finished work is shared)
    for length in (2, 3):
        same = plan_runs("persistence,simvp", "synthetic-weather", "smoke", [0, 1],
                         parse_overrides(["train.lr=0.003", f"data.t_out={length}"]))
        assert [c.run_id for c in configs if c.t_out == length] == [c.run_id for c in same]
        assert [c.to_dict() for c in configs if c.t_out == length] == [c.to_dict() for c in same]
    # None: no axis, t_out from the profile as before
    plain = plan_runs("persistence", "synthetic-weather", "smoke", [0])
    assert [c.t_out for c in plain] == [3]
    assert plan_runs("persistence", "synthetic-weather", "smoke", [0], pred_lens=None) == plain


@pytest.mark.parametrize(
    "lengths, overrides, fragment",
    [
        ([0], None, "positive whole numbers"),
        ([-3, 2], None, "-3 is not one"),
        ([True], None, "positive whole numbers"),
        ([2.5], None, "positive whole numbers"),
        ([3, 6, 3], None, "lists 3 more than once"),
        ([], None, "at least one prediction length"),
        ([3, 6], {"data": {"t_out": 6}}, "use one of them"),
    ],
)
def test_check_pred_lens_refuses_bad_lengths(lengths, overrides, fragment):
    with pytest.raises(ConfigError, match=fragment):
        check_pred_lens(lengths, overrides)
    with pytest.raises(ConfigError, match=fragment):
        plan_runs("persistence", "synthetic-weather", "smoke", [0], overrides, pred_lens=lengths)


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["--pred-lens", "0"], ["--pred-lens", "positive whole numbers", "0 is not one"]),
        (["--pred-lens", "abc"], ["--pred-lens must be comma-separated", "'abc'"]),
        (["--pred-lens", "3,x"], ["--pred-lens must be comma-separated", "'3,x'"]),
        (["--pred-lens", "1.5"], ["--pred-lens must be comma-separated"]),
        (["--pred-lens", ""], ["at least one prediction length"]),
        (["--pred-lens", "2,3,2"], ["lists 2 more than once"]),
        (["--pred-lens", "2,3", "--set", "data.t_out=6"],
         ["--pred-lens and --set data.t_out=6", "use one of them"]),
    ],
)
def test_bad_pred_lens_are_one_clear_paragraph(tmp_path, args, fragments):
    results = tmp_path / "results"
    result = invoke("run", "--models", "persistence", "--profile", "smoke", "--results", str(results), *args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    output = " ".join(result.output.split())  # rich wraps long lines
    for fragment in fragments:
        assert fragment in output
    assert not results.exists()


@pytest.mark.parametrize("dataset", ["chdl", "synthetic-chdl"])
def test_a_length_the_sequences_cannot_hold_is_refused_before_any_run(tmp_path, dataset):
    # CHDL: 10 frames per sequence; the quick profile reads 5 -> T_out, so T_out = 6 does not fit
    with pytest.raises(ConfigError, match=r"t_in \+ t_out = 5 \+ 6 exceeds data.frames_per_sequence = 10"):
        plan_runs("persistence", dataset, "quick", [0], pred_lens=[1, 6])
    results = tmp_path / "results"
    result = invoke("run", "--models", "persistence", "--dataset", dataset, "--profile", "quick",
                    "--pred-lens", "1,6", "--results", str(results))
    assert result.exit_code == 2 and "Traceback" not in result.output
    output = " ".join(result.output.split())
    assert f"{dataset}: t_in + t_out = 5 + 6 exceeds data.frames_per_sequence = 10" in output
    assert not results.exists()  # not even the length that fits (1) was run
    assert len(plan_runs("persistence", dataset, "quick", [0], pred_lens=[1, 5])) == 2  # 5 + 5 = 10 fits


def test_dry_run_lists_every_length(tmp_path):
    result = invoke("run", "--models", "persistence", "--profile", "smoke", "--pred-lens", "2,3", "--dry-run",
                    "--results", str(tmp_path))
    assert result.exit_code == 0, result.output
    ids = [c.run_id for c in plan_runs("persistence", "synthetic-weather", "smoke", [0], pred_lens=[2, 3])]
    assert len(set(ids)) == 2 and all(run_id in result.output for run_id in ids)
    assert '"t_out": 2' in result.output and '"t_out": 3' in result.output
    assert not any(tmp_path.iterdir())


def test_a_smoke_sweep_of_two_lengths_fills_the_length_sweep_table(tmp_path):
    results, out = tmp_path / "results", tmp_path / "tables"
    ran = invoke("run", "--profile", "smoke", "--models", "persistence", "--pred-lens", "2,3", "--results",
                 str(results), "--no-progress")
    assert ran.exit_code == 0, ran.output
    assert "Finished 2" in ran.output and "T_out 2" in ran.output and "T_out 3" in ran.output
    from benchmark.analysis.tables import length_sweep_table
    from benchmark.results.records import load_records, records_to_frame

    frame = records_to_frame(load_records(results))
    assert sorted(frame[frame["epoch"] == "best"]["t_out"].unique()) == [2, 3]
    assert len(list(results.glob("*/record.json"))) == 2
    assert sorted({length for length, _ in length_sweep_table(frame).mean.columns}) == [2, 3]
    table = invoke("table", "--length-sweep", "--results", str(results), "--out", str(out), "--format", "markdown")
    assert table.exit_code == 0, table.output
    markdown = (out / "length_sweep_normalized.md").read_text()
    assert "T_out=2" in markdown and "T_out=3" in markdown and "persistence" in markdown
    # the runs are those of --set data.t_out=L: already finished
    again = invoke("run", "--profile", "smoke", "--models", "persistence", "--set", "data.t_out=3", "--results",
                   str(results))
    assert again.exit_code == 0 and "All 1 runs are already finished" in again.output
