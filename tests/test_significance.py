"""Paired significance tests: constructed data with known answers, and a real smoke run pair."""

import dataclasses

import numpy as np
import pytest
from typer.testing import CliRunner

from benchmark import tables
from benchmark.cli import app
from benchmark.config import resolve_run
from benchmark.errors import BenchError
from benchmark.evaluation import read_per_sample, write_per_sample
from benchmark.records import RunRecord, load_records, read_record, record_path, records_to_frame
from benchmark.runner import execute_run
from benchmark.significance import compare_runs, effect_size, holm, paired_bootstrap, wilcoxon

DATASET = "synthetic-weather:t2m"


def test_clear_difference_is_significant():
    rng = np.random.default_rng(2)
    a = rng.normal(5.0, 1.0, 300)
    b = a + 1.0 + rng.normal(0.0, 0.1, 300)
    mean_diff, low, high, p = paired_bootstrap(a, b, n_boot=5000, seed=0)
    assert mean_diff == pytest.approx(-1.0, abs=0.02) and low < mean_diff < high < 0
    assert p < 0.01
    assert wilcoxon(a, b)[1] < 0.01
    effect = effect_size(a, b)
    assert effect["relative"] == pytest.approx(-1.0 / 6.0, rel=0.05) and effect["cohen_d"] < -5


def test_equal_distributions_are_not_significant():
    # independent N(0, 1) noise of mean 0: for this generator seed (1) and n = 300 the observed mean
    # difference is -0.015, bootstrap p = 0.78 and Wilcoxon p = 0.63 (any p > 0.05 would pass)
    rng = np.random.default_rng(1)
    a = rng.normal(5.0, 1.0, 300)
    b = a + rng.normal(0.0, 1.0, 300)
    mean_diff, low, high, p = paired_bootstrap(a, b, n_boot=5000, seed=0)
    assert low < 0 < high and p > 0.05
    assert wilcoxon(a, b)[1] > 0.05
    # the bootstrap is reproducible for a fixed seed
    assert paired_bootstrap(a, b, n_boot=5000, seed=0) == (mean_diff, low, high, p)


def test_degenerate_inputs():
    a = np.arange(5.0)
    assert wilcoxon(a, a) == (0.0, 1.0)
    assert paired_bootstrap(a, a, n_boot=100)[3] == 1.0
    with pytest.raises(ValueError, match="same length"):
        paired_bootstrap(a, a[:3])


def test_holm_textbook_values():
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03]), [0.03, 0.06, 0.06])
    np.testing.assert_allclose(holm([0.01, 0.02, 0.03, 0.04]), [0.04, 0.06, 0.06, 0.06])
    np.testing.assert_allclose(holm([0.5, 0.001]), [0.5, 0.002])
    np.testing.assert_allclose(holm([0.6, 0.7]), [1.0, 1.0])  # capped at 1, monotone
    assert holm([]).size == 0


def _fake_run(tmp_path, record: RunRecord, seed: int, values: np.ndarray, index=None):
    """A copy of `record` under another run id and seed whose per-sample errors are `values`."""
    config = dataclasses.replace(record.config, seed=seed)
    run_id = f"{record.run_id}-fake{seed}-{abs(hash(values.tobytes())) % 10000}"
    fake = dataclasses.replace(record, run_id=run_id, config=config)
    index = np.arange(values.shape[0]) if index is None else index
    fake.per_sample_file = write_per_sample(tmp_path / run_id,
                                            {"mse": values, "mae": values, "ssim": values, "sample_index": index})
    return fake


@pytest.fixture(scope="module")
def smoke_pair(tmp_path_factory):
    results = tmp_path_factory.mktemp("results")
    persistence = execute_run(resolve_run("smoke", "persistence", DATASET, 0), results)
    simvp = execute_run(resolve_run("smoke", "simvp", DATASET, 0), results)
    return results, persistence, simvp


def test_smoke_runs_store_per_sample_errors(smoke_pair):
    results, *records = smoke_pair
    for record in records:
        assert record.per_sample_file == "per_sample.npz"
        assert read_record(record_path(results, record.run_id)) == record
        arrays = read_per_sample(results / record.run_id / record.per_sample_file)
        n, t_out = record.test.count, record.config.t_out
        for name in ("mse", "mae", "ssim"):
            assert arrays[name].shape == (n, t_out) and arrays[name].dtype == np.float32
        assert arrays["sample_index"].dtype == np.int64
        np.testing.assert_array_equal(arrays["sample_index"], np.arange(n))
        scores = record.test.normalized
        assert float(arrays["mse"].astype(np.float64).mean()) == pytest.approx(scores.mse, rel=1e-6)
        assert float(arrays["mae"].astype(np.float64).mean()) == pytest.approx(scores.mae, rel=1e-6)
        assert float(arrays["ssim"].astype(np.float64).mean()) == pytest.approx(scores.ssim, rel=1e-6)
        np.testing.assert_allclose(arrays["mse"].astype(np.float64).mean(axis=0), scores.per_lead["mse"], rtol=1e-6)
        assert not list((results / record.run_id).glob(".per_sample.npz.*"))  # no temp file left


