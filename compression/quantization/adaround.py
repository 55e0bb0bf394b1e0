"""AdaRound: learn whether each weight rounds up or down so a layer's output on calibration inputs
matches its fp32 output (Nagel et al. 2020, arXiv:2004.10568).

Written here rather than taken from a library: torch.ao's experimental AdaRound is gone from
torch 2.14 (and torch.ao is deprecated), AIMET and BRECQ tie it to their own quantizer modules,
and genbench's codes, scales and zero points (compression.quantization.core) must stay the ones
every other quantizer writes, so the packed size and the kernels see the same format.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call

from compression.quantization.core import QuantizedWeight, from_groups, to_groups

ZETA, GAMMA = 1.1, -0.1  # stretch of the rectified sigmoid (arXiv:2004.10568, Sec. 4.1)


@dataclass(frozen=True)
class AdaRoundSettings:
    """Optimisation of one layer's rounding. Defaults follow BRECQ's (arXiv:2102.05426) code:
    Adam at 1e-3, regularizer weight 0.01, beta annealed 20 -> 2 after a 20% warm-up without the
    regularizer; fewer iterations (BRECQ: 20,000) because a UNet layer here has at most a few
    thousand weights."""

    iters: int = 1000
    batch_size: int = 32
    lr: float = 1e-3
    reg_weight: float = 0.01
    beta_start: float = 20.0
    beta_end: float = 2.0
    warmup: float = 0.2


def rectified_sigmoid(v: torch.Tensor) -> torch.Tensor:
    """h(V) = clip(sigmoid(V) (zeta - gamma) + gamma, 0, 1): reaches 0 and 1 exactly."""
    return (torch.sigmoid(v) * (ZETA - GAMMA) + GAMMA).clamp(0, 1)


def initial_v(rest: torch.Tensor) -> torch.Tensor:
    """V with h(V) = rest (the fractional part of w / s), so training starts at the unrounded
    weight and hard rounding at V0 is nearest rounding."""
    p = ((rest - GAMMA) / (ZETA - GAMMA)).clamp(1e-6, 1 - 1e-6)
    return torch.log(p / (1 - p))


def rounding_regularizer(h: torch.Tensor, beta: float) -> torch.Tensor:
    """f_reg = sum_i 1 - |2 h_i - 1|^beta (eq. 24): 0 only when every h_i is 0 or 1; a large
    beta leaves h free, a small one pushes it to 0 or 1."""
    return (1 - (2 * h - 1).abs().pow(beta)).sum()


def beta_at(step: int, settings: AdaRoundSettings) -> float | None:
    """Annealed beta at `step`, linear from beta_start to beta_end over the steps after the
    warm-up; None during the warm-up (no regularizer)."""
    start = settings.warmup * settings.iters
    if step < start:
        return None
    progress = (step - start) / max(settings.iters - start, 1)
    return settings.beta_end + (settings.beta_start - settings.beta_end) * (1 - progress)


def _weights(qw: QuantizedWeight, floor: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    """(clamp(floor + up + zp, 0, 2^b - 1) - zp) * s in the weight's shape; up in [0, 1]."""
    zp, scale = qw.zero_point.float()[..., None], qw.scale[..., None]
    codes = (floor + up + zp).clamp(0, 2**qw.bits - 1)
    return from_groups((codes - zp) * scale, qw.shape, qw.axis)


def adaround(module: nn.Module, weight: torch.Tensor, qw: QuantizedWeight,
             inputs: torch.Tensor, settings: AdaRoundSettings, generator: torch.Generator,
             param: str = "weight") -> QuantizedWeight:
    """qw with its codes re-chosen by AdaRound; scales and zero points unchanged.

    weight: the fp32 value of module's parameter `param` that qw quantizes; inputs: (N, ...)
    calibration inputs of `module`. Minimises E_x ||f(x; W~) - f(x; W)||^2 (summed over output
    channels, averaged over the rest, as BRECQ's code) + reg_weight * f_reg(h(V)) by Adam on V,
    where W~ = s (clamp(floor(W / s) + h(V) + zp) - zp); then rounds up where h(V) >= 0.5.
    Each codes entry stays within one step of nearest rounding (floor or floor + 1).
    """
    w = weight.detach().float().to(inputs.device)
    g = to_groups(w, qw.axis, qw.group_size)  # (rows, groups, size)
    scaled = g / qw.scale[..., None].to(g.device)
    floor = scaled.floor()
    v = initial_v(scaled - floor).requires_grad_(True)
    opt = torch.optim.Adam([v], lr=settings.lr)
    fp = {param: w}
    for step in range(settings.iters):
        idx = torch.randint(inputs.shape[0], (min(settings.batch_size, inputs.shape[0]),),
                            generator=generator)
        x = inputs[idx]
        with torch.no_grad():
            target = functional_call(module, fp, (x,))
        h = rectified_sigmoid(v)
        out = functional_call(module, {param: _weights(qw, floor, h)}, (x,))
        loss = (out - target).pow(2).sum(1).mean()
        beta = beta_at(step, settings)
        if beta is not None:
            loss = loss + settings.reg_weight * rounding_regularizer(h, beta)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    with torch.no_grad():
        up = (rectified_sigmoid(v) >= 0.5).float()
        zp = qw.zero_point.float()[..., None]
        codes = (floor + up + zp).clamp(0, 2**qw.bits - 1)
    codes = from_groups(codes, qw.shape, qw.axis).to(torch.uint8)
    return QuantizedWeight(codes.cpu(), qw.scale, qw.zero_point, qw.bits, qw.axis,
                           qw.group_size, qw.scheme)
