"""Atomic file writes: readers see the old file or the new one, never half of one.

The bytes go to a temporary file in the same folder, are flushed to disk, and the file is renamed
over the target (`os.replace`, atomic on POSIX and Windows). A crash leaves at most a hidden
`.<name>.*.tmp` beside the target, which `remove_stale_temporaries` clears. The file gets the
permissions an ordinary `open(path, "w")` would give (mkstemp's are owner-only), so that results
written on a shared cluster stay readable by the group.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

__all__ = ["atomic_write", "remove_stale_temporaries", "write_text_atomic"]


def _default_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Create or replace `path` with what `write(handle)` writes into a binary file handle."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, _default_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    """Create or replace `path` with `text` (UTF-8), atomically."""
    atomic_write(path, lambda handle: handle.write(text.encode("utf-8")))


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Delete the temporary files that interrupted `atomic_write`s left in `folder`; the paths removed."""
    removed = []
    for stale in Path(folder).glob(".*.tmp"):
        if stale.is_file():
            stale.unlink(missing_ok=True)
            removed.append(stale)
    return removed
