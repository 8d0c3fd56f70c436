"""Score a model on a data split: streaming metrics plus inference throughput."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from benchmark.core.atomic import atomic_write
from benchmark.core.errors import BenchError
from benchmark.data.base import Normalizer
from benchmark.registry.model_api import forecast
from benchmark.scoring.metrics import MetricAccumulator

PER_SAMPLE_NAME = "per_sample.npz"
PER_SAMPLE_ARRAYS = ("mse", "mae", "ssim", "sample_index")
PREDICTIONS_NAME = "predictions.npz"
PREDICTION_ARRAYS = ("inputs", "truth", "prediction", "sample_index")
SPECTRA_NAME = "spectra.npz"
SPECTRA_ARRAYS = ("wavenumber", "pred", "true", "kind")
PREDICTION_SEED = 0  # which test samples are stored: the same for every model and seed of a dataset


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
    keep: np.ndarray | None = None,
    kept_out: dict[str, np.ndarray] | None = None,
    climatology: Callable[[np.ndarray], torch.Tensor] | None = None,
    components_out: dict[str, dict[str, Any]] | None = None,
) -> tuple[dict[str, Any], dict[str, float]]:
    """Metrics of `model` over `loader` (normalized and physical space) and its inference timing.

    The timing counts only the model's forward passes (not data loading or scoring). A dict passed
    as `per_sample_out` is filled with the normalized-space per-(sample, lead) MSE, MAE and SSIM and
    the samples' positions in the loader's order (`MetricAccumulator.per_sample`). With `keep`
    (positions in the loader's order) and `kept_out`, those samples' normalized inputs, truths and
    predictions go into `kept_out` (`inputs`, `truth`, `prediction`, `sample_index`), the spectra of
    the whole split into `kept_out["spectra"]`. `climatology` (positions in the loader's order ->
    normalized `(B, T_out, C, H, W)`, e.g. `benchmark.data.climatology.TargetClimatology`) adds ACC and
    is what a model with `uses_climatology` forecasts from. A dict passed as `components_out` gets, by
    name, the metrics of each part forecast of `model.forecast_components` (a `ForecastModel` method;
    none for other modules), scored like the forecast; the forward passes are then that method's.
    """
    wanted = set() if keep is None else {int(i) for i in keep}
    kept: dict[str, list[np.ndarray]] = {"inputs": [], "truth": [], "prediction": [], "sample_index": []}
    device = torch.device(device)
    was_training = model.training
    model.eval()
    accumulator: MetricAccumulator | None = None
    part_accumulators: dict[str, MetricAccumulator] = {}
    with_parts = (components_out is not None and hasattr(model, "forecast_components")
                  and not getattr(model, "uses_climatology", False))
    forward_seconds, samples = 0.0, 0
    try:
        for index, (x, y) in enumerate(loader):
            if limit_batches is not None and index >= limit_batches:
                break
            x, y = x.to(device), y.to(device)
            climate = None if climatology is None else climatology(np.arange(samples, samples + x.shape[0])).to(device)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            try:
                y_hat, parts = model.forecast_components(x) if with_parts else (forecast(model, x, climate), {})
            except ValueError as error:
                if climatology is not None or not getattr(model, "uses_climatology", False):
                    raise
                raise BenchError(f"{model_name} cannot be scored here: {error}.") from None
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            forward_seconds += time.perf_counter() - start
            samples += x.shape[0]
            if y_hat.shape != y.shape:
                raise BenchError(
                    f"{model_name} returned predictions of shape {tuple(y_hat.shape)} for targets of shape "
                    f"{tuple(y.shape)}; a model must map (B, T_in, C, H, W) to (B, T_out, C, H, W)."
                )
            for offset in range(x.shape[0]):
                if samples - x.shape[0] + offset in wanted:
                    for name, tensor in (("inputs", x), ("truth", y), ("prediction", y_hat)):
                        kept[name].append(tensor[offset].detach().float().cpu().numpy())
                    kept["sample_index"].append(np.asarray(samples - x.shape[0] + offset))
            if accumulator is None:
                accumulator = MetricAccumulator(y.shape[1], normalizer, lat=lat,
                                                keep_samples=per_sample_out is not None)
            try:
                accumulator.update(y_hat.float(), y.float(), None if climate is None else climate.float())
            except ValueError as error:
                raise BenchError(
                    f"Scoring {model_name} failed: {error}. If the predictions are not finite, training "
                    "diverged: lower the learning rate (--set train.lr=...) or enable gradient clipping "
                    "(--set train.grad_clip=1.0)."
                ) from None
            for name, part in parts.items():
                part_accumulators.setdefault(name, MetricAccumulator(y.shape[1], normalizer, lat=lat))
                part_accumulators[name].update(part.float(), y.float(), None if climate is None else climate.float())
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
    if components_out is not None:
        components_out.update({name: part.compute() for name, part in part_accumulators.items()})
    if kept_out is not None:
        kept_out.update({name: np.stack(parts) for name, parts in kept.items() if parts})
        kept_out["spectra"] = accumulator.spectrum.spectra()
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
    arrays = {metric: np.asarray(per_sample[metric], dtype=np.float32) for metric in ("mse", "mae", "ssim")}
    arrays["sample_index"] = np.asarray(per_sample["sample_index"], dtype=np.int64)
    _write_npz_atomic(run_dir / name, arrays)
    return name


def predictions_to_keep(n_samples: int, count: int, seed: int = PREDICTION_SEED) -> np.ndarray:
    """Positions of the test samples whose predictions a run stores: `count` of `n_samples`, drawn
    without replacement by `seed` and sorted. They depend on the split's size alone, so every model
    and seed on the same data configuration stores the same samples."""
    count = max(0, min(int(count), int(n_samples)))
    return np.sort(np.random.default_rng(seed).choice(int(n_samples), size=count, replace=False))


def _write_npz_atomic(path: Path, arrays: dict[str, np.ndarray]) -> None:
    atomic_write(Path(path), lambda handle: np.savez(handle, **arrays))


def write_predictions(run_dir: Path, kept: dict[str, np.ndarray]) -> tuple[str | None, str | None]:
    """Store what `evaluate(..., kept_out=...)` kept: `predictions.npz` (normalized `inputs` (K, T_in,
    C, H, W), `truth` and `prediction` (K, T_out, C, H, W) as float16, `sample_index` (K,)) when any
    sample was kept, and `spectra.npz` (`wavenumber`, `pred`, `true` (T_out, C, K) float64, `kind`).
    Returns the two file names relative to the run folder (None for one not written)."""
    predictions = None
    if "sample_index" in kept:
        arrays = {name: np.asarray(kept[name], dtype=np.float16) for name in ("inputs", "truth", "prediction")}
        arrays["sample_index"] = np.asarray(kept["sample_index"], dtype=np.int64)
        _write_npz_atomic(Path(run_dir) / PREDICTIONS_NAME, arrays)
        predictions = PREDICTIONS_NAME
    spectra = None
    if "spectra" in kept:
        _write_npz_atomic(Path(run_dir) / SPECTRA_NAME, kept["spectra"])
        spectra = SPECTRA_NAME
    return predictions, spectra


def read_npz(path: Path, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The arrays `names` of a stored .npz, with a clear error if the file is missing or incomplete."""
    try:
        with np.load(Path(path)) as stored:
            return {name: stored[name] for name in names}
    except (OSError, KeyError, ValueError) as error:
        raise BenchError(f"The stored file {path} cannot be read ({error}). Re-run that run.") from None


def read_per_sample(path: Path) -> dict[str, np.ndarray]:
    """The arrays `write_per_sample` stored, with a clear error if the file is missing or incomplete."""
    return read_npz(path, PER_SAMPLE_ARRAYS)
