"""Models and datasets from outside this repository: entry points, plugin files and modules.

Two ways in, both under the same contract as the built-in entries:

* an installed package declares entry points in the group `diffuma_bench.models` or
  `diffuma_bench.datasets`, each naming a module that calls `register_model` /
  `register_dataset` when imported (in `pyproject.toml`:
  `[project.entry-points."diffuma_bench.models"] my-models = "my_package.models"`);
* `bench --plugin FILE_OR_MODULE` names a `.py` file or an importable module that registers on
  import. The CLI records the plugins in the environment variable `DIFFUMA_BENCH_PLUGINS`
  (separated by `os.pathsep`), which the registries read at every lookup, so the worker processes
  of `bench run --jobs N` (and jobs submitted elsewhere with the same environment) load them too.

A plugin that cannot be loaded is a `PluginError` naming it and saying what went wrong.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import os
import re
import sys
import traceback
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType

from benchmark.core.errors import ConfigError

PLUGINS_ENV = "DIFFUMA_BENCH_PLUGINS"
_PACKAGE_DIR = str(Path(__file__).resolve().parents[1])
_loaded: set[str] = set()


class PluginError(ConfigError):
    """A plugin (entry point, file or module) that cannot be loaded."""


def plugin_names() -> list[str]:
    """The plugins named in `DIFFUMA_BENCH_PLUGINS`, in order."""
    raw = os.environ.get(PLUGINS_ENV, "")
    return [p.strip() for p in raw.split(os.pathsep) if p.strip()]


def use_plugins(plugins: Iterable[str]) -> None:
    """Add `plugins` (`.py` files or module names) to `DIFFUMA_BENCH_PLUGINS`.

    Files are stored as absolute paths, so that processes started elsewhere find them. They are
    imported at the next registry lookup, in this process and in the processes it spawns.
    """
    names = plugin_names()
    for plugin in plugins:
        normalized = _normalize(plugin)
        if normalized not in names:
            names.append(normalized)
    os.environ[PLUGINS_ENV] = os.pathsep.join(names)


def _normalize(plugin: str) -> str:
    plugin = plugin.strip()
    path = Path(plugin).expanduser()
    if _looks_like_file(plugin):
        if not path.is_file():
            raise PluginError(f"The plugin file {plugin} does not exist. --plugin takes a .py file or an "
                              "importable module name (such as my_package.models).")
        return str(path.resolve())
    if not re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", plugin):
        raise PluginError(f"--plugin {plugin!r} is neither a .py file nor a module name such as my_package.models.")
    return plugin


def _looks_like_file(plugin: str) -> bool:
    return plugin.endswith(".py") or os.sep in plugin or "/" in plugin or Path(plugin).is_file()


def load_plugins() -> None:
    """Import every plugin of `DIFFUMA_BENCH_PLUGINS` not imported yet (cheap when there is none)."""
    for plugin in plugin_names():
        if plugin in _loaded:
            continue
        _loaded.add(plugin)  # before the import: a plugin that looks up the registry must not re-enter
        try:
            _import_plugin(plugin)
        except BaseException:
            _loaded.discard(plugin)  # so that the next lookup reports it again instead of going on without it
            raise


def _import_plugin(plugin: str) -> ModuleType:
    try:
        if _looks_like_file(plugin):
            return _import_file(Path(plugin))
        return importlib.import_module(plugin)
    except PluginError:
        raise
    except ModuleNotFoundError as error:
        missing_itself = error.name == plugin or plugin.startswith(f"{error.name}.")
        if missing_itself and not _looks_like_file(plugin):
            raise PluginError(f"The plugin module {plugin} cannot be imported: no module named {error.name!r}. "
                              "Pass the path of a .py file instead, or put the module's folder on "
                              "PYTHONPATH.") from error
        raise _failed(plugin, error) from error
    except Exception as error:
        raise _failed(plugin, error) from error


def _failed(plugin: str, error: BaseException) -> PluginError:
    return PluginError(f"The plugin {plugin} failed to load: {describe_error(error)} Fix it, or leave it out "
                       f"(--plugin, ${PLUGINS_ENV}).")


def _import_file(path: Path) -> ModuleType:
    if not path.is_file():
        raise PluginError(f"The plugin file {path} does not exist (it is named in ${PLUGINS_ENV}).")
    name = _module_name(path)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise PluginError(f"The plugin file {path} cannot be imported as a Python module (is it a .py file?).")
    module = importlib.util.module_from_spec(spec)
    # In sys.modules while it runs, like any import: dataclasses and pickling look the module up there.
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def _module_name(path: Path) -> str:
    """`bench_plugin_<stem>`, with a hash of the path when another file of that stem is loaded already."""
    stem = re.sub(r"\W", "_", path.stem)
    name = f"bench_plugin_{stem}"
    existing = sys.modules.get(name)
    if existing is not None and getattr(existing, "__file__", None) != str(path):
        name += "_" + hashlib.sha1(str(path).encode()).hexdigest()[:8]
    return name


def load_entry_points(group: str) -> None:
    """Import the modules that installed packages declare in the entry-point `group`."""
    for entry_point in importlib.metadata.entry_points(group=group):
        try:
            entry_point.load()
        except Exception as error:
            dist = getattr(entry_point, "dist", None)
            package = f" of the installed package {dist.name} {dist.version}" if dist is not None else ""
            raise PluginError(
                f"The plugin entry point {entry_point.name} = {entry_point.value} (group {group}{package}) "
                f"failed to load: {describe_error(error)} Fix that package or uninstall it."
            ) from error


def describe_error(error: BaseException, skip: tuple[str, ...] = ()) -> str:
    """`Type: message (at file:line)`, at the deepest frame outside this benchmark's code and the `skip` folders."""
    text = f"{type(error).__name__}: {error}".rstrip(".") + "."
    skipped = ("<", _PACKAGE_DIR, *skip)
    frames = [f for f in traceback.extract_tb(error.__traceback__)
              if not f.filename.startswith(skipped) and "importlib" not in f.filename]
    if frames and not isinstance(error, SyntaxError):  # a SyntaxError names its own line
        text += f" (at {frames[-1].filename}:{frames[-1].lineno})"
    return text
