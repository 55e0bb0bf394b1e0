"""W{w}A{a} quantization of a diffusion UNet (method "quant_wa"), timestep-aware calibration."""
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
from compression.diffusion.calibration import (
    CALIBRATIONS,
    calibration_steps,
    choose_range,
    record_trajectory_inputs,
)
from compression.diffusion.reconstruct import adaround_weights, record_layer_inputs
from compression.diffusion.shortcuts import concat_inputs
from compression.diffusion.steps import require_ddim
from compression.quantization.adaround import AdaRoundSettings
from compression.quantization.core import check_bits
from compression.quantization.ptq import ActivationFakeQuant, QuantConfig, quantize_model_weights
from genmodels.base import GenerativeModel

ACT_LAYERS = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)
WEIGHT_ROUNDINGS = ("nearest", "adaround")


@dataclass(frozen=True)
class QuantWAConfig(MethodConfig):
    """W{w}A{a} fake quantization of a diffusion UNet, activations calibrated across timesteps.

    Weights: w_bits per-channel affine with MSE clipping (the "quant" method's quantizer).
    Activations: the input of every Conv2d/ConvTranspose2d/Linear of the UNet fake-quantized to
    a_bits, affine (uint8-style, with a zero point) per tensor, on a range fixed at calibration and
    applied at every sampling step. Affine rather than symmetric because most inputs follow a
    SiLU: their minimum is near -0.28 while their maximum is several units, and a symmetric grid
    would waste about half its levels.

    Calibration "minmax": observed range of one batch at one random DDIM step; "single_t":
    MSE-searched range at the middle step; "timestep_aware": MSE-searched range over inputs
    pooled uniformly across every step of the DDIM trajectories (Q-Diffusion, Li et al.
    arXiv:2302.04304). With split_shortcut each part of a skip concatenation gets its own range
    in every layer that reads it (Q-Diffusion's shortcut splitting). With head_stem_bits, the
    UNet's first and last layers (the model's `io_layers`, if it names them: the conv that reads
    the noisy image and the one that writes the predicted noise) keep weights and input
    activations at that many bits (at least w_bits / a_bits), as Q-Diffusion and BRECQ do
    (their `set_first_last_layer_to_8bit`); 0 quantizes them like every other layer.
    weight_rounding "adaround" re-chooses each weight's rounding (up or down, same scales) by
    AdaRound (arXiv:2004.10568) on every layer's fp32 inputs recorded at every step of
    `adaround_samples` DDIM trajectories, before activation calibration: Q-Diffusion's weight
    step, done layer by layer (AdaRound) rather than block by block (BRECQ).
    Execution is simulated: fp32 kernels on dequantized values (no int8 activation kernels
    here), so it is not faster.
    """

    method: ClassVar[str] = "quant_wa"
    w_bits: int = 8  # weight bits, per output channel, MSE-clipped (as method "quant")
    a_bits: int = 8  # bits of every UNet layer's input, one affine range per tensor
    calibration: str = "timestep_aware"  # "minmax", "single_t" or "timestep_aware"
    split_shortcut: bool = True  # own range for each part of a skip concatenation
    calibration_samples: int = 64  # DDIM trajectories whose layer inputs calibrate
    head_stem_bits: int = 8  # first and last UNet layer: weights and inputs (0: like the rest)
    weight_rounding: str = "nearest"  # "nearest" or "adaround"
    adaround_iters: int = 1000  # Adam steps per layer (weight_rounding "adaround")
    adaround_samples: int = 16  # DDIM trajectories whose layer inputs AdaRound matches

    def __post_init__(self) -> None:
        check_bits(self.w_bits)
        check_bits(self.a_bits)
        if self.calibration not in CALIBRATIONS:
            raise ValueError(
                f"calibration must be one of {CALIBRATIONS}; got {self.calibration!r}")
        if not isinstance(self.split_shortcut, bool):
            raise ValueError(f"split_shortcut must be true or false; got {self.split_shortcut!r}")
        if self.calibration_samples < 1:
            raise ValueError(
                f"calibration_samples must be >= 1; got {self.calibration_samples}")
        if self.head_stem_bits != 0:
            check_bits(self.head_stem_bits)
        if self.weight_rounding not in WEIGHT_ROUNDINGS:
            raise ValueError(f"weight_rounding must be one of {WEIGHT_ROUNDINGS}; "
                             f"got {self.weight_rounding!r}")
        if self.adaround_iters < 1 or self.adaround_samples < 1:
            raise ValueError("adaround_iters and adaround_samples must be >= 1; got "
                             f"{self.adaround_iters}, {self.adaround_samples}")

    @classmethod
    def example(cls) -> QuantWAConfig:
        return cls(w_bits=8, a_bits=8, calibration_samples=2)

    def settings(self) -> dict[str, Any]:
        return {"bits": self.w_bits, "granularity": "channel", "rounding": "mse",
                "activation_bits": self.a_bits, "calibration": self.calibration,
                "split_shortcut": self.split_shortcut,
                "calibration_samples": self.calibration_samples,
                "head_stem_bits": self.head_stem_bits,
                "weight_rounding": self.weight_rounding,
                **({"adaround_iters": self.adaround_iters,
                    "adaround_samples": self.adaround_samples}
                   if self.weight_rounding == "adaround" else {})}

    def check_applicable(self, model: GenerativeModel) -> None:
        require_ddim(model, self.method)


