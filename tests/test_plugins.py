"""Models and datasets from outside the repository: the generic registry, `--plugin` files and modules,
installed packages' entry points, `bench check-model`, and plugin models in `bench run` and its workers."""

import os
import sys

import pytest
from typer.testing import CliRunner

from benchmark.cli import _plugin_options_first, app
from benchmark.core.errors import ConfigError, UnknownNameError
from benchmark.data.registry import DATASETS, list_datasets
from benchmark.registry import MODELS, get_model_spec, list_models, plugins
from benchmark.registry.plugins import PluginError
from benchmark.registry.registries import Registry
from tests.registry_isolation import isolated_registries  # noqa: F401  (a fixture)

pytestmark = pytest.mark.usefixtures("isolated_registries")

# A model written outside the repository: it imports the benchmark, never the other way round.
PLUGIN_MODEL = '''
from torch import nn

from benchmark.registry.model_api import ForecastModel
from benchmark.registry import register_model


class LastFrameConv(ForecastModel):
    def __init__(self, shape, width, frames_out):
        super().__init__()
        self.frames_out = frames_out
        self.net = nn.Sequential(nn.Conv2d(shape.channels, width, 3, padding=1), nn.GELU(),
                                 nn.Conv2d(width, frames_out * shape.channels, 3, padding=1))

    def forward(self, x):
        b, _, c, h, w = x.shape
        return self.net(x[:, -1]).view(b, self.frames_out, c, h, w)


@register_model("NAME", family="cnn", paper_name="Last-frame conv")
def build(shape, width=8):
    """Every future frame from the last input frame, through two 3x3 convolutions."""
    return LastFrameConv(shape, width, FRAMES_OUT)
'''
PLUGIN_DATASET = '''
from benchmark.data.registry import register_dataset


@register_dataset("NAME", summary="a dataset from a plugin")
def load(task, config):
    raise NotImplementedError("listed, never loaded in these tests")
'''
runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], env={"COLUMNS": "250"})


def _write(folder, filename, source, name, frames_out="shape.t_out"):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / filename
    path.write_text(source.replace("NAME", name).replace("FRAMES_OUT", frames_out))
    return path


# --- the generic registry ----------------------------------------------------------------------


def test_registry_imports_its_modules_on_the_first_lookup_only(tmp_path, monkeypatch):
    _write(tmp_path, "diffuma_test_plugin_gadgets.py", "LOADED = True\n", "")
    monkeypatch.syspath_prepend(str(tmp_path))
    gadgets = Registry("gadget", ["diffuma_test_plugin_gadgets"], "diffuma_bench.test-gadgets", "Run `x`.")
    gadgets.register("widget", 1)
    assert "diffuma_test_plugin_gadgets" not in sys.modules
    assert gadgets.names() == ["widget"] and "diffuma_test_plugin_gadgets" in sys.modules
    assert gadgets.get("widget") == 1 and "widget" in gadgets and gadgets.entries() == [1]


def test_registry_refuses_a_second_entry_under_one_name():
    gadgets = Registry("gadget", [], "diffuma_bench.test-gadgets", "Run `x`.")
    gadgets.register("widget", 1, origin="module_a")
    gadgets.register("widget", 1, origin="module_a")  # the same entry again (a module imported twice): fine
    with pytest.raises(ConfigError, match="'widget' is registered twice: by module_a and by module_b"):
        gadgets.register("widget", 2, origin="module_b")


def test_unknown_name_names_close_matches_and_how_to_list_them():
    gadgets = Registry("gadget", [], "diffuma_bench.test-gadgets", "Run `bench gadgets` to list them.")
    for name in ("widget", "gizmo"):
        gadgets.register(name, name)
    with pytest.raises(UnknownNameError) as error:
        gadgets.get("widgte")
    message = str(error.value)
    assert "Unknown gadget 'widgte'. Did you mean widget?" in message
    assert "Registered gadgets: widget, gizmo. Run `bench gadgets` to list them." in message
    assert "--plugin" in message


