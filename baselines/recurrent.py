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
- **the schedule rule** that maps this run's optimizer steps onto those published steps
  (`REFERENCE_TOTAL_STEPS`, `published_step`, `RecurrentForecaster.plan_schedule`; see below);
- **the autoregressive rollout** over `T_in + T_out - 1` steps that mixes truth and own outputs
  according to a boolean mask (`autoregressive_rollout`). A model supplies one function that
  advances its cells by one frame; the rollout knows nothing of the cells;
- **the model surface** built on those: `RecurrentForecaster` (`generate`, `forward`) and
  `ScheduledSamplingForecaster` (`sampling_eta`, `training_loss`), so a model file holds its cell,
  its stack and its `_step`, and nothing else;
- **the hyper-parameters** they share, as frozen config dataclasses (nanoGPT's `GPTConfig`
  pattern): `RecurrentConfig` (`patch_size`, `num_hidden`, `filter_size`, `schedule`) and
  `ScheduledSamplingConfig` (plus `sampling_start_value`, `sampling_changing_rate`), validated on
  construction. Each model subclasses one with its own fields and published defaults, its model
  takes `(shape, config)`, and its builder is `Model(shape, ModelConfig(**overrides))`.

The mask is a per-step choice for each sample, shape `(B, steps)` (one Bernoulli draw decides
for a whole frame, as in the original PredRNN and OpenSTL code); the rollout also accepts a
per-pixel mask `(B, steps, *frame_shape)` for a model that wants one. PredRNN-v2's reverse
scheduled sampling only needs a different mask over the input steps: its schedule and mask are
`reverse_scheduled_sampling_etas` and `reverse_scheduled_sampling_mask` below.

Schedules as fractions of the run. The published schedules are counted in optimizer steps of
OpenSTL's WeatherBench runs (`REFERENCE_TOTAL_STEPS = 164,250`, derived below): there eta reaches 0
at step 50,000, 30.4% of training, and PredRNN-v2's phases change at 25,000 and 50,000 steps
(15.2%, 30.4%; `r_exp_alpha` 5,000 = 3.04%). Our runs are far shorter (thousands or hundreds of
steps); with the step values as they are, such a run would end while still nearly teacher-forced
and then be tested free-running. Each recurrent model therefore takes `schedule`:

- `"relative"` (the default): step `k` of a run of `N` optimizer steps counts as published step
  `k * REFERENCE_TOTAL_STEPS / N` (`published_step`), so every published value keeps its meaning as
  a fraction of the run: eta reaches 0 at 30.4% of any run, whatever its length. A run of exactly
  `REFERENCE_TOTAL_STEPS` steps gets the published schedule unchanged;
- `"absolute"`: the published step values as they are (for a run over every hourly window).

The run length `N` arrives through `plan_schedule(N)`, which the trainer calls before training
(and on resume, with the same value). It is kept as a plain attribute, not in the `state_dict`.
A `"relative"` model whose `plan_schedule` was never called uses `N = REFERENCE_TOTAL_STEPS`,
i.e. behaves exactly like `"absolute"` (so a unit test or a loop that calls `training_loss`
directly sees the published step values).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from benchmark.core.errors import ConfigError
from benchmark.registry.model_api import ForecastModel, ModelConfig
from benchmark.registry.shapes import DataShape

StepFn = Callable[[torch.Tensor, Any], tuple[torch.Tensor, Any]]

REFERENCE_TOTAL_STEPS = 164_250
"""Length, in optimizer steps, of the run the published schedules were tuned for.

OpenSTL trains on every hourly WeatherBench window: the training years 2010-2015 hold 52,584
hourly frames (6 years x 8,760 h + 24 h for 29 February 2012), i.e. about 52,560 windows of 24
frames (12 in, 12 out, one window per hour); at batch 16 that is 3,285 optimizer steps per epoch,
and over 50 epochs 3,285 x 50 = 164,250 steps. There the scheduled-sampling eta (1.0, -2e-5 per step) reaches 0 at step
50,000 = 30.4% of training, and PredRNN-v2's reverse-sampling steps 25,000 / 50,000 (alpha 5,000)
are 15.2% / 30.4% (3.04%).
"""