class SplitActivationFakeQuant:
    """Forward pre-hook: fake-quantize each channel part of a concatenated input on its own
    range (parts of `sizes` channels along dim 1). A callable object, so deepcopy keeps it."""

    def __init__(self, sizes: tuple[int, ...], ranges: list[tuple[float, float]], bits: int
                 ) -> None:
        self.sizes = tuple(sizes)
        self.parts = [ActivationFakeQuant(lo, hi, bits) for lo, hi in ranges]

    def __call__(self, module: nn.Module, args: tuple) -> tuple | None:
        if not args or not isinstance(args[0], torch.Tensor):
            return None
        chunks = args[0].split(list(self.sizes), dim=1)
        quantized = [part(module, (chunk,))[0] for part, chunk in zip(self.parts, chunks,
                                                                       strict=True)]
        return (torch.cat(quantized, dim=1), *args[1:])


def act_layers(model: GenerativeModel) -> dict[str, nn.Module]:
    """{name: module} of the UNet's Conv2d/ConvTranspose2d/Linear layers (in deployable())."""
    return {name.rsplit(".", 1)[0]: m for name, m, _ in prunable_tensors(model)
            if isinstance(m, ACT_LAYERS)}


def find_splits(model: GenerativeModel, layers: dict[str, nn.Module]
                ) -> dict[str, tuple[int, ...]]:
    """Concatenated inputs of `layers`, from one traced UNet call at the first DDIM step."""
    x = torch.zeros(1, *model.image_shape, device=model.device)
    t0 = int(model.ddim_timesteps(model.steps)[0])
    t = torch.full((1,), t0, dtype=torch.int64, device=model.device)
    return concat_inputs(model.unet, layers, x, t)


@register_method(QuantWAConfig)
def quantize_weights_activations(cm: CompressedModel, config: QuantWAConfig,
                                 ctx: CompressionContext) -> CompressedModel:
    model = cm.model
    io = set(getattr(model, "io_layers", ())) if config.head_stem_bits else set()
    w_io, a_io = (max(config.w_bits, config.head_stem_bits),
                  max(config.a_bits, config.head_stem_bits))
    layers = act_layers(model)
    if config.weight_rounding == "adaround":  # fp32 inputs and weights, before quantizing
        ada_gen = torch.Generator().manual_seed(ctx.seed + 1)
        fp_inputs = record_layer_inputs(model, layers, config.adaround_samples, ada_gen)
        fp_weights = {name: getattr(m, p).detach().clone()
                      for name, m, p in prunable_tensors(model)}
    # Weights first, so calibration sees the inputs the weight-quantized layers produce.
    quantize_model_weights(cm, QuantConfig(bits=config.w_bits),
                           {name: w_io for name, _, _ in prunable_tensors(model)
                            if name.rsplit(".", 1)[0] in io})
    if config.weight_rounding == "adaround":
        cm.notes["adaround"] = adaround_weights(
            cm, fp_weights, fp_inputs, AdaRoundSettings(iters=config.adaround_iters), ada_gen)
        del fp_inputs, fp_weights
    bits = {name: a_io if name in io else config.a_bits for name in layers}
    splits = find_splits(model, layers) if config.split_shortcut else {}
    gen = torch.Generator().manual_seed(ctx.seed)
    record_at = calibration_steps(config.calibration, int(model.steps), gen)
    pooled, counter = record_trajectory_inputs(model, layers, splits, record_at,
                                               config.calibration_samples, gen)
    ranges: dict[str, list[list[float]]] = {}
    for name, parts in pooled.items():
        part_ranges = [choose_range(values, config.calibration, bits[name]) for values in parts]
        if name in splits:
            hook: Any = SplitActivationFakeQuant(splits[name], part_ranges, bits[name])
        else:
            hook = ActivationFakeQuant(*part_ranges[0], bits[name])
        layers[name].register_forward_pre_hook(hook)
        ranges[name] = [[lo, hi] for lo, hi in part_ranges]
    cm.execution = EXECUTION_SIMULATED
    cm.notes["quantized_tensors"] = len(cm.quantized)
    cm.notes["activation_quantized_layers"] = len(ranges)
    cm.notes["activation_ranges"] = dict(sorted(ranges.items()))
    cm.notes["split_shortcut_layers"] = {n: list(s) for n, s in sorted(splits.items())}
    cm.notes["calibration_timesteps"] = counter.recorded
    if io:
        cm.notes["head_stem_layers"] = {"layers": sorted(io), "w_bits": w_io, "a_bits": a_io}
    cm.notes["activation_calibration"] = (
        f"{config.calibration}: affine per tensor, {config.calibration_samples} DDIM "
        f"trajectories of {model.steps} steps, {len(counter.recorded)} step(s) recorded")
    return cm
