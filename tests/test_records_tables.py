"""Run records (typed, atomic JSON, round trip) and the tables rendered from them."""

import json

import pandas as pd
import pytest

from benchmark.analysis import tables
from benchmark.core.errors import DataError
from benchmark.registry import get_model_spec
from benchmark.results.records import (
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
from benchmark.run.config import resolve_run


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
                finished_at: str = "2026-01-01T00:00:00", lr: float = 1e-3, precision: str = "32-true") -> RunRecord:
    """A complete record with made-up scores (an epoch-2 best checkpoint for a learned model)."""
    config = resolve_run("smoke", model, "synthetic-weather:t2m", seed,
                         overrides={"data": {"t_out": t_out}, "train": {"lr": lr, "precision": precision}})
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
    # ± is the 95% CI half-width, t(0.975, 1) * 0.0707 / sqrt(2) = 0.635, not the std 0.071; most cells
    # here are single runs, so the two-seed cell says its count
    assert "**0.25 ± 0.64** (n=2)" in markdown and "simvp †" in markdown and "0.071" not in markdown
    assert "1 seed per cell unless it says (n=k)" in table.caption


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
    assert csv.loc["convlstm", "synthetic-weather:t2m/mse/mean"] == pytest.approx(1.0)  # 4 x 0.25 physical
    latex = (tmp_path / "out" / "main_physical.tex").read_text()
    assert "\\begin{tabular}" in latex and "\\toprule" in latex and "\\textbf{" in latex
    assert "$\\pm$" in latex and "synthetic-weather:t2m" in latex
    markdown = (tmp_path / "out" / "main_physical.md").read_text()
    assert markdown.count("\n|") >= 4 and "MSE ↓" in markdown and "SSIM ↑" in markdown


def test_main_table_marks_still_improving_models_and_states_the_budget(tmp_path):
    from benchmark.analysis.tables import formatted, main_table, to_latex

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
    from benchmark.analysis.tables import main_table

    folder = tmp_path / "results"
    write_record(folder, fake_record("convlstm", 0.3))
    record = fake_record("simvp", 0.2)
    record.config.train["epochs"] = 5
    write_record(folder, record)
    caption = main_table(records_to_frame(load_records(folder))).caption
    assert "Unequal budgets -- 2 epochs at batch 4: convlstm; 5 epochs at batch 4: simvp." in caption


def test_ci_half_width_is_student_t_over_seeds():
    # values 1, 2, 3: mean 2, std 1, half-width t(0.975, 2) * 1 / sqrt(3) = 4.3027 / 1.7321
    assert tables.ci_half_width(pd.Series([1.0, 2.0, 3.0]).std(), 3) == pytest.approx(2.4841377, rel=1e-6)
    assert tables.ci_half_width(0.1, 2) == pytest.approx(12.7062047 * 0.1 / 2 ** 0.5, rel=1e-6)
    assert pd.isna(tables.ci_half_width(0.0, 1)) and pd.isna(tables.ci_half_width(float("nan"), 1))
    widths = tables.ci_half_width(pd.DataFrame({"a": [1.0, 1.0]}), pd.DataFrame({"a": [3, 1]}))
    assert widths["a"][0] == pytest.approx(2.4841377, rel=1e-6) and pd.isna(widths["a"][1])


@pytest.fixture
def three_seeds(tmp_path):
    """convlstm and simvp over seeds 0-2 (MSE 0.1, 0.2, 0.3 for both), persistence once (MSE 0.5)."""
    folder = tmp_path / "three-seeds"
    write_record(folder, fake_record("persistence", 0.5))
    for seed, mse in enumerate((0.1, 0.2, 0.3)):
        write_record(folder, fake_record("convlstm", mse, seed=seed, eval_at={1: mse + 0.1}))
        write_record(folder, fake_record("simvp", mse + 0.05, seed=seed, eval_at={1: mse + 0.2}))
    return records_to_frame(load_records(folder))


