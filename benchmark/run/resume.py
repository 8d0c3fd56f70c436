"""What makes a resumed run train exactly like one never interrupted, and the log of its attempts.

A run resumes from the checkpoint Lightning saves at the end of each epoch (`last.ckpt`). For the
epochs after it to repeat those of an uninterrupted run bit for bit (same machine, same thread
count), three things must continue where they were:

- the weights, optimizer, schedulers and loop counters: Lightning's checkpoint;
- every random generator the training draws from (torch's CPU and CUDA generators, numpy's and
  Python's: diffusion noise, scheduled-sampling masks, dropout): `RandomState`, a callback whose
  state (saved into each checkpoint, at the same moment as the weights) is the generators' states;
- the order of the training windows: `EpochShuffleSampler` draws each epoch's permutation from a
  generator seeded by (run seed, epoch), so epoch e sees the same order however it was reached
  (a DataLoader's own `shuffle=True` generator continues from where it was created instead).

`AttemptLog` keeps `attempts.json` in the run folder: one entry per attempt (started_at, the
epoch it resumed from, the last checkpoint's time and training seconds, ended_at when it ended),
rewritten atomically at the start, after every checkpoint and at the end, so a killed attempt
keeps what it did up to its last checkpoint. The record stores the list.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback
from torch.utils.data import Sampler

from benchmark.results.records import now, write_json_atomic

ATTEMPTS_NAME = "attempts.json"


class EpochShuffleSampler(Sampler[int]):
    """A random permutation of `n` indices per epoch, a function of (seed, epoch) alone.

    Lightning calls `set_epoch` before every training epoch (as for its distributed sampler).
    """

    def __init__(self, n: int, seed: int) -> None:
        self.n = int(n)
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Use the permutation of `epoch` (0-based) on the next iteration."""
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return iter(torch.randperm(self.n, generator=generator).tolist())

    def __len__(self) -> int:
        return self.n


def capture_random_state() -> dict[str, Any]:
    """The states of torch's (CPU and, when present, CUDA), numpy's and Python's global generators."""
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(),
                             "python": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_random_state(state: dict[str, Any]) -> None:
    """Put back what `capture_random_state` returned (the CUDA part only where CUDA is in use)."""
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class RandomState(Callback):
    """Saves the global generators' states into every checkpoint and restores them on resume.

    Lightning asks callbacks for their `state_dict` while it writes a checkpoint, so the saved
    states are those of the moment the weights are saved (the end of validation); it calls
    `load_state_dict` while restoring, before the first resumed batch.
    """

    def state_dict(self) -> dict[str, Any]:
        """The generators' states now."""
        return capture_random_state()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the states saved with the checkpoint (a checkpoint without them changes nothing)."""
        if state_dict:
            restore_random_state(state_dict)


class AttemptLog(Callback):
    """One entry per attempt in `run_dir/attempts.json`, kept current at each checkpoint (module docstring)."""

    def __init__(self, run_dir: Path, resumed_from: str | None) -> None:
        self.path = Path(run_dir) / ATTEMPTS_NAME
        self.attempts = read_attempts(self.path)
        self.current: dict[str, Any] = {"started_at": now(), "resumed_from": resumed_from,
                                        "resumed_at_epoch": None, "checkpoint_at": None,
                                        "train_seconds": 0.0, "ended_at": None}
        self.attempts.append(self.current)
        self._start = time.perf_counter()
        self._writes = False  # only the first process of a multi-process run writes (set in `setup`)

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._writes = trainer.is_global_zero
        self._write()

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.current["resumed_from"] is not None:
            self.current["resumed_at_epoch"] = int(trainer.current_epoch)  # epochs already done
        self._write()

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule,
                           checkpoint: dict[str, Any]) -> None:
        self.current["checkpoint_at"] = now()
        self.current["train_seconds"] = time.perf_counter() - self._start
        self._write()

    def finish(self, train_seconds: float, epochs_done: int) -> list[dict[str, Any]]:
        """Close the current attempt after training (`epochs_done`: the trainer's epoch count); the whole
        list of attempts."""
        if self.current["resumed_from"] is not None and self.current["resumed_at_epoch"] is None:
            self.current["resumed_at_epoch"] = int(epochs_done)  # resumed after the last epoch: nothing to train
        self.current["train_seconds"] = float(train_seconds)
        self.current["ended_at"] = now()
        self._write()
        return [dict(a) for a in self.attempts]

    def _write(self) -> None:
        if self._writes:
            write_json_atomic(self.path, {"attempts": self.attempts})


def read_attempts(path: Path) -> list[dict[str, Any]]:
    """The attempts logged so far; [] for a missing or unreadable file (it is only a log)."""
    try:
        values = json.loads(Path(path).read_text())
        return [dict(a) for a in values["attempts"]]
    except (OSError, ValueError, KeyError, TypeError):
        return []
