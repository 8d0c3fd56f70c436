"""The DIFFUMA paper's Tables 1-5 as stored data: complete, as printed, and loaded with clear errors."""

import pandas as pd
import pytest

from benchmark.analysis.dataset_table import PAPER_TABLE1
from benchmark.core.errors import DataError, UnknownNameError
from benchmark.paper import numbers
from benchmark.paper.numbers import load_paper_numbers, paper_table, write_paper_numbers
from benchmark.registry import list_models

SEVEN = ["convlstm", "predrnn", "e3dlstm", "pastnet", "predrnn-v2", "simvp", "diffuma"]  # the paper's row order
DATASETS = ["weatherbench:tcc", "weatherbench:uv10", "weatherbench:r", "weatherbench:t2m", "chdl"]


@pytest.fixture(scope="module")
def frame():
    return load_paper_numbers()


def test_round_trip_reproduces_the_stored_file(frame, tmp_path):
    copy = tmp_path / "copy.csv"
    write_paper_numbers(frame, copy)
    assert copy.read_text(encoding="utf-8") == numbers.PAPER_CSV.read_text(encoding="utf-8")
    pd.testing.assert_frame_equal(load_paper_numbers(copy), frame)


def test_every_table_has_the_printed_shape(frame):
    assert sorted(frame["table"].unique()) == [1, 2, 3, 4, 5]
    assert frame.groupby("table").size().to_dict() == {1: 35, 2: 105, 3: 84, 4: 84, 5: 60}
    for table_id, metrics in numbers.TABLE_METRICS.items():
        assert set(frame.loc[frame["table"] == table_id, "metric"]) == set(metrics)

    t1 = paper_table(1)
    assert list(t1.index) == DATASETS and list(t1.columns) == list(numbers.TABLE_METRICS[1])
    t2 = paper_table(2)
    assert list(t2.index) == SEVEN
    assert list(t2.columns) == [(d, m) for d in DATASETS for m in ("mse", "mae", "ssim")]
    t3 = paper_table(3)
    assert list(t3.index) == [("weatherbench:r", m) for m in SEVEN]
    assert list(t3.columns) == [(e, m) for e in (10, 20, 40, 60, 80, 100) for m in ("mse", "mae")]
    t4 = paper_table(4)
    assert list(t4.index.get_level_values("model")) == SEVEN
    assert list(t4.columns) == [(e, "ssim") for e in (1, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110)]
    t5 = paper_table(5)
    assert list(t5.index.get_level_values("model")) == ["diffuma", "simvp", "predrnn-v2", "pastnet", "convlstm"]
    assert list(t5.columns) == [(n, m) for n in (3, 6, 9, 12) for m in ("mse", "mae", "ssim")]
    for table in (t1, t2, t3, t4, t5):
        assert not table.isna().any().any()


def test_spot_values_as_printed():
    t2 = paper_table(2)
    assert t2.loc["diffuma", "chdl"].to_dict() == {"mse": 0.0371, "mae": 0.1925, "ssim": 0.9254}
    assert t2.loc["diffuma", ("weatherbench:t2m", "ssim")] == 0.9878  # Section 5.3's "peak value of 0.988"
    assert t2.loc["simvp", ("weatherbench:t2m", "mae")] == 0.0405
    assert t2.loc["convlstm", ("weatherbench:tcc", "mse")] == 0.4651
    assert paper_table(3).loc[("weatherbench:r", "diffuma"), (100, "mae")] == 0.1494
    assert paper_table(4).loc[("weatherbench:r", "pastnet"), (100, "ssim")] == 0.7031
    assert paper_table(5).loc[("weatherbench:r", "convlstm"), (12, "ssim")] == 0.6605
    assert paper_table(1).loc["chdl"].to_dict() == {"train_samples": 4874, "test_samples": 1216, "channels": 1,
                                                    "height": 600, "width": 800, "t_in": 5, "t_out": 1}


def test_table1_agrees_with_the_dataset_table():
    t1 = paper_table(1)
    for name, row in PAPER_TABLE1.items():
        assert (t1.loc[name, "train_samples"], t1.loc[name, "test_samples"]) == (row.train, row.test)
        assert tuple(t1.loc[name, ["channels", "height", "width"]]) == row.shape
        assert (t1.loc[name, "t_in"], t1.loc[name, "t_out"]) == (row.t_in, row.t_out)


def test_model_names_resolve_in_the_registry(frame):
    registered = set(list_models())
    assert set(numbers.MODEL_NAMES.values()) <= registered
    assert set(frame["model"]) - {""} == set(SEVEN)
    assert numbers.MODEL_NAMES["Predrnn-v1"] == "predrnn" and numbers.MODEL_NAMES["E3D-LSTM"] == "e3dlstm"


def test_sweep_dataset_is_a_setting(frame):
    sweeps = frame[frame["table"].isin(numbers.SWEEP_TABLES)]
    assert not sweeps["dataset_stated"].any() and set(sweeps["dataset"]) == {numbers.DEFAULT_SWEEP_DATASET}
    assert frame.loc[frame["table"] <= 2, "dataset_stated"].all()
    assert set(paper_table(4, sweep_dataset="chdl").index.get_level_values("dataset")) == {"chdl"}
    with pytest.raises(UnknownNameError, match="paper's datasets"):
        load_paper_numbers(sweep_dataset="moving-mnist")
    with pytest.raises(UnknownNameError, match="no Table 6"):
        paper_table(6)


@pytest.mark.parametrize(("old", "new", "message"), [
    (",0.4651,", ",0.46x1,", "value '0.46x1' is not a number"),
    (",mse,,,0.4651,", ",rmse,,,0.4651,", "metric 'rmse' is not one of Table 2's"),
    (",convlstm,Convlstm,", ",convlstm,ConvNet,", "paper_model 'ConvNet' does not map"),
    ("\n3,,,,diffuma,DiffuMa,mse,100,", "\n3,,,,diffuma,DiffuMa,mse,,", "epoch must be given in Table 3"),
])
def test_broken_csv_names_the_row(tmp_path, old, new, message):
    text = numbers.PAPER_CSV.read_text(encoding="utf-8")
    assert old in text
    broken = tmp_path / "broken.csv"
    broken.write_text(text.replace(old, new, 1), encoding="utf-8")
    line = text[: text.index(old) + 1].count("\n") + 1  # the file line the change is on
    with pytest.raises(DataError, match=message) as caught:
        load_paper_numbers(broken)
    assert f"line {line}:" in str(caught.value) and str(broken) in str(caught.value)


def test_duplicate_cell_is_refused(tmp_path):
    text = numbers.PAPER_CSV.read_text(encoding="utf-8")
    broken = tmp_path / "twice.csv"
    broken.write_text(text + text.splitlines(keepends=True)[-1], encoding="utf-8")
    with pytest.raises(DataError, match="more than once"):
        load_paper_numbers(broken)
