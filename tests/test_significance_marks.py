"""Significance inside the tables and the claims: per-sample errors at --eval-at epochs, marks aligned
to the main table and the sweeps, and the claims' "significantly better than all baselines" count."""

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from benchmark.analysis import claims, tables
from benchmark.analysis.significance import compare_runs
from benchmark.cli import app
from benchmark.core.errors import BenchError
from benchmark.results.records import load_records, records_to_frame
from benchmark.run.config import resolve_run
from benchmark.run.runner import execute_run
from benchmark.scoring.evaluation import read_per_sample

DATASET = "synthetic-weather:t2m"
EVAL_AT = {"train": {"eval_at": [1, 2]}}


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """Smoke runs of DIFFUMA and SimVP (seed 0) scored after epochs 1 and 2, and persistence."""
    results = tmp_path_factory.mktemp("results")
    runs = {model: execute_run(resolve_run("smoke", model, DATASET, 0, EVAL_AT), results)
            for model in ("diffuma", "simvp", "persistence")}
    return results, runs


def test_eval_at_epochs_store_per_sample_errors(swept):
    results, runs = swept
    record = runs["simvp"]
    assert record.eval_at_per_sample_files == {"1": "per_sample_epoch1.npz", "2": "per_sample_epoch2.npz"}
    for epoch, name in record.eval_at_per_sample_files.items():
        arrays = read_per_sample(results / record.run_id / name)
        scores = record.eval_at[epoch].normalized
        assert arrays["mse"].shape == (record.eval_at[epoch].count, record.config.t_out)
        assert float(arrays["mse"].astype(np.float64).mean()) == pytest.approx(scores.mse, rel=1e-6)
        assert float(arrays["ssim"].astype(np.float64).mean()) == pytest.approx(scores.ssim, rel=1e-6)
    assert runs["persistence"].eval_at_per_sample_files == {}  # not trained: no --eval-at scoring


def test_compare_runs_at_an_epoch(swept):
    results, runs = swept
    _, at_one = compare_runs([runs["diffuma"]], [runs["simvp"]], "mse", results_dir=results, epoch=1)
    _, at_best = compare_runs([runs["diffuma"]], [runs["simvp"]], "mse", results_dir=results)
    diffuma_one = runs["diffuma"].eval_at["1"].normalized.mse
    assert at_one.model_mean == pytest.approx(diffuma_one, rel=1e-5)
    assert at_best.model_mean == pytest.approx(runs["diffuma"].test.normalized.mse, rel=1e-5)
    with pytest.raises(BenchError, match="after epoch 3 .stored: 1, 2."):
        compare_runs([runs["diffuma"]], [runs["simvp"]], "mse", results_dir=results, epoch=3)


def test_marks_per_axis(swept):
    results, runs = swept
    frame = records_to_frame(load_records(results))
    by_epoch = tables.significance_marks(frame, results, axis="epoch")
    # persistence has no --eval-at errors: only simvp is tested, at both epochs and all three metrics
    assert set(by_epoch["baseline"]) == {"simvp"}
    assert sorted(set(zip(by_epoch["epoch"], by_epoch["metric"], strict=True))) == [
        (e, m) for e in (1, 2) for m in ("mae", "mse", "ssim")]
    # the whole table is one family: all six tests adjusted together
    from benchmark.analysis.significance import adjust
    np.testing.assert_allclose(by_epoch["p_adj"], adjust(by_epoch["p"].to_numpy()))
    by_length = tables.significance_marks(frame, results, axis="t_out")
    assert set(by_length["baseline"]) == {"simvp", "persistence"}
    assert set(by_length["t_out"]) == {runs["simvp"].config.t_out}
    with pytest.raises(ValueError, match="axis"):
        tables.significance_marks(frame, results, axis="lead")
    assert set(tables.significance_by_axis(frame, results)) == {None, "t_out", "epoch"}


def test_marks_land_in_the_right_cells(swept):
    results, _ = swept
    frame = records_to_frame(load_records(results))
    main = tables.main_table(frame)
    marks = pd.DataFrame([
        {"baseline": "simvp", "dataset": DATASET, "metric": "mse", "mark": "▲"},
        {"baseline": "persistence", "dataset": DATASET, "metric": "ssim", "mark": "▼"},
        {"baseline": "persistence", "dataset": DATASET, "metric": "mae", "mark": ""},
        {"baseline": "convlstm", "dataset": DATASET, "metric": "mse", "mark": "▲"},  # no such row: ignored
    ]).assign(method="hac-ewc", adjustment="holm", seeds="0")
    marked = tables.with_significance(main, marks)
    text = tables.formatted(marked)
    cells = {(row.split()[0], column[-1].split()[0]): value for row in text.index for column in text.columns
             for value in [text.at[row, column]]}
    assert cells[("simvp", "MSE")].endswith(" ▲") and cells[("persistence", "SSIM")].endswith(" ▼")
    assert not cells[("persistence", "MAE")].endswith(("▲", "▼")) and not cells[("diffuma", "MSE")].endswith("▲")
    assert "▲ / ▼ after a cell" in marked.caption and "▲ / ▼" not in main.caption
    assert "$\\triangle$" in tables.to_latex(marked) and "$\\nabla$" in tables.to_latex(marked)
    # the sweeps' cells are (dataset, model) x (epoch, metric)
    sweep = tables.epoch_sweep_table(frame)
    marked_sweep = tables.with_significance(sweep, pd.DataFrame([
        {"baseline": "simvp", "dataset": DATASET, "epoch": 2, "metric": "mae", "mark": "▼", "method": "hac-ewc",
         "adjustment": "holm", "seeds": "0"}]))
    assert marked_sweep.marks.at[(DATASET, "simvp"), (2, "mae")] == "▼"
    assert (marked_sweep.marks != "").to_numpy().sum() == 1
    # nothing matched: the table is returned as it was
    assert tables.with_significance(main, marks.iloc[3:]) is main