def test_the_public_functions_read_the_two_registries():
    assert list_models() == MODELS.names() and get_model_spec("simvp") is MODELS.get("simvp")
    assert [spec.name for spec in list_datasets()] == DATASETS.names()


# --- plugins: files and modules ----------------------------------------------------------------


def test_a_plugin_file_outside_the_repository_runs_and_appears_in_the_table(tmp_path):
    plugin = _write(tmp_path / "elsewhere", "my_models.py", PLUGIN_MODEL, "last-frame-conv")
    results = tmp_path / "results"
    ran = invoke("run", "--plugin", plugin, "--models", "last-frame-conv", "--dataset", "synthetic-weather",
                 "--profile", "smoke", "--results", results)
    assert ran.exit_code == 0, ran.output
    assert "Finished 1" in ran.output
    assert os.environ[plugins.PLUGINS_ENV] == str(plugin.resolve())  # where worker processes look
    table = invoke("table", "--results", results, "--out", tmp_path / "tables", "--format", "markdown")
    assert table.exit_code == 0, table.output
    assert "last-frame-conv" in table.output
    assert "last-frame-conv" in (tmp_path / "tables" / "main_normalized.md").read_text()


@pytest.mark.slow  # two spawned workers, each importing torch and Lightning
def test_parallel_workers_load_the_plugin_too(tmp_path):
    plugin = _write(tmp_path / "elsewhere", "my_models.py", PLUGIN_MODEL, "last-frame-conv")
    ran = invoke("--plugin", plugin, "run", "--models", "last-frame-conv,persistence", "--profile", "smoke",
                 "--jobs", "2", "--results", tmp_path / "results")
    assert ran.exit_code == 0, ran.output
    assert "2 at a time" in ran.output and "Finished 2" in ran.output


def test_a_plugin_module_registers_models_and_datasets(tmp_path, monkeypatch):
    source = PLUGIN_MODEL.replace("NAME", "module-conv") + PLUGIN_DATASET.replace("NAME", "module-data")
    _write(tmp_path, "diffuma_test_plugin_module.py", source, "", frames_out="shape.t_out")
    monkeypatch.syspath_prepend(str(tmp_path))
    listed = invoke("--plugin", "diffuma_test_plugin_module", "datasets")
    assert listed.exit_code == 0, listed.output
    assert "module-data" in listed.output and "a dataset from a plugin" in listed.output
    assert "module-conv" in list_models()


@pytest.mark.parametrize(
    "source,fragments",
    [
        ("raise RuntimeError('no weights here')\n", ["failed to load", "RuntimeError: no weights here", ":1)"]),
        ("def broken(:\n", ["failed to load", "SyntaxError"]),
        (PLUGIN_MODEL.replace("NAME", "simvp"), ["'simvp' is registered twice", "baselines.simvp"]),
    ],
    ids=["raises", "syntax", "name-clash"],
)
def test_a_broken_plugin_file_is_one_clear_error_naming_it(tmp_path, source, fragments):
    plugin = _write(tmp_path, "bad_plugin.py", source, "").resolve()
    result = invoke("--plugin", plugin, "check-model", "simvp")
    assert result.exit_code == 2, result.output
    output = result.output.replace("\n", "")
    assert "Traceback" not in output and f"The plugin {plugin} failed to load" in output
    for fragment in fragments:
        assert fragment in output


@pytest.mark.parametrize(
    "plugin,fragment",
    [("missing/my_models.py", "does not exist"), ("diffuma_test_plugin_absent", "cannot be imported"),
     ("not a module", "neither a .py file nor a module name")],
)
def test_a_plugin_that_is_not_there_is_named(tmp_path, plugin, fragment):
    result = invoke("check-model", "simvp", "--plugin", plugin)
    assert result.exit_code == 2 and fragment in result.output.replace("\n", "") and plugin in result.output