def test_record_without_per_sample_file_still_loads(smoke_pair):
    _, record, _ = smoke_pair
    values = record.to_dict()
    values.pop("per_sample_file")
    old = RunRecord.from_dict(values)
    assert old.per_sample_file is None and old == dataclasses.replace(record, per_sample_file=None)


def test_compare_smoke_runs(smoke_pair, tmp_path):
    results, persistence, simvp = smoke_pair
    for metric in ("mse", "mae", "ssim"):
        result = compare_runs([simvp], [persistence], metric, results_dir=results, n_boot=2000)
        assert result.seeds == [0] and result.n_samples == simvp.test.count
        assert result.mean_diff == pytest.approx(result.model_mean - result.baseline_mean, abs=1e-9)
        assert 0 < result.p_bootstrap <= 1 and 0 <= result.p_wilcoxon <= 1
    # run folders work as well as records
    by_folder = compare_runs([results / simvp.run_id], [results / persistence.run_id], "mse", n_boot=2000)
    assert by_folder == compare_runs([simvp], [persistence], "mse", results_dir=results, n_boot=2000)
    with pytest.raises(BenchError, match="results_dir"):
        compare_runs([simvp], [persistence], "mse")
    with pytest.raises(BenchError, match="not 'psnr'"):
        compare_runs([simvp], [persistence], "psnr", results_dir=results)
    no_file = dataclasses.replace(persistence, per_sample_file=None)
    with pytest.raises(BenchError, match="no per-sample errors"):
        compare_runs([simvp], [no_file], "mse", results_dir=results)


def test_compare_runs_pools_seeds_and_checks_pairing(smoke_pair, tmp_path):
    _, record, _ = smoke_pair
    rng = np.random.default_rng(0)
    base = [rng.normal(5.0, 1.0, (40, 2)) for _ in range(2)]
    model = [_fake_run(tmp_path, record, s, base[s] - 1.0 + rng.normal(0, 0.1, (40, 2))) for s in range(2)]
    baseline = [_fake_run(tmp_path, record, s, base[s]) for s in range(2)]
    result = compare_runs(model, baseline, "mse", results_dir=tmp_path, n_boot=2000)
    assert result.seeds == [0, 1] and result.n_samples == 80
    assert result.mean_diff == pytest.approx(-1.0, abs=0.05) and result.p_bootstrap < 0.01 and result.model_better
    # a seed only one side has is left out; no seed in common is an error
    assert compare_runs(model, baseline[:1], "mse", results_dir=tmp_path, n_boot=200).seeds == [0]
    with pytest.raises(BenchError, match="No seed in common"):
        compare_runs(model[:1], baseline[1:], "mse", results_dir=tmp_path)
    with pytest.raises(BenchError, match="Two runs of seed 0"):
        compare_runs([model[0], model[0]], baseline, "mse", results_dir=tmp_path)
    shuffled = _fake_run(tmp_path, record, 0, base[0], index=np.arange(40)[::-1].copy())
    with pytest.raises(BenchError, match="different test samples"):
        compare_runs(model[:1], [shuffled], "mse", results_dir=tmp_path)


def test_significance_marks_and_table(smoke_pair, tmp_path):
    results, persistence, simvp = smoke_pair
    frame = records_to_frame(load_records(results))
    marks = tables.significance_marks(frame, results, model="simvp", n_boot=2000)
    assert list(marks[["baseline", "dataset"]].drop_duplicates().itertuples(index=False, name=None)) == [
        ("persistence", DATASET)]
    assert sorted(marks["metric"]) == ["mae", "mse", "ssim"]
    for row in marks.itertuples():
        # one baseline: Holm leaves the p-value as it is
        assert row.p_holm == pytest.approx(row.p)
        expected_better = row.mean_diff > 0 if row.metric == "ssim" else row.mean_diff < 0
        assert row.mark == ("" if row.p_holm > 0.05 else "▲" if expected_better else "▼")
    wide = tables.significance_table(marks)
    assert list(wide.index) == ["persistence"] and len(wide.columns) == 3
    written = tables.render_significance(marks, tmp_path / "tables", model="simvp")
    assert sorted(p.name for p in written) == ["significance.csv", "significance.md", "significance.tex"]
    # no diffuma runs here: the command says so
    result = CliRunner().invoke(app, ["table", "--results", str(results), "--out", str(tmp_path / "t"),
                                      "--significance"], env={"COLUMNS": "250"})
    assert result.exit_code != 0 and "per-sample errors" in result.output
