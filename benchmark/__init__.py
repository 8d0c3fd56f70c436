"""diffuma-bench: a reproducible benchmark for spatio-temporal prediction models.

The package is laid out by stage (README, "Layout"): `cli`, `registry`, `data`, `run`, `scoring`, `results`,
`analysis`, `present` (`core`: what every stage uses). One import from before that layout stays public because
plugins written against it import it: `benchmark.model_api`, which is `benchmark.registry.model_api` (the same
module object, imported only when asked for, so `bench --help` still imports no torch).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
from types import ModuleType

__version__ = "0.1.0"

PUBLIC_ALIASES = {"benchmark.model_api": "benchmark.registry.model_api"}


class _PublicAlias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports an old public module name as the module it now is (one object under both names)."""

    def find_spec(self, name: str, path: object = None, target: object = None) -> importlib.machinery.ModuleSpec | None:
        """A spec for the names in `PUBLIC_ALIASES`, none for any other."""
        if name not in PUBLIC_ALIASES:
            return None
        return importlib.machinery.ModuleSpec(name, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        """The module under its new name (imported now if it was not)."""
        module = importlib.import_module(PUBLIC_ALIASES[spec.name])
        self._own_spec = module.__spec__  # the import machinery sets __spec__ to the alias's; exec_module restores it
        return module

    def exec_module(self, module: ModuleType) -> None:
        """Nothing to run: the module ran under its own name."""
        module.__spec__ = self._own_spec


if not any(isinstance(finder, _PublicAlias) for finder in sys.meta_path):
    sys.meta_path.insert(0, _PublicAlias())  # first: the alias is what the name means, whatever else is installed
