"""`bench report`: one self-contained HTML file and its Markdown twin, from real smoke runs."""

import base64
import html
import re
from pathlib import Path

import pytest
from matplotlib.figure import Figure

from benchmark.cli.report import report_command
from benchmark.core.errors import BenchError
from benchmark.present.report import build_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PROFILE = "smoke"


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    from benchmark.run.config import resolve_run
    from benchmark.run.runner import execute_run

    folder = tmp_path_factory.mktemp("results")
    for model in ("persistence", "simvp", "diffuma"):
        execute_run(resolve_run(PROFILE, model, "synthetic-weather:t2m", 0, {"train": {"eval_at": [1, 2]}}), folder)
    return folder


def _figure(path: Path, title: str) -> Path:
    """A small real figure, PNG or PDF by the suffix (a bare Figure draws with the Agg canvas, no pyplot)."""
    fig = Figure(figsize=(4, 2))
    ax = fig.add_subplot()
    ax.plot([0, 1, 2], [1, 0, 2])
    ax.set_title(title)
    fig.savefig(path)
    return path


@pytest.fixture(scope="module")
def report(results, tmp_path_factory):
    """The report of the smoke runs with three figures: two PNGs made elsewhere (one with a PDF), one
    already in the report's figures folder (as plot_all writes them)."""
    elsewhere = tmp_path_factory.mktemp("plots")
    out = tmp_path_factory.mktemp("report")
    (out / "figures").mkdir()
    figures = {
        "learning_curves": [_figure(elsewhere / "learning_curves.png", "curves"),
                            _figure(elsewhere / "learning_curves.pdf", "curves")],
        "per_lead": [_figure(elsewhere / "per_lead.png", "per lead")],
        "spectra": [_figure(out / "figures" / "spectra.png", "spectra")],
    }
    html_path, markdown_path = build_report(results, out, figures)
    return {"out": out, "html_path": html_path, "markdown_path": markdown_path, "html": html_path.read_text(),
            "markdown": markdown_path.read_text(), "figures": figures}


def _headings_html(text: str) -> list[str]:
    return [html.unescape(re.sub(r"<[^>]+>", "", t)) for t in re.findall(r"<h[23] id=\"[^\"]*\">(.*?)</h[23]>", text)]


def _headings_markdown(text: str) -> list[str]:
    return re.findall(r"^#{2,3} (.+)$", text, flags=re.MULTILINE)


def test_both_files_are_written(report):
    assert report["html_path"] == report["out"] / "report.html" and report["html_path"].is_file()
    assert report["markdown_path"] == report["out"] / "report.md" and report["markdown_path"].is_file()


def test_every_image_is_an_embedded_png(report):
    sources = re.findall(r"<img\b[^>]*\bsrc=\"([^\"]*)\"", report["html"])
    assert len(sources) == 3  # the three PNGs; the PDF is not embedded
    for source in sources:
        assert source.startswith("data:image/png;base64,")
        assert base64.b64decode(source.removeprefix("data:image/png;base64,")).startswith(PNG_MAGIC)


def test_nothing_is_loaded_from_elsewhere(report):
    text = report["html"]
    assert "<script" not in text.lower()
    assert "<link" not in text.lower()
    assert "@import" not in text and "url(" not in text
    assert not re.search(r"\b(?:src|href)\s*=\s*[\"']?\s*(?:https?:)?//", text, flags=re.IGNORECASE)
    assert all(link.startswith("#") for link in re.findall(r"\bhref=\"([^\"]*)\"", text))  # contents links only
    assert text.count("<style>") == 1


def test_every_table_has_its_section(report):
    text = report["html"]
    for anchor in (f"{PROFILE}-main-normalized", f"{PROFILE}-main-physical", f"{PROFILE}-main-normalized-vs-paper",
                   f"{PROFILE}-epoch-sweep-normalized", f"{PROFILE}-significance-main", f"{PROFILE}-claims",
                   "environment", "data", "not-run", "figures", "figure-learning-curves", "figure-spectra"):
        assert f'id="{anchor}"' in text, anchor
        assert f'href="#{anchor}"' in text, anchor  # and is in the contents
    main = text.split(f'id="{PROFILE}-main-normalized"')[1].split("<h3")[0]
    assert "<table" in main and "detail" in main and "diffuma" in main
    assert "▲" in main or "▼" in main  # per-sample files exist: the marks are there
    assert "Runs without per-sample errors" in text and "Every run stored its per-sample errors" in text


def test_what_was_not_run(report):
    section = report["html"].split('id="not-run"')[1]
    convlstm = re.search(r"<th>convlstm</th>(.*?)</tr>", section, flags=re.DOTALL).group(1)
    assert convlstm.count("not run") == 5  # no runs of convlstm on any of the paper's five datasets
    diffuma = re.search(r"<th>diffuma</th>(.*?)</tr>", section, flags=re.DOTALL).group(1)
    assert "1 stand-in" in diffuma
    assert "Length sweep" in section  # one T_out only: not built
    assert not any(h.startswith("Length sweep") for h in _headings_html(report["html"]))


def test_environment_and_data(report):
    environment = report["html"].split('id="environment"')[1].split("<h2")[0]
    assert "selective scan" in environment and "lean" in environment and "git commit" in environment
    data = report["html"].split('id="data"')[1].split("<h2")[0]
    assert "generated stand-in for weatherbench:t2m" in data and "37 / 37 / 37" in data


def test_the_generated_data_note_is_at_the_top(report):
    text = report["html"]
    note = re.search(r"<div class=\"note\">(.*?)</div>", text, flags=re.DOTALL)
    assert note and "Generated data" in note.group(1) and note.start() < text.index("<nav")
    assert "> **Generated data.**" in report["markdown"].split("\n## ")[0]


def test_the_markdown_has_the_same_sections_and_its_images_exist(report):
    assert _headings_markdown(report["markdown"]) == _headings_html(report["html"])
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report["markdown"])
    assert len(links) == 3
    for link in links:
        assert not link.startswith(("/", "http")) and (report["out"] / link).is_file()
    assert "figures/spectra.png" in links  # already in the report's folder: linked where it is
    assert (report["out"] / "figures" / "learning_curves.pdf").is_file()  # the PDF is copied too
    assert "| persistence" in report["markdown"]


def test_report_command_writes_the_report(results, tmp_path):
    report_command(results, tmp_path / "report", plots=False)
    assert (tmp_path / "report" / "report.html").is_file() and (tmp_path / "report" / "report.md").is_file()


def test_an_empty_or_missing_results_folder_is_an_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(BenchError, match="no run record"):
        report_command(tmp_path / "empty", tmp_path / "out")
    with pytest.raises(BenchError, match="does not exist"):
        report_command(tmp_path / "missing", tmp_path / "out")
    assert not (tmp_path / "out").exists()
