"""PredRNN: stacked spatiotemporal LSTM (ST-LSTM) cells with a zig-zag spatiotemporal memory.

Wang et al., "PredRNN: Recurrent Neural Networks for Predictive Learning using Spatiotemporal
LSTMs", NeurIPS 2017. Each ST-LSTM cell of layer `l` keeps two memories:

- the temporal memory `c^l`, which, as in ConvLSTM, stays in its layer and flows through time;
- the spatiotemporal memory `M`, which flows zig-zag: up through the layers within a time step
  (`M_t^l` is computed from `M_t^{l-1}`), then from the top layer `L` of step `t - 1` to the bottom
  layer of step `t` (`M_t^0 := M_{t-1}^L`).

With `*` a convolution and `[a, b]` a concatenation on channels, one cell computes

    i  = sigma(W_xi*x + W_hi*h),   f  = sigma(W_xf*x + W_hf*h + 1),   g  = tanh(W_xg*x + W_hg*h)
    c_t = f * c_{t-1} + i * g
    i' = sigma(W'_xi*x + W_mi*M),  f' = sigma(W'_xf*x + W_mf*M + 1),  g' = tanh(W'_xg*x + W_mg*M)
    M_t = f' * M + i' * g'
    o   = sigma(W_xo*x + W_ho*h + W_co*[c_t, M_t])
    h_t = o * tanh(W_11 * [c_t, M_t])                                     (W_11: a 1x1 conv)

where `x` is the layer's input (the patched frame for the bottom layer, the hidden state of the
layer below otherwise), `h`, `c` the layer's own states at `t - 1`, and `M` the spatiotemporal
memory handed over by the layer below (or by the top layer of the previous step). A bias-free 1x1
conv reads the top hidden state out to the next (patched) frame. The model runs over
`T_in + T_out - 1` steps: it reads the `T_in` inputs, then feeds its own predictions (or, in
training, the ground truth with the scheduled-sampling probability, see `baselines.recurrent`).

Published settings (OpenSTL, WeatherBench 5.625 deg): the defaults of `PredRNNConfig`, stride 1,
no layer norm, loss = MSE on all `T_in + T_out - 1` generated frames, 1x1 bias-free readout.

Schedule rule (`schedule`, as ConvLSTM, see `baselines.recurrent`): `"relative"` (the default) reads
the published schedule as fractions of this run (step `k` of `N` counts as published step
`k * 164,250 / N`: eta 1.0 at step 0, 0.5 at 15.2%, 0 from 30.4% of the run on); `"absolute"` uses
the published step values as they are.

Implementation notes:
- Biases as in the reference implementation (the original thuml/predrnn-pytorch cell, which
  OpenSTL reuses): every convolution is bias-free, and the two forget gates `f` and `f'` get a
  constant (not learned) bias of +1.0 added to their pre-activation. The memory term of the output
  gate, `W_co`, is a `filter_size` convolution over `[c_t, M_t]`; only the fusion `W_11` that
  forms the hidden state is 1x1. The paper also writes the output gate with `c` and `M`.
- Parameters at shape (12, 1, 32, 64) with the defaults: 23,568,384, against 23.57M published by
  OpenSTL (and counted again on its code) for the same model.
- All layers must have the same width: `M` passes from every layer to the next and from the top
  layer back to the bottom one, so its width is shared (the reference code assumes the same).
- The three states start at zero for every sequence.
- *choice*: the scheduled-sampling draw is one Bernoulli(eta) per sample and future frame (the
  whole patched frame is truth or own output), as in the original PredRNN/OpenSTL code and as our
  ConvLSTM does.
- *choice*: `schedule="relative"` by default (the published step counts fit OpenSTL's 164,250-step
  runs, not ours); without `plan_schedule` a relative model uses the reference length, i.e. the
  published step values.
- *choice*: metrics score only the `T_out` future frames; `forward` returns only those.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from baselines.recurrent import (
    RecurrentConfig,
    RecurrentForecaster,
    ScheduledSamplingConfig,
    ScheduledSamplingForecaster,
)
from benchmark.registry import register_model
from benchmark.registry.shapes import DataShape

FORGET_BIAS = 1.0
"""Constant added to both forget gates' pre-activations, as in the reference cell (not learned)."""


@dataclass(frozen=True)
class PredRNNConfig(ScheduledSamplingConfig):
    """Hyper-parameters of `predrnn`; the defaults are the published settings (OpenSTL, WeatherBench
    5.625 deg): `patch_size=2` (space-to-depth), `num_hidden=(128, 128, 128, 128)` (one width for
    every layer, see the module docstring), `filter_size=5`, scheduled sampling from 1.0 falling by
    2e-5 per step (`sampling_start_value`, `sampling_changing_rate`, in the published run's steps:
    eta = 0 from step 50,000 of 164,250, i.e. 30.4% of training), `schedule="relative"`.
    """

    model_name: ClassVar[str] = "predrnn"
    equal_widths: ClassVar[bool] = True


# One layer's (h, c); the state of the stack is ([(h, c) per layer], M of the top layer).
LayerState = tuple[torch.Tensor, torch.Tensor]
StackState = tuple[list[LayerState], torch.Tensor]
# (delta_c, delta_m) of one layer at one step: the increments `i * g` and `i' * g'`.
Increments = tuple[torch.Tensor, torch.Tensor]


