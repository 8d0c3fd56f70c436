"""Dataset registry: name (and task) -> loader returning a `ForecastData`.

A loader is registered with

    @register_dataset("weatherbench", summary="...", tasks=("t2m", "tcc", "r", "uv10"),
                      default_tasks=("t2m", "tcc", "r", "uv10"))
    def load_weatherbench(task: str | None, config: dict) -> ForecastData: ...

`config` is the resolved `data` section of a run's configuration (t_in, t_out, root, years,
strides, ...). A dataset with tasks is addressed as `name:task`; the bare name means its
`default_tasks`. Datasets from outside the repository register the same way, from a plugin
(`bench --plugin`) or an installed package's entry point in the group `diffuma_bench.datasets`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from benchmark.core.errors import UnknownNameError
from benchmark.data.base import ForecastData
from benchmark.data.settings import DataSettings
from benchmark.registry.registries import Registry

DATASET_MODULES = (
    "benchmark.data.weatherbench",
    "benchmark.data.synthetic_weather",
    "benchmark.data.chdl",
    "benchmark.data.synthetic_chdl",
)


@dataclass(frozen=True)
class DatasetSpec:
    """A registered dataset: its loader, its tasks, a one-line summary and its `data` settings class."""

    name: str
    loader: Callable[[str | None, dict[str, Any]], ForecastData]
    summary: str
    tasks: tuple[str, ...] = ()
    default_tasks: tuple[str, ...] = ()
    settings: type[DataSettings] = DataSettings  # the data keys it reads (others are refused)


DATASETS: Registry[DatasetSpec] = Registry(
    "dataset", DATASET_MODULES, "diffuma_bench.datasets", "Run `bench datasets` to list them with their tasks."
)


def register_dataset(
    name: str, *, summary: str, tasks: tuple[str, ...] = (), default_tasks: tuple[str, ...] = (),
    settings: type[DataSettings] = DataSettings,
) -> Callable[[Callable[..., ForecastData]], Callable[..., ForecastData]]:
    """Decorator registering `loader(task, config) -> ForecastData` under `name`; `settings` declares
    (and validates) the `data` keys the loader reads."""

    def decorate(loader: Callable[..., ForecastData]) -> Callable[..., ForecastData]:
        spec = DatasetSpec(name, loader, summary, tuple(tasks), tuple(default_tasks or tasks), settings)
        DATASETS.register(name, spec, origin=loader.__module__)
        return loader

    return decorate


def list_datasets() -> list[DatasetSpec]:
    """All registered datasets."""
    return DATASETS.entries()


def get_dataset_spec(name: str) -> DatasetSpec:
    """The spec registered under `name` (without task); a clear error otherwise."""
    return DATASETS.get(name)


def split_dataset_name(full_name: str) -> tuple[str, str | None]:
    """`"weatherbench:t2m"` -> `("weatherbench", "t2m")`, validating both parts."""
    name, _, task = full_name.partition(":")
    spec = get_dataset_spec(name.strip())
    task = task.strip() or None
    if task is not None and task not in spec.tasks:
        fix = (f"Its tasks are: {', '.join(spec.tasks)}. Pass {spec.name}:TASK with one of them, or the bare name "
               f"{spec.name} for its default tasks." if spec.tasks else f"It has none: pass the bare name {spec.name}.")
        raise UnknownNameError(f"Dataset {spec.name!r} has no task {task!r}. {fix}")
    if task is None and spec.tasks and len(spec.default_tasks) == 1:
        task = spec.default_tasks[0]
    return spec.name, task


def resolve_dataset_names(selection: str) -> list[str]:
    """Expand a `--dataset` value into `name[:task]` entries (a bare name -> its default tasks)."""
    resolved: list[str] = []
    for item in (s.strip() for s in selection.split(",")):
        if not item:
            continue
        name, _, task = item.partition(":")
        spec = get_dataset_spec(name)
        if task:
            split_dataset_name(item)
            resolved.append(item)
        elif spec.tasks:
            resolved.extend(f"{spec.name}:{t}" for t in spec.default_tasks)
        else:
            resolved.append(spec.name)
    return list(dict.fromkeys(resolved))


def load_dataset(full_name: str, config: dict[str, Any]) -> ForecastData:
    """Load `name[:task]` with the resolved `data` configuration."""
    name, task = split_dataset_name(full_name)
    return get_dataset_spec(name).loader(task, dict(config))
