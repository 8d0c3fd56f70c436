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
entry point in the group `diffuma_bench.models` (see `benchmark.registry.plugins`).
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from benchmark.core.errors import ConfigError
from benchmark.registry.registries import Registry
from benchmark.registry.shapes import DataShape

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

    def hyperparameter_source(self) -> str:
        """Where the model's keys are declared, for messages: its config dataclass or its builder's signature."""
        if self.config is not None:
            return f"the fields of its config dataclass {self.config.__name__}"
        return f"the keyword arguments of its builder {self.builder.__name__}"


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
    unknown = set(hparams) - set(spec.hyperparameter_defaults())
    if unknown:
        raise ConfigError(unknown_model_keys_message(unknown, spec, "given to its builder"))
    return spec.builder(DataShape(*shape), **hparams)


def _did_you_mean(unknown: list[str], valid: Iterable[str]) -> str:
    """` Did you mean a -> b?` for the unknown keys with a close valid one (case aside: hid_s -> hid_S), else ""."""
    lowered = {key.lower(): key for key in valid}
    hints = [f"{key} -> {lowered[close[0]]}" for key in unknown
             if (close := difflib.get_close_matches(key.lower(), list(lowered), n=1))]
    return f" Did you mean {', '.join(hints)}?" if hints else ""


def unknown_model_keys_message(unknown: Iterable[str], spec: ModelSpec, where: str) -> str:
    """One paragraph: which model keys `spec`'s model does not take, where they were given, and the keys it takes."""
    unknown = sorted(unknown)
    valid = sorted(spec.hyperparameter_defaults())
    plural = "s" if len(unknown) > 1 else ""
    takes = (f"{spec.name} takes only these model keys ({spec.hyperparameter_source()}): {', '.join(valid)}."
             if valid else f"{spec.name} takes no model keys at all.")
    elsewhere = "" if "`models:" in where else ("; a key that only some models take belongs in a profile's "
                                                 "`models: <name>: model:` entry")
    return (f"Unknown model key{plural} {', '.join(unknown)} for {spec.name} ({where}).{_did_you_mean(unknown, valid)} "
            f"{takes} Fix the spelling or remove the key{plural}{elsewhere}.")


def check_model_overrides(keys: Iterable[str], models: list[str]) -> None:
    """A ConfigError, before any run starts, when a command-line `--set model.KEY` is not a key of every model
    of the sweep `models` (such a key goes to every model; a model's builder would refuse it).

    Ours: a key that only some of the models take is refused too, not passed to those models only, so that
    no run of the sweep silently differs from what the command line says; the message names the models that
    take it. A key that none of several models takes gets a close match, not every model's list of keys.
    """
    keys = sorted(keys)
    specs = [get_model_spec(name) for name in models]
    if len(specs) == 1:
        unknown = set(keys) - set(specs[0].hyperparameter_defaults())
        if unknown:
            raise ConfigError(unknown_model_keys_message(unknown, specs[0], "given on the command line"))
        return
    takers = {key: [s.name for s in specs if key in s.hyperparameter_defaults()] for key in keys}
    nowhere = [key for key in keys if not takers[key]]
    if nowhere:
        plural = "s" if len(nowhere) > 1 else ""
        valid = sorted({k for s in specs for k in s.hyperparameter_defaults()})
        raise ConfigError(
            f"Unknown model key{plural} {', '.join(nowhere)} (given on the command line): none of the {len(specs)} "
            f"models of this sweep ({', '.join(models)}) takes {'them' if plural else 'it'}."
            f"{_did_you_mean(nowhere, valid)} Each model takes only the keys of its config; `bench run --models "
            "NAME --dry-run` prints one model's (model_args). Fix the spelling or remove the key.")
    partial = {key: names for key, names in takers.items() if len(names) < len(specs)}
    if partial:
        which = "; ".join(f"{key} (taken by {', '.join(names)}; not by "
                          f"{', '.join(m for m in models if m not in names)})" for key, names in partial.items())
        raise ConfigError(
            f"Model key{'s' if len(partial) > 1 else ''} given on the command line that not every model of this "
            f"sweep takes: {which}. A --set model.KEY goes to every model "
            "of the sweep: narrow --models to the models that take it, or set it for those models only in a "
            "profile's `models: <name>: model:` entry.")
