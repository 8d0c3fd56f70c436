"""A catalogue of bad inputs, each run through the command line in-process: what the user did wrong, and what
they get back. Every case must end with the right exit code (2: the input is refused; 1: a run of the sweep
failed; 0: a warning, and the command goes on), one paragraph that names the thing and says what to do, no
traceback, and the finished record already in the results folder untouched.

The README's "Bad inputs and what they get" table lists exactly these cases (`test_readme_lists_the_catalogue`).
"""

from __future__ import annotations

import errno
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from benchmark.cli import app
from benchmark.data.wb1_files import GRID_FOLDER, variable_file
from tests.test_chdl import frame, write_folders
from tests.test_data import write_tiny

README = Path(__file__).resolve().parents[1] / "README.md"
README_HEADING = "### Bad inputs and what they get"
RESULTS = "results"  # every case's tmp_path/results holds one finished record before the command runs
TMP = "<tmp>"  # in a case's message: the case's tmp_path, escaped

runner = CliRunner()


def invoke(args: list[str]) -> Any:
    return runner.invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})


@dataclass(frozen=True)
class Case:
    """One bad input: `setup(tmp_path)` prepares files and returns the CLI args; `message` is a regex the error
    paragraph must match (`<tmp>` stands for the case's tmp_path); `patch(monkeypatch, tmp_path)` breaks the
    environment before the command runs; `then(tmp_path, args, result, monkeypatch)` checks what follows."""

    name: str
    setup: Callable[[Path], list[str]]
    exit_code: int
    message: str
    where: str
    patch: Callable[[pytest.MonkeyPatch, Path], None] | None = None
    then: Callable[[Path, list[str], Any, pytest.MonkeyPatch], None] | None = None


# --- building blocks -------------------------------------------------------------------------------------------

def dry(*args: str) -> Callable[[Path], list[str]]:
    """A `bench run ... --dry-run` on the smoke profile (persistence on synthetic-weather unless overridden)."""
    def setup(tmp_path: Path) -> list[str]:
        defaults = {"--models": "persistence", "--dataset": "synthetic-weather", "--profile": "smoke"}
        front = [x for option, value in defaults.items() if option not in args for x in (option, value)]
        return ["run", *front, *args, "--results", tmp_path / RESULTS, "--dry-run"]
    return setup


def profile_file(text: str) -> Callable[[Path], list[str]]:
    """A dry run with `--profile` the path of a file holding `text`."""
    def setup(tmp_path: Path) -> list[str]:
        (tmp_path / "mine.yaml").write_text(text)
        return dry("--profile", str(tmp_path / "mine.yaml"))(tmp_path)
    return setup


def suite_file(text: str) -> Callable[[Path], list[str]]:
    """A `bench reproduce --dry-run` of a suite file holding `text`."""
    def setup(tmp_path: Path) -> list[str]:
        (tmp_path / "suite.yaml").write_text(text)
        return ["reproduce", tmp_path / "suite.yaml", "--profile", "smoke", "--results", tmp_path / RESULTS,
                "--dry-run"]
    return setup


def empty_weatherbench_root(tmp_path: Path) -> list[str]:
    (tmp_path / "empty").mkdir()
    return dry("--dataset", "weatherbench", "--data-root", str(tmp_path / "empty"))(tmp_path)


def table(*args: str) -> Callable[[Path], list[str]]:
    def setup(tmp_path: Path) -> list[str]:
        return ["table", "--results", tmp_path / RESULTS, "--out", tmp_path / "tables", *args]
    return setup


TINY_WB = ["--set", "data.train_years=2000-2002", "--set", "data.val_years=2003", "--set", "data.test_years=2004",
           "--set", "data.t_in=2", "--set", "data.t_out=1"]


def tiny_weatherbench_run(root: Path, tmp_path: Path) -> list[str]:
    return ["run", "--dataset", "weatherbench:t2m", "--data-root", root, "--models", "persistence", "--profile",
            "smoke", *TINY_WB, "--results", tmp_path / RESULTS]


