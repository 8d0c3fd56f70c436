"""Model registry: one name per model variant, each bound to a builder function.

Model files register themselves with the `register_model` decorator (the timm pattern), most
with one config dataclass of hyper-parameters (nanoGPT's `GPTConfig` pattern):

    @register_model("convlstm", family="recurrent", paper_name="ConvLSTM", config=ConvLSTMConfig)
    def build_convlstm(shape: DataShape, **overrides) -> ConvLSTM:
        return ConvLSTM(shape, ConvLSTMConfig(**overrides))

The config's field defaults (or, for a builder registered without `config=`, its keyword
defaults) are the published (`paper`-profile) settings; profiles override them. The
packages listed in `MODEL_PACKAGES` are imported on first lookup, so adding a model is one new
file plus one import line in its package's `__init__.py`. Models from outside the repository
register the same way, from a plugin file or module (`bench --plugin`) or an installed package's
entry point in the group `diffuma_bench.models` (see `benchmark.plugins`).
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from benchmark.errors import ConfigError
from benchmark.registries import Registry
from benchmark.shapes import DataShape

MODEL_PACKAGES = ("baselines", "models")


@dataclass(frozen=True)
class ModelSpec:
    """Everything the benchmark knows about a registered model besides its code."""

    name: str
    builder: Callable[..., Any]
    family: str
    paper_name: str
    trainable: bool = True
    reference_params: dict[str, int] = field(default_factory=dict)
    summary: str = ""
    config: type | None = None

    def hyperparameter_defaults(self) -> dict[str, Any]:
        """The published settings: the config dataclass's field defaults, else the builder's keyword defaults."""
        if self.config is not None:
            return dataclasses.asdict(self.config())
        params = list(inspect.signature(self.builder).parameters.values())[1:]
        return {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}


MODELS: Registry[ModelSpec] = Registry(
    "model", MODEL_PACKAGES, "diffuma_bench.models", "Run `bench models` to see them with their parameter counts."
)


def register_model(
    name: str,
    *,
    family: str,
    paper_name: str,
    trainable: bool = True,
    reference_params: dict[str, int] | None = None,
    config: type | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator that registers a model builder `builder(shape: DataShape, **hparams)` under `name`.

    `reference_params` maps a shape string "T_in,C,H,W" such as "12,1,32,64" to the parameter count
    that the reference implementation publishes (or is counted to have) at that shape with the
    published settings; `bench models` shows it beside ours and the tests hold ours within 3%.
    `config` is the dataclass whose fields are the builder's hyper-parameters (its `**overrides`),
    for builders that take them that way; every field needs a default.
    """
    if config is not None and not dataclasses.is_dataclass(config):
        raise TypeError(f"register_model({name!r}, config=...) needs a dataclass type, got {config!r}")

    def decorate(builder: Callable[..., Any]) -> Callable[..., Any]:
        doc = inspect.getdoc(builder) or ""
        spec = ModelSpec(
            name=name,
            builder=builder,
            family=family,
            paper_name=paper_name,
            trainable=trainable,
            reference_params=dict(reference_params or {}),
            summary=doc.splitlines()[0] if doc else "",
            config=config,
        )
        MODELS.register(name, spec, origin=builder.__module__)
        return builder

    return decorate


def list_models() -> list[str]:
    """Names of all registered models, in registration order."""
    return MODELS.names()


def get_model_spec(name: str) -> ModelSpec:
    """The spec registered under `name`; a clear error naming the close matches otherwise."""
    return MODELS.get(name)


def resolve_model_names(selection: str) -> list[str]:
    """Expand a `--models` value: `all` or a comma-separated list of registered names."""
    if selection.strip() == "all":
        return list_models()
    names = [n.strip() for n in selection.split(",") if n.strip()]
    if not names:
        raise ConfigError("No model given. Pass --models all or a comma-separated list such as convlstm,simvp.")
    for name in names:
        get_model_spec(name)
    return list(dict.fromkeys(names))


def create_model(name: str, shape: DataShape, **hparams: Any):
    """Build the model registered under `name` for data of `shape` with `hparams`."""
    spec = get_model_spec(name)
    accepted = spec.hyperparameter_defaults()
    unknown = sorted(set(hparams) - set(accepted))
    if unknown:
        raise ConfigError(
            f"Model {name!r} has no hyper-parameter(s) {', '.join(unknown)}. "
            f"Its hyper-parameters are: {', '.join(sorted(accepted)) or '(none)'}."
        )
    return spec.builder(DataShape(*shape), **hparams)
