"""`benchmark.analysis.claims`: the paper's claims recomputed from its stored tables and from our run records."""

import pandas as pd
import pytest
from typer.testing import CliRunner

from benchmark.analysis import claims
from benchmark.cli import app
from benchmark.paper import numbers
from benchmark.results.records import records_to_frame, write_record
from tests.test_records_tables import fake_record


@pytest.fixture(scope="module")
def paper():
    return numbers.load_paper_numbers()


@pytest.fixture(scope="module")
def empty_table(paper):
    return claims.claims_table(pd.DataFrame(), paper)


def _row(table, start):
    hits = table[table["claim"].str.startswith(start)]
    assert len(hits) == 1, start
    return hits.iloc[0]


def test_weatherbench_reductions_are_recomputed_from_table2(paper):
    mse = claims.paper_reductions(paper, "weatherbench", "mse")
    assert list(mse) == ["weatherbench:tcc", "weatherbench:uv10", "weatherbench:r", "weatherbench:t2m"]
    assert sum(mse.values()) / 4 == pytest.approx(39.03, abs=0.01)  # the paper's 39%: per-variable reading
    assert claims.paper_reduction_of_means(paper, "weatherbench", "mse") == pytest.approx(49.92, abs=0.01)
    mae = claims.paper_reductions(paper, "weatherbench", "mae")
    assert sum(mae.values()) / 4 == pytest.approx(21.93, abs=0.01)
    assert mae["weatherbench:t2m"] < 0  # DIFFUMA's temperature MAE is worse than SimVP's
    assert claims.paper_reduction_of_means(paper, "weatherbench", "mae") == pytest.approx(28.26, abs=0.01)
    assert claims.paper_reductions(paper, "chdl", "mse")["chdl"] == pytest.approx(29.73, abs=0.01)
    assert claims.paper_reductions(paper, "chdl", "mae")["chdl"] == pytest.approx(16.19, abs=0.01)


def test_paper_side_verdicts(empty_table):
    assert _row(empty_table, "WeatherBench: MSE")["verdict"].startswith("holds on the mean of per-variable")
    assert "rounds to 22%" in _row(empty_table, "WeatherBench: MAE")["verdict"]
    assert _row(empty_table, "CHDL: reducing the MSE by 28%")["verdict"] == "does not hold"
    assert _row(empty_table, "CHDL: reducing the MAE by 37%")["verdict"] == "does not hold"
    assert _row(empty_table, "on our CHDL benchmark")["verdict"] == "does not hold"
    ssim = _row(empty_table, "on CHDL ... improving the SSIM")
    assert ssim["verdict"] == "does not hold"
    assert "diffuma chdl 0.9254" in ssim["recomputed"] and "diffuma weatherbench:t2m 0.9878" in ssim["recomputed"]
    assert _row(empty_table, "CHDL: 5 input frames")["verdict"] == "inconsistent in the paper"
    assert _row(empty_table, "significantly outperforms all baselines at every")["verdict"].startswith("holds")


def test_every_metric_check_finds_temperature_mae(empty_table):
    row = _row(empty_table, "outperforms ... across every evaluation metric")
    assert row["verdict"] == "does not hold"
    assert "best in 14/15" in row["recomputed"]
    assert "weatherbench:t2m MAE: diffuma 0.0413 vs simvp 0.0405" in row["recomputed"]


def test_paper_side_comes_from_the_csv(monkeypatch, paper):
    changed = paper.copy()
    cell = (changed["table"] == 2) & (changed["model"] == "diffuma") & (changed["dataset"] == "chdl")
    changed.loc[cell & (changed["metric"] == "mse"), "value"] = 0.0528 * 0.72  # exactly 28% below SimVP
    changed.loc[(changed["table"] == 2) & (changed["model"] == "diffuma") & (changed["dataset"] == "weatherbench:t2m")
                & (changed["metric"] == "mae"), "value"] = 0.0390  # now better than SimVP's 0.0405
    monkeypatch.setattr(numbers, "load_paper_numbers", lambda *a, **k: changed)
    table = claims.claims_table(pd.DataFrame())
    assert _row(table, "CHDL: reducing the MSE by 28%")["verdict"] == "holds"
    assert "chdl 28.0%" in _row(table, "CHDL: reducing the MSE by 28%")["recomputed"]
    assert _row(table, "outperforms ... across every evaluation metric")["verdict"] == "holds"
    assert "best in 15/15" in _row(table, "outperforms ... across every")["recomputed"]


def test_no_records_says_no_runs(empty_table):
    for start in ("WeatherBench: MSE", "CHDL: reducing the MSE", "outperforms ... across every",
                  "significantly surpasses"):
        assert _row(empty_table, start)["our_runs"] == claims.NO_RUNS


def _frame(*records):
    return records_to_frame(list(records))


def test_our_side_computes_the_reduction_over_seeds(paper):
    frame = _frame(fake_record("simvp", 0.40, seed=0), fake_record("simvp", 0.60, seed=1),
                   fake_record("diffuma", 0.20, seed=0), fake_record("diffuma", 0.30, seed=1),
                   fake_record("convlstm", 0.10))
    assert claims.our_reductions(frame, "weatherbench", "mse") == {"synthetic-weather:t2m": pytest.approx(50.0)}
    table = claims.claims_table(frame, paper)
    row = _row(table, "WeatherBench: MSE")
    assert row["our_runs"] == "stand-in: synthetic-weather:t2m 50.0%"
    assert row["our_verdict"].startswith("stand-in: holds")
    assert _row(table, "CHDL: reducing the MSE")["our_runs"] == claims.NO_RUNS
    every = _row(table, "outperforms ... across every")
    assert "convlstm" in every["our_runs"] and every["our_verdict"].startswith("best: does not hold")
    assert every["our_verdict"].endswith("not tested")


def test_cli_writes_the_three_files(tmp_path):
    results = tmp_path / "results"
    for record in (fake_record("simvp", 0.4), fake_record("diffuma", 0.2)):
        write_record(results, record)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["claims", "--results", str(results), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["claims.csv", "claims.md", "claims.tex"]
    csv = pd.read_csv(out / "claims.csv")
    assert list(csv.columns) == claims.COLUMNS and len(csv) == len(claims.CLAIMS)
    assert "50.0%" in csv.loc[0, "our_runs"]
    tex = (out / "claims.tex").read_text()
    assert "39\\%" in tex and "\\begin{tabular}" in tex and "weatherbench:t2m MAE" in tex


def test_the_chdl_ssim_claim_reads_chdl_runs_only():
    frame = records_to_frame([fake_record("diffuma", 0.2), fake_record("simvp", 0.1)])  # weather stand-in runs
    row = _row(claims.claims_table(frame), "on CHDL ... improving the SSIM")
    assert row["our_runs"] == claims.NO_RUNS
