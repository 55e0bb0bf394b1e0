"""Quantization-aware fine-tuning ("qat"): STE or learned step sizes (LSQ) on the family loss."""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from compression.accounting import prunable_tensors
from compression.api import (
    EXECUTION_SIMULATED,
    CompressedModel,
    CompressionContext,
    MethodConfig,
    register_method,
)
from compression.finetune import finetune, step_key
from compression.quantization.core import (
    SCHEMES,
    QuantizedWeight,
    check_bits,
    from_groups,
    quantize_codes,
    quantize_weight,
    to_groups,
)
from compression.quantization.ptq import channel_axis
from genmodels.base import GenerativeModel

ESTIMATORS = ("lsq", "ste")
QAT_GRANULARITIES = ("tensor", "channel")


@dataclass(frozen=True)
class QATConfig(MethodConfig):
    """Fake-quantized fine-tuning with the family's own loss (+ distill_weight * output MSE to
    the fp32 teacher on shared z), then real k-bit codes. LSQ needs the symmetric scheme."""

    method: ClassVar[str] = "qat"
    bits: int = 2
    granularity: str = "channel"
    estimator: str = "lsq"
    steps: int = 200
    lr: float = 1e-4
    scheme: str = "symmetric"
    batch_size: int = 64
    distill_weight: float = 0.0

    def __post_init__(self) -> None:
        check_bits(self.bits)
        if self.granularity not in QAT_GRANULARITIES:
            raise ValueError(
                f"granularity must be one of {QAT_GRANULARITIES}; got {self.granularity!r}")
        if self.estimator not in ESTIMATORS:
            raise ValueError(f"estimator must be one of {ESTIMATORS}; got {self.estimator!r}")
        if self.scheme not in SCHEMES:
            raise ValueError(f"scheme must be one of {SCHEMES}; got {self.scheme!r}")
        if self.estimator == "lsq" and self.scheme != "symmetric":
            raise ValueError("estimator='lsq' learns a symmetric step size: use scheme='symmetric'")
        if self.steps < 0 or self.lr <= 0 or self.batch_size < 1 or self.distill_weight < 0:
            raise ValueError("need steps >= 0, lr > 0, batch_size >= 1, distill_weight >= 0")

    @classmethod
    def example(cls) -> QATConfig:
        return cls(bits=2, steps=2, batch_size=16)

    def settings(self) -> dict[str, Any]:
        return {"bits": self.bits, "granularity": self.granularity,
                "rounding": f"qat-{self.estimator}", "finetune_steps": self.steps,
                "scheme": self.scheme, "lr": self.lr, "distill_weight": self.distill_weight}


def round_ste(x: torch.Tensor) -> torch.Tensor:
    """round(x) in the forward pass, identity gradient (straight-through, arXiv:1308.3432)."""
    return x + (torch.round(x) - x).detach()


def grad_scale(x: torch.Tensor, factor: float) -> torch.Tensor:
    """x in the forward pass, gradient multiplied by `factor` (LSQ, arXiv:1902.08153)."""
    # x + (s - s) with s = x*factor: exactly x forward ((x - s).detach() + s rounds by an ulp).
    scaled = x * factor
    return x.detach() + (scaled - scaled.detach())


class STEFakeQuant(nn.Module):
    """w -> w_hat = Q(w) with min-max scales re-estimated from the current w at every call;
    d w_hat / d w = 1 (STE)."""

    def __init__(self, bits: int, scheme: str, axis: int | None) -> None:
        super().__init__()
        self.bits, self.scheme, self.axis = bits, scheme, axis

    def quantize(self, w: torch.Tensor) -> QuantizedWeight:
        return quantize_codes(w, self.bits, self.scheme, self.axis)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return w + (self.quantize(w).dequantize() - w).detach()


class LSQFakeQuant(nn.Module):
    """w_hat = round(clamp(w / s, Qn, Qp)) * s with a learned step s per row (LSQ,
    arXiv:1902.08153), Qn = -2^(b-1), Qp = 2^(b-1) - 1. The gradient of s is scaled by
    g = 1 / sqrt(N * Qp), N = weights sharing s; s starts at the MSE-optimal symmetric scale."""

    def __init__(self, w: torch.Tensor, bits: int, axis: int | None) -> None:
        super().__init__()
        self.bits, self.axis = bits, axis
        self.qn, self.qp = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
        init = quantize_weight(w, bits, "symmetric", "tensor" if axis is None else "channel",
                               "mse", 0 if axis is None else axis)
        self.scale = nn.Parameter(init.scale.clone())  # (rows, 1)
        per_scale = w.numel() // self.scale.numel()
        self.grad_factor = 1.0 / math.sqrt(per_scale * self.qp)

    def _step(self) -> torch.Tensor:
        return grad_scale(self.scale, self.grad_factor).clamp(min=1e-8)[..., None]

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        s = self._step()
        q = round_ste(torch.clamp(to_groups(w, self.axis, None) / s, self.qn, self.qp))
        return from_groups(q * s, tuple(w.shape), self.axis)

    @torch.no_grad()
    def quantize(self, w: torch.Tensor) -> QuantizedWeight:
        s = self.scale.detach().clamp(min=1e-8)
        q = torch.clamp(torch.round(to_groups(w.float(), self.axis, None) / s[..., None]),
                        self.qn, self.qp) - self.qn
        codes = from_groups(q, tuple(w.shape), self.axis).to(torch.uint8)
        zero_point = torch.full(s.shape, -self.qn, dtype=torch.uint8)
        return QuantizedWeight(codes, s.float().clone(), zero_point, self.bits, self.axis, None,
                               "symmetric")


def teacher_matching(teacher: GenerativeModel, weight: float, batch: int):
    """extra_loss: weight * MSE(model(z), teacher(z)) on z drawn from the loop's generator."""

    def extra_loss(model: GenerativeModel, x: torch.Tensor, generator: torch.Generator
                   ) -> torch.Tensor:
        z = model.latent(batch, generator)
        with torch.no_grad():
            target = teacher(z)
        return weight * F.mse_loss(model(z), target)

    return extra_loss


@register_method(QATConfig)
def quantize_qat(cm: CompressedModel, config: QATConfig, ctx: CompressionContext
                 ) -> CompressedModel:
    model = cm.model
    teacher = copy.deepcopy(model).eval() if config.distill_weight > 0 else None
    targets = prunable_tensors(model)
    for _, module, pname in targets:
        w = getattr(module, pname).detach()
        axis = None if config.granularity == "tensor" else channel_axis(module)
        fq = (LSQFakeQuant(w, config.bits, axis) if config.estimator == "lsq"
              else STEFakeQuant(config.bits, config.scheme, axis))
        parametrize.register_parametrization(module, pname, fq.to(w.device))
    extra = (teacher_matching(teacher, config.distill_weight, config.batch_size)
             if teacher is not None else None)
    history = finetune(model, ctx, config.steps, config.lr, config.batch_size, extra_loss=extra,
                       key=step_key(cm, config))
    for name, module, pname in targets:
        fq = module.parametrizations[pname][0]
        parametrize.remove_parametrizations(module, pname, leave_parametrized=False)
        weight = getattr(module, pname)
        qw = fq.quantize(weight.detach())
        with torch.no_grad():
            weight.copy_(qw.dequantize().to(weight.device, weight.dtype))
        cm.quantized[name] = qw
    cm.execution = EXECUTION_SIMULATED
    cm.notes["quantized_tensors"] = len(cm.quantized)
    cm.notes["qat_loss_first_last"] = [history[0], history[-1]] if history else []
    return cm
