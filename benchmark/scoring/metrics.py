"""Forecast metrics: what is measured, and how.

All functions take predictions and targets of shape `(B, T, C, H, W)` (sample, lead time / frame,
channel, latitude or image row, longitude or image column), compute in float64 on the tensors'
device, and return float64 tensors of shape `(B, T)`: one value per (sample, frame).

Definitions (reported in both the normalized space the models are trained in and the physical
space obtained with the training split's `Normalizer.denormalize`):

- **MSE / MAE**: per-pixel mean of the squared / absolute error over (sample, frame, channel,
  lat, lon). They are *not* summed over pixels (OpenSTL sums over pixels for video data; we do not).
- **RMSE**: the square root of the aggregate MSE (per lead time: the square root of that lead's MSE).
- **SSIM**: `skimage.metrics.structural_similarity` with its default settings (7x7 uniform window,
  K1 = 0.01, K2 = 0.03, sample covariance, mean over the interior that lies 3 pixels away from the
  border), computed per (sample, frame, channel) with that channel's `data_range`, averaged over
  channels, then averaged over samples (and frames).
- **PSNR**: `10 log10(data_range^2 / MSE)` per (sample, frame, channel), averaged over channels,
  then over samples (and frames). An exact prediction (MSE = 0) scores `PSNR_CAP_DB` (100 dB).
- `data_range` for SSIM and PSNR is the training split's per-channel `max - min` in the space
  being scored (physical range, or physical range / std in normalized space).
- **Latitude-weighted RMSE, WeatherBench 1's form** (`lat_rmse`, weather): per (sample, frame, channel)
  `sqrt(mean over lat, lon of w(lat) * error^2)` with `w = cos(lat) / mean(cos(lat))`
  (WeatherBench 1, Rasp et al. 2020, Eq. 1: the square root per forecast, then the mean over
  forecasts), averaged over channels, then averaged over samples (and frames).
- **RMSE, WeatherBench 2's form** (`rmse_wb2`): per (lead, channel) the square root *after* averaging
  the (latitude-weighted on latitude grids, plain on images) squared error over space and over the
  test samples (Rasp et al. 2024, "WeatherBench 2", Section 4.1, and `weatherbench2.metrics.RMSE`:
  the time mean is taken before the square root), averaged over channels. Never below `lat_rmse`
  on the same grid (Jensen). Aggregate: the mean over leads.
- **ACC** (`acc`, anomaly correlation coefficient): with the anomalies `f' = pred - clim`,
  `o' = target - clim` against the training split's climatology of each target frame's valid time
  (`benchmark.data.climatology`), per (sample, frame, channel)
  `mean(w f' o') / sqrt(mean(w f'^2) mean(w o'^2))` over lat, lon with the latitude weights above
  (uniform on images), i.e. the uncentred correlation of WeatherBench 2 (Section 4.1,
  `weatherbench2.metrics.ACC`), averaged over channels, then over samples (and frames). Ours: a
  forecast (or truth) with no anomaly at all, where the correlation is 0/0, scores 0 (the
  climatology forecast scores 0, not NaN). Same value in both spaces (standardizing scales each
  channel's anomalies by one number). Only when the dataset has a climatology.
- **Detail ratio**: predicted over true power in the upper half of the wavenumbers, from the
  spectra averaged over the test samples (zonal on latitude grids, radial on images;
  `benchmark.scoring.spectra`), per channel, then averaged over channels. 1 = as much fine-scale power as
  the truth, below 1 = blurred. Per lead: that lead's spectra; aggregate: the spectra summed over
  leads (not the mean of the per-lead ratios). The same value in both spaces.

Aggregates over lead times are the mean of the per-lead values (MSE, MAE, SSIM, PSNR,
latitude-weighted RMSE, `rmse_wb2`, ACC; the detail ratio excepted, above); every lead has the same number of
samples, so this is also the mean over all (sample, frame) pairs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from benchmark.data.base import Normalizer
from benchmark.scoring.spectra import SpectrumAccumulator

SSIM_WIN_SIZE = 7
SSIM_K1 = 0.01
SSIM_K2 = 0.03
PSNR_CAP_DB = 100.0

RangeLike = float | Sequence[float] | np.ndarray | torch.Tensor

__all__ = [
    "PSNR_CAP_DB",
    "MetricAccumulator",
    "acc",
    "lat_weighted_rmse",
    "latitude_weights",
    "mae",
    "mse",
    "psnr",
    "ssim",
    "weighted_mse",
]


def _check_pair(pred: torch.Tensor, target: torch.Tensor) -> None:
    if pred.shape != target.shape:
        raise ValueError(
            f"prediction and target shapes differ: {tuple(pred.shape)} vs {tuple(target.shape)}"
        )
    if pred.dim() != 5:
        raise ValueError(f"expected tensors of shape (B, T, C, H, W), got shape {tuple(pred.shape)}")


def _f64(x: torch.Tensor) -> torch.Tensor:
    return x.detach().to(torch.float64)


def _channel_ranges(data_range: RangeLike, channels: int, device: torch.device) -> torch.Tensor:
    """`data_range` as a float64 tensor of shape (C,), validated."""
    if isinstance(data_range, torch.Tensor):
        values = data_range.detach().to(device=device, dtype=torch.float64).reshape(-1)
    else:
        values = torch.as_tensor(np.asarray(data_range, dtype=np.float64).reshape(-1), device=device)
    if values.numel() == 1:
        values = values.expand(channels)
    if values.numel() != channels:
        raise ValueError(f"data_range has {values.numel()} values but the data has {channels} channels")
    if not bool(torch.all(torch.isfinite(values) & (values > 0))):
        raise ValueError(
            f"data_range must be finite and positive for every channel, got {values.tolist()} "
            "(a channel that is constant on the training split has no dynamic range)"
        )
    return values


def mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error per (sample, frame): mean over (C, H, W), shape (B, T), float64."""
    _check_pair(pred, target)
    return (_f64(pred) - _f64(target)).square().mean(dim=(-3, -2, -1))


