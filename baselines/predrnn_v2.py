"""PredRNN-v2: PredRNN with memory decoupling and reverse scheduled sampling.

Wang et al., "PredRNN: A Recurrent Neural Network for Spatiotemporal Predictive Learning",
IEEE TPAMI 2022 (arXiv:2103.09504). The network is PredRNN's (the ST-LSTM stack with the zig-zag
spatiotemporal memory, see `baselines.predrnn`); two things change in training:

- **memory decoupling**: at every step `t` and layer `l` the increments of the two memories,
  `delta_c = i * g` and `delta_m = i' * g'`, go through a 1x1 conv adapter `A` and are pushed
  apart by the absolute cosine similarity of their feature maps, per channel:

      L_decouple = mean over t, l, sample b, channel k of
                   |<A(delta_c)[b, k], A(delta_m)[b, k]>| / (||A(delta_c)[b, k]|| * ||A(delta_m)[b, k]||)

  where `A(.)[b, k]` is the channel-`k` map of sample `b` flattened over the `H x W` positions
  (the paper: "dot product and l2 norm of flattened feature maps, calculated for each channel").
  The training loss is `MSE + decouple_beta * L_decouple`.
- **reverse scheduled sampling**: over the *input* steps `1 .. T_in - 1` the probability of
  feeding the ground truth (instead of the model's own previous output) rises from 0.5 to 1 on an
  exponential schedule, so the encoder learns first to read its own predictions and then the full
  context; over the *future* steps it falls linearly to 0, as in scheduled sampling. With
  `k1 = r_sampling_step_1`, `k2 = r_sampling_step_2`, `alpha = r_exp_alpha`, at optimizer step `k`:

      input_eta  = 0.5 (k < k1),  1 - 0.5 exp(-(k - k1) / alpha) (k1 <= k < k2),  1.0 (k >= k2)
      future_eta = 0.5 (k < k1),  0.5 (k2 - k) / (k2 - k1)       (k1 <= k < k2),  0.0 (k >= k2)

  (`baselines.recurrent.reverse_scheduled_sampling_etas`), exactly the original code's
  `reserve_schedule_sampling_exp`, which OpenSTL reuses. With the published settings: step 0 and
  25,000 -> (0.5, 0.5); 30,000 -> (0.816, 0.4); 50,000 and later -> (1.0, 0.0).

Schedule rule (`schedule`, see `baselines.recurrent`): the published `k1`, `k2`, `alpha` are steps of
OpenSTL's 164,250-step run, i.e. 15.2%, 30.4% and 3.04% of training. With `"relative"` (the
default) step `k` of a run of `N` steps (`plan_schedule(N)`) counts as published step
`k * 164,250 / N`, so (0.5, 0.5) holds up to 15.2% of the run, the input probability rises with a
time constant of 3.04% of the run while the future one falls linearly, and (1.0, 0.0) holds from
30.4% on; `"absolute"` uses the published step values as they are. `plan_schedule` returns `k1`,
`k2` (the first step of this run in each later phase) and `alpha` in this run's steps.

At evaluation (`forward`) the model reads the true inputs and then feeds its own outputs; it never
sees the future ground truth, and the adapter is not used.

Published settings (OpenSTL, WeatherBench 5.625 deg): the defaults of `PredRNNv2Config`, stride 1,
no layer norm, loss = MSE on all `T_in + T_out - 1` generated frames + the decoupling term.

Implementation notes:
- One adapter (a bias-free 1x1 conv, `hidden -> hidden`) is shared by the two increments and by
  all layers, as in the reference implementation (thuml/predrnn-pytorch, reused by OpenSTL).
  Parameters at shape (12, 1, 32, 64) with the defaults: 23,584,768 = PredRNN's 23,568,384 + the
  adapter's 16,384; OpenSTL publishes 23.59M.
- The cell, its biases (none learned; constant +1 on both forget gates) and the zig-zag memory
  are PredRNN's, unchanged.
- The decoupling loss is averaged (not summed, as the paper's formula writes) over steps, layers,
  samples and channels, as in the reference code; `decouple_beta=0.1` is set for that scale.
- The schedule values before `r_sampling_step_1` (0.5 for both inputs and future frames) are the
  original code's constants; the paper gives the shapes of the curves, not these start values.
  OpenSTL's config also lists the plain scheduled-sampling settings, which are unused when reverse
  scheduled sampling is on; they are not hyper-parameters here.
- *choice*: one Bernoulli draw per sample and frame (input or future), as in the original code.
- *choice*: `schedule="relative"` by default (the published step counts fit OpenSTL's runs, not
  ours); without `plan_schedule` a relative model uses the reference length, i.e. the published
  step values.
- *choice*: metrics score only the `T_out` future frames; `forward` returns only those.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from baselines.predrnn import StackState, STLSTMForecaster
from baselines.recurrent import (
    RecurrentConfig,
    first_step_where,
    reverse_scheduled_sampling_etas,
    reverse_scheduled_sampling_mask,
)
from benchmark.registry import register_model
from benchmark.registry.shapes import DataShape


@dataclass(frozen=True)
class PredRNNv2Config(RecurrentConfig):
    """Hyper-parameters of `predrnn-v2`; the defaults are the published settings (OpenSTL,
    WeatherBench 5.625 deg): `patch_size=2`, `num_hidden=(128, 128, 128, 128)` (one width for every
    layer, as PredRNN), `filter_size=5`, `decouple_beta=0.1` (weight of the decoupling loss, >= 0),
    `r_sampling_step_1=25000`, `r_sampling_step_2=50000`, `r_exp_alpha=5000` (the reverse
    scheduled-sampling steps, in the published run's steps), `schedule="relative"`.
    """

    model_name: ClassVar[str] = "predrnn-v2"
    equal_widths: ClassVar[bool] = True

    decouple_beta: float = 0.1
    r_sampling_step_1: int = 25_000
    r_sampling_step_2: int = 50_000
    r_exp_alpha: float = 5_000

    def validate(self) -> None:
        """The shared checks, then the decoupling weight's and the reverse schedule's."""
        super().validate()
        self.require(self.decouple_beta >= 0, f"decouple_beta must be >= 0, got {self.decouple_beta}. Published: 0.1.")
        self.require(
            0 <= self.r_sampling_step_1 <= self.r_sampling_step_2 and self.r_exp_alpha > 0,
            "reverse scheduled sampling needs 0 <= r_sampling_step_1 <= r_sampling_step_2 and r_exp_alpha > 0, "
            f"got r_sampling_step_1={self.r_sampling_step_1}, r_sampling_step_2={self.r_sampling_step_2}, "
            f"r_exp_alpha={self.r_exp_alpha}. Published: 25000, 50000, 5000.",
        )


def decoupling_similarity(delta_c: torch.Tensor, delta_m: torch.Tensor) -> torch.Tensor:
    """Mean over samples and channels of |cos| between the two `(B, C, H, W)` maps, per channel."""
    cos = F.cosine_similarity(delta_c.flatten(2), delta_m.flatten(2), dim=2)  # (B, C)
    return cos.abs().mean()


class PredRNNv2(STLSTMForecaster):
    """PredRNN-v2: ST-LSTM stack trained with a memory-decoupling loss and reverse scheduled sampling."""

    config: PredRNNv2Config

    def __init__(self, shape: DataShape, config: PredRNNv2Config):
        super().__init__(shape, config)
        hidden = config.num_hidden[0]
        self.adapter = nn.Conv2d(hidden, hidden, kernel_size=1, bias=False)

    def sampling_etas(self, step: int) -> tuple[float, float]:
        """`(input_eta, future_eta)` at this run's optimizer step `step`: probabilities of feeding the
        truth at an input / future step (the published schedule at `published_step(step)`)."""
        c = self.config
        return reverse_scheduled_sampling_etas(
            self.published_step(step), c.r_sampling_step_1, c.r_sampling_step_2, c.r_exp_alpha
        )

    def resolved_schedule(self) -> dict[str, Any]:
        """`r_sampling_step_1/2` (first step of this run in the rising / final phase), `r_exp_alpha`
        in this run's steps, and the two probabilities at the run's last step."""
        k1, k2 = self.config.r_sampling_step_1, self.config.r_sampling_step_2

        def first_step_from(published: float) -> int:
            return first_step_where(lambda k: self.published_step(k) >= published, self.run_step(published))

        input_final, future_final = self.sampling_etas(self.run_length() - 1)
        return {
            "r_sampling_step_1": first_step_from(k1),
            "r_sampling_step_2": first_step_from(k2),
            "r_exp_alpha": round(self.run_step(self.config.r_exp_alpha), 3),
            "sampling_eta_input_final": input_final,
            "sampling_eta_final": future_final,
        }

    def generate_with_decoupling(
        self, x: torch.Tensor, y: torch.Tensor | None = None, truth_mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Like `generate`, and also the decoupling loss averaged over all steps and layers."""
        similarities: list[torch.Tensor] = []

        def step(frame: torch.Tensor, state: StackState | None) -> tuple[torch.Tensor, StackState]:
            next_frame, state, increments = self.advance(frame, state)
            for delta_c, delta_m in increments:
                similarities.append(decoupling_similarity(self.adapter(delta_c), self.adapter(delta_m)))
            return next_frame, state

        pred = self.rollout(x, y, truth_mask, step)
        return pred, torch.stack(similarities).mean()

    def training_loss(
        self, x: torch.Tensor, y: torch.Tensor, step: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """MSE over all generated frames + `decouple_beta` x decoupling loss, reverse scheduled sampling."""
        input_eta, future_eta = self.sampling_etas(step)
        mask = reverse_scheduled_sampling_mask(
            x.shape[0], x.shape[1], y.shape[1], input_eta, future_eta, device=x.device
        )
        pred, decouple = self.generate_with_decoupling(x, y, mask)
        target = torch.cat([x, y], dim=1)[:, 1:]
        mse = F.mse_loss(pred, target)
        loss = mse + self.config.decouple_beta * decouple
        future_mse = F.mse_loss(pred[:, -y.shape[1] :].detach(), y)
        return loss, {
            "mse": mse.detach(),
            "mse_future": future_mse,
            "decouple_loss": decouple.detach(),
            "sampling_eta": torch.tensor(future_eta),
            "sampling_eta_input": torch.tensor(input_eta),
        }


@register_model(
    "predrnn-v2",
    family="recurrent",
    paper_name="PredRNN-v2",
    reference_params={"12,1,32,64": 23_590_000},
    config=PredRNNv2Config,
)
def build_predrnn_v2(shape: DataShape, **overrides: Any) -> PredRNNv2:
    """PredRNN-v2 (Wang et al., 2022): PredRNN + memory-decoupling loss + reverse scheduled sampling.

    Hyper-parameters and their defaults: `PredRNNv2Config`.
    """
    return PredRNNv2(shape, PredRNNv2Config(**overrides))