def test_cells_show_the_95_ci_over_seeds_not_the_std(three_seeds, tmp_path):
    table = tables.main_table(three_seeds)
    cell = ("synthetic-weather:t2m", "mse")
    assert table.mean.loc["convlstm", cell] == pytest.approx(0.2)
    assert table.std.loc["convlstm", cell] == pytest.approx(0.1) and table.seeds.loc["convlstm", cell] == 3
    assert table.half_width.loc["convlstm", cell] == pytest.approx(0.24841377, rel=1e-6)
    assert table.ci_low.loc["convlstm", cell] == pytest.approx(0.2 - 0.24841377, rel=1e-6)
    assert table.ci_high.loc["convlstm", cell] == pytest.approx(0.2 + 0.24841377, rel=1e-6)
    # one seed: no interval (std and bounds NaN), the mean alone
    assert table.seeds.loc["persistence", cell] == 1
    assert all(pd.isna(t.loc["persistence", cell]) for t in (table.std, table.half_width, table.ci_low,
                                                              table.ci_high))
    assert table.usual_seeds == 3
    assert ("± : 95% confidence interval of the mean over the seeds (Student t); 3 seeds per cell unless it "
            "says (n=k)") in table.caption
    assert "Every learned model: 2 epochs at batch 4" in table.caption and "† :" in table.caption

    markdown = tables.to_markdown(table)
    # best (by mean) still bold; SSIM half-width 0.2484 with the SSIM digits, not the std 0.1000
    assert "**0.2 ± 0.25**" in markdown and "**0.8000 ± 0.2484**" in markdown and "0.1000" not in markdown
    assert "| persistence | 0.5 (n=1) " in markdown and "± 0.1 " not in markdown
    latex = tables.to_latex(table)
    assert "\\textbf{0.2 $\\pm$ 0.25}" in latex and "0.5 (n=1)" in latex and "95\\% confidence" in latex
    assert "\\toprule" in latex and "\\bottomrule" in latex and "±" not in latex

    tables.render(table, tmp_path / "out", formats=("csv",))
    csv = pd.read_csv(tmp_path / "out" / "main.csv", index_col=0)
    stats = [f"synthetic-weather:t2m/{m}/{k}" for m in ("mse", "mae", "ssim") for k in tables.CSV_STATS]
    assert list(csv.columns) == stats and csv.index.name == "model"
    convlstm = csv.loc["convlstm"]
    assert convlstm["synthetic-weather:t2m/mse/mean"] == pytest.approx(0.2)
    assert convlstm["synthetic-weather:t2m/mse/std"] == pytest.approx(0.1)
    assert convlstm["synthetic-weather:t2m/mse/n"] == 3
    assert convlstm["synthetic-weather:t2m/mse/ci_low"] == pytest.approx(-0.04841377, rel=1e-5)
    assert convlstm["synthetic-weather:t2m/mse/ci_high"] == pytest.approx(0.44841377, rel=1e-6)
    assert convlstm["synthetic-weather:t2m/ssim/ci_high"] == pytest.approx(0.8 + 0.24841377, rel=1e-6)
    persistence = csv.loc["persistence"]
    assert persistence["synthetic-weather:t2m/mse/mean"] == pytest.approx(0.5)
    assert persistence["synthetic-weather:t2m/mse/n"] == 1
    assert persistence[[f"synthetic-weather:t2m/mse/{k}" for k in ("std", "ci_low", "ci_high")]].isna().all()


def test_captions_state_the_seed_count_once_when_every_cell_shares_it(three_seeds):
    learned = three_seeds[three_seeds.model != "persistence"]
    main = tables.main_table(learned)
    assert "± : 95% confidence interval of the mean over 3 seeds (Student t)." in main.caption
    markdown = tables.to_markdown(main)
    assert "(n=" not in markdown.split("\n", 1)[1] and "**0.2 ± 0.25**" in markdown
    sweep = tables.epoch_sweep_table(learned)
    assert sweep.caption.startswith("Test scores after N training epochs (--eval-at), normalized units")
    assert "over 3 seeds (Student t)." in sweep.caption
    assert sweep.half_width.loc[("synthetic-weather:t2m", "convlstm"), (1, "mse")] == pytest.approx(0.24841377,
                                                                                                   rel=1e-6)
    lengths = tables.length_sweep_table(learned)
    assert lengths.caption.startswith("Test scores by prediction length T_out") and "3 seeds" in lengths.caption
    assert "T_out=3 / MSE ↓" in tables.to_markdown(lengths)
    single = tables.main_table(three_seeds[three_seeds.seed == 0])
    assert "One seed per cell: no confidence interval." in single.caption
    assert "±" not in tables.to_markdown(single).split("\n", 1)[1]


def test_main_table_keeps_length_sweep_runs_out_of_its_cells(tmp_path):
    """A later --pred-lens run at another T_out must not replace a model's main-length cell."""
    from benchmark.analysis.tables import main_table

    folder = tmp_path / "results"
    for model, mse in [("persistence", 0.5), ("convlstm", 0.3), ("simvp", 0.2)]:
        write_record(folder, fake_record(model, mse, t_out=3, finished_at="2026-01-01T00:00:00"))
    write_record(folder, fake_record("convlstm", 0.01, t_out=2, finished_at="2026-02-01T00:00:00"))
    table = main_table(records_to_frame(load_records(folder)))
    assert table.mean.loc["convlstm"].iloc[0] == pytest.approx(0.3)