SCHEDULES = ("relative", "absolute")
"""Values of the recurrent models' `schedule` hyper-parameter (see the module docstring)."""


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


def check_schedule(model_name: str, schedule: str) -> str:
    """Return `schedule` if it is one of `SCHEDULES`, or raise a `ConfigError` that explains both."""
    if schedule not in SCHEDULES:
        raise ConfigError(
            f"Model {model_name!r}: schedule must be 'relative' (the published step schedule read as "
            f"fractions of this run, the default) or 'absolute' (the published step values as they are, "
            f"for a run of about {REFERENCE_TOTAL_STEPS:,} optimizer steps), got {schedule!r}."
        )
    return schedule


def check_total_steps(total_steps: Any) -> int:
    """Return the run length `total_steps` as an int >= 1, or raise a `ConfigError`."""
    if isinstance(total_steps, float) and total_steps.is_integer():
        total_steps = int(total_steps)
    if not isinstance(total_steps, int) or isinstance(total_steps, bool) or total_steps < 1:
        raise ConfigError(
            f"A step schedule needs the run's total number of optimizer steps as a positive integer, got "
            f"{total_steps!r} (an unbounded run, max_steps=-1 without epochs, cannot be planned)."
        )
    return total_steps


def published_step(step: float, total_steps: int | None, schedule: str) -> float:
    """The published-schedule step that optimizer step `step` of this run stands for.

    `"relative"`: `step * REFERENCE_TOTAL_STEPS / total_steps` (the same fraction of the run);
    with `total_steps=None` (no run planned) or `"absolute"`: `step` itself.
    """
    if schedule == "absolute" or total_steps is None:
        return float(step)
    return step * REFERENCE_TOTAL_STEPS / total_steps


def run_step(published: float, total_steps: int | None, schedule: str) -> float:
    """Inverse of `published_step`: the (fractional) step of this run that published step `published` falls on."""
    if schedule == "absolute" or total_steps is None:
        return float(published)
    return published * total_steps / REFERENCE_TOTAL_STEPS


def first_step_where(holds: Callable[[int], bool], guess: float) -> int:
    """The smallest step `k >= 0` for which `holds(k)`, for a predicate that stays true once true.

    `guess` (an estimate from the closed-form boundary) only makes the search short; the answer is
    decided by `holds` itself, so floating-point rounding at the boundary cannot misplace it.
    """
    k = max(0, math.ceil(guess))
    while k > 0 and holds(k - 1):
        k -= 1
    while not holds(k):
        k += 1
    return k


def scheduled_sampling_eta(step: float, start_value: float = 1.0, changing_rate: float = 2e-5) -> float:
    """Probability of feeding the ground truth at a future step, after `step` (published) optimizer steps.

    `eta = max(0, start_value - step * changing_rate)`: with the published defaults it falls from
    1.0 (always truth) to 0.0 (always the model's own output) at step 50,000 and stays there.
    A model maps its run's step onto the published one first (`published_step`).
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


def check_positive_int(model_name: str, name: str, value: Any) -> int:
    """Return `value` if it is a positive int, or raise a `ConfigError` that names it."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"Model {model_name!r}: {name} must be a positive integer, got {value!r}.")
    return value


def check_positive_ints(model_name: str, name: str, values: Sequence[int] | int) -> list[int]:
    """Return `values` as a list of positive ints, or raise a `ConfigError` that names them."""
    items = [values] if isinstance(values, int) else list(values)
    if not items or any(not isinstance(v, int) or isinstance(v, bool) or v < 1 for v in items):
        raise ConfigError(
            f"Model {model_name!r}: {name} must be a non-empty list of positive integers, got {values!r}."
        )
    return items


