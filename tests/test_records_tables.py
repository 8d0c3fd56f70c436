"""Run records (typed, atomic JSON, round trip) and the tables rendered from them."""

import json

import pandas as pd
import pytest

from benchmark import tables
from benchmark.config import resolve_run
from benchmark.errors import DataError
from benchmark.records import (
    SCHEMA_VERSION,
    BestCheckpoint,
    CostInfo,
    CurvePoint,
    EnvironmentInfo,
    ModelInfo,
    RunRecord,
    Scores,
    is_finished,
    load_records,
    read_record,
    record_path,
    records_to_frame,
    write_json_atomic,
    write_record,
)
from benchmark.registry import get_model_spec


def _metrics(mse: float, t_out: int) -> dict:
    space = {"mse": mse, "mae": mse / 2, "rmse": mse ** 0.5, "ssim": 1 - mse, "psnr": 10 / mse,
             "per_lead": {"mse": [mse] * t_out, "mae": [mse / 2] * t_out, "rmse": [mse ** 0.5] * t_out,
                          "ssim": [1 - mse] * t_out, "psnr": [10 / mse] * t_out}}
    return {"normalized": space, "physical": {k: (v * 4 if not isinstance(v, dict) else v)
                                              for k, v in space.items()}, "count": 10}


ENVIRONMENT = EnvironmentInfo(python="3.11.7", torch="2.4.0", lightning="2.4.0", numpy="1.26.4", platform="Linux",
                              processor="x86_64", cpu_count=2, torch_threads=1, device="cpu", cuda=None,
                              hostname="host", git_commit=None, selective_scan_backend=None)


def fake_record(model: str, mse: float, seed: int = 0, t_out: int = 3, eval_at: dict | None = None,
                finished_at: str = "2026-01-01T00:00:00", lr: float = 1e-3) -> RunRecord:
    """A complete record with made-up scores (an epoch-2 best checkpoint for a learned model)."""
    config = resolve_run("smoke", model, "synthetic-weather:t2m", seed,
                         overrides={"data": {"t_out": t_out}, "train": {"lr": lr}})
    spec = get_model_spec(model)
    learned = spec.trainable
    return RunRecord(
        run_id=config.run_id, started_at=finished_at, finished_at=finished_at, config=config,
        data={"name": "synthetic-weather:t2m", "train_samples": 12, "shape": [config.t_in, t_out, 1, 32, 64]},
        normalizer={"mean": [280.0], "std": [10.0], "data_min": [250.0], "data_max": [310.0]},
        environment=ENVIRONMENT,
        model_info=ModelInfo(parameters=1000 if learned else 0, family=spec.family, paper_name=spec.paper_name,
                             trainable=learned),
        cost=CostInfo(train_seconds=1.5 if learned else 0.0, epochs_run=2 if learned else 0,
                      optimizer_steps=6 if learned else 0, resumed_from=None, inference_seconds=0.25,
                      inference_samples=10, inference_samples_per_second=40.0),
        best=BestCheckpoint(epoch=2 if learned else None, val_mse=0.5 if learned else None,
                            checkpoint="checkpoints/best-epoch=1.ckpt" if learned else None, still_improving=None),
        curve=[CurvePoint(epoch=e, step=3 * e, val_mse=0.6 - 0.1 * e, train_loss=0.7) for e in (1, 2) if learned],
        schedule={},
        test=Scores.from_dict(_metrics(mse, t_out)),
        eval_at={str(k): Scores.from_dict(_metrics(v, t_out)) for k, v in (eval_at or {}).items()},
    )


@pytest.fixture
def results(tmp_path):
    folder = tmp_path / "results"
    for record in [
        fake_record("persistence", 0.50),
        fake_record("convlstm", 0.30, seed=0, eval_at={1: 0.4, 2: 0.3}),
        fake_record("convlstm", 0.20, seed=1, eval_at={1: 0.35, 2: 0.2}),
        fake_record("simvp", 0.60, eval_at={1: 0.7, 2: 0.6}),
        fake_record("simvp", 0.25, t_out=6),
        fake_record("convlstm", 0.28, t_out=6),
    ]:
        write_record(folder, record)
    return folder


