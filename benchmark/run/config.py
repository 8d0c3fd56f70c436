"""Run configurations: profiles, the one precedence order, overrides and run ids.

A run is one (model, dataset[:task], seed) under a profile. Its configuration has three
sections: `train` (optimisation and evaluation), `data` (the dataset loader's keys, including
`t_in` and `t_out`) and `model` (the builder's keyword hyper-parameters).

Precedence, lowest first (later layers overwrite earlier ones, key by key):
  1. `TRAIN_DEFAULTS` below and the model builder's keyword defaults (the published settings);
  2. the profile's top-level `train:` / `data:` sections;
  3. the profile's `datasets: <name>:` entry, then `datasets: <name:task>:`;
  4. the profile's `models: <model>:` entry, then its `datasets: <name>:` and `<name:task>:`;
  5. the command line (`--epochs`, `--eval-at`, `--data-root`, `--set section.key=value`;
     `--pred-lens` sets `data.t_out` here, one run per length).
`bench run --dry-run` prints the result of this resolution for every run.

Data keys: each dataset declares the keys it reads (its settings dataclass, registered with it).
A key the dataset does not declare is refused when it is given for that dataset (layers 3 and the
`datasets:` entries of 4, and the command line), and dropped silently when it comes from a layer
shared by all datasets (the profile's top-level `data:` and a `models: <model>:` entry's `data:`),
so `coarsen: 4` there reaches WeatherBench and stays out of CHDL's configuration and run id.
`data` then holds exactly the declared keys that were given (defaults are the loader's), and the
values of `data` and `train` are checked before any run starts.

Model keys: a model takes exactly the keys its builder declares (the fields of its config dataclass,
`ModelSpec.hyperparameter_defaults`). A key it does not take is refused wherever it is given, before any
run starts; a command-line `--set model.KEY` goes to every model of a sweep, so it must be a key of all of
them (`benchmark.registry.check_model_overrides`).
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from benchmark.core.errors import ConfigError, UnknownNameError
from benchmark.data.settings import DataSettings, as_whole, real_number, unknown_keys_message

PROFILE_DIR = Path(__file__).parents[1] / "profiles"
SECTIONS = ("train", "data", "model")
PROFILE_KEYS = ("train", "data", "datasets", "models")

TRAIN_DEFAULTS: dict[str, Any] = {
    "epochs": 50,
    "batch_size": 16,
    "lr": 1e-3,
    "optimizer": "adam",  # adam | adamw
    "weight_decay": 0.0,
    "scheduler": "cosine",  # cosine (per step, down to min_lr) | constant | onecycle
    "min_lr": 1e-6,
    "warmup_steps": 0,  # cosine/constant: linear warm-up over this many optimizer steps
    "warmup_fraction": 0.3,  # onecycle: the share of the run spent warming up (OneCycleLR's pct_start)
    "grad_clip": None,
    "eval_at": [],  # epochs (1-based) after which the test split is also scored
    "limit_train_batches": None,  # int: batches per epoch (CPU smoke runs); None: all
    "limit_val_batches": None,
    "limit_test_batches": None,
    "stored_predictions": 4,  # test samples whose inputs, truth and prediction the run keeps (bench plot)
    "num_workers": 0,
    "accelerator": "auto",
    "devices": 1,
    "num_nodes": 1,
    "strategy": "auto",
    "precision": "32-true",
}

OPTIMIZERS = ("adam", "adamw")
# Lightning precisions a run may train in: fp32, bfloat16 autocast (CPU and GPU), float16 autocast with
# loss scaling (CUDA only: checked when the run starts). Metrics are always computed in float64 from an
# fp32 forward pass (`benchmark.scoring.evaluation`), whatever the training precision.
PRECISIONS = ("32-true", "bf16-mixed", "16-mixed")
# A profile's `precision: auto`, made concrete when the run is resolved (`resolve_precision`), so the run id
# and the record always name the precision the run trains in.
AUTO_PRECISION = "auto"
SCHEDULERS = ("cosine", "constant", "onecycle")


def _positive_number(value: Any) -> bool:
    return (number := real_number(value)) is not None and number > 0


def _non_negative_number(value: Any) -> bool:
    return (number := real_number(value)) is not None and number >= 0


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _epoch_list(value: Any) -> bool:
    return value is None or isinstance(value, list | tuple) and all(as_whole(e, 1) is not None for e in value)


_BATCHES = (lambda v: v is None or as_whole(v, 1) is not None, "null (all batches) or a whole number of at least 1")
# Per train key: a check of its value, and the valid form for the error message.
TRAIN_CHECKS: dict[str, tuple[Any, str]] = {
    "epochs": (lambda v: as_whole(v, 1) is not None, "a whole number of at least 1, e.g. 50"),
    "batch_size": (lambda v: as_whole(v, 1) is not None, "a whole number of at least 1, e.g. 16"),
    "lr": (_positive_number, "a positive number, e.g. 1.0e-3"),
    "optimizer": (lambda v: v in OPTIMIZERS, " or ".join(OPTIMIZERS)),
    "weight_decay": (_non_negative_number, "a number of at least 0, e.g. 0.01"),
    "scheduler": (lambda v: v in SCHEDULERS, ", ".join(SCHEDULERS[:-1]) + " or " + SCHEDULERS[-1]),
    "min_lr": (_non_negative_number, "a number of at least 0, e.g. 1.0e-6"),
    "warmup_steps": (lambda v: as_whole(v, 0) is not None, "a whole number of optimizer steps of at least 0"),
    "warmup_fraction": (lambda v: (f := real_number(v)) is not None and 0 < f < 1,
                        "a number strictly between 0 and 1, e.g. 0.3"),
    "grad_clip": (lambda v: v is None or _positive_number(v), "null (no clipping) or a positive number, e.g. 1.0"),
    "eval_at": (_epoch_list, "a list of epochs of at least 1, e.g. [10, 20] (on the command line --eval-at 10,20)"),
    "limit_train_batches": _BATCHES,
    "limit_val_batches": _BATCHES,
    "limit_test_batches": _BATCHES,
    "stored_predictions": (lambda v: as_whole(v, 0) is not None, "a whole number of at least 0 (0: none)"),
    "num_workers": (lambda v: as_whole(v, 0) is not None, "a whole number of at least 0"),
    "accelerator": (_text, "a Lightning accelerator name such as auto, cpu or gpu"),
    "devices": (lambda v: as_whole(v, 1) is not None, "a whole number of at least 1"),
    "num_nodes": (lambda v: as_whole(v, 1) is not None, "a whole number of at least 1"),
    "strategy": (_text, "a Lightning strategy name such as auto or ddp"),
    "precision": (lambda v: v in PRECISIONS or v == AUTO_PRECISION, ", ".join(PRECISIONS) + " or "
                  + AUTO_PRECISION + " (16-mixed on CUDA only; auto: bf16-mixed on a CPU with native bfloat16, "
                  "else 32-true)"),
}


def check_train(train: dict[str, Any], model: str, dataset: str) -> None:
    """A ConfigError naming the first `train` key whose value is not of its valid form (`TRAIN_CHECKS`)."""
    for key, (valid, form) in TRAIN_CHECKS.items():
        if key in train and not valid(train[key]):
            raise ConfigError(f"train.{key} = {train[key]!r} (for {model} on {dataset}) is not valid: it must be "
                              f"{form}. Fix it in the profile or with --set train.{key}=VALUE.")


# Keys that change where or how fast a run executes but not its result: left out of the run id.
EXECUTION_KEYS = {
    "train": {"num_workers", "accelerator", "devices", "num_nodes", "strategy", "stored_predictions"},
    "data": {"root"},
    # grad_checkpoint, dit_grad_checkpoint: recomputation instead of storage, same numbers, less memory;
    # ensemble_t/_steps: read only when a finished run is scored as an ensemble (`bench ensemble`), never in
    # training or the record's test
    "model": {"grad_checkpoint", "dit_grad_checkpoint", "ensemble_t", "ensemble_steps"},
}


@dataclass(frozen=True)
class RunConfig:
    """The fully resolved configuration of one run."""

    model: str
    dataset: str
    seed: int
    profile: str
    train: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    model_args: dict[str, Any] = field(default_factory=dict)

    @property
    def t_in(self) -> int:
        """Number of input frames."""
        return int(self.data["t_in"])

    @property
    def t_out(self) -> int:
        """Number of predicted frames."""
        return int(self.data["t_out"])

    def identity(self) -> dict[str, Any]:
        """What the run id hashes: everything that can change the run's results."""
        return {
            "model": self.model,
            "dataset": self.dataset,
            "seed": self.seed,
            "train": {k: v for k, v in self.train.items() if k not in EXECUTION_KEYS["train"]},
            "data": {k: v for k, v in self.data.items() if k not in EXECUTION_KEYS["data"]},
            "model_args": {k: v for k, v in self.model_args.items() if k not in EXECUTION_KEYS["model"]},
        }

    @property
    def run_id(self) -> str:
        """Readable, stable id: `<model>-<dataset>-s<seed>-<hash of identity()>`."""
        digest = hashlib.sha256(json.dumps(self.identity(), sort_keys=True, default=str).encode()).hexdigest()
        return f"{self.model}-{self.dataset.replace(':', '-')}-s{self.seed}-{digest[:10]}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (stored in the run record)."""
        return {
            "model": self.model,
            "dataset": self.dataset,
            "seed": self.seed,
            "profile": self.profile,
            "train": self.train,
            "data": self.data,
            "model_args": self.model_args,
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> RunConfig:
        """Inverse of `to_dict`."""
        return cls(
            model=values["model"],
            dataset=values["dataset"],
            seed=int(values["seed"]),
            profile=values["profile"],
            train=dict(values["train"]),
            data=dict(values["data"]),
            model_args=dict(values["model_args"]),
        )


def available_profiles() -> list[str]:
    """Names of the profiles shipped with the package."""
    return sorted(p.stem for p in PROFILE_DIR.glob("*.yaml"))


def load_profile(name_or_path: str) -> dict[str, Any]:
    """Read a shipped profile by name (`smoke`, `quick`, `paper`) or any YAML file by path."""
    path = Path(name_or_path)
    if not (path.suffix in {".yaml", ".yml"} and path.exists()):
        path = PROFILE_DIR / f"{name_or_path}.yaml"
    if not path.exists():
        raise UnknownNameError(
            f"Unknown profile {name_or_path!r}. Shipped profiles: {', '.join(available_profiles())}; "
            "or pass the path of your own YAML file with the same layout."
        )
    try:
        profile = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"The profile {path} is not valid YAML ({yaml_problem(error)}). Fix the file, or pass "
                          f"a shipped profile: {', '.join(available_profiles())}.") from None
    if not isinstance(profile, dict):
        raise ConfigError(f"The profile {path} must be a YAML mapping with train/data/datasets/models keys.")
    unknown = sorted(str(k) for k in profile if k not in PROFILE_KEYS and not str(k).startswith("x-"))
    if unknown:
        raise ConfigError(f"The profile {path} has unknown top-level key(s) {', '.join(unknown)}; a profile holds "
                          f"{', '.join(PROFILE_KEYS)} (and `x-...` keys for YAML anchors only): rename or remove "
                          f"{'it' if len(unknown) == 1 else 'them'}.")
    return {k: v for k, v in profile.items() if k in PROFILE_KEYS}


