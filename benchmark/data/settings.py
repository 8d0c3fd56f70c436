"""Validation of the numbers a dataset's `data` configuration holds."""

from __future__ import annotations

from typing import Any

from benchmark.errors import ConfigError


def whole_number(value: Any, key: str, minimum: int, default: Any) -> int:
    """`value` as an int of at least `minimum`; a ConfigError naming `data.<key>` and its default otherwise.

    Booleans and fractional values (1.5) are refused; integral floats (2.0) are accepted.
    """
    try:
        number = int(value)
        valid = not isinstance(value, bool) and number == float(value) and number >= minimum
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise ConfigError(f"data.{key} = {value!r} must be a whole number of at least {minimum} "
                          f"(default {default!r}).")
    return number