def test_record_round_trip(tmp_path):
    record = fake_record("simvp", 0.1, eval_at={1: 0.2})
    path = write_record(tmp_path, record)
    assert path == record_path(tmp_path, record.run_id)
    stored = json.loads(path.read_text())
    assert stored["schema_version"] == SCHEMA_VERSION == 2 and list(stored)[:3] == ["schema_version", "run_id",
                                                                                      "status"]
    assert read_record(path) == record
    # exactly: the typed record, its JSON and the record read back from that JSON agree
    assert RunRecord.from_dict(json.loads(json.dumps(record.to_dict()))).to_dict() == record.to_dict() == stored
    assert is_finished(tmp_path, record.run_id) and not is_finished(tmp_path, "other")


def test_scores_keep_the_layout_the_metrics_have():
    metrics = _metrics(0.3, 2)
    metrics["physical"] = {"lat_rmse": 1.5, **metrics["physical"]}
    scores = Scores.from_dict(metrics)
    assert scores.normalized.mse == 0.3 and scores.normalized.lat_rmse is None and scores.physical.lat_rmse == 1.5
    assert scores.to_dict() == metrics and "lat_rmse" not in scores.to_dict()["normalized"]


@pytest.mark.parametrize("edit, message", [
    (lambda r: r.update(schema_version=1), "schema version 1, this version of diffuma-bench reads version 2"),
    (lambda r: r.pop("curve"), "incomplete or malformed"),
    (lambda r: r["cost"].update(flops=1), "incomplete or malformed"),
])
def test_records_of_an_older_schema_or_incomplete_are_clear_errors(tmp_path, edit, message):
    path = write_record(tmp_path, fake_record("simvp", 0.1))
    values = json.loads(path.read_text())
    edit(values)
    path.write_text(json.dumps(values))
    with pytest.raises(DataError, match=message):
        read_record(path)
    assert not is_finished(tmp_path, values["run_id"])


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


def test_rows_follow_the_family_order_the_records_store(tmp_path, monkeypatch):
    import benchmark.registry

    folder = tmp_path / "results"
    for model in ("diffuma", "simvp", "predrnn", "e3dlstm", "pastnet", "persistence", "convlstm"):
        record = fake_record(model, 0.3)
        if model == "e3dlstm":
            record.model_info.family = "transformer"  # a family FAMILY_ORDER does not list: after the listed ones
        write_record(folder, record)

    def no_registry():
        raise AssertionError("tables must order rows from the records, not from the model registry")

    monkeypatch.setattr(benchmark.registry, "list_models", no_registry)
    frame = records_to_frame(load_records(folder))
    order = ["persistence", "convlstm", "predrnn", "simvp", "pastnet", "diffuma", "e3dlstm"]
    assert list(tables.main_table(frame).mean.index) == order
    sweep = tables.length_sweep_table(frame)
    assert list(sweep.mean.index) == [("synthetic-weather:t2m", m) for m in order]


def test_latest_configuration_wins(tmp_path):
    write_record(tmp_path, fake_record("simvp", 0.9, lr=1e-2, finished_at="2026-01-01T00:00:00"))
    write_record(tmp_path, fake_record("simvp", 0.4, lr=1e-3, finished_at="2026-02-01T00:00:00"))
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
        record = fake_record(model, mse)
        record.best.still_improving = improving
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
    write_record(folder, fake_record("convlstm", 0.3))
    record = fake_record("simvp", 0.2)
    record.config.train["epochs"] = 5
    write_record(folder, record)
    caption = main_table(records_to_frame(load_records(folder))).caption
    assert "Unequal budgets -- 2 epochs at batch 4: convlstm; 5 epochs at batch 4: simvp." in caption
