"""Units of a WeatherBench 2 store's variables, converted to the units WeatherBench 1 files use.

A store's `units` attribute is matched against known spellings (K, degC, fraction, %, m/s, km/h);
`unit_conversion` gives the `(scale, offset)` that takes the store's values to WB1 units.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from benchmark.core.errors import DataError
from benchmark.data.wb1_files import VARIABLES

_UNIT_ALIASES = {
    "K": {"k", "kelvin", "degk", "deg_k", "degreesk"},
    "degC": {"degc", "deg_c", "°c", "c", "celsius", "degreesc", "degreescelsius", "degree_celsius"},
    "fraction": {"1", "(0-1)", "0-1", "fraction", "dimensionless", "-"},
    "%": {"%", "percent", "pct"},
    "m/s": {"ms**-1", "ms-1", "ms^-1", "m/s", "m.s-1", "meterspersecond", "metrespersecond"},
    "km/h": {"km/h", "kmh-1", "kmh**-1", "kph"},
}
# (from, to) -> (scale, offset): value_to = value_from * scale + offset
_CONVERSIONS = {
    ("degC", "K"): (1.0, 273.15),
    ("fraction", "%"): (100.0, 0.0),
    ("%", "fraction"): (0.01, 0.0),
    ("km/h", "m/s"): (1 / 3.6, 0.0),
}


def _canonical_unit(units: str) -> str | None:
    key = units.strip().lower().replace(" ", "")
    return next((name for name, aliases in _UNIT_ALIASES.items() if key in aliases), None)


def unit_conversion(name: str, units: str | None) -> tuple[float, float]:
    """`(scale, offset)` taking variable `name` from the store's `units` to WB1 units (identity when
    `units` is empty: the values are taken to be in WB1 units); DataError for units it cannot convert."""
    if not units:
        return 1.0, 0.0
    target = VARIABLES[name].units
    source_unit, target_unit = _canonical_unit(units), _canonical_unit(target)
    if source_unit == target_unit:
        return 1.0, 0.0
    if (source_unit, target_unit) not in _CONVERSIONS:
        raise DataError(
            f"The store gives {name} in units {units!r}, which cannot be converted to WeatherBench's "
            f"{target!r}. Convertible units: K or degC; (0 - 1) or %; m s**-1 or km/h."
        )
    return _CONVERSIONS[(source_unit, target_unit)]


def guess_fraction_units(name: str, array: xr.DataArray, store: str) -> str:
    """Units of a `tcc` or `r` array that has no `units` attribute, judged from its first time step:
    "1" (a fraction) when no value exceeds 2 (supersaturation keeps a fraction a little above 1),
    "%" otherwise; "" (WB1 units assumed) for other variables."""
    if name not in ("tcc", "r"):
        return ""
    try:
        first = np.asarray(array.isel(time=0).values)
    except Exception as err:  # network and decoding errors of many types
        raise DataError(f"Reading {array.name} from {store} failed ({type(err).__name__}: {err}).") from err
    return "1" if np.nanmax(first) <= 2 else "%"
