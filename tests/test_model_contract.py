"""The model contract (benchmark.registry.contract) over every registered model, as timm's tests/test_models.py
does, at the smoke profile's sizes; and that each check catches the failure it is there for."""

import random

import pytest
from torch import nn

from benchmark.core.errors import ConfigError
from benchmark.registry import contract, list_models, register_model
from benchmark.registry.model_api import ForecastModel
from benchmark.run.config import resolve_run
from tests.registry_isolation import isolated_models  # noqa: F401  (a fixture)

CHECKS = contract.contract_checks()


def _smoke_args(name):
    return resolve_run("smoke", name, "synthetic-weather:t2m", 0).model_args


@pytest.mark.parametrize("check", CHECKS, ids=[c.label for c in CHECKS])
@pytest.mark.parametrize("name", list_models())
def test_model_keeps_the_contract(name, check):
    failures = check(name, _smoke_args(name))
    assert not failures, f"{name}, {check.label}:\n" + "\n".join(failures)


# --- each check catches what it is for ---------------------------------------------------------


class FrameStack(ForecastModel):
    """All input frames stacked as channels, one 3x3 convolution to all output frames."""

    def __init__(self, shape, t_out=None, unused_layer=False, jitter=False):
        super().__init__()
        self.t_out = shape.t_out if t_out is None else t_out
        self.conv = nn.Conv2d(shape.t_in * shape.channels, self.t_out * shape.channels, 3, padding=1)
        self.unused = nn.Linear(2, 2) if unused_layer else None
        if jitter:  # drawn from Python's generator, which a torch seed does not fix
            nn.init.constant_(self.conv.bias, random.random())

    def forward(self, x):
        b, t, c, h, w = x.shape
        return self.conv(x.reshape(b, t * c, h, w)).reshape(b, self.t_out, c, h, w)


class PlainModule(nn.Module):
    """A model that is not a ForecastModel: no plan_schedule, no selective_scan_backend."""

    def forward(self, x):
        return x


def _failing(name, builder, **registration):
    register_model(name, family="test", paper_name=name, **registration)(builder)
    return {check.label.split(" (")[0]: failures for check, failures in contract.run_contract(name, {}) if failures}


@pytest.mark.usefixtures("isolated_models")
def test_a_good_model_passes():
    assert _failing("frame-stack", lambda shape: FrameStack(shape)) == {}


@pytest.mark.filterwarnings("ignore:Using a target size")  # F.mse_loss on the wrong shape
@pytest.mark.usefixtures("isolated_models")
def test_a_wrong_output_shape_is_named():
    failing = _failing("one-frame", lambda shape: FrameStack(shape, t_out=1))
    assert set(failing) == {"output shape"}
    assert "forward returned shape (2, 1, 2, 16, 32)" in failing["output shape"][0]
    assert "(B, T_out, C, H, W) = (2, 2, 2, 16, 32)" in failing["output shape"][0]


@pytest.mark.usefixtures("isolated_models")
def test_a_parameter_without_gradient_is_named():
    failing = _failing("unused-layer", lambda shape: FrameStack(shape, unused_layer=True))
    assert set(failing) == {"gradients"}
    assert "2 of 4 trainable parameters" in failing["gradients"][0]
    assert "unused.weight, unused.bias" in failing["gradients"][0]


@pytest.mark.usefixtures("isolated_models")
def test_an_unseeded_draw_breaks_determinism():
    failing = _failing("jitter", lambda shape: FrameStack(shape, jitter=True))
    assert set(failing) == {"deterministic"} and "different forecasts" in failing["deterministic"][0]


@pytest.mark.filterwarnings("ignore:Using a target size")  # F.mse_loss on the wrong shape
@pytest.mark.usefixtures("isolated_models")
def test_a_plain_module_is_told_to_subclass_forecast_model():
    failing = _failing("plain", lambda shape: PlainModule())
    assert "subclass benchmark.registry.model_api.ForecastModel" in failing["interface"][0]
    assert "no trainable parameters" in failing["gradients"][0]  # and it is registered as trainable


@pytest.mark.usefixtures("isolated_models")
def test_settings_that_are_not_json_fail_the_interface():
    failing = _failing("odd-settings", lambda shape, act=nn.GELU: FrameStack(shape))
    assert set(failing) == {"interface"} and "not plain JSON" in failing["interface"][0]


@pytest.mark.usefixtures("isolated_models")
def test_a_shape_the_builder_rejects_and_an_exception_in_forward_are_reported():
    def reject(shape):
        raise ConfigError(f"frames of {shape.height}x{shape.width} are too small for this model")

    failing = _failing("rejects", reject)
    assert failing["output shape"] == ["frames of 16x32 are too small for this model"]

    class Crash(FrameStack):
        def forward(self, x):
            raise RuntimeError("boom")

    failing = _failing("crash", lambda shape: Crash(shape))
    assert failing["output shape"][0].startswith("RuntimeError: boom. (at ") and __file__ in failing["output shape"][0]
