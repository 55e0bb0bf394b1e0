"""Post-training quantization (method "quant"): k-bit weights, optional calibrated 8-bit inputs."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from compression.accounting import prunable_tensors
from compression.api import (
    EXECUTION_SIMULATED,
    CompressedModel,
    CompressionContext,
    MethodConfig,
    register_method,
)
from compression.quantization.core import (
    GRANULARITIES,
    ROUNDINGS,
    SCHEMES,
    check_bits,
    qparams,
    quantize_weight,
)
from genmodels.base import GenerativeModel

CALIBRATION_BATCHES = 4
CALIBRATION_BATCH_SIZE = 64


def channel_axis(module: nn.Module) -> int:
    """Output-channel axis of a weight: ConvTranspose2d stores (in, out, kH, kW) so it is dim 1;
    Conv2d/Linear (out, in, ...) and GRU/LSTM (gates*hidden, in: one row per gate unit) dim 0."""
    return 1 if isinstance(module, nn.ConvTranspose2d) else 0


@dataclass(frozen=True)
class QuantConfig(MethodConfig):
    """Weight-only (or W/A) post-training quantization of every prunable weight.

    rounding="naive" is per-tensor by definition (the seed's method), so it requires
    granularity="tensor" rather than silently overriding another choice.
    activation_bits=8 fake-quantizes each layer's input on a per-tensor min-max range
    calibrated on ctx.train_x (W8A8, W4A8); None keeps fp32 activations.
    """

    method: ClassVar[str] = "quant"
    bits: int = 8
    scheme: str = "affine"
    granularity: str = "channel"
    group_size: int = 64
    rounding: str = "mse"
    activation_bits: int | None = None

    def __post_init__(self) -> None:
        check_bits(self.bits)
        if self.scheme not in SCHEMES:
            raise ValueError(f"scheme must be one of {SCHEMES}; got {self.scheme!r}")
        if self.granularity not in GRANULARITIES:
            raise ValueError(
                f"granularity must be one of {GRANULARITIES}; got {self.granularity!r}")
        if self.rounding not in ROUNDINGS:
            raise ValueError(f"rounding must be one of {ROUNDINGS}; got {self.rounding!r}")
        if self.rounding == "naive" and self.granularity != "tensor":
            raise ValueError("rounding='naive' is per-tensor min-max: set granularity='tensor'")
        if self.group_size < 1:
            raise ValueError(f"group_size must be >= 1; got {self.group_size}")
        if self.activation_bits is not None:
            check_bits(self.activation_bits)

    @classmethod
    def example(cls) -> QuantConfig:
        return cls(bits=4, rounding="minmax")

    @classmethod
    def naive(cls, bits: int = 8) -> QuantConfig:
        """The seed's 8-bit recipe (per-tensor min-max), with correct arithmetic."""
        return cls(bits=bits, granularity="tensor", rounding="naive")

    def settings(self) -> dict[str, Any]:
        out = {"bits": self.bits, "granularity": self.granularity, "rounding": self.rounding,
               "scheme": self.scheme, "activation_bits": self.activation_bits}
        if self.granularity == "group":
            out["group_size"] = self.group_size
        return out


class ActivationFakeQuant:
    """Forward pre-hook: per-tensor affine fake quantization of a layer's first input on a
    fixed calibrated range (a callable object, not a closure, so deepcopy keeps it)."""

    def __init__(self, lo: float, hi: float, bits: int) -> None:
        self.lo, self.hi, self.bits = lo, hi, bits
        scale, zp = qparams(torch.tensor(lo), torch.tensor(hi), bits, "affine")
        self.scale, self.zero_point = float(scale), int(zp)

    def __call__(self, module: nn.Module, args: tuple) -> tuple | None:
        if not args or not isinstance(args[0], torch.Tensor):
            return None
        x = args[0]
        q = (torch.round(x / self.scale) + self.zero_point).clamp(0, 2**self.bits - 1)
        return ((q - self.zero_point) * self.scale, *args[1:])


@torch.no_grad()
def calibrate_input_ranges(model: GenerativeModel, modules: dict[str, nn.Module],
                           ctx: CompressionContext) -> dict[str, tuple[float, float]]:
    """Min-max of each module's first input over the deployed path model(z) and, when training
    images are given, the family's own loss on a few batches (covers VAE encoders)."""
    ranges: dict[str, list[float]] = {}

    def recorder(name: str):
        def hook(module: nn.Module, args: tuple) -> None:
            if args and isinstance(args[0], torch.Tensor):
                lo, hi = float(args[0].min()), float(args[0].max())
                old = ranges.get(name, [lo, hi])
                ranges[name] = [min(old[0], lo), max(old[1], hi)]
        return hook

    handles = [m.register_forward_pre_hook(recorder(n)) for n, m in modules.items()]
    gen = torch.Generator().manual_seed(ctx.seed)
    was_training = model.training
    model.eval()
    try:
        for _ in range(CALIBRATION_BATCHES):
            model(model.latent(CALIBRATION_BATCH_SIZE, gen))
        if ctx.train_x is not None and len(ctx.train_x):
            for x in ctx.train_x[: CALIBRATION_BATCHES * CALIBRATION_BATCH_SIZE].split(
                    CALIBRATION_BATCH_SIZE):
                model.finetune_loss(x.to(model.device), gen)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return {name: (lo, hi) for name, (lo, hi) in ranges.items()}


def quantize_model_weights(cm: CompressedModel, config: QuantConfig,
                           bits: dict[str, int] | None = None) -> None:
    """Replace every prunable weight by its dequantized codes; record codes in cm.quantized.
    `bits` overrides config.bits for the weights it names."""
    for name, module, pname in prunable_tensors(cm.model):
        weight = getattr(module, pname)
        qw = quantize_weight(weight, (bits or {}).get(name, config.bits), config.scheme,
                             config.granularity,
                             config.rounding, channel_axis(module), config.group_size)
        with torch.no_grad():
            weight.copy_(qw.dequantize().to(weight.device, weight.dtype))
        cm.quantized[name] = qw


@register_method(QuantConfig)
def quantize_ptq(cm: CompressedModel, config: QuantConfig, ctx: CompressionContext
                 ) -> CompressedModel:
    quantize_model_weights(cm, config)
    cm.execution = EXECUTION_SIMULATED
    cm.notes["quantized_tensors"] = len(cm.quantized)
    if config.activation_bits is not None:
        modules = {name.rsplit(".", 1)[0]: m for name, m, _ in prunable_tensors(cm.model)}
        ranges = calibrate_input_ranges(cm.model, modules, ctx)
        for name, (lo, hi) in ranges.items():
            modules[name].register_forward_pre_hook(
                ActivationFakeQuant(lo, hi, config.activation_bits))
        cm.notes["activation_ranges"] = {n: [lo, hi] for n, (lo, hi) in sorted(ranges.items())}
        cm.notes["activation_calibration"] = "min-max per tensor, model(z) + finetune_loss(train_x)"
    return cm
