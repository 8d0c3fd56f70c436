"""Score a model on a data split: streaming metrics plus inference throughput."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from benchmark.data.base import Normalizer
from benchmark.errors import BenchError
from benchmark.metrics import MetricAccumulator

PER_SAMPLE_NAME = "per_sample.npz"
PER_SAMPLE_ARRAYS = ("mse", "mae", "ssim", "sample_index")


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    loader: DataLoader,
    normalizer: Normalizer,
    lat: np.ndarray | None,
    device: torch.device | str = "cpu",
    limit_batches: int | None = None,
    model_name: str = "model",
    per_sample_out: dict[str, np.ndarray] | None = None,
) -> tuple[dict[str, Any], dict[str, float]]:
    """Metrics of `model` over `loader` (normalized and physical space) and its inference timing.

    The timing counts only the model's forward passes (not data loading or scoring). A dict passed
    as `per_sample_out` is filled with the normalized-space per-(sample, lead) MSE, MAE and SSIM and
    the samples' positions in the loader's order (`MetricAccumulator.per_sample`).
    """
    device = torch.device(device)
    was_training = model.training
    model.eval()
    accumulator: MetricAccumulator | None = None
    forward_seconds, samples = 0.0, 0
    try:
        for index, (x, y) in enumerate(loader):
            if limit_batches is not None and index >= limit_batches:
                break
            x, y = x.to(device), y.to(device)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            y_hat = model(x)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            forward_seconds += time.perf_counter() - start
            samples += x.shape[0]
            if y_hat.shape != y.shape:
                raise BenchError(
                    f"{model_name} returned predictions of shape {tuple(y_hat.shape)} for targets of shape "
                    f"{tuple(y.shape)}; a model must map (B, T_in, C, H, W) to (B, T_out, C, H, W)."
                )
            if accumulator is None:
                accumulator = MetricAccumulator(y.shape[1], normalizer, lat=lat,
                                                keep_samples=per_sample_out is not None)
            try:
                accumulator.update(y_hat.float(), y.float())
            except ValueError as error:
                raise BenchError(
                    f"Scoring {model_name} failed: {error}. If the predictions are not finite, training "
                    "diverged: lower the learning rate (--set train.lr=...) or enable gradient clipping "
                    "(--set train.grad_clip=1.0)."
                ) from None
    finally:
        model.train(was_training)
    if accumulator is None:
        raise BenchError(f"The evaluation split for {model_name} is empty: no window fits in it.")
    timing = {
        "inference_seconds": forward_seconds,
        "inference_samples": samples,
        "inference_samples_per_second": samples / forward_seconds if forward_seconds > 0 else float("inf"),
    }
    if per_sample_out is not None:
        per_sample_out.update(accumulator.per_sample())
    return accumulator.compute(), timing


def eval_at_per_sample_name(epoch: int) -> str:
    """The run folder's file of the per-sample errors scored after `epoch` (`train.eval_at`)."""
    return f"per_sample_epoch{int(epoch)}.npz"


def write_per_sample(run_dir: Path, per_sample: dict[str, np.ndarray], name: str = PER_SAMPLE_NAME) -> str:
    """Store per-sample errors as `run_dir/<name>` (default `per_sample.npz`) atomically (temp file +
    os.replace): `mse`, `mae`, `ssim` float32 of shape (N, T_out) and `sample_index` int64 of shape (N,).
    Returns the file name relative to the run folder."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    arrays = {name: np.asarray(per_sample[name], dtype=np.float32) for name in ("mse", "mae", "ssim")}
    arrays["sample_index"] = np.asarray(per_sample["sample_index"], dtype=np.int64)
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=run_dir)
    try:
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, **arrays)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, run_dir / name)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return name


def read_per_sample(path: Path) -> dict[str, np.ndarray]:
    """The arrays `write_per_sample` stored, with a clear error if the file is missing or incomplete."""
    try:
        with np.load(Path(path)) as stored:
            arrays = {name: stored[name] for name in PER_SAMPLE_ARRAYS}
    except (OSError, KeyError, ValueError) as error:
        raise BenchError(f"The per-sample errors {path} cannot be read ({error}). Re-run that run.") from None
    return arrays