def test_bold_only_for_a_best_that_beats_the_runner_up(swept):
    results, _ = swept
    frame = records_to_frame(load_records(results))
    main = tables.main_table(frame)
    mse_best = main.mean[(DATASET, "mse")].idxmin()
    mse_second = main.mean[(DATASET, "mse")].drop(mse_best).idxmin()
    marks = pd.DataFrame([{"baseline": "simvp", "dataset": DATASET, "metric": "mse", "mark": "",
                           "method": "hac-ewc", "adjustment": "holm", "seeds": "0"}])
    best = pd.DataFrame([
        {"dataset": DATASET, "metric": "mse", "best": mse_best, "runner_up": mse_second, "mark": "",
         "adjustment": "holm"},  # a tie
        {"dataset": DATASET, "metric": "ssim", "best": main.mean[(DATASET, "ssim")].idxmax(), "runner_up": "x",
         "mark": "▲", "adjustment": "holm"}])
    marked = tables.with_significance(main, marks, best=best)
    assert not marked.bold[(DATASET, "mse")].any() and marked.bold[(DATASET, "ssim")].sum() == 1
    assert marked.ties[(DATASET, "mse")].sum() == 2 and "≈" in marked.caption
    markdown = tables.to_markdown(marked)
    assert markdown.count("≈") >= 3 and "$\\approx$" in tables.to_latex(marked)
    # the real test over the smoke runs: one row per column with per-window errors
    tested = tables.best_vs_runner_up(frame, results)
    assert set(tested["metric"]) == {"mse", "mae", "ssim"} and (tested["best"] != tested["runner_up"]).all()


