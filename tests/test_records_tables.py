"""Run records (atomic JSON, round trip) and the tables rendered from them."""

import json

import pandas as pd
import pytest

from benchmark import tables
from benchmark.config import resolve_run
from benchmark.errors import DataError
from benchmark.records import (
    is_finished,
    load_records,
    read_record,
    record_path,
    records_to_frame,
    write_json_atomic,
    write_record,
)


def _metrics(mse: float, t_out: int) -> dict:
    space = {"mse": mse, "mae": mse / 2, "rmse": mse ** 0.5, "ssim": 1 - mse, "psnr": 10 / mse,
             "per_lead": {"mse": [mse] * t_out, "mae": [mse / 2] * t_out, "rmse": [mse ** 0.5] * t_out,
                          "ssim": [1 - mse] * t_out, "psnr": [10 / mse] * t_out}}
    return {"normalized": space, "physical": {k: (v * 4 if not isinstance(v, dict) else v)
                                              for k, v in space.items()}, "count": 10}


def make_record(model: str, mse: float, seed: int = 0, t_out: int = 3, eval_at: dict | None = None,
                finished_at: str = "2026-01-01T00:00:00", lr: float = 1e-3) -> dict:
    config = resolve_run("smoke", model, "synthetic-weather:t2m", seed,
                         overrides={"data": {"t_out": t_out}, "train": {"lr": lr}})
    return {"run_id": config.run_id, "status": "finished", "finished_at": finished_at,
            "config": config.to_dict(), "test": _metrics(mse, t_out),
            "eval_at": {str(k): _metrics(v, t_out) for k, v in (eval_at or {}).items()}}


@pytest.fixture
def results(tmp_path):
    folder = tmp_path / "results"
    for record in [
        make_record("persistence", 0.50),
        make_record("convlstm", 0.30, seed=0, eval_at={1: 0.4, 2: 0.3}),
        make_record("convlstm", 0.20, seed=1, eval_at={1: 0.35, 2: 0.2}),
        make_record("simvp", 0.60, eval_at={1: 0.7, 2: 0.6}),
        make_record("simvp", 0.25, t_out=6),
        make_record("convlstm", 0.28, t_out=6),
    ]:
        write_record(folder, record)
    return folder


def test_record_round_trip(tmp_path):
    record = make_record("simvp", 0.1)
    path = write_record(tmp_path, record)
    assert path == record_path(tmp_path, record["run_id"])
    again = read_record(path)
    assert again["schema_version"] == 1
    assert {k: again[k] for k in record} == json.loads(json.dumps(record))
    assert is_finished(tmp_path, record["run_id"]) and not is_finished(tmp_path, "other")


def test_atomic_write_keeps_old_file_when_serialisation_fails(tmp_path):
    path = tmp_path / "r.json"
    write_json_atomic(path, {"a": 1})

    class Unserialisable:
        def __repr__(self):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        write_json_atomic(path, {"a": Unserialisable()})
    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # no temporary file left behind


def test_corrupt_record_is_skipped_with_a_warning(tmp_path, results):
    bad = results / "broken-run" / "record.json"
    bad.parent.mkdir()
    bad.write_text("{ not json")
    with pytest.warns(UserWarning, match="broken-run"):
        records = load_records(results)
    assert len(records) == 6
    with pytest.raises(DataError, match="Delete its folder"):
        read_record(bad)


def test_frame_has_aggregate_and_per_lead_rows(results):
    frame = records_to_frame(load_records(results))
    simvp = frame[(frame.model == "simvp") & (frame.t_out == 3) & (frame.epoch == "best")
                  & (frame.space == "normalized") & (frame.metric == "mse")]
    assert sorted(simvp.lead) == [0, 1, 2, 3]
    assert set(frame.epoch) == {"best", "1", "2"}


