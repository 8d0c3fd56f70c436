"""A dataset's `data` settings: one frozen dataclass per dataset, defaults and validation in one place.

Each dataset subclasses `DataSettings` (the keys every dataset reads: `root`, `t_in`, `t_out`),
declares its keys as fields with their defaults and checks and normalizes their values in
`__post_init__`. `from_config` builds one from a run's `data` dict and refuses keys the class does
not declare; `benchmark.run.config.resolve_run` uses the same class to sort a profile's keys and to check
their values before any run starts.
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import MISSING, dataclass, fields
from typing import Any, TypeVar

from benchmark.core.errors import ConfigError

S = TypeVar("S", bound="DataSettings")


def as_whole(value: Any, minimum: int) -> int | None:
    """`value` as an int of at least `minimum`, or None: booleans and fractional values (1.5) are
    refused, integral floats (2.0) and whole-number text ("3") accepted."""
    try:
        number = int(value)
        valid = not isinstance(value, bool) and number == float(value) and number >= minimum
    except (TypeError, ValueError, OverflowError):
        return None
    return number if valid else None


def whole_number(value: Any, key: str, minimum: int, default: Any) -> int:
    """`value` as an int of at least `minimum` (see `as_whole`); a ConfigError naming `data.<key>` and its
    default otherwise."""
    number = as_whole(value, minimum)
    if number is None:
        raise ConfigError(f"data.{key} = {value!r} must be a whole number of at least {minimum} "
                          f"(default {default!r}).")
    return number


def real_number(value: Any, allow_infinite: bool = False) -> float | None:
    """`value` as a float (numbers, or text such as "1e-3" that YAML leaves a string); None for anything
    else, for NaN, and for infinity unless `allow_infinite`."""
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) or (allow_infinite and not math.isnan(number)) else None


def unknown_keys_message(unknown: Iterable[str], dataset: str, where: str, settings: type[DataSettings]) -> str:
    """One paragraph: which keys `dataset` does not read, where they were given, and the keys it reads."""
    unknown = sorted(unknown)
    valid = settings.keys()
    hints = [f"{key} -> {close[0]}" for key in unknown if (close := difflib.get_close_matches(key, valid, n=1))]
    hint = f" Did you mean {', '.join(hints)}?" if hints else ""
    plural = "s" if len(unknown) > 1 else ""
    return (f"Unknown data key{plural} {', '.join(unknown)} for dataset {dataset} ({where}).{hint} {dataset} reads "
            f"only these data keys: {settings.describe_keys()}. Fix the spelling or remove the key{plural}; a key "
            "that only some datasets read belongs in the profile's top-level `data:` section (ignored by the "
            "others) or in a `datasets: <name>:` entry.")


@dataclass(frozen=True)
class DataSettings:
    """The keys every dataset reads; subclasses add theirs (see each dataset module)."""

    root: str | None = None
    t_in: int = 1
    t_out: int = 1

    def __post_init__(self) -> None:
        self._set("root", str(self.root) if self.root not in (None, "") else None)
        self._set("t_in", self._whole("t_in", 1))
        self._set("t_out", self._whole("t_out", 1))

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        """The `data` keys this dataset reads, in declaration order."""
        return tuple(f.name for f in fields(cls))

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """Each key's default value."""
        return {f.name: f.default for f in fields(cls) if f.default is not MISSING}

    @classmethod
    def describe_keys(cls) -> str:
        """The keys with their defaults as YAML would write them: "root (default null), t_in (5), ..."."""
        items = [f"{key} ({json.dumps(value, default=list)})" for key, value in cls.defaults().items()]
        return ", ".join(items).replace(" (", " (default ", 1)

    @classmethod
    def from_config(cls: type[S], config: Mapping[str, Any], dataset: str = "this dataset") -> S:
        """Validated settings from a `data` dict (missing keys take their defaults; unknown keys are refused)."""
        unknown = set(config) - set(cls.keys())
        if unknown:
            raise ConfigError(unknown_keys_message(unknown, dataset, "given to its loader", cls))
        return cls(**config)

    def _set(self, key: str, value: Any) -> None:
        object.__setattr__(self, key, value)  # the dataclass is frozen; __post_init__ normalizes once

    def _whole(self, key: str, minimum: int) -> int:
        return whole_number(getattr(self, key), key, minimum, self.defaults()[key])

    def _optional_whole(self, key: str, minimum: int) -> int | None:
        return None if getattr(self, key) is None else self._whole(key, minimum)

    def _choice(self, key: str, choices: Mapping[str, str]) -> str:
        """The value of `key` when it is one of `choices` (value -> what it means); a ConfigError otherwise."""
        value = getattr(self, key)
        if value not in choices:
            options = "; ".join(f"{name!r}: {meaning}" for name, meaning in choices.items())
            raise ConfigError(f"data.{key} = {value!r} is not one of the choices ({options}).")
        return value
