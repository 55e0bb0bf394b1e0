"""Per-layer sensitivity: output drift with one layer alone quantized or pruned, the rest fp32."""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from compression.accounting import PrunableTensor
from compression.quantization.core import QuantizedWeight, quantize_weight
from compression.quantization.ptq import channel_axis
from genmodels.base import GenerativeModel
from genmodels.determinism import seeded_generator

PROBE_SIZE = 64  # latents (and, for VAEs, training images) the drift is measured on
# A layer is never pruned to 100% by the adaptive methods: its sparsity is capped here, and at
# least one weight per layer is kept whatever its size (see `layer_prune_count`).
MAX_LAYER_SPARSITY = 0.98

WeightVariant = Callable[[torch.Tensor, nn.Module], torch.Tensor]


def probe_inputs(model: GenerativeModel, seed: int, train_x: torch.Tensor | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(z, x) the drift is measured on: PROBE_SIZE latents from the model's own `latent` with a
    generator seeded by (seed, "sensitivity"), so the same seed gives the same probe; for VAEs
    also the first PROBE_SIZE training images (the encoder is only exercised by them)."""
    z = model.latent(PROBE_SIZE, seeded_generator(seed, "sensitivity"))
    x = None
    if getattr(model, "is_vae", False) and train_x is not None and len(train_x):
        x = train_x[:PROBE_SIZE].to(model.device)
    return z, x


@torch.no_grad()
def probe_outputs(model: GenerativeModel, z: torch.Tensor, x: torch.Tensor | None = None
                  ) -> torch.Tensor:
    """Flat outputs on the probe: the samples model(z) (B, C, H, W) and, for VAEs given x, the
    reconstructions sigmoid(decode(mu(x), x)), both as pixel values in [0, 1]."""
    parts = [model(z).flatten()]
    if x is not None:
        mu, _ = model.encode(x)
        parts.append(torch.sigmoid(model.decode(mu, x)).flatten())
    return torch.cat(parts)


def output_drift(outputs: torch.Tensor, reference: torch.Tensor) -> float:
    """Per-pixel mean squared change D = mean_i (y_i - y_ref_i)^2 of the probe outputs (the
    results' output_drift_mse on a small fixed batch)."""
    return float((outputs.double() - reference.double()).pow(2).mean())


@torch.no_grad()
def drift_table(model: GenerativeModel, targets: Sequence[PrunableTensor],
                variants: Sequence[WeightVariant], z: torch.Tensor,
                x: torch.Tensor | None = None) -> np.ndarray:
    """(layers, variants) drift D[l, j] of the model with layer l's weight replaced by
    variants[j](weight, module) and every other layer untouched. The model is restored exactly
    (every weight bit-identical) afterwards. Summing D over layers is the usual additive
    approximation of the joint damage (HAWQ, arXiv:1905.03696; Dong et al. HAWQ-V2)."""
    was_training = model.training
    model.eval()
    reference = probe_outputs(model, z, x)
    table = np.zeros((len(targets), len(variants)))
    try:
        for i, (_, module, pname) in enumerate(targets):
            weight = getattr(module, pname)
            original = weight.detach().clone()
            try:
                for j, variant in enumerate(variants):
                    weight.copy_(variant(original, module).to(weight.device, weight.dtype))
                    table[i, j] = output_drift(probe_outputs(model, z, x), reference)
            finally:
                weight.copy_(original)
    finally:
        model.train(was_training)
    return table


def channel_mse_quantize(weight: torch.Tensor, module: nn.Module, bits: int) -> QuantizedWeight:
    """The uniform `quant` method's default quantizer: affine, per output channel, MSE-searched
    clipping (compression.quantization.core.quantize_weight)."""
    return quantize_weight(weight, bits, "affine", "channel", "mse", channel_axis(module))


def layer_prune_count(numel: int, sparsity: float) -> int:
    """Weights pruned in one layer at `sparsity`: round(s * n), capped at floor(0.98 * n)
    (MAX_LAYER_SPARSITY) and at n - 1, so that no layer is ever emptied."""
    cap = min(math.floor(MAX_LAYER_SPARSITY * numel), numel - 1)
    return max(0, min(round(sparsity * numel), cap))


def keep_mask(weight: torch.Tensor, pruned: int) -> torch.Tensor:
    """Keep mask zeroing the `pruned` smallest |w| of one tensor (ties by flat index, stable)."""
    keep = torch.ones(weight.numel(), dtype=torch.bool, device=weight.device)
    keep[torch.argsort(weight.detach().abs().flatten(), stable=True)[:pruned]] = False
    return keep.view_as(weight)


def prune_variant(sparsity: float) -> WeightVariant:
    """Layer-wise magnitude pruning of one weight at `sparsity` (capped, see layer_prune_count)."""
    def variant(weight: torch.Tensor, module: nn.Module) -> torch.Tensor:
        return weight * keep_mask(weight, layer_prune_count(weight.numel(), sparsity))
    return variant


def quant_variant(bits: int) -> WeightVariant:
    """Fake-quantized (dequantized) weight of `channel_mse_quantize` at `bits`."""
    def variant(weight: torch.Tensor, module: nn.Module) -> torch.Tensor:
        return channel_mse_quantize(weight, module, bits).dequantize()
    return variant
