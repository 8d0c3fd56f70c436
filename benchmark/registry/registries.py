"""One registry class for models and datasets (the idea of lm-evaluation-harness's registry).

A `Registry[T]` maps names to entries of one kind (a `ModelSpec`, a `DatasetSpec`). The modules
that define entries register them on import, so a registry fills itself on its first lookup:

1. the built-in modules it was created with are imported;
2. then the entry points of its group that installed packages declare (see `benchmark.registry.plugins`);
3. and at every lookup, the plugins of `DIFFUMA_BENCH_PLUGINS` not imported yet (`bench --plugin`).
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Sequence
from typing import Generic, TypeVar

from benchmark.core.errors import ConfigError, UnknownNameError
from benchmark.registry.plugins import load_entry_points, load_plugins

T = TypeVar("T")


class Registry(Generic[T]):
    """Named entries of one `kind`, loaded lazily from `modules`, an entry-point group and plugins.

    `list_hint` tells the user how to list the entries (`Run `bench models` to see them.`); it ends
    the message of an unknown name.
    """

    def __init__(self, kind: str, modules: Sequence[str], entry_point_group: str, list_hint: str) -> None:
        self.kind = kind
        self.modules = tuple(modules)
        self.entry_point_group = entry_point_group
        self.list_hint = list_hint
        self._entries: dict[str, T] = {}
        self._origins: dict[str, str] = {}
        self._loaded = False

    def register(self, name: str, entry: T, origin: str = "") -> None:
        """Add `entry` under `name`; registering an equal entry again changes nothing, another one is an error.

        `origin` (the defining module) names both sides of a clash.
        """
        if name in self._entries and self._entries[name] != entry:
            first = self._origins.get(name) or "another module"
            raise ConfigError(
                f"The {self.kind} name {name!r} is registered twice: by {first} and by {origin or 'another module'}. "
                f"Give one of them another name."
            )
        self._entries[name] = entry
        self._origins.setdefault(name, origin)

    def load(self) -> None:
        """Import the built-in modules and entry points once, and any plugin added since the last call."""
        if not self._loaded:
            for module in self.modules:
                importlib.import_module(module)
            load_entry_points(self.entry_point_group)
            self._loaded = True
        load_plugins()

    def names(self) -> list[str]:
        """The registered names, in registration order."""
        self.load()
        return list(self._entries)

    def entries(self) -> list[T]:
        """The registered entries, in registration order."""
        self.load()
        return list(self._entries.values())

    def get(self, name: str) -> T:
        """The entry registered under `name`; an `UnknownNameError` naming the close matches otherwise."""
        self.load()
        if name not in self._entries:
            raise UnknownNameError(self._unknown(name))
        return self._entries[name]

    def __contains__(self, name: object) -> bool:
        self.load()
        return name in self._entries

    def _unknown(self, name: str) -> str:
        close = difflib.get_close_matches(name, list(self._entries), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        return (
            f"Unknown {self.kind} {name!r}.{hint} Registered {self.kind}s: {', '.join(self._entries)}. "
            f"{self.list_hint} A {self.kind} of your own is added with --plugin FILE_OR_MODULE "
            "or a package's entry point."
        )
