"""`bench table --compare paper`: our tables beside the paper's, relative differences and Kendall's tau."""

import pandas as pd
import pytest
from typer.testing import CliRunner

from benchmark.analysis import compare, tables
from benchmark.cli import app
from benchmark.paper.numbers import PAPER_SPACE, load_paper_numbers
from benchmark.results.records import records_to_frame, write_record
from tests.test_records_tables import fake_record

MODELS = ("diffuma", "simvp", "convlstm")


def paper_values(metric: str = "mse", table: int = 2, dataset: str = "weatherbench:t2m") -> pd.Series:
    numbers = load_paper_numbers()
    rows = numbers[(numbers["table"] == table) & (numbers["dataset"] == dataset) & (numbers["metric"] == metric)]
    return rows.set_index("model")["value"]


def comparison_for(mses: dict[str, float], **kwargs) -> compare.Comparison:
    frame = records_to_frame([fake_record(model, mse, **kwargs) for model, mse in mses.items()])
    return compare.compare_with_paper(tables.main_table(frame), space="normalized")


def test_paper_temperature_values_sit_beside_ours_with_the_relative_difference():
    ours = {"diffuma": 0.01, "simvp": 0.02, "convlstm": 0.3}
    cells = comparison_for(ours).cells
    paper = paper_values("mse")
    mse = cells[cells["metric"] == "mse"].set_index("model")
    assert set(mse["dataset"]) == {"synthetic-weather:t2m"} and set(mse["paper_dataset"]) == {"weatherbench:t2m"}
    for model, value in ours.items():
        assert mse.at[model, "ours"] == pytest.approx(value)
        assert mse.at[model, "paper"] == paper[model]
        assert mse.at[model, "rel_diff"] == pytest.approx((value - paper[model]) / paper[model])
    # the paper's other models are shown paper-only; no other dataset of the paper comes in
    assert pd.isna(mse.at["pastnet", "ours"]) and mse.at["pastnet", "paper"] == paper["pastnet"]
    assert set(cells["paper_dataset"]) == {"weatherbench:t2m"}


@pytest.mark.parametrize("reverse, expected", [(False, 1.0), (True, -1.0)])
def test_kendall_tau_is_one_in_the_papers_order_and_minus_one_reversed(reverse, expected):
    paper = paper_values("mse")[list(MODELS)].sort_values()
    ranked = list(paper.index[::-1] if reverse else paper.index)
    tau = comparison_for({model: 0.1 * (i + 1) for i, model in enumerate(ranked)}).tau.set_index("metric")
    assert tau.at["mse", "tau"] == pytest.approx(expected) and tau.at["mse", "models"] == 3
    tau, p, count = compare.kendall_tau(pd.Series([1.0, 2.0]), pd.Series([3.0, float("nan")]))
    assert pd.isna(tau) and pd.isna(p) and count == 1  # under two models in common: no tau
    # seven models in the same order: tau 1, exact two-sided p = 2 / 7!
    tau, p, count = compare.kendall_tau(pd.Series(range(7), dtype=float), pd.Series(range(7), dtype=float))
    assert tau == 1.0 and p == pytest.approx(2 / 5040) and count == 7


def test_caption_names_both_spaces_and_the_generated_data():
    caption = comparison_for(dict.fromkeys(MODELS, 0.1)).caption
    assert "Ours: normalized space" in caption and f"presumed {PAPER_SPACE} space" in caption
    assert "ours on generated stand-in data".lower() in caption.lower()
    assert "synthetic-weather:t2m as weatherbench:t2m" in caption and "Table 2" in caption


def test_stand_ins_map_to_the_papers_datasets():
    assert compare.paper_dataset_of("synthetic-weather:t2m") == "weatherbench:t2m"
    assert compare.paper_dataset_of("synthetic-chdl") == "chdl"
    assert compare.paper_dataset_of("weatherbench:r") == "weatherbench:r"
    assert compare.paper_dataset_of("synthetic-weather:z500") is None


