"""E3D-LSTM: stacked Eidetic 3D LSTM cells over a sliding window of frames, decoded autoregressively.

Wang et al., "Eidetic 3D LSTM: A Model for Video Prediction and Beyond", ICLR 2019. Two ideas on
top of PredRNN's spatiotemporal LSTM (ST-LSTM):

- **3-D convolutions**: each step reads not one frame but the window of the `window_length` most
  recent frames, `X_t: (C, window, H, W)`, and every state of a cell (hidden `H`, cell `C`, the
  spatiotemporal memory `M`) is such a short clip. All gate convolutions are 3-D with kernel
  `(2, 5, 5)` (time, height, width);
- **eidetic memory**: the forget gate of the cell state is replaced by a recall gate `R_t` that
  attends (softmax self-attention) over the cell states of the previous `tau` steps:

      R_t  = sigmoid(W_xr * X_t + W_hr * H_{t-1})           I_t = sigmoid(W_xi * X_t + W_hi * H_{t-1})
      G_t  = tanh(W_xg * X_t + W_hg * H_{t-1})
      RECALL(R_t, C_{t-tau:t-1}) = softmax(R_t . C_hist^T) . C_hist
      C_t  = I_t (.) G_t + LayerNorm(C_{t-1} + RECALL(R_t, C_{t-tau:t-1}))
      I'_t = sigmoid(W'_xi * X_t + W_mi * M)                G'_t = tanh(W'_xg * X_t + W_mg * M)
      F'_t = sigmoid(W'_xf * X_t + W_mf * M + 1)
      M'   = F'_t (.) tanh(W_mm * M) + I'_t (.) G'_t
      O_t  = sigmoid(W_xo * X_t + W_ho * H_{t-1} + W_co * C_t + W_mo * M')
      H_t  = O_t (.) tanh(W_111 * [C_t, M'])

  In the attention every space-time position `(window, h, w)` of the clip is a token whose features
  are the `num_hidden` channels: the query is `R_t` (window*h*w tokens), keys and values are the
  stacked cell-state history (n_hist*window*h*w tokens). This is the paper's reading ("3D
  self-attention" over the memory's positions) and what the authors' TensorFlow code computes
  (google/e3d_lstm `src/layers/rnn_cell.py`, `_attn`: its tensors are channels-last
  `(b, l, w, h, c)`, reshaped to `(b, -1, c)`, the history stacked on the time axis). OpenSTL's
  port (`openstl/modules/e3dlstm_modules.py`, `_attn`) reshapes its channels-first `(B, C, T, H, W)`
  tensors to `(B, -1, C)` without a permute, with the history stacked on the *channel* axis: its
  "tokens" are runs of `C` consecutive values of one channel's flattened (window, h, w) map (at the
  weather shape, where window*h*w = 1024 is a multiple of C = 128) and its "features" are
  positions, a different operation with the same parameter count. We keep the paper's reading;
  OpenSTL's published E3D-LSTM numbers come from the other one. `M` flows zig-zag as in PredRNN:
  up through the layers within a step, then from the top layer to the bottom layer of the next
  step.

A 3-D conv with kernel = stride = `(window_length, 1, 1)` reads the top hidden clip out to the next
(patched) frame. As for ConvLSTM, the model runs over `T_in + T_out - 1` steps with scheduled
sampling in training (see `baselines.recurrent`).

Published settings (OpenSTL, WeatherBench 5.625 deg): the defaults of `E3DLSTMConfig` (window
stride 1: one new frame per step), no layer norm on the gate convolutions, loss = **MSE + L1** on
all `T_in + T_out - 1` generated frames, both means with weight 1: OpenSTL's `E3DLSTM_Model`
(`openstl/models/e3dlstm_model.py`) returns `nn.MSELoss()(gen, truth) + nn.L1Loss()(gen, truth)`;
the authors' TF code (`src/models/eidetic_3d_lstm_net.py`) uses sums, `tf.nn.l2_loss` (half the
sum of squares) + the sum of absolute errors = `n * (MSE / 2 + L1)` over `n` values: the same two
terms, L1 weighted twice as much against the MSE, the whole scaled by `n`. `training_loss` logs
`mse`, `l1`, `mse_future` and `sampling_eta`.

Schedule rule (`schedule`, as ConvLSTM, see `baselines.recurrent`): `"relative"` (the default) reads
the published schedule as fractions of this run (step `k` of `N` counts as published step
`k * 164,250 / N`: eta 1.0 at step 0, 0.5 at 15.2%, 0 from 30.4% of the run on); `"absolute"` uses
the published step values as they are.

Conv layout, worked out to reproduce the reference parameter count (OpenSTL re-counted 51.33M at
shape (12, 1, 32, 64), all weights used; its published table says 51.09M). Per cell, no biases:
- `conv_x`: 3-D conv of the input clip to 7 gate maps (i, g, r, o for `C`/`H`; i', g', f' for `M`);
- `conv_h`: 3-D conv of `H_{t-1}` to 4 maps (i, g, r, o);
- `conv_m`: 3-D conv of `M` to 4 maps (i', f', g' and the retained memory `W_mm * M`);
- `conv_oc`, `conv_om`: 3-D convs of the new `C_t` and the new `M'` into the output gate;
- `conv_cm`: 1x1x1 conv of `[C_t, M']` to the hidden state;
- `cell_norm`: the LayerNorm of `C_{t-1} + RECALL`, over (channels, window, h, w) of each sample
  with a per-element affine (as OpenSTL: `2 * num_hidden * window * h * w` weights per cell, the
  only weights whose number depends on the frame size).
Plus the readout, `num_hidden[-1] * C*p*p * window` weights. At (12, 1, 32, 64) with the defaults
that is **51,331,072** parameters (50,282,496 in convolutions, 1,048,576 in the four cell norms),
i.e. OpenSTL's 51.33M exactly, and +0.47% against the published 51.09M.

Implementation notes (every *choice* is ours):
- *choice*: the retained spatiotemporal memory is `tanh(W_mm * M)` gated by F', as in the authors'
  released code and OpenSTL, where the paper writes `F' (.) M`; the 4th map of `conv_m` exists only
  for this (without it the count would be 48.05M, -6.4%). The forget gate of `M` gets a constant
  +1 bias (`forget_bias=1.0` in both reference codes); no gate convolution has a learned bias.
- *choice*: the new `M'` is passed on. Both reference codes return the *old* memory from the cell,
  so there `M` never leaves its zero start; we follow the paper's zig-zag flow (which is also why
  every layer must have the same width). The output gate is `sigmoid(...)` as in the paper (the reference
  codes use `sigmoid(tanh(...))`).
- *choice*: `tau=None` (the default) attends over **every** previous cell state, as the authors'
  code and OpenSTL do (they concatenate each step's cell state onto an ever-growing history,
  starting with the zero initial state): at the last step that is `T_in + T_out - 1` states. An
  integer `tau` keeps only the `tau` most recent ones (`C_{t-tau}`..`C_{t-1}`), bounding the
  attention's cost. The dot products are not scaled by 1/sqrt(d), as in the paper and both codes.
  The attention runs through `scaled_dot_product_attention`, so it never materializes the
  (queries x keys) matrix on the devices that have a fused kernel (CPU and CUDA).
- *choice*: the window before the first frames is padded with zero frames (the first step sees
  `[0, x_0]`), as both reference codes do; so any `T_in >= 1` works, `T_in < window_length` too.
- *choice*: the 3-D convolutions are causal in time: `kernel_t - 1` zero frames are padded at the
  start of the clip, so each output frame of the clip sees itself and earlier frames and the clip
  keeps its length (the TensorFlow original pads 'same', i.e. at the end; OpenSTL convolves without
  time padding and interpolates the result back to the clip's size). Space is padded 'same'.
- *choice*: the scheduled-sampling draw is one Bernoulli(eta) per sample and future frame, and
  metrics score only the `T_out` future frames, as for ConvLSTM.
- *choice*: `schedule="relative"` by default (the published step counts fit OpenSTL's runs, not
  ours); without `plan_schedule` a relative model uses the reference length, i.e. the published
  step values.
- *choice*: the L1 term is a mean over all values, as in OpenSTL (the TF code's sums scale the
  loss, and with it the learning rate, by the number of values; OpenSTL's rates are set for means).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from baselines.recurrent import (
    ScheduledSamplingConfig,
    ScheduledSamplingForecaster,
    check_positive_int,
    check_positive_ints,
)
from benchmark.registry import register_model
from benchmark.registry.shapes import DataShape

FORGET_BIAS = 1.0  # constant added to the forget gate of M, as in the reference codes


@dataclass(frozen=True)
class E3DLSTMConfig(ScheduledSamplingConfig):
    """Hyper-parameters of `e3dlstm`; the defaults are the published settings (OpenSTL, WeatherBench
    5.625 deg): `patch_size=2` (space-to-depth), `num_hidden=(128, 128, 128, 128)` (one width for
    every layer: `M` passes between them), `filter_size=(2, 5, 5)` (time, height, width; odd height
    and width, time extent <= `window_length`), `window_length=2`, `tau=None` (the recall attends
    over every previous cell state; an integer keeps the `tau` most recent), scheduled sampling from
    1.0 falling by 2e-5 per step (eta = 0 from step 50,000 of OpenSTL's 164,250, i.e. 30.4% of
    training), `schedule="relative"`.
    """

    model_name: ClassVar[str] = "e3dlstm"
    equal_widths: ClassVar[bool] = True

    filter_size: tuple[int, int, int] = (2, 5, 5)
    window_length: int = 2
    tau: int | None = None

    def validate_filter_size(self) -> None:
        """A 3-D kernel (time, height, width) with odd height and width, kept as a tuple."""
        kernel = check_positive_ints(self.model_name, "filter_size", self.filter_size)
        self.require(
            len(kernel) == 3 and kernel[1] % 2 == 1 and kernel[2] % 2 == 1,
            "filter_size must be three positive integers (time, height, width) with odd height and width "
            f"(so 'same' padding keeps the frame size), got {self.filter_size!r}. The published value is [2, 5, 5].",
        )
        object.__setattr__(self, "filter_size", tuple(kernel))

    def validate(self) -> None:
        """The shared checks, then the window's (against the kernel's time extent) and `tau`'s."""
        super().validate()
        window = check_positive_int(self.model_name, "window_length", self.window_length)
        self.require(
            self.filter_size[0] <= window,
            f"the time extent of filter_size ({self.filter_size[0]}) exceeds window_length ({window}); its "
            "extra taps would only ever see padding. Use a time kernel <= window_length (published: "
            "filter_size [2, 5, 5] with window_length 2).",
        )
        tau = self.tau
        self.require(
            tau is None or (isinstance(tau, int) and not isinstance(tau, bool) and tau >= 1),
            "tau (how many past cell states the recall attends over) must be a positive integer, or null "
            f"for all of them (the published setting), got {tau!r}.",
        )