def test_plugin_options_may_follow_the_command_name():
    args = ["run", "--plugin", "a.py", "--models", "x", "--plugin=b.py", "--", "--plugin", "c.py"]
    assert _plugin_options_first(args) == ["--plugin", "a.py", "--plugin=b.py", "run", "--models", "x", "--",
                                           "--plugin", "c.py"]


# --- plugins: installed packages' entry points -------------------------------------------------


def _install(site, distribution, entry_points):
    """A minimal installed distribution: a dist-info folder with METADATA and entry_points.txt."""
    info = site / f"{distribution.replace('-', '_')}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {distribution}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(entry_points)


def _reload_entry_points(monkeypatch):
    for registry in (MODELS, DATASETS):
        monkeypatch.setattr(registry, "_loaded", False)


def test_an_installed_package_is_found_through_its_entry_points(tmp_path, monkeypatch):
    site = tmp_path / "site-packages"
    _write(site, "diffuma_test_plugin_pkg.py", PLUGIN_MODEL, "entry-point-conv")
    _write(site, "diffuma_test_plugin_pkg_data.py", PLUGIN_DATASET, "entry-point-data")
    _install(site, "diffuma-test-plugin-pkg", "[diffuma_bench.models]\nconvs = diffuma_test_plugin_pkg\n\n"
                                              "[diffuma_bench.datasets]\ndata = diffuma_test_plugin_pkg_data\n")
    monkeypatch.syspath_prepend(str(site))
    _reload_entry_points(monkeypatch)
    assert "entry-point-conv" in list_models() and "entry-point-data" in DATASETS.names()
    checked = invoke("check-model", "entry-point-conv")
    assert checked.exit_code == 0, checked.output
    assert "passes all 8 checks" in checked.output


def test_a_broken_entry_point_is_a_clear_error_naming_it(tmp_path, monkeypatch):
    site = tmp_path / "site-packages"
    _install(site, "diffuma-test-plugin-broken", "[diffuma_bench.models]\nbroken = diffuma_test_plugin_missing\n")
    monkeypatch.syspath_prepend(str(site))
    _reload_entry_points(monkeypatch)
    with pytest.raises(PluginError) as error:
        list_models()
    message = str(error.value)
    assert "entry point broken = diffuma_test_plugin_missing (group diffuma_bench.models of the installed " \
           "package diffuma-test-plugin-broken 0.1)" in message
    assert "No module named 'diffuma_test_plugin_missing'" in message and "uninstall" in message


# --- bench check-model -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["simvp", "convlstm"])
def test_check_model_passes_on_a_built_in_model(name):
    result = invoke("check-model", name)
    assert result.exit_code == 0, result.output
    assert f"{name} passes all 8 checks of the model contract" in result.output
    assert "FAIL" not in result.output and result.output.count("pass") >= 8


@pytest.mark.filterwarnings("ignore:Using a target size")  # F.mse_loss on the wrong shape
def test_check_model_fails_plainly_on_a_plugin_model_with_the_wrong_output_shape(tmp_path):
    plugin = _write(tmp_path, "one_frame.py", PLUGIN_MODEL, "one-frame", frames_out="1")
    result = invoke("--plugin", plugin, "check-model", "one-frame", "--shape", "4,2,1,16,32")
    assert result.exit_code == 1, result.output
    assert "FAIL" in result.output and "one-frame fails 1 of 4 checks of the model contract" in result.output
    assert "forward returned shape (2, 1, 1, 16, 32) for input (2, 4, 1, 16, 32); the contract is " \
           "(B, T_out, C, H, W) = (2, 2, 1, 16, 32)" in result.output.replace("\n", "")


def test_check_model_of_an_unknown_name_says_how_to_add_one():
    result = invoke("check-model", "my-model")
    assert result.exit_code == 2 and "Unknown model 'my-model'" in result.output and "--plugin" in result.output
