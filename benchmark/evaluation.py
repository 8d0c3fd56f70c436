"""Score a model on a data split: streaming metrics plus inference throughput."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from benchmark.data.base import Normalizer
from benchmark.errors import BenchError
from benchmark.metrics import MetricAccumulator


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    loader: DataLoader,
    normalizer: Normalizer,
    lat: np.ndarray | None,
    device: torch.device | str = "cpu",
    limit_batches: int | None = None,
    model_name: str = "model",
) -> tuple[dict[str, Any], dict[str, float]]:
    """Metrics of `model` over `loader` (normalized and physical space) and its inference timing.

    The timing counts only the model's forward passes (not data loading or scoring).
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
                accumulator = MetricAccumulator(y.shape[1], normalizer, lat=lat)
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
    return accumulator.compute(), timing