def corrupt_weatherbench(tmp_path: Path) -> list[str]:
    root = tmp_path / "wb"
    write_tiny(root, "t2m")
    variable_file(root / GRID_FOLDER, "2m_temperature", 2001).write_bytes(b"not a netCDF file" * 50)
    return tiny_weatherbench_run(root, tmp_path)


def weatherbench_with_nan(tmp_path: Path) -> list[str]:
    root = tmp_path / "wb"
    write_tiny(root, "t2m", values=lambda t: np.where(t == 65, np.nan, t.astype(float)))
    return tiny_weatherbench_run(root, tmp_path)


def chdl_run(root: Path, tmp_path: Path) -> list[str]:
    return ["run", "--dataset", "chdl", "--data-root", root, "--models", "persistence", "--profile", "smoke",
            "--results", tmp_path / RESULTS]


def chdl_sequence_too_short(tmp_path: Path) -> list[str]:
    root = write_folders(tmp_path / "chdl")
    frame(root, "test", 1, 9).unlink()
    return chdl_run(root, tmp_path)


def a_second_run(tmp_path: Path, results: str = RESULTS) -> list[str]:
    """A smoke persistence run other than the finished one (seed 1), into the results folder."""
    return ["run", "--models", "persistence", "--dataset", "synthetic-weather", "--profile", "smoke", "--seeds", "1",
            "--results", tmp_path / results]


def results_is_a_file(tmp_path: Path) -> list[str]:
    (tmp_path / "some_file.txt").write_text("not a folder\n")
    return a_second_run(tmp_path, "some_file.txt")


