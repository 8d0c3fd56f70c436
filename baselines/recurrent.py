"""Shared machinery of the recurrent baselines (ConvLSTM, PredRNN, PredRNN-v2, E3D-LSTM).

All four models, as the OpenSTL benchmark runs them, share three things that live here so each
model file only has to describe its cell:

- **space-to-depth patching**: a frame `(C, H, W)` is cut into `p x p` patches and stacked on
  channels, `(C*p*p, H/p, W/p)`, before the recurrent cells, and put back after
  (`patchify` / `unpatchify`, published `patch_size=2`);
- **scheduled sampling** (Bengio et al., 2015, as used by PredRNN and OpenSTL): during training
  the input at a future step is the ground truth with probability `eta` and the model's own last
  output otherwise; `eta` starts at 1.0 and falls linearly by 2e-5 per optimizer step to 0
  (`scheduled_sampling_eta`, `scheduled_sampling_mask`);
- **the autoregressive rollout** over `T_in + T_out - 1` steps that mixes truth and own outputs
  according to a boolean mask (`autoregressive_rollout`). A model supplies one function that
  advances its cells by one frame; the rollout knows nothing of the cells;
- **the model surface** built on those: `RecurrentForecaster` (`generate`, `forward`) and
  `ScheduledSamplingForecaster` (`sampling_eta`, `training_loss`), so a model file holds its cell,
  its stack and its `_step`, and nothing else.

The mask is a per-step choice for each sample, shape `(B, steps)` (one Bernoulli draw decides
for a whole frame, as in the original PredRNN and OpenSTL code); the rollout also accepts a
per-pixel mask `(B, steps, *frame_shape)` for a model that wants one. PredRNN-v2's reverse
scheduled sampling only needs a different mask over the input steps: its schedule and mask are
`reverse_scheduled_sampling_etas` and `reverse_scheduled_sampling_mask` below.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from benchmark.errors import ConfigError
from benchmark.model_api import ForecastModel
from benchmark.shapes import DataShape

StepFn = Callable[[torch.Tensor, Any], tuple[torch.Tensor, Any]]


def check_patch_size(model_name: str, shape: DataShape, patch_size: int) -> None:
    """Raise a `ConfigError` unless `patch_size` is positive and divides the frame's H and W."""
    if patch_size < 1:
        raise ConfigError(f"Model {model_name!r}: patch_size must be a positive integer, got {patch_size}.")
    h, w = shape.height, shape.width
    if h % patch_size or w % patch_size:
        raise ConfigError(
            f"Model {model_name!r} cuts frames into {patch_size}x{patch_size} patches, which does not "
            f"divide the frame size {h}x{w} of shape {tuple(shape)}. Use a patch_size that divides both "
            f"{h} and {w} (for example patch_size=1), or crop/pad the frames to a multiple of {patch_size}."
        )


def patchify(x: torch.Tensor, p: int) -> torch.Tensor:
    """Space-to-depth: `(B, T, C, H, W)` -> `(B, T, C*p*p, H/p, W/p)`."""
    if p == 1:
        return x
    b, t = x.shape[:2]
    y = F.pixel_unshuffle(x.flatten(0, 1), p)
    return y.unflatten(0, (b, t))


def unpatchify(x: torch.Tensor, p: int) -> torch.Tensor:
    """Depth-to-space, the exact inverse of `patchify`: `(B, T, C*p*p, h, w)` -> `(B, T, C, h*p, w*p)`."""
    if p == 1:
        return x
    b, t = x.shape[:2]
    y = F.pixel_shuffle(x.flatten(0, 1), p)
    return y.unflatten(0, (b, t))


def scheduled_sampling_eta(step: int, start_value: float = 1.0, changing_rate: float = 2e-5) -> float:
    """Probability of feeding the ground truth at a future step, after `step` optimizer steps.

    `eta = max(0, start_value - step * changing_rate)`: with the published defaults it falls from
    1.0 (always truth) to 0.0 (always the model's own output) at step 50,000 and stays there.
    """
    return max(0.0, start_value - step * changing_rate)


