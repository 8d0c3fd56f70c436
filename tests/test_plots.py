"""`bench plot`: the figures drawn from real smoke-run records (benchmark.present.plots, benchmark.cli.plot)."""

import dataclasses
import shutil

import matplotlib.pyplot as plt
import numpy as np
import pytest

from benchmark.cli.plot import parse_formats, plot_command
from benchmark.core.errors import BenchError
from benchmark.present import figures, plots
from benchmark.results.records import load_records, write_record
from benchmark.run.config import resolve_run
from benchmark.run.runner import execute_run

WEATHER, CHDL = "synthetic-weather:t2m", "synthetic-chdl"
WEATHER_MODELS = ("persistence", "convlstm", "simvp")  # in the tables' order: reference, recurrent, cnn
CHDL_MODELS = ("persistence", "simvp")


@pytest.fixture(scope="module")
def results(tmp_path_factory, isolated_data_cache, single_thread):
    """Real smoke runs: three models on generated weather (SimVP with two seeds), two on generated CHDL."""
    folder = tmp_path_factory.mktemp("results")
    runs = [(model, WEATHER, 0) for model in WEATHER_MODELS] + [("simvp", WEATHER, 1)]
    runs += [(model, CHDL, 0) for model in CHDL_MODELS]
    for model, dataset, seed in runs:
        execute_run(resolve_run("smoke", model, dataset, seed, {"train": {"eval_at": [1, 2]}}), folder)
    return folder


@pytest.fixture(scope="module")
def records(results):
    return load_records(results)


@pytest.fixture(scope="module")
def drawn(results, tmp_path_factory):
    """plot_all over the smoke records, once for the module."""
    return figures.plot_all(results, tmp_path_factory.mktemp("figures"))


def _image_rows(fig) -> list[list]:
    """The figure's axes that show an image (not the colour bars), grouped into rows top to bottom."""
    rows: dict[float, list] = {}
    for ax in fig.axes:
        if ax.images and ax.get_label() != "<colorbar>":
            rows.setdefault(round(ax.get_position().y0, 4), []).append(ax)
    return [sorted(rows[y], key=lambda a: a.get_position().x0) for y in sorted(rows, reverse=True)]


def _grid(records, results, dataset, **kwargs):
    figures = plots.prediction_grid_figures(records, results, **kwargs)
    found = [(stem, g) for stem, g in figures if stem.startswith(f"prediction_grid_{plots._slug(dataset)}_")]
    assert len(found) == 1, [stem for stem, _ in figures]
    for _, other in figures:
        if other is not found[0][1]:
            plt.close(other.figure)
    return found[0][1]


@pytest.mark.slow
def test_plot_all_draws_every_figure_as_png_and_pdf(drawn):
    assert list(drawn) == list(figures.FIGURES)
    for name, paths in drawn.items():
        if name in ("crps_by_lead", "rank_histogram", "ensemble_members"):
            assert paths == [], name  # no run here was scored as an ensemble (tests/test_ensemble.py draws them)
            continue
        assert paths, f"{name} drew nothing"
        assert {p.suffix for p in paths} == {".png", ".pdf"}, name
        for path in paths:
            head = path.read_bytes()[:8]
            assert head.startswith(b"\x89PNG" if path.suffix == ".png" else b"%PDF"), path
            assert path.stat().st_size > 2000, path
    stems = {p.stem for p in drawn["per_lead"]}
    assert stems == {"per_lead_synthetic-weather-t2m", "per_lead_synthetic-chdl"}  # one figure per dataset
    # ACC against the training climatology: weather (calendar) and CHDL (per-pixel mean) both have one
    assert {p.stem for p in drawn["acc_by_lead"]} == {"acc_by_lead_synthetic-weather-t2m", "acc_by_lead_synthetic-chdl"}


@pytest.mark.slow
def test_grid_has_inputs_truth_and_one_prediction_and_error_row_per_model(records, results):
    drawn = _grid(records, results, WEATHER)
    try:
        rows = _image_rows(drawn.figure)
        n_models = len(WEATHER_MODELS)
        assert drawn.layout.n_input_rows == 1
        assert len(rows) == drawn.layout.n_rows == 1 + 1 + 2 * n_models
        t_out = records[0].config.t_out
        assert all(len(row) == t_out for row in rows)  # t_out = 3 <= 6 leads: every lead a column
        labels = [row[0].get_ylabel() for row in rows]
        names = ["Persistence", "ConvLSTM", "SimVP"]  # the tables' order
        assert labels == ["input", "truth", *names, *(f"{n}\nerror" for n in names)]
        assert [ax.get_title() for ax in rows[1]] == ["+6 h", "+12 h", "+18 h"]  # 6-hourly frames
        images = [row[0].images[0] for row in rows]
        fields, errors = images[:2 + n_models], images[2 + n_models:]
        assert len({im.get_clim() for im in fields}) == 1  # one scale for inputs, truth and predictions
        assert len({im.get_clim() for im in errors}) == 1
        low, high = errors[0].get_clim()
        assert high > 0 and low == -high  # symmetric around 0
        lon0, lon1, lat0, lat1 = images[0].get_extent()
        assert (lon1 - lon0, lat0, lat1) == pytest.approx((360.0, -90.0, 90.0))
        colorbars = [ax for ax in drawn.figure.axes if ax.get_label() == "<colorbar>"]
        assert sorted(ax.get_ylabel() for ax in colorbars) == ["prediction \u2212 truth [K]", "t2m [K]"]
    finally:
        plt.close(drawn.figure)