def yaml_problem(error: yaml.YAMLError) -> str:
    """A YAML parser error on one line: what is wrong and where (the parser's own text spans several)."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or " ".join(str(error).split())
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else problem


def deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Return `base` updated key by key with `update` (nested mappings merged, the rest replaced)."""
    merged = copy.deepcopy(base)
    for key, value in (update or {}).items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def parse_overrides(assignments: list[str]) -> dict[str, dict[str, Any]]:
    """Turn `["train.lr=1e-3", "model.num_hidden=[64,64]"]` into nested section dicts (YAML values)."""
    result: dict[str, dict[str, Any]] = {}
    for assignment in assignments:
        key, sep, raw = assignment.partition("=")
        section, dot, name = key.strip().partition(".")
        if not sep or not dot or section not in SECTIONS or not name:
            raise ConfigError(
                f"Cannot read the override {assignment!r}. Write it as section.key=value with section one "
                f"of {', '.join(SECTIONS)}, for example --set train.lr=5e-4 or --set model.hid_S=16."
            )
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            value = raw
        result.setdefault(section, {})[name] = value
    return result


def _layers(profile: dict[str, Any], model: str, dataset: str) -> list[tuple[str, dict[str, Any], bool]]:
    """The profile's layers for one run, lowest first: `(where, layer, shared by all datasets)`."""
    base_name = dataset.split(":")[0]
    dataset_keys = [base_name] + ([dataset] if dataset != base_name else [])
    top = {"train": profile.get("train", {}), "data": profile.get("data", {})}
    layers = [("in the profile's top-level sections", top, True)]
    datasets = profile.get("datasets", {}) or {}
    layers += [(f"in the profile's `datasets: {k}` entry", datasets[k] or {}, False)
               for k in dataset_keys if k in datasets]
    model_entry = (profile.get("models", {}) or {}).get(model, {}) or {}
    model_layer = {k: v for k, v in model_entry.items() if k != "datasets"}
    layers.append((f"in the profile's `models: {model}` entry", model_layer, True))
    model_datasets = model_entry.get("datasets", {}) or {}
    layers += [(f"in the profile's `models: {model}: datasets: {k}` entry", model_datasets[k] or {}, False)
               for k in dataset_keys if k in model_datasets]
    return layers