def test_length_sweep_is_compared_with_table_5():
    frame = records_to_frame([fake_record(m, 0.1 * (i + 1), t_out=6) for i, m in enumerate(MODELS)])
    comparison = compare.compare_with_paper(tables.length_sweep_table(frame), sweep_dataset="weatherbench:t2m")
    cells = comparison.cells.set_index(["model", "metric"])
    table5 = load_paper_numbers(sweep_dataset="weatherbench:t2m")
    expected = table5[(table5["table"] == 5) & (table5["t_out"] == 6) & (table5["model"] == "simvp")
                      & (table5["metric"] == "mae")]["value"].item()
    assert cells.at[("simvp", "mae"), "paper"] == expected and set(comparison.cells["key"]) == {6}
    assert "Table 5" in comparison.caption and "assumed weatherbench:t2m" in comparison.caption


def test_renders_escaped_latex_and_markdown(tmp_path):
    comparison = comparison_for({"diffuma": 0.01, "simvp": 0.02, "convlstm": 0.3})
    paths = compare.render(comparison, tmp_path, suffix="_normalized")
    assert [p.name for p in paths] == [f"main_vs_paper_normalized.{e}" for e in ("csv", "tex", "md")]
    latex = (tmp_path / "main_vs_paper_normalized.tex").read_text()
    assert "\\toprule" in latex and "\\textbar{}" in latex and "\\%" in latex and "$\\tau$" in latex
    markdown = (tmp_path / "main_vs_paper_normalized.md").read_text()
    assert "| Kendall's τ" in markdown and "+1.00 (n=3, p=0.33)" in markdown and "\\|" in markdown
    csv = pd.read_csv(tmp_path / "main_vs_paper_normalized.csv")
    assert set(csv["row"]) == {"cell", "kendall_tau"} and {"ours", "paper", "rel_diff", "tau"} <= set(csv.columns)


def test_cli_writes_the_comparison(tmp_path):
    results, out = tmp_path / "results", tmp_path / "tables"
    for i, model in enumerate(MODELS):
        write_record(results, fake_record(model, 0.1 * (i + 1)))
    result = CliRunner().invoke(app, ["table", "--compare", "paper", "--results", str(results), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [f"main_vs_paper_normalized.{e}" for e in ("csv", "md", "tex")]
    assert "generated stand-in" in (out / "main_vs_paper_normalized.md").read_text()
    wrong = CliRunner().invoke(app, ["table", "--compare", "ours", "--results", str(results), "--out", str(out)])
    assert wrong.exit_code != 0 and "only 'paper'" in wrong.output
    # the epoch sweep on t2m has no counterpart: the paper's sweeps are taken to be on weatherbench:r
    for i, model in enumerate(MODELS):
        write_record(results, fake_record(model, 0.1 * (i + 1), eval_at={10: 0.2}, lr=1e-2))
    none = CliRunner().invoke(app, ["table", "--compare", "paper", "--epoch-sweep", "--results", str(results),
                                    "--out", str(out)])
    assert none.exit_code != 0 and "weatherbench:r" in none.output
    # --sweep-dataset moves the paper's Tables 3-4 onto t2m, where these runs are
    moved = CliRunner().invoke(app, ["table", "--compare", "paper", "--epoch-sweep", "--sweep-dataset",
                                     "weatherbench:t2m", "--results", str(results), "--out", str(out)])
    assert moved.exit_code == 0, moved.output
    assert "assumed weatherbench:t2m" in (out / "epoch_sweep_vs_paper_normalized.md").read_text()
    unknown = CliRunner().invoke(app, ["table", "--compare", "paper", "--epoch-sweep", "--sweep-dataset",
                                       "weatherbench:z500", "--results", str(results), "--out", str(out)])
    assert unknown.exit_code != 0 and "not one of the paper's datasets" in unknown.output
