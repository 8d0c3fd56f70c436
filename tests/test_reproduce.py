"""`bench reproduce`: the diffuma-paper suite, planned like `bench run`, finished runs skipped, tables rendered."""

from collections import Counter

from typer.testing import CliRunner

from benchmark.cli import app
from benchmark.run.reproduce import load_suite, plan_suite, plan_suite_detailed, scale_epochs
from benchmark.run.runner import execute_run, plan_runs

SUITE = load_suite("diffuma-paper")
SMOKE_EVAL_AT = [1, 2]  # the smoke profile's 2 epochs: round(e * 2 / 110) for e in 1, 10, ..., 110, >= 1


def test_suite_loads():
    assert len(SUITE.models) == 11 and {"persistence", "climatology", "diffuma-randcond"} <= set(SUITE.models)
    assert set(SUITE.length_models) == {"convlstm", "predrnn-v2", "simvp", "pastnet", "diffuma"}
    assert SUITE.pred_lens == (3, 6, 9, 12)
    assert {"smoke", "quick", "paper"} <= set(SUITE.profiles)


def test_epoch_rule():
    assert scale_epochs(SUITE.paper_epochs, 110, 2) == SMOKE_EVAL_AT
    assert scale_epochs(SUITE.paper_epochs, 110, 8) == [1, 2, 3, 4, 5, 6, 7, 8]
    assert scale_epochs([10, 20, 40, 60, 80, 100], 100, 8) == [1, 2, 3, 5, 6, 8]  # 0.8 -> 1, 4.8 -> 5 ...
    assert scale_epochs(SUITE.paper_epochs, 110, 110) == list(SUITE.paper_epochs)


def test_smoke_plan_counts_and_shared_ids():
    configs = plan_suite(SUITE, "smoke", [0])
    counts = Counter((c.model, c.t_out) for c in configs)
    main = [c for c in configs if c.t_out == 3]  # the smoke profile's t_out
    assert len(main) == 11 and all(c.train["eval_at"] == SMOKE_EVAL_AT for c in main)
    for model in SUITE.length_models:
        assert [counts[(model, n)] for n in (3, 6, 9, 12)] == [1, 1, 1, 1]
    assert len(configs) == 11 + 5 * 3
    assert {c.dataset for c in configs} == {"synthetic-weather:t2m"}
    # the main runs are `bench run --eval-at 1,2` runs; the other lengths `bench run --pred-lens 6,9,12`
    same = plan_runs(",".join(SUITE.models), "synthetic-weather:t2m", "smoke", [0], {"train": {"eval_at": [1, 2]}})
    assert [c.run_id for c in main] == [c.run_id for c in same]
    lengths = plan_runs(",".join(SUITE.length_models), "synthetic-weather:t2m", "smoke", [0], pred_lens=[6, 9, 12])
    assert {c.run_id for c in lengths} == {c.run_id for c in configs if c.t_out != 3}


def test_length_run_at_profile_t_out_is_the_main_run():
    plan = plan_suite_detailed(SUITE, "smoke", [0, 1])
    ids = plan.run_ids
    assert len(ids) == len(set(ids)) == 2 * 26
    assert len({(c.model, c.dataset, c.t_out, c.seed) for c in plan.configs}) == len(ids)
    as_length = plan_runs("simvp", "synthetic-weather:t2m", "smoke", [0], {"train": {"eval_at": [1, 2]}},
                          pred_lens=[3, 6])[0]
    assert as_length.run_id in ids and plan.roles[as_length.run_id] == ["main", "length"]
    assert any(c.startswith("bench run") and "--eval-at 1,2" in c for c in plan.commands)


def test_model_and_dataset_filters():
    configs = plan_suite(SUITE, "smoke", [0], models="persistence,simvp")
    assert Counter(c.model for c in configs) == {"persistence": 1, "simvp": 4}
    assert plan_suite(SUITE, "smoke", [0], datasets="synthetic-chdl", models="simvp")[0].dataset == "synthetic-chdl"


def test_finished_run_is_skipped_and_dry_run_writes_nothing(tmp_path):
    results, out = tmp_path / "results", tmp_path / "out"
    persistence = plan_suite(SUITE, "smoke", [0], models="persistence")[0]
    execute_run(persistence, results)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    result = CliRunner().invoke(app, ["reproduce", "diffuma-paper", "--profile", "smoke", "--seeds", "0",
                                      "--models", "persistence,simvp", "--results", str(results), "--out", str(out),
                                      "--dry-run"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    assert persistence.run_id in result.output and "yes" in result.output
    assert "bench run -m persistence,simvp" in result.output and "--pred-lens 6,9,12" in result.output
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before and not out.exists()


def test_end_to_end_smoke(tmp_path):
    results, out = tmp_path / "results", tmp_path / "out"
    persistence = plan_suite(SUITE, "smoke", [0], models="persistence")[0]
    execute_run(persistence, results)
    stamp = (results / persistence.run_id / "record.json").stat().st_mtime_ns
    result = CliRunner().invoke(app, ["reproduce", "diffuma-paper", "--profile", "smoke", "--seeds", "0",
                                      "--models", "persistence,simvp", "--results", str(results), "--out", str(out),
                                      "--jobs", "1"])
    assert result.exit_code == 0, result.output
    assert "1 already finished, 4 to run" in result.output
    assert (results / persistence.run_id / "record.json").stat().st_mtime_ns == stamp  # not re-run
    names = {p.name for p in out.iterdir()}
    for stem in ("datasets", "main_normalized", "epoch_sweep_normalized", "length_sweep_normalized", "claims"):
        assert {f"{stem}.csv", f"{stem}.md", f"{stem}.tex"} <= names, (stem, sorted(names))
    assert any(n.startswith("length_sweep_vs_paper") for n in names), sorted(names)