def scheduled_sampling_mask(
    batch: int,
    t_in: int,
    t_out: int,
    eta: float,
    *,
    device: torch.device | str | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Boolean mask `(B, T_in + T_out - 1)` for `autoregressive_rollout`: True = feed the truth.

    The first `T_in` steps read the observed inputs (True). Each later step reads the truth with
    probability `eta`, drawn once per sample and frame (not per pixel), as in the original code.
    """
    observed = torch.ones(batch, t_in, dtype=torch.bool, device=device)
    draws = torch.rand(batch, t_out - 1, device=device, generator=generator)
    return torch.cat([observed, draws < eta], dim=1)


def autoregressive_rollout(
    step_fn: StepFn,
    state: Any,
    frames: torch.Tensor,
    n_steps: int,
    truth_mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, Any]:
    """Run `step_fn` for `n_steps` frames, feeding truth or the previous output; return all outputs.

    `step_fn(frame, state) -> (next_frame, state)` advances the model by one frame and predicts
    the next one. `frames: (B, T_known, ...)` are the ground-truth frames the rollout may read:
    the inputs only at evaluation, inputs then targets during training. At step `t` the input is
    `frames[:, t]` when `t < T_known` and `truth_mask[:, t]` is True (or no mask is given), and the
    previous output otherwise; step 0 always reads `frames[:, 0]`. Steps at or past `T_known` can
    only read the previous output, so a rollout given only the inputs never sees the future.

    Returns `(outputs, state)` with `outputs: (B, n_steps, ...)`, where `outputs[:, t]` is the
    prediction of frame `t + 1`.
    """
    known = frames.shape[1]
    if known < 1:
        raise ValueError("autoregressive_rollout needs at least one observed frame")
    if truth_mask is not None and truth_mask.shape[:2] != (frames.shape[0], n_steps):
        raise ValueError(
            f"truth_mask has shape {tuple(truth_mask.shape)}, expected ({frames.shape[0]}, {n_steps}, ...)"
        )
    outputs: list[torch.Tensor] = []
    prev: torch.Tensor | None = None
    for t in range(n_steps):
        if prev is None:
            inp = frames[:, 0]
        elif t >= known:
            inp = prev
        elif truth_mask is None:
            inp = frames[:, t]
        else:
            keep = _broadcast_mask(truth_mask[:, t], prev)
            # torch.where, not a blend: a False entry makes the input exactly independent of truth.
            inp = torch.where(keep, frames[:, t], prev)
        prev, state = step_fn(inp, state)
        outputs.append(prev)
    return torch.stack(outputs, dim=1), state


def _broadcast_mask(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Append singleton dimensions so a `(B,)` or `(B, ...)` mask broadcasts against `like`."""
    mask = mask.to(dtype=torch.bool, device=like.device)
    return mask.reshape(mask.shape + (1,) * (like.dim() - mask.dim()))


def check_sampling_schedule(model_name: str, start_value: float, changing_rate: float) -> None:
    """Raise a `ConfigError` unless the scheduled-sampling start lies in [0, 1] and its rate is >= 0."""
    if not 0.0 <= start_value <= 1.0 or changing_rate < 0:
        raise ConfigError(
            f"Model {model_name!r}: sampling_start_value must lie in [0, 1] and sampling_changing_rate must "
            f"be >= 0, got {start_value} and {changing_rate}."
        )


def check_positive_ints(model_name: str, name: str, values: Sequence[int] | int) -> list[int]:
    """Return `values` as a list of positive ints, or raise a `ConfigError` that names them."""
    items = [values] if isinstance(values, int) else list(values)
    if not items or any(not isinstance(v, int) or isinstance(v, bool) or v < 1 for v in items):
        raise ConfigError(
            f"Model {model_name!r}: {name} must be a non-empty list of positive integers, got {values!r}."
        )
    return items


def reverse_scheduled_sampling_etas(
    step: int, step_1: float = 25_000, step_2: float = 50_000, exp_alpha: float = 5_000
) -> tuple[float, float]:
    """PredRNN-v2's reverse scheduled sampling: `(input_eta, future_eta)` after `step` optimizer steps.

    `input_eta` is the probability of feeding the ground truth at an *input* step (steps
    `1 .. T_in - 1`; step 0 always reads the first frame), `future_eta` the same at a *future* step.
    As in the original code (`reserve_schedule_sampling_exp` of thuml/predrnn-pytorch, also used by
    OpenSTL), with `k = step`, `k1 = step_1`, `k2 = step_2`, `alpha = exp_alpha`:

        input_eta  = 0.5                              for k < k1
                   = 1 - 0.5 * exp(-(k - k1) / alpha) for k1 <= k < k2   (rises from 0.5 towards 1)
                   = 1.0                              for k >= k2
        future_eta = 0.5                              for k < k1
                   = 0.5 * (k2 - k) / (k2 - k1)       for k1 <= k < k2   (falls linearly to 0)
                   = 0.0                              for k >= k2

    Both are continuous at `k1`; at `k2` `input_eta` jumps from `1 - 0.5 * exp(-(k2 - k1) / alpha)`
    (0.9966 with the published settings) to 1, as in the original code.
    """
    if step < step_1:
        return 0.5, 0.5
    if step < step_2:
        input_eta = 1.0 - 0.5 * math.exp(-(step - step_1) / exp_alpha)
        future_eta = 0.5 * (step_2 - step) / (step_2 - step_1)
        return input_eta, future_eta
    return 1.0, 0.0


def reverse_scheduled_sampling_mask(
    batch: int,
    t_in: int,
    t_out: int,
    input_eta: float,
    future_eta: float,
    *,
    device: torch.device | str | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Boolean mask `(B, T_in + T_out - 1)` for `autoregressive_rollout`: True = feed the truth.

    Step 0 always reads the first observed frame (True). Each input step `1 .. T_in - 1` reads the
    truth with probability `input_eta`, each future step `T_in .. T_in + T_out - 2` with probability
    `future_eta`; one draw per sample and frame, as in `scheduled_sampling_mask`.
    """
    first = torch.ones(batch, 1, dtype=torch.bool, device=device)
    inputs = torch.rand(batch, t_in - 1, device=device, generator=generator) < input_eta
    future = torch.rand(batch, t_out - 1, device=device, generator=generator) < future_eta
    return torch.cat([first, inputs, future], dim=1)


def check_filter_size(model_name: str, filter_size: int, published: int = 5) -> None:
    """Raise a `ConfigError` unless `filter_size` is a positive odd integer ('same' padding)."""
    if not isinstance(filter_size, int) or isinstance(filter_size, bool) or filter_size < 1 or filter_size % 2 == 0:
        raise ConfigError(
            f"Model {model_name!r}: filter_size must be a positive odd integer (so 'same' padding keeps "
            f"the frame size), got {filter_size!r}. The published value is {published}."
        )


class RecurrentForecaster(ForecastModel):
    """Base of the recurrent baselines: patch the frames, roll a one-frame step over time, unpatch.

    A subclass sets `shape` (its `DataShape`) and `patch_size`, and implements
    `_step(frame, state) -> (next_frame, state)` on patched frames (state `None` at the start).
    """

    shape: DataShape
    patch_size: int

    def rollout(
        self, x: torch.Tensor, y: torch.Tensor | None, truth_mask: torch.Tensor | None, step_fn: StepFn
    ) -> torch.Tensor:
        """Run `step_fn` over `T_in + T_out - 1` steps on patched frames; return unpatched outputs."""
        p = self.patch_size
        frames = x if y is None else torch.cat([x, y], dim=1)
        n_steps = x.shape[1] + self.shape.t_out - 1
        out, _ = autoregressive_rollout(step_fn, None, patchify(frames, p), n_steps, truth_mask)
        return unpatchify(out, p)

    def generate(
        self, x: torch.Tensor, y: torch.Tensor | None = None, truth_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """All `T_in + T_out - 1` generated frames `(B, T_in + T_out - 1, C, H, W)`.

        Without `y` every future input is the model's own output (evaluation). With `y`, the input
        at step `t` is the ground truth where `truth_mask[:, t]` is True (see `autoregressive_rollout`).
        """
        return self.rollout(x, y, truth_mask, self._step)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Forecast `(B, T_in, C, H, W) -> (B, T_out, C, H, W)` from the inputs alone."""
        return self.generate(x)[:, -self.shape.t_out :]


class ScheduledSamplingForecaster(RecurrentForecaster):
    """A recurrent forecaster trained with scheduled sampling on its future inputs (ConvLSTM,
    PredRNN, E3D-LSTM). A subclass sets `sampling_start_value` and `sampling_changing_rate`."""

    sampling_start_value: float
    sampling_changing_rate: float

    def sampling_eta(self, step: int) -> float:
        """Scheduled-sampling probability of feeding the ground truth at optimizer step `step`."""
        return scheduled_sampling_eta(step, self.sampling_start_value, self.sampling_changing_rate)

    def training_loss(
        self, x: torch.Tensor, y: torch.Tensor, step: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """MSE over all generated frames, with scheduled sampling of the future inputs."""
        eta = self.sampling_eta(step)
        mask = scheduled_sampling_mask(x.shape[0], x.shape[1], y.shape[1], eta, device=x.device)
        pred = self.generate(x, y, mask)
        target = torch.cat([x, y], dim=1)[:, 1:]
        loss = F.mse_loss(pred, target)
        future_mse = F.mse_loss(pred[:, -y.shape[1] :].detach(), y)
        return loss, {"mse": loss.detach(), "mse_future": future_mse, "sampling_eta": torch.tensor(eta)}