@pytest.mark.slow
def test_grid_of_images_keeps_the_native_pixel_grid(records, results):
    drawn = _grid(records, results, CHDL)
    try:
        rows = _image_rows(drawn.figure)
        assert len(rows) == 1 + 1 + 2 * len(CHDL_MODELS)
        image = rows[1][0].images[0]
        height, width = image.get_array().shape
        assert image.get_extent() == [-0.5, width - 0.5, height - 0.5, -0.5]  # pixels, row 0 at the top
        assert rows[1][0].get_title() == "t+1"  # no time step in the data summary
    finally:
        plt.close(drawn.figure)


@pytest.mark.slow
def test_records_without_stored_files_skip_the_grid_and_spectra(records, tmp_path):
    """Older records (no predictions or spectra files): those figures are skipped, the others still drawn."""
    older = tmp_path / "older"
    for record in records:
        write_record(older, dataclasses.replace(record, predictions_file=None, spectra_file=None))
    assert plots.plot_prediction_grid(load_records(older), older, tmp_path / "figures") == []
    drawn = figures.plot_all(older, tmp_path / "figures", formats=("png",))
    assert drawn["prediction_grid"] == [] and drawn["spectra"] == []
    assert drawn["per_lead"] and drawn["learning_curves"] and drawn["epoch_sweep"]


@pytest.mark.slow
def test_grid_leaves_out_a_model_whose_predictions_are_missing(records, results, tmp_path):
    copy = tmp_path / "results"
    shutil.copytree(results, copy)
    convlstm = next(r for r in records if r.config.model == "convlstm")
    (copy / convlstm.run_id / convlstm.predictions_file).unlink()
    with pytest.warns(UserWarning, match="predictions file"):
        drawn = _grid(load_records(copy), copy, WEATHER)
    try:
        labels = [row[0].get_ylabel() for row in _image_rows(drawn.figure)]
        assert labels == ["input", "truth", "Persistence", "SimVP", "Persistence\nerror", "SimVP\nerror"]
    finally:
        plt.close(drawn.figure)


def test_selection_is_latest_configuration_in_table_order(records):
    runs = plots.select_runs(records)
    assert list(runs) == sorted([WEATHER, CHDL])
    assert list(runs[WEATHER]) == list(WEATHER_MODELS)
    assert [r.config.seed for r in runs[WEATHER]["simvp"]] == [0, 1]
    styles = plots.model_styles(runs)
    assert len({(s.color, s.marker) for s in styles.values()}) == len(styles)  # every model tells apart


def test_paper_sweep_lines_only_for_the_paper_sweep_dataset():
    paper = plots._paper_sweep(WEATHER, "weatherbench:t2m")  # t2m taken as the dataset of Tables 3-4
    assert set(paper["table"]) == {3, 4} and set(paper["metric"]) == {"mse", "mae", "ssim"}
    assert plots._paper_sweep(WEATHER, "weatherbench:r").empty  # the default assumption: humidity
    assert plots._paper_sweep("moving-mnist", None).empty


def test_mean_std_over_seeds():
    mean, std = plots._mean_std([[1.0, 2.0, None], [3.0, 4.0, 5.0]])
    assert mean.tolist() == [2.0, 3.0, 5.0]
    assert std[:2] == pytest.approx([np.sqrt(2.0)] * 2) and np.isnan(std[2])  # one value: no spread


@pytest.mark.slow
def test_epoch_sweep_with_paper_lines_and_several_seeds(records, results, tmp_path):
    written = plots.plot_epoch_sweep(records, results, tmp_path, formats=("png",), sweep_dataset="weatherbench:t2m")
    assert [p.name for p in written] == ["epoch_sweep_synthetic-chdl.png", "epoch_sweep_synthetic-weather-t2m.png"]


def test_cli_refuses_a_missing_or_empty_results_folder(tmp_path):
    with pytest.raises(BenchError, match="There is no results folder"):
        plot_command(tmp_path / "missing", tmp_path / "figures", "png,pdf")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BenchError, match="No run records .*bench run"):
        plot_command(tmp_path / "empty", tmp_path / "figures", "png,pdf")
    assert not (tmp_path / "figures").exists()


def test_cli_format_list():
    assert parse_formats("PNG, pdf,png", plots.KNOWN_FORMATS) == ("png", "pdf")
    with pytest.raises(BenchError, match="Unknown figure format.*jpeg"):
        parse_formats("png,jpeg", plots.KNOWN_FORMATS)
    with pytest.raises(BenchError, match="Unknown figure format"):
        parse_formats(" , ", plots.KNOWN_FORMATS)


@pytest.mark.slow
def test_cli_prints_every_file_it_wrote(results, tmp_path, capsys):
    plot_command(results, tmp_path / "figures", "png")
    printed = capsys.readouterr().out
    files = sorted((tmp_path / "figures").iterdir())
    assert files and all(f.suffix == ".png" for f in files)
    for path in files:
        assert path.name in printed


def test_cli_says_so_when_no_figure_could_be_drawn(tmp_path):
    (tmp_path / "results" / "some-run").mkdir(parents=True)
    (tmp_path / "results" / "some-run" / "record.json").write_text("{}")  # unreadable: skipped with a warning
    with pytest.warns(UserWarning, match="schema version"), pytest.raises(BenchError, match="No figure could be drawn"):
        plot_command(tmp_path / "results", tmp_path / "figures", "png")