def _declared_data(layer: dict[str, Any], declared: type[DataSettings], dataset: str, where: str,
                   shared: bool) -> dict[str, Any]:
    """`layer` with only the data keys the dataset's settings class `declared` declares; an undeclared
    key is dropped when the layer is `shared`, refused otherwise."""
    data = layer.get("data") or {}
    if not isinstance(data, dict):
        raise ConfigError(f"The `data` section of {where} must be a mapping of keys to values, not {data!r}.")
    undeclared = set(data) - set(declared.keys())
    if undeclared and not shared:
        raise ConfigError(unknown_keys_message(undeclared, dataset, where, declared))
    return {**layer, "data": {k: v for k, v in data.items() if k not in undeclared}} if "data" in layer else layer


def resolve_run(
    profile_name: str,
    model: str,
    dataset: str,
    seed: int,
    overrides: dict[str, dict[str, Any]] | None = None,
    profile: dict[str, Any] | None = None,
) -> RunConfig:
    """Resolve the configuration of one run by the precedence in this module's docstring."""
    from benchmark.data.registry import get_dataset_spec
    from benchmark.registry import get_model_spec, unknown_model_keys_message

    profile = load_profile(profile_name) if profile is None else profile
    spec = get_model_spec(model)
    declared = get_dataset_spec(dataset.split(":")[0]).settings
    resolved: dict[str, Any] = {"train": dict(TRAIN_DEFAULTS), "data": {}, "model": spec.hyperparameter_defaults()}
    command_line = ("given on the command line", overrides or {}, False)
    for where, layer, shared in [*_layers(profile, model, dataset), command_line]:
        unknown = set(layer) - set(SECTIONS)
        if unknown:
            raise ConfigError(
                f"Profile {profile_name!r} has unknown section(s) {', '.join(sorted(unknown))} for "
                f"{model} on {dataset}; allowed: {', '.join(SECTIONS)}."
            )
        model_keys = layer.get("model") or {}
        if not isinstance(model_keys, dict):
            raise ConfigError(f"The `model` section of {where} must be a mapping of keys to values, not "
                              f"{model_keys!r}.")
        if set(model_keys) - set(spec.hyperparameter_defaults()):
            raise ConfigError(unknown_model_keys_message(set(model_keys) - set(spec.hyperparameter_defaults()),
                                                         spec, where))
        resolved = deep_merge(resolved, _declared_data(layer, declared, dataset, where, shared))
    unknown_train = set(resolved["train"]) - set(TRAIN_DEFAULTS)
    if unknown_train:
        raise ConfigError(
            f"Unknown training key(s) {', '.join(sorted(unknown_train))} for {model} on {dataset}. "
            f"Known keys: {', '.join(TRAIN_DEFAULTS)}."
        )
    for key in ("t_in", "t_out"):
        if not isinstance(resolved["data"].get(key), int) or resolved["data"][key] < 1:
            raise ConfigError(
                f"data.{key} must be a positive integer for {dataset} (got {resolved['data'].get(key)!r}); "
                f"set it in the profile or with --set data.{key}=12."
            )
    try:
        declared.from_config(resolved["data"], dataset)  # the dataset's own checks of the values
    except ConfigError as error:
        raise ConfigError(f"{dataset}: {error}") from None
    train = resolved["train"]
    check_train(train, model, dataset)
    train["precision"] = resolve_precision(train["precision"], train["accelerator"])
    train["eval_at"] = sorted({int(e) for e in train.get("eval_at") or []})
    if any(e < 1 or e > int(train["epochs"]) for e in train["eval_at"]):
        raise ConfigError(
            f"--eval-at epochs {train['eval_at']} must lie between 1 and the number of epochs ({train['epochs']})."
        )
    model_args = {k: _jsonable(v) for k, v in resolved["model"].items()}
    return RunConfig(model, dataset, int(seed), profile_name, train, resolved["data"], model_args)


def resolve_precision(precision: str, accelerator: str) -> str:
    """`auto` made concrete for this machine: bf16-mixed where the run trains on a CPU that computes
    bfloat16 natively, 32-true on a GPU and on other CPUs (no profile defaults to it since the equivalence
    test of issue 19 could not show bf16 equivalent for most models; README "Precision"). Other values are returned
    as they are. The machine is the one that resolves the run: a SLURM submission decides on the
    submitting host (pin the precision there with --set train.precision=...)."""
    if precision != AUTO_PRECISION:
        return precision
    from benchmark.run.hardware import cpu_bf16_native

    if accelerator == "auto":
        import torch

        on_cpu = not torch.cuda.is_available()
    else:
        on_cpu = accelerator == "cpu"
    return "bf16-mixed" if on_cpu and cpu_bf16_native() else "32-true"


def _jsonable(value: Any) -> Any:
    """Tuples become lists so that a config survives a JSON round trip unchanged."""
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    return value
