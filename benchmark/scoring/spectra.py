"""Power spectra of forecasts against the truth's, and the "detail ratio" that summarizes them.

A blurred forecast has less power than the truth at high wavenumbers; a forecast that invents
detail has more. WeatherBench 2 compares zonal energy spectra for exactly this. Here:

- `power_spectrum(x, kind)`: for fields `(..., H, W)`, per leading index,
  - "zonal" (weather grids, periodic in longitude): |rfft along W|^2 averaged over the H rows
    (latitudes), zonal wavenumbers k = 0 .. W // 2;
  - "radial" (images, e.g. CHDL): |fft2|^2 averaged over annuli of integer radius
    k = round(sqrt(ky^2 + kx^2)) in cycles per image, k = 0 .. min(H, W) // 2 (the corners beyond
    the largest full circle are left out).
  Both use the field with its spatial mean removed, so k = 0 carries no power.
- `detail_ratio(pred_power, true_power)`: the predicted power summed over the upper half of the
  wavenumbers (k > k_max / 2), divided by the truth's, per channel, then averaged over channels
  (so it does not depend on the channels' units: normalized and physical space give the same value).
  1: as much fine-scale power as the truth; below 1: blurred; above 1: more (noise or invented detail).

`SpectrumAccumulator` sums the spectra of a test split batch by batch (float64, per lead and
channel), which `benchmark.scoring.metrics.MetricAccumulator` uses for the `detail_ratio` metric.
"""

from __future__ import annotations

import numpy as np
import torch

KINDS = ("zonal", "radial")

__all__ = ["KINDS", "SpectrumAccumulator", "detail_ratio", "power_spectrum", "wavenumbers"]


def wavenumbers(height: int, width: int, kind: str) -> np.ndarray:
    """The integer wavenumbers `power_spectrum` returns for fields of `height` x `width`."""
    _check_kind(kind)
    return np.arange(width // 2 + 1 if kind == "zonal" else min(height, width) // 2 + 1)


def power_spectrum(x: torch.Tensor, kind: str) -> torch.Tensor:
    """Power spectrum of `x` `(..., H, W)` along its last two axes: `(..., K)` (module docstring)."""
    _check_kind(kind)
    if x.ndim < 2:
        raise ValueError(f"power_spectrum needs fields of at least 2 dimensions (H, W), got shape {tuple(x.shape)}")
    x = x.to(torch.float64)
    height, width = x.shape[-2:]
    x = x - x.mean(dim=(-2, -1), keepdim=True)
    if kind == "zonal":
        return (torch.fft.rfft(x, dim=-1).abs() ** 2).mean(dim=-2) / width
    power = torch.fft.fft2(x).abs() ** 2 / (height * width)
    ky = torch.fft.fftfreq(height, d=1.0 / height, dtype=torch.float64, device=x.device)
    kx = torch.fft.fftfreq(width, d=1.0 / width, dtype=torch.float64, device=x.device)
    radius = torch.sqrt(ky[:, None] ** 2 + kx[None, :] ** 2).round().long()
    bins = len(wavenumbers(height, width, kind))
    inside = radius < bins
    index = radius[inside]
    flat = power[..., inside]
    totals = torch.zeros((*flat.shape[:-1], bins), dtype=torch.float64, device=x.device)
    totals.index_add_(-1, index, flat)
    counts = torch.bincount(index, minlength=bins).to(torch.float64)
    return totals / counts


def upper_half(k: np.ndarray) -> np.ndarray:
    """Boolean mask of the wavenumbers above half of the largest."""
    k = np.asarray(k)
    return k > k.max() / 2


def detail_ratio(pred_power: np.ndarray, true_power: np.ndarray) -> float | None:
    """Upper-half power of `pred_power` over that of `true_power`, both `(C, K)` (or `(K,)`), averaged
    over the channels; None when the truth has no power there (a constant field)."""
    pred_power, true_power = np.atleast_2d(pred_power), np.atleast_2d(true_power)
    if pred_power.shape != true_power.shape:
        raise ValueError(f"spectra of different shapes: {pred_power.shape} and {true_power.shape}")
    mask = upper_half(np.arange(pred_power.shape[-1]))
    truth = true_power[:, mask].sum(axis=-1)
    if not np.all(truth > 0):
        return None
    return float(np.mean(pred_power[:, mask].sum(axis=-1) / truth))


class SpectrumAccumulator:
    """Sums of the power spectra of predictions and truths `(B, T, C, H, W)` over samples."""

    def __init__(self, kind: str) -> None:
        _check_kind(kind)
        self.kind = kind
        self.count = 0
        self.pred: torch.Tensor | None = None  # (T, C, K) sums
        self.true: torch.Tensor | None = None

    @torch.no_grad()
    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        """Add one batch; `pred` and `target` of the same shape `(B, T, C, H, W)`."""
        p = power_spectrum(pred, self.kind).sum(dim=0).cpu()
        t = power_spectrum(target, self.kind).sum(dim=0).cpu()
        self.pred = p if self.pred is None else self.pred + p
        self.true = t if self.true is None else self.true + t
        self.count += pred.shape[0]

    def spectra(self) -> dict[str, np.ndarray]:
        """Mean spectra: `wavenumber` (K,), `pred` and `true` (T, C, K) float64, and `kind`."""
        if self.pred is None or self.true is None:
            raise ValueError("no spectra were accumulated: SpectrumAccumulator.update was never called")
        return {"wavenumber": np.arange(self.pred.shape[-1]), "pred": (self.pred / self.count).numpy(),
                "true": (self.true / self.count).numpy(), "kind": np.array(self.kind)}

    def detail_ratios(self) -> tuple[float | None, list[float | None]]:
        """(over all leads, per lead): `detail_ratio` of the summed spectra."""
        spectra = self.spectra()
        overall = detail_ratio(spectra["pred"].sum(axis=0), spectra["true"].sum(axis=0))
        per_lead = [detail_ratio(p, t) for p, t in zip(spectra["pred"], spectra["true"], strict=True)]
        return overall, per_lead


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"spectrum kind must be one of {', '.join(KINDS)}, got {kind!r}")