def mae(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error per (sample, frame): mean over (C, H, W), shape (B, T), float64."""
    _check_pair(pred, target)
    return (_f64(pred) - _f64(target)).abs().mean(dim=(-3, -2, -1))


def _ssim_per_channel(pred: torch.Tensor, target: torch.Tensor, data_range: RangeLike) -> torch.Tensor:
    """SSIM per (sample, frame, channel), shape (B, T, C), float64 (skimage default semantics)."""
    _check_pair(pred, target)
    b, t, c, h, w = pred.shape
    if h < SSIM_WIN_SIZE or w < SSIM_WIN_SIZE:
        raise ValueError(
            f"SSIM needs images of at least {SSIM_WIN_SIZE}x{SSIM_WIN_SIZE} pixels, got {h}x{w}"
        )
    ranges = _channel_ranges(data_range, c, pred.device)
    x = _f64(pred).reshape(b * t, c, h, w)
    y = _f64(target).reshape(b * t, c, h, w)
    # One pooling call for all five local moments. A 7x7 mean without padding yields exactly the
    # interior that skimage keeps after cropping (win_size - 1) // 2 pixels on each side.
    moments = F.avg_pool2d(torch.cat([x, y, x * x, y * y, x * y], dim=1), SSIM_WIN_SIZE, stride=1)
    ux, uy, uxx, uyy, uxy = moments.split(c, dim=1)
    n = SSIM_WIN_SIZE * SSIM_WIN_SIZE
    cov_norm = n / (n - 1)  # sample (unbiased) covariance, as skimage's default
    vx = cov_norm * (uxx - ux * ux)
    vy = cov_norm * (uyy - uy * uy)
    vxy = cov_norm * (uxy - ux * uy)
    r = ranges.view(1, c, 1, 1)
    c1 = (SSIM_K1 * r) ** 2
    c2 = (SSIM_K2 * r) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return s.mean(dim=(-2, -1)).reshape(b, t, c)


def ssim(pred: torch.Tensor, target: torch.Tensor, data_range: RangeLike) -> torch.Tensor:
    """SSIM per (sample, frame), mean over channels, shape (B, T), float64.

    Matches `skimage.metrics.structural_similarity(pred_frame, target_frame, data_range=r)` per
    2-D channel frame; `data_range` is a scalar or one value per channel.
    """
    return _ssim_per_channel(pred, target, data_range).mean(dim=-1)


def psnr(pred: torch.Tensor, target: torch.Tensor, data_range: RangeLike) -> torch.Tensor:
    """PSNR in dB per (sample, frame), mean over channels, shape (B, T), float64.

    Per channel `10 log10(range^2 / mse)`; an exact match (mse = 0) gives `PSNR_CAP_DB`, and no
    channel scores above it.
    """
    _check_pair(pred, target)
    ranges = _channel_ranges(data_range, pred.shape[-3], pred.device)
    err = (_f64(pred) - _f64(target)).square().mean(dim=(-2, -1))  # (B, T, C)
    floor = ranges.square() * 10.0 ** (-PSNR_CAP_DB / 10.0)
    return (10.0 * torch.log10(ranges.square() / torch.maximum(err, floor))).mean(dim=-1)


def latitude_weights(lat_degrees: Any) -> torch.Tensor:
    """Latitude weights `cos(lat) / mean(cos(lat))` (WeatherBench 1), float64 tensor of shape (H,)."""
    if isinstance(lat_degrees, torch.Tensor):
        lat = lat_degrees.detach().cpu().to(torch.float64).reshape(-1)
    else:
        lat = torch.as_tensor(np.asarray(lat_degrees, dtype=np.float64).reshape(-1))
    if lat.numel() == 0:
        raise ValueError("latitude_weights needs at least one latitude")
    weights = torch.cos(torch.deg2rad(lat))
    if not bool(torch.isfinite(weights).all()) or float(weights.mean()) <= 0:
        raise ValueError("latitudes must be finite degrees in [-90, 90] and not all at the poles")
    return weights / weights.mean()


def lat_weighted_rmse(pred: torch.Tensor, target: torch.Tensor, weights: Any) -> torch.Tensor:
    """Latitude-weighted RMSE per (sample, frame), mean over channels, shape (B, T), float64.

    `weights` has one value per row (axis -2), e.g. from `latitude_weights`. Per channel
    `sqrt(mean over lat, lon of w(lat) * error^2)`.
    """
    _check_pair(pred, target)
    w = torch.as_tensor(weights, dtype=torch.float64, device=pred.device).reshape(-1)
    if w.numel() != pred.shape[-2]:
        raise ValueError(f"{w.numel()} latitude weights for {pred.shape[-2]} latitude rows")
    err = (_f64(pred) - _f64(target)).square() * w.view(-1, 1)
    return err.mean(dim=(-2, -1)).sqrt().mean(dim=-1)


def _row_weights(weights: Any, pred: torch.Tensor) -> torch.Tensor:
    """Per-row weights as a float64 `(H, 1)` tensor on `pred`'s device (all ones for None)."""
    if weights is None:
        return torch.ones(pred.shape[-2], 1, dtype=torch.float64, device=pred.device)
    w = torch.as_tensor(weights, dtype=torch.float64, device=pred.device).reshape(-1)
    if w.numel() != pred.shape[-2]:
        raise ValueError(f"{w.numel()} latitude weights for {pred.shape[-2]} latitude rows")
    return w.view(-1, 1)


def weighted_mse(pred: torch.Tensor, target: torch.Tensor, weights: Any = None) -> torch.Tensor:
    """Spatial mean of `w(lat) * error^2` per (sample, frame, channel), shape (B, T, C), float64 (uniform
    weights for None): what `rmse_wb2` averages over samples before its square root."""
    _check_pair(pred, target)
    return ((_f64(pred) - _f64(target)).square() * _row_weights(weights, pred)).mean(dim=(-2, -1))


def acc(pred: torch.Tensor, target: torch.Tensor, climatology: torch.Tensor, weights: Any = None) -> torch.Tensor:
    """Anomaly correlation per (sample, frame), mean over channels, shape (B, T), float64.

    Per channel `mean(w f' o') / sqrt(mean(w f'^2) mean(w o'^2))` over (lat, lon) with `f' = pred -
    climatology`, `o' = target - climatology` and `w` one weight per row (None: uniform); 0 where
    either anomaly is zero everywhere (see the module docstring).
    """
    _check_pair(pred, target)
    _check_pair(climatology, target)
    w = _row_weights(weights, pred)
    forecast_anomaly = _f64(pred) - _f64(climatology)
    observed_anomaly = _f64(target) - _f64(climatology)
    product = (w * forecast_anomaly * observed_anomaly).mean(dim=(-2, -1))
    scale = ((w * forecast_anomaly.square()).mean(dim=(-2, -1)) * (w * observed_anomaly.square()).mean(dim=(-2, -1)))
    correlation = torch.where(scale > 0, product / scale.clamp_min(torch.finfo(torch.float64).tiny).sqrt(),
                              torch.zeros_like(product))
    return correlation.mean(dim=-1)


_SPACES = ("normalized", "physical")


class MetricAccumulator:
    """Streaming test-set metrics in normalized and physical space (see the module docstring).

    Feed normalized `(B, T_out, C, H, W)` predictions and targets batch by batch with `update`;
    `compute` returns a JSON-ready dict. Only float64 per-lead sums are kept, so the result does
    not depend on the batch size. `lat` (degrees, one per row) adds latitude-weighted RMSE (and weights
    `rmse_wb2` and ACC). Batches given with the climatology of their target frames add ACC (all
    batches or none).

    With `keep_samples=True` it also keeps, per sample and lead time, the normalized-space MSE, MAE
    and SSIM (the very per-(sample, frame) values the sums are made of), in the order the samples
    arrive; `per_sample()` returns them. The aggregates do not change.
    """

    PER_SAMPLE_METRICS = ("mse", "mae", "ssim")

    def __init__(self, t_out: int, normalizer: Normalizer, lat: Any | None = None,
                 keep_samples: bool = False) -> None:
        self.t_out = int(t_out)
        self.keep_samples = bool(keep_samples)
        self.normalizer = normalizer
        self.weights = None if lat is None else latitude_weights(lat)
        self.ranges = {space: np.asarray(normalizer.data_range(space), dtype=np.float64) for space in _SPACES}
        for space, values in self.ranges.items():
            if not np.all(np.isfinite(values) & (values > 0)):
                raise ValueError(
                    f"the {space} data range must be positive for every channel, got {values.tolist()} "
                    "(a channel that is constant on the training split cannot be scored with SSIM/PSNR)"
                )
        self.names = ["mse", "mae", "ssim", "psnr"] + (["lat_rmse"] if self.weights is not None else []) + ["acc"]
        # zonal spectra on latitude-longitude grids (periodic in longitude), radial ones on images
        self.spectrum_kind = "zonal" if self.weights is not None else "radial"
        self.reset()

    def reset(self) -> None:
        """Forget everything seen so far."""
        self.count = 0
        self.with_climatology: bool | None = None  # decided by the first batch
        self.sums = {space: {name: torch.zeros(self.t_out, dtype=torch.float64) for name in self.names}
                     for space in _SPACES}
        self.channel_sums: dict[str, torch.Tensor | None] = {space: None for space in _SPACES}  # weighted MSE
        self.samples: dict[str, list[np.ndarray]] = {name: [] for name in self.PER_SAMPLE_METRICS}
        self.spectrum = SpectrumAccumulator(self.spectrum_kind)

    @torch.no_grad()
    def update(self, pred: torch.Tensor, target: torch.Tensor, climatology: torch.Tensor | None = None) -> None:
        """Add one batch of normalized predictions and targets, both `(B, T_out, C, H, W)`, and optionally
        the normalized climatology of the target frames (same shape), which adds ACC."""
        _check_pair(pred, target)
        if self.with_climatology is None:
            self.with_climatology = climatology is not None
        elif self.with_climatology != (climatology is not None):
            raise ValueError("the climatology was given for some batches and not for others: give it for all or none")
        if climatology is not None:
            _check_pair(climatology, target)
        if pred.shape[1] != self.t_out:
            raise ValueError(
                f"expected {self.t_out} output frames, got {pred.shape[1]} (shape {tuple(pred.shape)})"
            )
        if not bool(torch.isfinite(pred).all()):
            raise ValueError(
                "model produced non-finite predictions (NaN or inf) "
                f"in a batch of shape {tuple(pred.shape)}; training probably diverged"
            )
        if not bool(torch.isfinite(target).all()):
            raise ValueError(
                f"targets contain NaN or inf (batch of shape {tuple(target.shape)}); check the data"
            )
        pred, target = _f64(pred), _f64(target)
        self.spectrum.update(pred, target)  # normalized: the detail ratio is the same in both spaces
        pairs = {
            "normalized": (pred, target),
            "physical": (self.normalizer.denormalize(pred), self.normalizer.denormalize(target)),
        }
        climates = {"normalized": None if climatology is None else _f64(climatology)}
        climates["physical"] = None if climatology is None else self.normalizer.denormalize(climates["normalized"])
        for space, (p, t) in pairs.items():
            values = {
                "mse": mse(p, t),
                "mae": mae(p, t),
                "ssim": ssim(p, t, self.ranges[space]),
                "psnr": psnr(p, t, self.ranges[space]),
            }
            if self.weights is not None:
                values["lat_rmse"] = lat_weighted_rmse(p, t, self.weights)
            if climates[space] is not None:
                values["acc"] = acc(p, t, climates[space], self.weights)
            channel_mse = weighted_mse(p, t, self.weights).sum(dim=0).cpu()
            previous = self.channel_sums[space]
            self.channel_sums[space] = channel_mse if previous is None else previous + channel_mse
            for name, per_sample in values.items():
                self.sums[space][name] += per_sample.sum(dim=0).cpu()
                if self.keep_samples and space == "normalized" and name in self.samples:
                    self.samples[name].append(per_sample.cpu().numpy())
        self.count += pred.shape[0]

    def per_sample(self) -> dict[str, np.ndarray]:
        """Normalized-space `mse`, `mae`, `ssim` per (sample, lead), float64 arrays of shape (N, T_out),
        and `sample_index` (N,) int64: the samples' positions in the order they were fed."""
        if not self.keep_samples:
            raise ValueError("per-sample values were not kept: create the MetricAccumulator with keep_samples=True")
        result = {name: (np.concatenate(parts) if parts else np.zeros((0, self.t_out)))
                  for name, parts in self.samples.items()}
        result["sample_index"] = np.arange(self.count, dtype=np.int64)
        return result

    def compute(self) -> dict[str, Any]:
        """Aggregate and per-lead metrics per space, plus the sample count, as plain floats and lists."""
        if self.count == 0:
            raise ValueError("no samples were scored: MetricAccumulator.update was never called with data")
        result: dict[str, Any] = {}
        detail, detail_per_lead = self.spectrum.detail_ratios()
        names = [name for name in self.names if name != "acc" or self.with_climatology]
        for space in _SPACES:
            per_lead = {name: (self.sums[space][name] / self.count).tolist() for name in names}
            per_lead["rmse"] = [math.sqrt(v) for v in per_lead["mse"]]
            per_lead["rmse_wb2"] = (self.channel_sums[space] / self.count).sqrt().mean(dim=-1).tolist()
            summary: dict[str, Any] = {name: float(np.mean(per_lead[name])) for name in [*names, "rmse_wb2"]}
            summary["rmse"] = math.sqrt(summary["mse"])
            summary["detail_ratio"], per_lead["detail_ratio"] = detail, detail_per_lead
            order = ["mse", "mae", "rmse", "rmse_wb2", "ssim", "psnr"] + \
                [name for name in ("lat_rmse", "acc") if name in per_lead] + ["detail_ratio"]
            result[space] = {**{k: summary[k] for k in order}, "per_lead": {k: per_lead[k] for k in order}}
        result["count"] = self.count
        return result
