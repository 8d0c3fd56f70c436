"""The data shape every model is built from."""

from __future__ import annotations

from typing import NamedTuple


class DataShape(NamedTuple):
    """Shape of one sample: `T_in` input frames of `(C, H, W)` -> `T_out` output frames."""

    t_in: int
    t_out: int
    channels: int
    height: int
    width: int

    @classmethod
    def parse(cls, text: str) -> DataShape:
        """Parse `"T_in,C,H,W"` (T_out = T_in) or `"T_in,T_out,C,H,W"`."""
        from benchmark.core.errors import ConfigError

        try:
            parts = [int(p) for p in text.replace("x", ",").split(",") if p.strip()]
        except ValueError:
            parts = []
        if len(parts) == 4:
            t_in, c, h, w = parts
            return cls(t_in, t_in, c, h, w)
        if len(parts) == 5:
            return cls(*parts)
        raise ConfigError(
            f"Cannot read the shape {text!r}. Give it as T_in,C,H,W (for example 12,1,32,64) "
            "or T_in,T_out,C,H,W (for example 5,1,1,600,800)."
        )
