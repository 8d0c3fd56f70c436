"""Tables at 80 columns: names and numbers whole on one line, no line wider than the terminal."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from rich.console import Console

import benchmark.cli as cli
from benchmark.cli import common, data, models, plot, predict, report, reproduce, run, table

WIDTH = 80


@pytest.fixture
def narrow(monkeypatch: pytest.MonkeyPatch) -> Console:
    # rich reads COLUMNS when the console is made (at import), so CliRunner's env would not reach it
    console = Console(width=WIDTH, record=True, force_terminal=False, color_system=None)
    for module in (common, data, models, plot, predict, report, reproduce, run, table):  # each imported it by name
        monkeypatch.setattr(module, "console", console)
    return console


def _lines(console: Console) -> list[str]:
    lines = console.export_text().splitlines()
    assert all(len(line) <= WIDTH for line in lines), [line for line in lines if len(line) > WIDTH]
    return lines


def _on_one_line(lines: list[str], *words: str) -> None:
    for word in words:
        assert any(word in line for line in lines), f"{word!r} is not whole on one line"


def test_models_at_80_columns(narrow: Console) -> None:
    from benchmark.registry import get_model_spec, list_models

    models.models(shape="12,1,32,64", profile="smoke", dataset="synthetic-weather:t2m", wide=False)
    lines = _lines(narrow)
    _on_one_line(lines, *list_models(), *(get_model_spec(n).paper_name for n in list_models()), "parameters")
    table_rows = [line for line in lines if line.startswith("│")]
    assert all(re.search(r"\d+\.\d\dM|│\s+0 │", line) for line in table_rows if line.split("│")[1].strip())


def test_models_wide_lists_summaries(narrow: Console) -> None:
    models.models(shape="12,1,32,64", profile="smoke", dataset="synthetic-weather:t2m", wide=True)
    _on_one_line(_lines(narrow), "simvp (cnn): SimVP")


@pytest.mark.parametrize("datasets", [["synthetic-weather:t2m"], ["synthetic-weather:t2m", "weatherbench:uv10"]])
def test_main_table_at_80_columns(narrow: Console, monkeypatch: pytest.MonkeyPatch, datasets: list[str]) -> None:
    import types

    import benchmark.analysis.tables as tables

    columns = pd.MultiIndex.from_tuples([(d, m) for d in datasets for m in ("MSE ↓", "MAE ↓", "SSIM ↑")])
    numbers = [["0.01327", "0.07455", "0.9096"] * len(datasets),
               ["1.151", "0.8466", "[bold]0.1610[/bold]"] * len(datasets)]
    text = pd.DataFrame(numbers, index=pd.Index(["persistence", "diffuma-randcond †‡"], name="model"), columns=columns)
    monkeypatch.setattr(tables, "formatted", lambda built, bold: text)
    table._print_table(types.SimpleNamespace(name="main", caption="† : not better than persistence. " * 5))
    lines = _lines(narrow)
    _on_one_line(lines, *datasets, "0.01327", "0.07455", "0.9096", "1.151", "0.8466", "0.1610", "MSE ↓")
    assert any("diffuma-randcond †‡" in line and "1.151" in line for line in lines)


def test_dataset_table_at_80_columns(narrow: Console, monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    import benchmark.analysis.dataset_table as dataset_table

    frame = pd.DataFrame([{"dataset": "synthetic-weather:t2m", "train": 37, "val": 37, "test": 37,
                           "(C, H, W)": "(1, 32, 64)", "T_in": 4, "T_out": 3, "paper train": 2300,
                           "paper test": 657, "paper (C, H, W)": "(1, 32, 64)", "paper T_in": 12,
                           "paper T_out": 12, "note": "stand-in for weatherbench:t2m " * 4}],
                         columns=dataset_table.COLUMNS)
    monkeypatch.setattr(dataset_table, "dataset_table", lambda *a, **k: frame)
    table._dataset_table(None, "smoke", None, tmp_path, ("csv",))
    _on_one_line(_lines(narrow), "synthetic-weather:t2m", "2300", "657", "(1, 32, 64)", "4→3", "12→12")


def test_claims_at_80_columns(narrow: Console, tmp_path) -> None:
    """Each claim is a block of wrapped lines: no line wider than the terminal, no word split."""
    from typer.testing import CliRunner

    result = CliRunner().invoke(cli.app, ["claims", "--results", str(tmp_path / "none"), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    lines = _lines(narrow)
    assert lines and all(len(line) <= WIDTH for line in lines)
    text = "\n".join(lines)
    assert "mean of per-variable reductions 39.0%" in text.replace("\n    ", " ").replace("\n", " ")
    assert "our verdict: no runs" in text


def test_profile_at_80_columns(narrow: Console, tmp_path) -> None:
    from benchmark.registry import list_models

    rows = [{"model": name, "precision": precision, "parameters": 15_570_000, "gflops_per_sample": 123.45,
             "train_step_seconds": 101.234, "inference_samples_per_second": 12345.6, "peak_memory_mib": 54321.0,
             "memory_kind": "cpu peak RSS growth", "device": "cpu", "threads": 2, "note": ""}
            for name in list_models() for precision in ("32-true", "bf16-mixed")]
    models._print_profile(rows, "12,1,32,64", 4, "paper", ["32-true", "bf16-mixed"], failed=False)
    lines = _lines(narrow)
    for name in list_models():
        assert any(line.split()[:2] == [name, "bf16-mixed"] for line in lines if line.strip()), name
    _on_one_line(lines, "15.57M", "123.45", "101.234", "12345.6", "54321")
