"""Peak memory of one epoch over CHDL frames streamed from disk: a one-off measurement, kept to be reproducible.

    from benchmark.data.chdl_memory import measure_epoch_memory
    print(measure_epoch_memory("/tmp/chdl-full"))   # 200 generated 600 x 800 sequences

Linux only for the peak figure (it reads VmHWM from /proc/self/status, reset before loading).
"""

from __future__ import annotations

import resource
import time
from pathlib import Path
from typing import Any

from torch.utils.data import DataLoader

from benchmark.data.chdl import ChdlSettings, load_chdl_from_root
from benchmark.data.synthetic_chdl import SyntheticChdlSettings, generate_synthetic_chdl

STATUS = Path("/proc/self/status")


def _status_mib(field: str) -> float | None:
    try:
        lines = STATUS.read_text().splitlines()
    except OSError:  # no /proc (not Linux)
        return None
    return next((int(line.split()[1]) / 1024 for line in lines if line.startswith(field + ":")), None)  # kB


def current_rss_mib() -> float | None:
    """Resident memory of this process now, MiB (None where /proc is missing)."""
    return _status_mib("VmRSS")


def peak_rss_mib() -> float:
    """Peak resident memory of this process since start (or since `reset_peak_rss`), MiB."""
    peak = _status_mib("VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark to the current RSS (Linux >= 4.0); False when not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def folder_size_mib(folder: str | Path) -> float:
    """Total size of the files under `folder`, MiB."""
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file()) / 2**20


def measure_epoch_memory(folder: str | Path, sequences: int = 200, height: int = 600, width: int = 800,
                         test_sequences: int = 20, cache_limit_mb: float = 1024, seed: int = 0) -> dict[str, Any]:
    """Generate `sequences` synthetic CHDL sequences into `folder` (once), load them with the CHDL
    loader (5 -> 1) and iterate a DataLoader (batch 1) over every item of the three splits.

    Returns the on-disk size, the size the used frames would take decoded in memory, the RSS before
    loading and the peak RSS of loading plus the epoch (MiB), the item count and the time taken.
    """
    params = SyntheticChdlSettings(height=height, width=width, train_sequences=sequences - test_sequences,
                                   test_sequences=test_sequences, seed_data=seed).generation_params()
    generate_synthetic_chdl(folder, params)
    before = current_rss_mib()
    reset = reset_peak_rss()
    start = time.perf_counter()
    data = load_chdl_from_root(Path(folder), ChdlSettings(cache_limit_mb=cache_limit_mb))
    items = 0
    for split in (data.train, data.val, data.test):
        for x, _ in DataLoader(split, batch_size=1):
            items += len(x)
    return {
        "sequences": sequences,
        "frame_size": [height, width],
        "items": items,
        "disk_mib": round(folder_size_mib(folder), 1),
        "decoded_mib_if_held": round(sum(s.decoded_mib() for s in (data.train, data.val, data.test)), 1),
        "cached": data.info["cached"],
        "rss_before_mib": before,
        "peak_rss_mib": round(peak_rss_mib(), 1),
        "peak_measured_from_load_only": reset,
        "seconds": round(time.perf_counter() - start, 1),
    }
