"""The graphs a sampling path is exported as: whole forward(z), the RVAE's row step, a denoiser.

The RVAE decoder is autoregressive over rows, so (as one deploys such a decoder) two graphs are
exported: `init` z -> initial state, and `step` (previous row's probabilities, z, state) -> (this
row's probabilities, next state), driven row by row by compression.runtimes.onnx_model. A
diffusion model exports its denoiser; its sampler loop stays in Python.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from genmodels.base import GenerativeModel
from genmodels.models.rvae import RecurrentVAE

SAMPLING = "sampling"  # graph names: whole path z -> images
ROW_INIT, ROW_STEP = "init", "step"  # autoregressive decoder: z -> state; one row per call
DENOISE = "denoise"  # diffusion: the denoiser (x_t, t) -> eps, one call per sampling step


class RowInit(nn.Module):
    """z (B, D) -> initial decoder state: h (1, B, hid) (LSTM: and c, zeros)."""

    def __init__(self, model: RecurrentVAE) -> None:
        super().__init__()
        self.model = model

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, ...]:
        state = self.model._init_state(z)
        return tuple(state) if isinstance(state, tuple) else (state,)


class RowStep(nn.Module):
    """One free-running decoder row, exactly RecurrentVAE.decode's loop body followed by the
    sigmoid of forward: (prev (B, W*C), z (B, D), *state) -> (probs (B, W*C), *next_state).

    cell_as_gemm: write the GRU/LSTM cell's equations out (two Linear + gates) instead of calling
    the RNN module, so the graph holds Gemm ops, not one ONNX GRU/LSTM op: ORT quantizes no GRU,
    but it runs Gemm on int8 kernels. Same maths as torch.nn.GRU / nn.LSTM (their docs' gates).
    """

    def __init__(self, model: RecurrentVAE, cell_as_gemm: bool = False) -> None:
        super().__init__()
        self.model, self.cell_as_gemm = model, cell_as_gemm

    def forward(self, prev: torch.Tensor, z: torch.Tensor, h: torch.Tensor,
                c: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        x = torch.cat([prev, z], dim=1)  # (B, W*C + D)
        if self.cell_as_gemm:
            out, nxt = _cell_step(self.model.decoder_rnn, x, h[0], None if c is None else c[0])
        else:
            rnn_state = h if c is None else (h, c)
            out, nxt = self.model.decoder_rnn(x.unsqueeze(1), rnn_state)
            out = out[:, 0]
        probs = torch.sigmoid(self.model.dec_out(out))
        return (probs, *(nxt if isinstance(nxt, tuple) else (nxt,)))


def _cell_step(rnn: nn.Module, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor | None
               ) -> tuple[torch.Tensor, torch.Tensor | tuple[torch.Tensor, torch.Tensor]]:
    """One step of a single-layer nn.GRU / nn.LSTM from its weights: (B, in), (B, hid) -> output
    (B, hid) and the next state shaped as the module returns it ((1, B, hid) each).
    GRU: r, u = sigmoid(gi_r + gh_r), sigmoid(gi_u + gh_u); n = tanh(gi_n + r * gh_n);
    h' = (1 - u) * n + u * h.  LSTM: i, f, g, o gates; c' = f * c + i * g; h' = o * tanh(c')."""
    gi = F.linear(x, rnn.weight_ih_l0, rnn.bias_ih_l0)
    gh = F.linear(h, rnn.weight_hh_l0, rnn.bias_hh_l0)
    if isinstance(rnn, nn.GRU):
        i_r, i_u, i_n = gi.chunk(3, dim=1)
        h_r, h_u, h_n = gh.chunk(3, dim=1)
        reset, update = torch.sigmoid(i_r + h_r), torch.sigmoid(i_u + h_u)
        new = torch.tanh(i_n + reset * h_n)
        h_next = (1 - update) * new + update * h
        return h_next, h_next.unsqueeze(0)
    i, f, g, o = (gi + gh).chunk(4, dim=1)
    c_next = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    h_next = torch.sigmoid(o) * torch.tanh(c_next)
    return h_next, (h_next.unsqueeze(0), c_next.unsqueeze(0))


class DenoiseStep(nn.Module):
    """The diffusion model's denoiser: (x_t (B, C, H, W), t (B,) int64) -> eps (B, C, H, W)."""

    def __init__(self, model: GenerativeModel) -> None:
        super().__init__()
        self.unet = model.unet

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.unet(x, t)


def is_denoiser_driven(model: GenerativeModel) -> bool:
    """True for diffusion models (a `unet` called once per step by `ddim_sample`): the sampler's
    loop stays in Python and only the denoiser is exported (duck-typed: genmodels' DDPM)."""
    return hasattr(model, "ddim_sample") and isinstance(getattr(model, "unet", None), nn.Module)


def graph_calls(model: GenerativeModel, graph: str) -> int:
    """How many times forward(z) runs `graph`."""
    if graph == ROW_STEP:
        return model.n_rows
    return model.steps if graph == DENOISE else 1


def is_row_driven(model: GenerativeModel) -> bool:
    """True when the sampling path is exported as a row step (autoregressive decoder)."""
    return isinstance(model, RecurrentVAE)


def state_names(model: GenerativeModel) -> tuple[str, ...]:
    return ("h", "c") if getattr(model, "cell", "") == "lstm" else ("h",)