def test_cli_marks_the_epoch_sweep_and_claims_test_it(swept, tmp_path):
    results, _ = swept
    out = tmp_path / "tables"
    result = CliRunner().invoke(app, ["table", "--results", str(results), "--out", str(out), "--epoch-sweep",
                                      "--significance"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert (out / "significance_epoch_sweep.csv").is_file() and (out / "epoch_sweep_normalized.md").is_file()
    assert "▲ / ▼ after a cell" in (out / "epoch_sweep_normalized.md").read_text()
    long = pd.read_csv(out / "significance_epoch_sweep.csv")
    assert set(long["epoch"]) == {1, 2} and set(long["baseline"]) == {"simvp"}
    result = CliRunner().invoke(app, ["claims", "--results", str(results), "--out", str(out)],
                                env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out / "claims.csv")
    every_epoch = table[table["claim"].str.startswith("significantly outperforms all baselines at every")].iloc[0]
    # one of the paper's six baselines has runs here: every cell misses the other five
    assert "in 0/6 dataset x epoch x metric cells" in every_epoch["our_runs"]
    assert every_epoch["our_verdict"].endswith("significant: does not hold")


def _family(cell: dict, p_values: dict[str, float], worse: tuple[str, ...] = ()) -> list[dict]:
    """Rows of a `significance_marks` frame whose p-values are already adjusted over the table (`p_adj`)."""
    return [{**cell, "baseline": b, "p_adj": p, "p_floor": 0.0, "mean_diff": 0.1 if b in worse else -0.1}
            for b, p in p_values.items()]


def test_significant_cells_known_answers():
    baselines = sorted(claims.PAPER_BASELINES)
    assert len(baselines) == 6
    strong = _family({"dataset": "d", "metric": "mse"}, dict.fromkeys(baselines, 0.001))
    # adjusted p = 0.06 (> 0.05) for every baseline: NOT significant
    marginal = _family({"dataset": "d", "metric": "mae"}, dict.fromkeys(baselines, 0.06))
    # a loss: SSIM is higher-is-better, a negative difference is worse even at p = 0.001
    lost = _family({"dataset": "d", "metric": "ssim"}, dict.fromkeys(baselines, 0.001))
    extra = [{"dataset": "d", "metric": "mse", "baseline": "persistence", "p_adj": 0.9, "p_floor": 0.0,
              "mean_diff": 0.5}]
    marks = pd.DataFrame(strong + marginal + lost + extra)
    cells, missed = claims.significant_cells(marks, ("mse", "mae", "ssim"))
    assert cells == 3 and len(missed) == 2  # persistence is not one of the paper's baselines
    assert missed[0].startswith("d MAE:") and "better, n.s., p=0.06" in missed[0]
    assert missed[1].startswith("d SSIM:") and "significantly worse" in missed[1]
    only_mse, none_missed = claims.significant_cells(marks, ("mse",))
    assert (only_mse, none_missed) == (1, [])
    # a baseline without runs in a cell keeps the claim from holding there
    five = pd.DataFrame(_family({"dataset": "d", "metric": "mse"}, dict.fromkeys(baselines[:5], 0.001)))
    assert claims.significant_cells(five, ("mse",))[1] == [f"d MSE: {baselines[5]} (no runs)"]


def test_runs_store_the_same_few_predictions_and_their_spectra(swept):
    from benchmark.scoring.evaluation import PREDICTION_ARRAYS, SPECTRA_ARRAYS, predictions_to_keep, read_npz

    results, runs = swept
    indices = []
    for model, record in runs.items():
        assert record.predictions_file == "predictions.npz" and record.spectra_file == "spectra.npz"
        stored = read_npz(results / record.run_id / record.predictions_file, PREDICTION_ARRAYS)
        config = record.config
        k = min(config.train["stored_predictions"], record.test.count)
        assert stored["inputs"].shape == (k, config.t_in, 1, *stored["truth"].shape[-2:])
        assert stored["truth"].shape == stored["prediction"].shape == (k, config.t_out, *stored["inputs"].shape[2:])
        assert stored["prediction"].dtype == np.float16
        indices.append(stored["sample_index"].tolist())
        if model == "persistence":  # its prediction is the last input frame, repeated
            np.testing.assert_array_equal(stored["prediction"][:, 0], stored["inputs"][:, -1])
        spectra = read_npz(results / record.run_id / record.spectra_file, SPECTRA_ARRAYS)
        assert str(spectra["kind"]) == "zonal" and spectra["pred"].shape == spectra["true"].shape
        assert spectra["pred"].shape[:2] == (config.t_out, 1)
        assert record.test.normalized.detail_ratio == pytest.approx(record.test.physical.detail_ratio)
        assert len(record.test.normalized.per_lead["detail_ratio"]) == config.t_out
    assert indices[0] == indices[1] == indices[2]  # the same samples for every model
    np.testing.assert_array_equal(predictions_to_keep(100, 4), predictions_to_keep(100, 4))
    assert len(predictions_to_keep(3, 4)) == 3 and len(predictions_to_keep(100, 0)) == 0


@pytest.mark.skipif(__import__("shutil").which("pdflatex") is None, reason="no pdflatex on this machine")
def test_every_latex_table_compiles_with_booktabs(swept, tmp_path):
    import subprocess

    results, _ = swept
    out = tmp_path / "tables"
    runner = CliRunner()
    for args in (["table"], ["table", "--significance", "--metrics", "mse,mae,ssim,detail_ratio"],
                 ["table", "--epoch-sweep", "--significance"], ["table", "--length-sweep"],
                 ["table", "--compare", "paper", "--sweep-dataset", "weatherbench:t2m"], ["claims"]):
        result = runner.invoke(app, [*args, "--results", str(results), "--out", str(out)], env={"COLUMNS": "200"})
        assert result.exit_code == 0, result.output
    written = sorted(out.glob("*.tex"))
    assert {"main_normalized.tex", "epoch_sweep_normalized.tex", "significance.tex", "claims.tex",
            "main_vs_paper_normalized.tex"} <= {p.name for p in written}
    body = "\n".join(f"\\input{{{p.name}}}\n\\clearpage" for p in written)
    (out / "doc.tex").write_text("\\documentclass{article}\n\\usepackage[T1]{fontenc}\n\\usepackage{booktabs}\n"
                                 "\\usepackage[margin=1cm,landscape]{geometry}\n\\begin{document}\n"
                                 f"{body}\n\\end{{document}}\n")
    done = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"], cwd=out,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:]
    assert (out / "doc.pdf").stat().st_size > 0


def test_length_claim_counts_the_baselines_of_table_5():
    table5 = claims.table_baselines(5)
    assert table5 == {"convlstm", "predrnn-v2", "simvp", "pastnet"}
    cell = {"dataset": "d", "t_out": 6, "metric": "mse"}
    marks = pd.DataFrame(_family(cell, dict.fromkeys(sorted(table5), 0.001)))
    assert claims.significant_cells(marks, ("mse",), baselines=table5) == (1, [])
    assert "e3dlstm (no runs)" in claims.significant_cells(marks, ("mse",))[1][0]  # all six: two have no runs