def test_main_table_averages_seeds_and_flags_models_worse_than_persistence(results):
    frame = records_to_frame(load_records(results))
    # runs with T_out=6 finished later would replace T_out=3 ones; here they share finished_at, so
    # restrict to T_out=3 as a user would with a profile/length filter
    table = tables.main_table(frame[frame.t_out == 3])
    assert table.mean.loc["convlstm", ("synthetic-weather:t2m", "mse")] == pytest.approx(0.25)
    assert table.seeds.loc["convlstm", ("synthetic-weather:t2m", "mse")] == 2
    assert table.std.loc["convlstm", ("synthetic-weather:t2m", "mse")] == pytest.approx(pd.Series([0.3, 0.2]).std())
    assert list(table.mean.index) == ["persistence", "convlstm", "simvp"]
    assert table.flagged == {"simvp"}
    markdown = tables.to_markdown(table)
    assert "**0.25 ± 0.071**" in markdown and "simvp †" in markdown


def test_latest_configuration_wins(tmp_path):
    write_record(tmp_path, make_record("simvp", 0.9, lr=1e-2, finished_at="2026-01-01T00:00:00"))
    write_record(tmp_path, make_record("simvp", 0.4, lr=1e-3, finished_at="2026-02-01T00:00:00"))
    table = tables.main_table(records_to_frame(load_records(tmp_path)))
    assert table.mean.loc["simvp", ("synthetic-weather:t2m", "mse")] == pytest.approx(0.4)


def test_epoch_and_length_sweeps(results):
    frame = records_to_frame(load_records(results))
    sweep = tables.epoch_sweep_table(frame[frame.t_out == 3])
    assert sweep.mean.loc[("synthetic-weather:t2m", "convlstm"), (1, "mse")] == pytest.approx(0.375)
    assert sweep.mean.loc[("synthetic-weather:t2m", "simvp"), (2, "ssim")] == pytest.approx(0.4)
    lengths = tables.length_sweep_table(frame)
    assert lengths.mean.loc[("synthetic-weather:t2m", "simvp"), (6, "mse")] == pytest.approx(0.25)
    assert lengths.mean.loc[("synthetic-weather:t2m", "simvp"), (3, "mse")] == pytest.approx(0.6)


def test_render_all_three_formats(results, tmp_path):
    frame = records_to_frame(load_records(results))
    table = tables.main_table(frame[frame.t_out == 3], space="physical")
    written = tables.render(table, tmp_path / "out", suffix="_physical")
    assert sorted(p.name for p in written) == ["main_physical.csv", "main_physical.md", "main_physical.tex"]
    csv = pd.read_csv(tmp_path / "out" / "main_physical.csv", index_col=0)
    assert csv.loc["convlstm", "synthetic-weather:t2m/mse"] == pytest.approx(1.0)  # 4 x 0.25 in physical units
    latex = (tmp_path / "out" / "main_physical.tex").read_text()
    assert "\\begin{tabular}" in latex and "\\toprule" in latex and "\\textbf{" in latex
    assert "$\\pm$" in latex and "synthetic-weather:t2m" in latex
    markdown = (tmp_path / "out" / "main_physical.md").read_text()
    assert markdown.count("\n|") >= 4 and "MSE ↓" in markdown and "SSIM ↑" in markdown


def test_main_table_marks_still_improving_models_and_states_the_budget(tmp_path):
    from benchmark.tables import formatted, main_table, to_latex

    folder = tmp_path / "results"
    for model, mse, improving in [("persistence", 0.5, None), ("convlstm", 0.3, True), ("simvp", 0.2, False)]:
        record = make_record(model, mse)
        record["best"] = {"epoch": 2, "still_improving": improving}
        record["cost"] = {"optimizer_steps": 0 if model == "persistence" else 6}
        record["model_info"] = {"trainable": model != "persistence"}
        write_record(folder, record)
    table = main_table(records_to_frame(load_records(folder)))
    assert table.improving == {"convlstm"}
    assert "Every learned model: 2 epochs at batch 4 (6 optimizer steps)." in table.caption
    text = formatted(table)
    assert list(text.index) == ["persistence", "convlstm ‡", "simvp"]
    assert "$^\\ddagger$" in to_latex(table)


def test_caption_names_unequal_budgets(tmp_path):
    from benchmark.tables import main_table

    folder = tmp_path / "results"
    write_record(folder, make_record("convlstm", 0.3))
    record = make_record("simvp", 0.2)
    record["config"]["train"]["epochs"] = 5
    write_record(folder, record)
    caption = main_table(records_to_frame(load_records(folder))).caption
    assert "Unequal budgets -- 2 epochs at batch 4: convlstm; 5 epochs at batch 4: simvp." in caption