class SpatioTemporalLSTMCell(nn.Module):
    """One ST-LSTM cell: a temporal memory c and a spatiotemporal memory M, each with its own gates."""

    def __init__(self, in_channels: int, hidden: int, filter_size: int):
        super().__init__()
        self.hidden = hidden
        padding = filter_size // 2
        # x feeds all seven pre-activations: i, f, g (for c), i', f', g' (for M), o.
        self.conv_x = nn.Conv2d(in_channels, 7 * hidden, filter_size, padding=padding, bias=False)
        self.conv_h = nn.Conv2d(hidden, 4 * hidden, filter_size, padding=padding, bias=False)  # i, f, g, o
        self.conv_m = nn.Conv2d(hidden, 3 * hidden, filter_size, padding=padding, bias=False)  # i', f', g'
        self.conv_o = nn.Conv2d(2 * hidden, hidden, filter_size, padding=padding, bias=False)  # [c, M] -> o
        self.conv_fuse = nn.Conv2d(2 * hidden, hidden, kernel_size=1, bias=False)  # [c, M] -> h

    def forward(
        self, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor, m: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Advance by one step: `(x, h, c, M) -> (h_new, c_new, M_new, delta_c, delta_m)`.

        `delta_c = i * g` and `delta_m = i' * g'` are the memory increments (PredRNN-v2's
        decoupling loss reads them; PredRNN ignores them).
        """
        i_x, f_x, g_x, i_xm, f_xm, g_xm, o_x = self.conv_x(x).chunk(7, dim=1)
        i_h, f_h, g_h, o_h = self.conv_h(h).chunk(4, dim=1)
        i_m, f_m, g_m = self.conv_m(m).chunk(3, dim=1)

        delta_c = torch.sigmoid(i_x + i_h) * torch.tanh(g_x + g_h)
        c_new = torch.sigmoid(f_x + f_h + FORGET_BIAS) * c + delta_c

        delta_m = torch.sigmoid(i_xm + i_m) * torch.tanh(g_xm + g_m)
        m_new = torch.sigmoid(f_xm + f_m + FORGET_BIAS) * m + delta_m

        memories = torch.cat([c_new, m_new], dim=1)
        o = torch.sigmoid(o_x + o_h + self.conv_o(memories))
        h_new = o * torch.tanh(self.conv_fuse(memories))
        return h_new, c_new, m_new, delta_c, delta_m


class STLSTMForecaster(RecurrentForecaster):
    """A stack of ST-LSTM cells over space-to-depth patches, decoded autoregressively.

    Shared by PredRNN and PredRNN-v2, which differ only in their training objective.
    """

    def __init__(self, shape: DataShape, config: RecurrentConfig):
        super().__init__(shape, config)
        self.cells = nn.ModuleList(
            SpatioTemporalLSTMCell(c_in, c_out, config.filter_size) for c_in, c_out in self.layer_widths()
        )
        self.readout = nn.Conv2d(config.num_hidden[-1], self.frame_channels, kernel_size=1, bias=False)

    def _initial_state(self, frame: torch.Tensor) -> StackState:
        b, _, h, w = frame.shape
        layers = [(frame.new_zeros(b, cell.hidden, h, w), frame.new_zeros(b, cell.hidden, h, w)) for cell in self.cells]
        return layers, frame.new_zeros(b, self.cells[-1].hidden, h, w)

    def advance(
        self, frame: torch.Tensor, state: StackState | None
    ) -> tuple[torch.Tensor, StackState, list[Increments]]:
        """Feed one patched frame through the stack; predict the next patched frame.

        Returns `(next_frame, state, increments)` with one `(delta_c, delta_m)` per layer.
        The spatiotemporal memory enters the bottom layer as the top layer left it at the previous
        step, and goes up the stack from there (the zig-zag flow).
        """
        layers, m = self._initial_state(frame) if state is None else state
        new_layers: list[LayerState] = []
        increments: list[Increments] = []
        inp = frame
        for cell, (h, c) in zip(self.cells, layers, strict=True):
            h, c, m, delta_c, delta_m = cell(inp, h, c, m)
            new_layers.append((h, c))
            increments.append((delta_c, delta_m))
            inp = h
        return self.readout(inp), (new_layers, m), increments

    def _step(self, frame: torch.Tensor, state: StackState | None) -> tuple[torch.Tensor, StackState]:
        next_frame, state, _ = self.advance(frame, state)
        return next_frame, state


class PredRNN(STLSTMForecaster, ScheduledSamplingForecaster):
    """PredRNN: ST-LSTM stack trained with scheduled sampling on the future inputs."""

    config: PredRNNConfig


@register_model(
    "predrnn",
    family="recurrent",
    paper_name="PredRNN",
    reference_params={"12,1,32,64": 23_570_000},
    config=PredRNNConfig,
)
def build_predrnn(shape: DataShape, **overrides: Any) -> PredRNN:
    """PredRNN (Wang et al., 2017): stacked ST-LSTM cells, zig-zag memory, scheduled sampling, patch 2.

    Hyper-parameters and their defaults: `PredRNNConfig`.
    """
    return PredRNN(shape, PredRNNConfig(**overrides))