def refuse_writes_inside_results(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """As a read-only folder would (we run as root, for whom chmod stops nothing)."""
    import benchmark.core.atomic

    mkstemp = benchmark.core.atomic.tempfile.mkstemp
    results = (tmp_path / RESULTS).resolve()

    def refusing(*args: Any, dir: Any = None, **kwargs: Any) -> Any:
        if dir is not None and Path(dir).resolve().is_relative_to(results):
            raise PermissionError(errno.EACCES, "Permission denied")
        return mkstemp(*args, dir=dir, **kwargs)

    monkeypatch.setattr("benchmark.core.atomic.tempfile.mkstemp", refusing)


def fill_the_disk_at_the_record(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The disk fills up as the run writes its record.json (its other files went through)."""
    import benchmark.core.atomic

    mkstemp, fsync = benchmark.core.atomic.tempfile.mkstemp, benchmark.core.atomic.os.fsync
    record_fds: set[int] = set()

    def tracking(*args: Any, prefix: str | None = None, **kwargs: Any) -> Any:
        fd, name = mkstemp(*args, prefix=prefix, **kwargs)
        (record_fds.add if (prefix or "").startswith(".record.json.") else record_fds.discard)(fd)
        return fd, name

    def full(fd: int) -> None:
        if fd in record_fds:
            raise OSError(errno.ENOSPC, "No space left on device")
        fsync(fd)

    monkeypatch.setattr("benchmark.core.atomic.tempfile.mkstemp", tracking)
    monkeypatch.setattr("benchmark.core.atomic.os.fsync", full)


def rerun_finishes(tmp_path: Path, args: list[str], result: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing half-written is left; with space again, the same command finishes the run."""
    [run_dir] = (tmp_path / RESULTS).glob("persistence-synthetic-weather-t2m-s1-*")
    assert not (run_dir / "record.json").exists()
    assert not list(run_dir.glob(".record.json.*"))
    monkeypatch.undo()
    again = invoke(args)
    assert again.exit_code == 0, again.output
    assert "Finished 1, skipped 0 (already done), failed 0." in again.output
    assert not (run_dir / "error.json").exists()
    assert (run_dir / "record.json").is_file() and not list(run_dir.glob(".*.tmp"))


def real_run(models: str, *args: str) -> Callable[[Path], list[str]]:
    """A `bench run` (not --dry-run) of `models` on the smoke profile with `args`, into the results folder."""
    def setup(tmp_path: Path) -> list[str]:
        return ["run", "--models", models, "--dataset", "synthetic-weather", "--profile", "smoke", *args,
                "--results", tmp_path / RESULTS]
    return setup


def nothing_written(tmp_path: Path, args: list[str], result: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The command stopped before any run: no run folder (no config.json) beside the finished one."""
    [only] = (tmp_path / RESULTS).iterdir()
    assert only.name.startswith("persistence-") and (only / "record.json").is_file()


def with_truncated_record(tmp_path: Path) -> list[str]:
    [finished] = (tmp_path / RESULTS).iterdir()
    broken = tmp_path / RESULTS / "broken-run"
    broken.mkdir()
    (broken / "record.json").write_bytes((finished / "record.json").read_bytes()[:200])
    return table()(tmp_path)


def table_of_the_valid_one(tmp_path: Path, args: list[str], result: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    assert "persistence" in result.output and "main: synthetic-weather:t2m" in result.output
    assert (tmp_path / "tables" / "main_normalized.csv").is_file()


def only_unreadable_records(tmp_path: Path) -> list[str]:
    folder = tmp_path / "unreadable"
    for name in ("run-a", "run-b"):
        (folder / name).mkdir(parents=True)
        (folder / name / "record.json").write_text('{"schema_version": ')
    return ["table", "--results", folder, "--out", tmp_path / "tables"]


# --- the catalogue ---------------------------------------------------------------------------------------------

CATALOGUE = [
    Case("unknown model name", dry("--models", "convlsm"), 2,
         r"Unknown model 'convlsm'\. Did you mean convlstm\?.*Run `bench models`", "bench run"),
    Case("unknown dataset", dry("--dataset", "weatherbnch"), 2,
         r"Unknown dataset 'weatherbnch'\. Did you mean weatherbench\?.*Run `bench datasets`", "bench run"),
    Case("unknown task of a dataset", dry("--dataset", "synthetic-weather:z500"), 2,
         r"Dataset 'synthetic-weather' has no task 'z500'\. Its tasks are: t2m, uv10\. Pass synthetic-weather:TASK",
         "bench run"),
    Case("unknown profile name", dry("--profile", "quik"), 2,
         r"Unknown profile 'quik'\. Shipped profiles: paper, quick, smoke; or pass the path of your own YAML file",
         "bench run"),
    Case("--set with an unknown train key", dry("--set", "train.lrr=1e-3"), 2,
         r"Unknown training key\(s\) lrr for persistence on synthetic-weather:t2m\. Known keys: .*\blr\b", "bench run"),
    Case("--set with a bad value", dry("--set", "train.lr=-1"), 2,
         r"train\.lr = -1 .* is not valid: it must be a positive number.*--set train\.lr=VALUE", "bench run"),
    Case("--set without =", dry("--set", "train.lr"), 2,
         r"Cannot read the override 'train\.lr'\. Write it as section\.key=value", "bench run"),
    Case("--set with an unknown data key", dry("--set", "data.t_inn=3"), 2,
         r"Unknown data key t_inn for dataset synthetic-weather:t2m.*Did you mean t_inn -> t_in\?.*Fix the spelling",
         "bench run"),
    Case("--set with an unknown model key", real_run("simvp", "--set", "model.nosuch=3"), 2,
         r"Unknown model key nosuch for simvp \(given on the command line\)\. simvp takes only these model keys "
         r"\(the keyword arguments of its builder build_simvp\): N_S, N_T, groups, hid_S, hid_T, incep_ker, "
         r"spatio_kernel_dec, spatio_kernel_enc\. Fix the spelling", "bench run", then=nothing_written),
    Case("--set with a model key only some models take", real_run("simvp,convlstm", "--set", "model.hid_S=8"), 2,
         r"Model key given on the command line that not every model of this sweep takes: hid_S \(taken by simvp; "
         r"not by convlstm\)\. A --set model\.KEY goes to every model of the sweep: narrow --models", "bench run",
         then=nothing_written),
    Case("profile with an unknown model key", profile_file("models:\n  persistence:\n    model: {window: 3}\n"), 2,
         r"Unknown model key window for persistence \(in the profile's `models: persistence` entry\)\. persistence "
         r"takes no model keys at all\. Fix the spelling or remove the key\.$", "bench run"),
    Case("--set train.precision=bf16", dry("--set", "train.precision=bf16"), 2,
         r"train\.precision = 'bf16' .* must be 32-true, bf16-mixed, 16-mixed or auto.*--set train\.precision=VALUE",
         "bench run"),
    Case("--eval-at 0", dry("--eval-at", "0"), 2,
         r"train\.eval_at = \[0\] .* must be a list of epochs of at least 1.*--eval-at 10,20", "bench run"),
    Case("--pred-lens with a non-number", dry("--pred-lens", "3,x"), 2,
         r"--pred-lens must be comma-separated prediction lengths in frames, such as 3,6,12 \(got '3,x'\)",
         "bench run"),
    Case("--seeds with a non-number", dry("--seeds", "0,x"), 2,
         r"--seeds must be comma-separated integers such as 1,10,20 \(got '0,x'\)", "bench run"),
    Case("--jobs 0", lambda tmp_path: [*a_second_run(tmp_path), "--jobs", "0"], 2,
         r"--jobs must be at least 1 \(got 0\); leave it out to pick one run per CPU core", "bench run"),
    Case("profile file that is not YAML", profile_file("train: [unclosed\n"), 2,
         r"The profile <tmp>/mine\.yaml is not valid YAML \(expected ',' or '\]', but got '<stream end>' at line 2, "
         r"column 1\)\. Fix the file", "bench run"),
    Case("profile with an unknown section", profile_file("train:\n  epochs: 1\ntrainer:\n  lr: 1.0\n"), 2,
         r"The profile <tmp>/mine\.yaml has unknown top-level key\(s\) trainer; a profile holds train, data, "
         r"datasets, models .*rename or remove it", "bench run"),
    Case("missing WeatherBench folder", empty_weatherbench_root, 2,
         r"No WeatherBench 1 data found: looked for a `5\.625deg` folder at <tmp>/empty/5\.625deg\..*Point "
         r"`--data-root`.*synthetic-weather", "bench run"),
    Case("corrupt WeatherBench netCDF file", corrupt_weatherbench, 2,
         r"Cannot read <tmp>/wb/5\.625deg/2m_temperature/2m_temperature_2001_5\.625deg\.nc .* The file is damaged or "
         r"not a netCDF file: download it again", "bench run"),
    Case("WeatherBench file with NaN", weatherbench_with_nan, 2,
         r"<tmp>/wb/5\.625deg/2m_temperature/2m_temperature_2003_5\.625deg\.nc: variable 't2m' has 2048 NaN or "
         r"infinite values .* download or regenerate this file", "bench run"),
    Case("CHDL sequence of the wrong length", chdl_sequence_too_short, 2,
         r"The sequence folder <tmp>/chdl/test/seq_1 has 9 frame files .* needs data\.frames_per_sequence = 10\. "
         r"Add the missing frames", "bench run"),
    Case("results folder that is a file", results_is_a_file, 2,
         r"The results path <tmp>/some_file\.txt is not a folder .* Pass a folder \(new or existing\) with "
         r"--results DIR", "bench run"),
    Case("results folder that is not writable", a_second_run, 2,
         r"The results folder <tmp>/results is not writable \(Permission denied\)\. Pass a folder you can write to "
         r"with --results DIR", "bench run", patch=refuse_writes_inside_results),
    Case("disk full while the record is written", a_second_run, 1,
         r"The disk holding <tmp>/results is full \(No space left on device\)\. Free some space and run the same "
         r"command again: finished runs are kept and this run resumes from its last checkpoint", "bench run",
         patch=fill_the_disk_at_the_record, then=rerun_finishes),
    Case("truncated record beside a valid one", with_truncated_record, 0,
         r"Warning: The run record <tmp>/results/broken-run/record\.json cannot be read .* Delete its folder to "
         r"re-run that run\. Skipped", "bench table", then=table_of_the_valid_one),
    Case("only unreadable records", only_unreadable_records, 2,
         r"No finished run records in <tmp>/unreadable/ \(2 record files could not be read: see the warnings "
         r"above\)\. Run `bench run", "bench table"),
    Case("no results folder", lambda tmp_path: ["table", "--results", tmp_path / "nowhere"], 2,
         r"There is no results folder <tmp>/nowhere/\. Run `bench run` first, or pass --results DIR", "bench table"),
    Case("unknown metric", table("--metrics", "foo"), 2,
         r"Unknown metric\(s\) foo; choose from mse, mae, rmse", "bench table"),
    Case("unknown --compare", table("--compare", "ours"), 2,
         r"--compare 'ours': only 'paper' is known\. Pass --compare paper", "bench table"),
    Case("--precision-drift without runs at two precisions", table("--precision-drift"), 2,
         r"No model in <tmp>/results/ has runs of one setting in 32-true and in another precision\. Run the same "
         r"sweep twice, the second time with --set train\.precision=bf16-mixed", "bench table"),
    Case("--components beside another table", table("--components", "--epoch-sweep"), 2,
         r"--components adds rows to the main table only; leave out --epoch-sweep", "bench table"),
    Case("--against with a setting that is not the model's",
         lambda tmp_path: ["profile", "--models", "persistence", "--against", "train.lr=1", "--out", tmp_path], 2,
         r"--against 'train\.lr=1': only model settings can be compared \(--against model\.key=value\)",
         "bench profile"),
    Case("suite file that is not YAML", suite_file("name: mine\nmodels: [a, b\n  c: ]\n"), 2,
         r"The suite <tmp>/suite\.yaml is not valid YAML \(expected ',' or '\]', but got ':' at line 3, column 4\)\. "
         r"Fix the file, or pass a shipped suite: diffuma-paper", "bench reproduce"),
    Case("suite without a profile's datasets", suite_file("name: mine\nmodels: [simvp]\nprofiles:\n  smoke: {}\n"), 2,
         r"The suite <tmp>/suite\.yaml is not a valid suite file \(missing key 'datasets'\); see "
         r"benchmark/suites/diffuma-paper\.yaml for the layout", "bench reproduce"),
    Case("missing plugin file", lambda tmp_path: ["--plugin", tmp_path / "missing_file.py", "models"], 2,
         r"The plugin file <tmp>/missing_file\.py does not exist\. --plugin takes a \.py file or an importable module",
         "bench --plugin"),
    Case("bench predict of an unknown run", lambda tmp_path: ["predict", "nope", "--results", tmp_path / RESULTS], 2,
         r"No finished run 'nope' in <tmp>/results/ \(no <tmp>/results/nope/record\.json\)\. `bench status",
         "bench predict"),
    Case("bench ensemble of a deterministic model", lambda tmp_path: ["ensemble", _the_run(tmp_path), "--results",
                                                                      tmp_path / RESULTS, "--accelerator", "cpu"], 2,
         r"persistence forecasts one deterministic sequence: it has no sample_ensemble method, so it cannot be "
         r"scored as an ensemble \(its CRPS is its MAE, in every table\)", "bench ensemble"),
    Case("bench ensemble with one member", lambda tmp_path: ["ensemble", _the_run(tmp_path), "--results",
                                                             tmp_path / RESULTS, "--members", "1"], 2,
         r"--members 1: an ensemble needs at least 2 members", "bench ensemble"),
    Case("unknown download source",
         lambda tmp_path: ["data", "download", "weatherbench", "--source", "nope", "--root", tmp_path / "wb"], 2,
         r"Unknown --source 'nope'; choose one of: wb2 ", "bench data download"),
]


def _the_run(tmp_path: Path) -> str:
    """The id of the one finished run each case's results folder holds."""
    [run_dir] = (tmp_path / RESULTS).iterdir()
    return run_dir.name


# --- the tests -------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def finished_record(tmp_path_factory) -> Path:
    """One finished smoke run (persistence on synthetic-weather), made once; its run folder."""
    results = tmp_path_factory.mktemp("finished") / RESULTS
    result = invoke(["run", "--models", "persistence", "--dataset", "synthetic-weather", "--profile", "smoke",
                     "--results", results])
    assert result.exit_code == 0, result.output
    [run_dir] = results.iterdir()
    assert (run_dir / "record.json").is_file()
    return run_dir


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def problem_paragraph(output: str, exit_code: int) -> str:
    """The text that explains the problem: the "Error:" paragraph (exit 2, printed last), the failed run's line
    (exit 1, up to the sweep's summary) or the warning (exit 0, one line)."""
    if exit_code == 2:
        starts = [m.start() for m in re.finditer(r"^Error: ", output, re.MULTILINE)]
        assert len(starts) == 1, output
        return output[starts[0]:].strip()
    if exit_code == 1:
        start = output.index("failed:")
        return output[start:output.index("\nFinished", start)].strip()
    start = output.index("Warning:")
    return output[start:output.index("\n", start)].strip()


@pytest.mark.parametrize("case", CATALOGUE, ids=[case.name for case in CATALOGUE])
def test_bad_input(case: Case, tmp_path: Path, finished_record: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("DIFFUMA_BENCH_PLUGINS", raising=False)
    kept = tmp_path / RESULTS / finished_record.name
    shutil.copytree(finished_record, kept)
    before = snapshot(kept)
    args = [str(a) for a in case.setup(tmp_path)]
    if case.patch is not None:
        case.patch(monkeypatch, tmp_path)

    result = invoke(args)

    output = result.output
    assert result.exit_code == case.exit_code, output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in output
    paragraph = problem_paragraph(output, case.exit_code)
    assert not re.search(r"\n[ \t]*\n", paragraph), f"not one paragraph:\n{paragraph}"
    pattern = case.message.replace(TMP, re.escape(str(tmp_path)))
    assert re.search(pattern, " ".join(paragraph.split())), f"{pattern!r} not in:\n{paragraph}"
    assert snapshot(kept) == before, "the finished record changed"
    if case.then is not None:
        case.then(tmp_path, args, result, monkeypatch)


@pytest.mark.parametrize("data", ["weatherbench", "chdl"])
def test_the_tiny_data_runs_when_clean(data: str, tmp_path: Path):
    """The WeatherBench and CHDL cases fail for what was damaged, not for the tiny folders themselves."""
    if data == "weatherbench":
        write_tiny(tmp_path / "wb", "t2m")
        args = tiny_weatherbench_run(tmp_path / "wb", tmp_path)
    else:
        args = chdl_run(write_folders(tmp_path / "chdl"), tmp_path)
    result = invoke(args)
    assert result.exit_code == 0, result.output
    assert "Finished 1, skipped 0 (already done), failed 0." in result.output


def readme_catalogue_names(text: str) -> list[str]:
    """The first column of the Markdown table under the README's bad-inputs heading (header row excluded)."""
    lines = text.splitlines()
    assert README_HEADING in lines, f"README.md has no section {README_HEADING!r}"
    names = []
    rows = 0
    for line in lines[lines.index(README_HEADING) + 1:]:
        if line.startswith("#"):
            break
        if not line.strip().startswith("|"):
            if rows:
                break  # the table ended
            continue
        rows += 1
        cell = line.strip().strip("|").split("|")[0].strip()
        if rows == 1 or re.fullmatch(r":?-+:?", cell):
            continue  # the header and the separator row
        names.append(cell)
    return names


def test_readme_lists_the_catalogue():
    names = readme_catalogue_names(README.read_text(encoding="utf-8"))
    assert len(names) == len(set(names)), "a case is listed twice in the README"
    assert set(names) == {case.name for case in CATALOGUE}


def test_catalogue_names_are_unique_and_plain():
    names = [case.name for case in CATALOGUE]
    assert len(names) == len(set(names)) >= 20
    assert not any("|" in name or "`" in name for name in names)