class CausalConv3d(nn.Conv3d):
    """3-D convolution without bias that keeps the clip's shape: causal in time, 'same' in space."""

    def __init__(self, in_channels: int, out_channels: int, kernel: Sequence[int]):
        kt, kh, kw = kernel
        super().__init__(in_channels, out_channels, tuple(kernel), padding=(0, kh // 2, kw // 2), bias=False)
        self.time_pad = kt - 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # F.pad's order is (w_left, w_right, h_top, h_bottom, t_front, t_back).
        return super().forward(F.pad(x, (0, 0, 0, 0, self.time_pad, 0)))


def eidetic_recall(query: torch.Tensor, history: Sequence[torch.Tensor]) -> torch.Tensor:
    """`RECALL(R, C_hist) = softmax(R . C_hist^T) . C_hist` over all space-time positions.

    `query: (B, E, w, h, wd)`; `history`: cell states of the same shape. Each position of the clip
    is a token with `E` features; the `w*h*wd` query tokens attend over the `len(history)*w*h*wd`
    history tokens. Returns a tensor shaped like `query`.
    """
    # Tokens-major and contiguous: the fused (flash) kernels need the feature dimension innermost.
    q = query.flatten(2).transpose(1, 2).unsqueeze(1).contiguous()  # (B, 1, L, E)
    kv = torch.cat([c.flatten(2) for c in history], dim=2).transpose(1, 2).unsqueeze(1).contiguous()  # (B, 1, S, E)
    out = F.scaled_dot_product_attention(q, kv, kv, scale=1.0)  # unscaled, as in the paper
    return out.squeeze(1).transpose(1, 2).reshape(query.shape)


class Eidetic3DLSTMCell(nn.Module):
    """One E3D-LSTM cell: 3-D conv gates, recall over the cell-state history, zig-zag memory M."""

    def __init__(self, in_channels: int, hidden: int, kernel: Sequence[int], clip_shape: Sequence[int]):
        super().__init__()
        self.hidden = hidden
        self.conv_x = CausalConv3d(in_channels, 7 * hidden, kernel)
        self.conv_h = CausalConv3d(hidden, 4 * hidden, kernel)
        self.conv_m = CausalConv3d(hidden, 4 * hidden, kernel)
        self.conv_oc = CausalConv3d(hidden, hidden, kernel)
        self.conv_om = CausalConv3d(hidden, hidden, kernel)
        self.conv_cm = nn.Conv3d(2 * hidden, hidden, kernel_size=1, bias=False)
        # LayerNorm of C_{t-1} + RECALL over (hidden, window, h, w), per-element affine (see module doc).
        self.cell_norm = nn.LayerNorm([hidden, *clip_shape])

    def forward(
        self, x: torch.Tensor, h: torch.Tensor, m: torch.Tensor, history: Sequence[torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Advance by one step: `(X_t, H_{t-1}, M, [.., C_{t-1}]) -> (H_t, C_t, M')`.

        `history` holds the cell states the recall attends over, oldest first; its last entry is
        `C_{t-1}`, the cell state this step updates.
        """
        i_x, g_x, r_x, o_x, mi_x, mg_x, mf_x = self.conv_x(x).chunk(7, dim=1)
        i_h, g_h, r_h, o_h = self.conv_h(h).chunk(4, dim=1)
        mi_m, mf_m, mg_m, mm_m = self.conv_m(m).chunk(4, dim=1)

        recall_gate = torch.sigmoid(r_x + r_h)
        c = self.cell_norm(history[-1] + eidetic_recall(recall_gate, history))
        c = c + torch.sigmoid(i_x + i_h) * torch.tanh(g_x + g_h)

        m_input = torch.sigmoid(mi_x + mi_m)
        m_forget = torch.sigmoid(mf_x + mf_m + FORGET_BIAS)
        m = m_forget * torch.tanh(mm_m) + m_input * torch.tanh(mg_x + mg_m)

        o = torch.sigmoid(o_x + o_h + self.conv_oc(c) + self.conv_om(m))
        h = o * torch.tanh(self.conv_cm(torch.cat([c, m], dim=1)))
        return h, c, m


class E3DState(NamedTuple):
    """Recurrent state between steps.

    `frames`: the `window_length - 1` most recent input frames (oldest first); `hidden[k]`: layer
    `k`'s `H`; `cells[k]`: layer `k`'s cell-state history, oldest first, capped at `tau` entries,
    whose last entry is its current `C`; `memory`: the spatiotemporal memory `M` of the top layer.
    """

    frames: list[torch.Tensor]
    hidden: list[torch.Tensor]
    cells: list[list[torch.Tensor]]
    memory: torch.Tensor


class E3DLSTM(ScheduledSamplingForecaster):
    """Stacked Eidetic 3D LSTM cells over space-to-depth patches, with scheduled sampling in training."""

    config: E3DLSTMConfig

    def __init__(self, shape: DataShape, config: E3DLSTMConfig):
        super().__init__(shape, config)
        p, window = config.patch_size, config.window_length
        clip_shape = (window, self.shape.height // p, self.shape.width // p)
        self.cells = nn.ModuleList(
            Eidetic3DLSTMCell(c_in, c_out, config.filter_size, clip_shape) for c_in, c_out in self.layer_widths()
        )
        # Collapse the clip's window to one frame: kernel = stride = (window, 1, 1).
        self.readout = nn.Conv3d(
            config.num_hidden[-1], self.frame_channels, kernel_size=(window, 1, 1), stride=(window, 1, 1), bias=False
        )

    def frame_loss(self, pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """MSE + L1 (both means, weight 1, as OpenSTL) over all generated frames; logs both terms."""
        mse = F.mse_loss(pred, target)
        l1 = F.l1_loss(pred, target)
        return mse + l1, {"mse": mse.detach(), "l1": l1.detach()}

    def initial_state(self, frame: torch.Tensor) -> E3DState:
        """Zero state for a batch of patched frames `(B, C*p*p, h, w)`."""
        b, _, h, w = frame.shape
        win = self.config.window_length

        def zeros(cell: Eidetic3DLSTMCell) -> torch.Tensor:
            return frame.new_zeros(b, cell.hidden, win, h, w)

        return E3DState(
            frames=[torch.zeros_like(frame) for _ in range(win - 1)],  # zero padding before the first frame
            hidden=[zeros(cell) for cell in self.cells],
            cells=[[zeros(cell)] for cell in self.cells],
            memory=zeros(self.cells[-1]),
        )

    def _step(self, frame: torch.Tensor, state: E3DState | None) -> tuple[torch.Tensor, E3DState]:
        """Feed one patched frame through the stack; predict the next patched frame."""
        if state is None:
            state = self.initial_state(frame)
        frames = [*state.frames, frame]
        inp = torch.stack(frames, dim=2)  # the clip (B, C*p*p, window, h, w)
        m = state.memory  # zig-zag: the top layer's M of the previous step enters the bottom layer
        hidden, cells = [], []
        for cell, h, history in zip(self.cells, state.hidden, state.cells, strict=True):
            h, c, m = cell(inp, h, m, history)
            history = [*history, c]
            if self.config.tau is not None:
                history = history[-self.config.tau :]
            hidden.append(h)
            cells.append(history)
            inp = h
        next_frame = self.readout(inp).squeeze(2)
        return next_frame, E3DState(frames[1:], hidden, cells, m)


@register_model(
    "e3dlstm",
    family="recurrent",
    paper_name="E3D-LSTM",
    reference_params={"12,1,32,64": 51_330_000},
    config=E3DLSTMConfig,
)
def build_e3dlstm(shape: DataShape, **overrides: Any) -> E3DLSTM:
    """E3D-LSTM (Wang et al., 2019): 3-D conv ST-LSTM cells with eidetic recall, patch 2.

    Hyper-parameters and their defaults: `E3DLSTMConfig`.
    """
    return E3DLSTM(shape, E3DLSTMConfig(**overrides))