def reverse_scheduled_sampling_etas(
    step: float, step_1: float = 25_000, step_2: float = 50_000, exp_alpha: float = 5_000
) -> tuple[float, float]:
    """PredRNN-v2's reverse scheduled sampling: `(input_eta, future_eta)` after `step` (published) steps.

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


@dataclass(frozen=True)
class RecurrentConfig(ModelConfig):
    """Hyper-parameters every recurrent baseline has; validated on construction (a `ConfigError`).

    `patch_size`: the side of the space-to-depth patches (it must divide H and W, see `check`);
    `num_hidden`: the widths of the stacked cells, bottom first (kept as a tuple);
    `filter_size`: the gate convolutions' kernel, a positive odd integer ('same' padding);
    `schedule`: "relative" or "absolute", how this run's steps map onto the published step
    schedule (see the module docstring). A subclass names its model in `model_name` and sets
    `equal_widths` where a memory passes between layers (PredRNN's zig-zag `M`).
    """

    model_name: ClassVar[str] = "recurrent"
    equal_widths: ClassVar[bool] = False

    patch_size: int = 2
    num_hidden: tuple[int, ...] = (128, 128, 128, 128)
    filter_size: int = 5
    schedule: str = "relative"

    def validate(self) -> None:
        """Check every field that does not depend on the data's shape (that is `check`)."""
        check_positive_int(self.model_name, "patch_size", self.patch_size)
        hidden = check_positive_ints(self.model_name, "num_hidden", self.num_hidden)
        # A list from a profile (or a bare int) becomes the tuple the defaults are.
        object.__setattr__(self, "num_hidden", tuple(hidden))
        self.require(
            not self.equal_widths or len(set(hidden)) == 1,
            "all layers must have the same width, because the spatiotemporal memory M passes from each "
            f"layer to the next and from the top layer to the bottom one; got num_hidden={list(hidden)}. "
            f"Use one width for every layer, for example {[max(hidden)] * len(hidden)}.",
        )
        self.validate_filter_size()
        check_schedule(self.model_name, self.schedule)

    def validate_filter_size(self) -> None:
        """A 2-D gate kernel: a positive odd integer."""
        check_filter_size(self.model_name, self.filter_size)

    def check(self, shape: DataShape) -> None:
        """Raise a `ConfigError` unless `patch_size` divides the frames' H and W."""
        h, w, p = shape.height, shape.width, self.patch_size
        self.require(
            not (h % p or w % p),
            f"patch_size={p} cuts frames into {p}x{p} patches, which does not divide the frame size "
            f"{h}x{w} of shape {tuple(shape)}. Use a patch_size that divides both {h} and {w} (for "
            f"example patch_size=1), or crop/pad the frames to a multiple of {p}.",
        )


@dataclass(frozen=True)
class ScheduledSamplingConfig(RecurrentConfig):
    """`RecurrentConfig` plus scheduled sampling: `eta = max(0, sampling_start_value -
    k * sampling_changing_rate)` at published step `k` (the start in [0, 1], the rate >= 0)."""

    sampling_start_value: float = 1.0
    sampling_changing_rate: float = 2e-5

    def validate(self) -> None:
        """The shared checks, then the sampling schedule's."""
        super().validate()
        check_sampling_schedule(self.model_name, self.sampling_start_value, self.sampling_changing_rate)


class RecurrentForecaster(ForecastModel):
    """Base of the recurrent baselines: patch the frames, roll a one-frame step over time, unpatch.

    Built from `(shape, config)`: `config` (a `RecurrentConfig`) is checked against `shape` and
    kept as `self.config`, which the shared code reads (`patch_size`, `schedule`). A subclass
    builds its cells (`layer_widths`) and implements `_step(frame, state) -> (next_frame, state)`
    on patched frames (state `None` at the start). `plan_schedule` fixes the run length that
    `published_step` maps this run's optimizer steps with (the one mapping all four models share),
    and a subclass with a step schedule describes it in `resolved_schedule`.
    """

    config: RecurrentConfig
    planned_total_steps: int | None = None  # a plain attribute: never in the state_dict

    def __init__(self, shape: DataShape, config: RecurrentConfig):
        super().__init__()
        shape = DataShape(*shape)
        config.check(shape)
        self.shape, self.config = shape, config
        self.frame_channels = shape.channels * config.patch_size**2  # channels of a patched frame

    def layer_widths(self) -> list[tuple[int, int]]:
        """`(in, out)` channels of each stacked cell, bottom first: the patched frame feeds the first."""
        widths = [self.frame_channels, *self.config.num_hidden]
        return list(zip(widths[:-1], widths[1:], strict=True))

    def published_step(self, step: float) -> float:
        """The published-schedule step that this run's optimizer step `step` stands for."""
        return published_step(step, self.planned_total_steps, self.config.schedule)

    def run_step(self, published: float) -> float:
        """Inverse of `published_step`: the (fractional) step of this run that `published` falls on."""
        return run_step(published, self.planned_total_steps, self.config.schedule)

    def run_length(self) -> int:
        """The run length the schedule is resolved for: the planned one, else `REFERENCE_TOTAL_STEPS`."""
        return self.planned_total_steps or REFERENCE_TOTAL_STEPS

    def plan_schedule(self, total_steps: int) -> dict[str, Any]:
        """Fix the run length; return the schedule resolved in this run's optimizer steps."""
        self.planned_total_steps = check_total_steps(total_steps)
        return {
            "schedule": self.config.schedule,
            "total_steps": self.planned_total_steps,
            "reference_total_steps": REFERENCE_TOTAL_STEPS,
            **self.resolved_schedule(),
        }

    def resolved_schedule(self) -> dict[str, Any]:
        """The model's step schedule in this run's steps (after `plan_schedule`); none here."""
        return {}

    def rollout(
        self, x: torch.Tensor, y: torch.Tensor | None, truth_mask: torch.Tensor | None, step_fn: StepFn
    ) -> torch.Tensor:
        """Run `step_fn` over `T_in + T_out - 1` steps on patched frames; return unpatched outputs."""
        p = self.config.patch_size
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
    PredRNN, E3D-LSTM), from a `ScheduledSamplingConfig`; it may override `frame_loss` (E3D-LSTM
    adds an L1 term)."""

    config: ScheduledSamplingConfig

    def sampling_eta(self, step: int) -> float:
        """Scheduled-sampling probability of feeding the ground truth at this run's optimizer step `step`."""
        return scheduled_sampling_eta(
            self.published_step(step), self.config.sampling_start_value, self.config.sampling_changing_rate
        )

    def resolved_schedule(self) -> dict[str, Any]:
        """`sampling_eta_start`, `sampling_eta_zero_at_step` (first step of this run with eta = 0, None
        if never) and `sampling_eta_final` (eta at the run's last step)."""
        start, rate = self.config.sampling_start_value, self.config.sampling_changing_rate
        if start <= 0:
            zero_at: int | None = 0
        elif rate > 0:
            zero_at = first_step_where(lambda k: self.sampling_eta(k) == 0.0, self.run_step(start / rate))
        else:
            zero_at = None
        return {
            "sampling_eta_start": float(start),
            "sampling_eta_zero_at_step": zero_at,
            "sampling_eta_final": self.sampling_eta(self.run_length() - 1),
        }

    def frame_loss(self, pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Loss over all generated frames and the scalars to log: the MSE (OpenSTL's objective)."""
        mse = F.mse_loss(pred, target)
        return mse, {"mse": mse.detach()}

    def training_loss(
        self, x: torch.Tensor, y: torch.Tensor, step: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """`frame_loss` over all generated frames, with scheduled sampling of the future inputs."""
        eta = self.sampling_eta(step)
        mask = scheduled_sampling_mask(x.shape[0], x.shape[1], y.shape[1], eta, device=x.device)
        pred = self.generate(x, y, mask)
        target = torch.cat([x, y], dim=1)[:, 1:]
        loss, logs = self.frame_loss(pred, target)
        logs["mse_future"] = F.mse_loss(pred[:, -y.shape[1] :].detach(), y)
        logs["sampling_eta"] = torch.tensor(eta)
        return loss, logs
