"""Where datasets live on disk: the data root variable, and the cache of generated datasets."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

ROOT_ENV = "DIFFUMA_BENCH_DATA"  # the folder holding the real datasets (weatherbench/, chdl/)
CACHE_ENV = "DIFFUMA_BENCH_CACHE"


def cache_folder(dataset: str, params: dict[str, Any]) -> Path:
    """`$DIFFUMA_BENCH_CACHE/<dataset>/<hash of params>` (the cache defaults to `~/.cache/diffuma-bench`)."""
    digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:12]
    base = Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "diffuma-bench").expanduser()
    return base / dataset / digest
