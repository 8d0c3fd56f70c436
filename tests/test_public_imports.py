"""The public entry points survive the stage layout: a plugin written against the imports of before the layout
(`benchmark.model_api`, `benchmark.registry`) still registers, passes `bench check-model` and trains, by `--plugin`
and by an installed package's entry point; the README's own example does the same; `bench --help` imports no torch.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from benchmark.cli import app
from benchmark.registry import MODELS, list_models
from tests.registry_isolation import isolated_registries  # noqa: F401  (a fixture)

pytestmark = pytest.mark.usefixtures("isolated_registries")
ROOT = Path(__file__).resolve().parents[1]

# The README's "Your own model, without forking" example as it stood before the layout (commit cb36054).
BEFORE_THE_LAYOUT = '''
from torch import nn
from benchmark.model_api import ForecastModel
from benchmark.registry import register_model

class LastFrameNet(ForecastModel):
    def __init__(self, shape, width):
        super().__init__()
        self.t_out = shape.t_out
        self.net = nn.Sequential(nn.Conv2d(shape.channels, width, 3, padding=1), nn.GELU(),
                                 nn.Conv2d(width, shape.t_out * shape.channels, 3, padding=1))

    def forward(self, x):                       # (B, T_in, C, H, W) -> (B, T_out, C, H, W)
        b, _, c, h, w = x.shape
        return self.net(x[:, -1]).view(b, self.t_out, c, h, w)

@register_model("last-frame-net", family="cnn", paper_name="Last-frame net")
def build_last_frame_net(shape, width=32):      # keyword defaults: the published settings
    """Every future frame from the last input frame, through two 3x3 convolutions."""
    return LastFrameNet(shape, width)
'''


def _readme_example() -> str:
    """The Python block of the README's "Your own model, without forking" section, as it stands now."""
    section = (ROOT / "README.md").read_text().split("### Your own model, without forking", 1)[1]
    return re.search(r"```python\n(.*?)```", section, flags=re.S).group(1)


def invoke(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "250"})


def _plugin(folder: Path, filename: str, source: str, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / filename
    path.write_text(source.replace("last-frame-net", name))
    return path


def test_the_model_api_of_before_the_layout_is_the_same_module_as_now():
    import benchmark.model_api as before

    import benchmark.registry.model_api as now

    assert before is now and before.ForecastModel is now.ForecastModel


def test_the_readme_example_still_imports_what_it_did():
    assert "from benchmark.registry import register_model" in _readme_example()


@pytest.mark.parametrize("source", [BEFORE_THE_LAYOUT, None], ids=["before-the-layout", "readme-now"])
def test_a_plugin_file_registers_passes_the_contract_and_trains(tmp_path, source):
    name = "old-api-net" if source else "readme-net"
    plugin = _plugin(tmp_path / "elsewhere", f"bench_plugin_{name.replace('-', '_')}.py",
                     source or _readme_example(), name)
    checked = invoke("--plugin", plugin, "check-model", name)
    assert checked.exit_code == 0, checked.output
    assert "passes all 8 checks" in checked.output
    ran = invoke("--plugin", plugin, "run", "--models", name, "--profile", "smoke", "--results", tmp_path / "runs")
    assert ran.exit_code == 0, ran.output
    assert "Finished 1" in ran.output


def test_an_installed_package_written_before_the_layout_loads_through_its_entry_point(tmp_path, monkeypatch):
    site = tmp_path / "site-packages"
    _plugin(site, "diffuma_test_plugin_old_api.py", BEFORE_THE_LAYOUT, "entry-point-old-api")
    info = site / "diffuma_test_plugin_old_api-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: diffuma-test-plugin-old-api\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[diffuma_bench.models]\nmine = diffuma_test_plugin_old_api\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setattr(MODELS, "_loaded", False)
    assert "entry-point-old-api" in list_models()
    listed = invoke("models", "--profile", "smoke", "--dataset", "synthetic-weather:t2m")
    assert listed.exit_code == 0, listed.output
    assert "entry-point-old-api" in listed.output


def test_bench_help_imports_neither_torch_nor_lightning():
    code = "import sys, benchmark.cli; print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'lightning'}))"
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert shown.stdout.strip() == "[]"
