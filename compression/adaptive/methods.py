"""Methods "quant_mixed" and "prune_adaptive": per-layer bit-widths / sparsities under a budget."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from compression.accounting import prunable_tensors
from compression.adaptive.allocation import InfeasibleBudget, allocate
from compression.adaptive.mixed import BIT_CHOICES, select_bits  # noqa: F401 (re-exported)
from compression.adaptive.sensitivity import (
    MAX_LAYER_SPARSITY,
    channel_mse_quantize,
    drift_table,
    keep_mask,
    layer_prune_count,
    probe_inputs,
    prune_variant,
)
from compression.api import (
    EXECUTION_SIMULATED,
    CompressedModel,
    CompressionContext,
    MethodConfig,
    register_method,
)
from compression.distillation import teacher_matching
from compression.finetune import finetune

# pruning.py's masked-fine-tuning helpers, reused so both pruning methods record the same notes.
from compression.pruning import _check_common, _reapply, _record, apply_masks
from compression.quantization.core import MAX_BITS, MIN_BITS

# Candidate layer sparsities: fine steps near the top, where the damage grows fastest; capped
# at MAX_LAYER_SPARSITY (0.98) so that no layer is emptied.
SPARSITY_CHOICES = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.925, 0.95,
                    0.965, MAX_LAYER_SPARSITY)


@dataclass(frozen=True)
class MixedQuantConfig(MethodConfig):
    """Weight-only PTQ with one bit-width per layer from 2..8 (the `quant` method's default
    quantizer: affine, per channel, MSE clipping) at sum_l n_l b_l <= avg_bits * sum_l n_l over
    the prunable weights, spending at least 98% of it where the layer sizes allow; chosen by
    `compression.adaptive.mixed.select_bits` (MILP on per-layer drifts, then the candidate,
    uniform included, with the least held-out FID-proxy when the runner passes one, else the
    least joint drift). The row's notes say which candidate won and by what.

    The budget is on the code bits (the results' bits_per_weight). Scales counted, it is the
    same: the per-channel scales and zero points do not depend on the widths, so they add the
    same constant to every allocation and to the budget, and at avg_bits = b the file is no
    larger than the uniform b-bit per-channel file (to within a byte per tensor)."""

    method: ClassVar[str] = "quant_mixed"
    avg_bits: float

    def __post_init__(self) -> None:
        if isinstance(self.avg_bits, bool) or not MIN_BITS <= self.avg_bits <= MAX_BITS:
            raise ValueError(f"avg_bits must be in [{MIN_BITS}, {MAX_BITS}]; got {self.avg_bits!r}")

    def settings(self) -> dict[str, Any]:
        return {"avg_bits": self.avg_bits, "granularity": "channel", "rounding": "mse"}

    @classmethod
    def example(cls) -> MixedQuantConfig:
        return cls(avg_bits=3.0)


def choose_bits(cm: CompressedModel, avg_bits: float, ctx: CompressionContext
                ) -> dict[str, int]:
    """{weight name: bits} at the average-bits budget (see MixedQuantConfig)."""
    return select_bits(cm.model, avg_bits, ctx).bits


@register_method(MixedQuantConfig)
def quantize_mixed(cm: CompressedModel, cfg: MixedQuantConfig, ctx: CompressionContext
                   ) -> CompressedModel:
    selection = select_bits(cm.model, cfg.avg_bits, ctx)
    bits = selection.bits
    for name, module, pname in prunable_tensors(cm.model):
        weight = getattr(module, pname)
        qw = channel_mse_quantize(weight, module, bits[name])
        with torch.no_grad():
            weight.copy_(qw.dequantize().to(weight.device, weight.dtype))
        cm.quantized[name] = qw
    cm.execution = EXECUTION_SIMULATED
    cm.notes["quantized_tensors"] = len(cm.quantized)
    cm.notes["bits_per_layer"] = bits
    cm.notes["bits_selection"] = selection.note()
    return cm


@dataclass(frozen=True)
class AdaptivePruneConfig(MethodConfig):
    """Magnitude pruning with one sparsity per layer from SPARSITY_CHOICES (each capped at
    MAX_LAYER_SPARSITY = 0.98, and one weight always kept, so no layer is emptied), chosen to
    minimise the summed per-layer output drift subject to the global sparsity over the prunable
    weights being at least `sparsity`; the few weights pruned beyond round(s * n) are given back
    so the achieved sparsity is exactly prune_magnitude's. Then masked fine-tuning with the same
    keys and defaults as prune_magnitude (finetune_steps, lr, teacher_weight)."""

    method: ClassVar[str] = "prune_adaptive"
    sparsity: float
    finetune_steps: int = 0
    lr: float = 1e-4
    teacher_weight: float = 0.0

    def __post_init__(self) -> None:
        if not 0 <= self.sparsity < 1:
            raise ValueError(f"sparsity must be in [0, 1), got {self.sparsity}")
        if not self.teacher_weight >= 0:
            raise ValueError(f"teacher_weight must be >= 0, got {self.teacher_weight}")
        _check_common(self.finetune_steps, self.lr)

    def settings(self) -> dict[str, Any]:
        return {"sparsity_target": self.sparsity, "finetune_steps": self.finetune_steps,
                "lr": self.lr, "teacher_weight": self.teacher_weight}

    @classmethod
    def example(cls) -> AdaptivePruneConfig:
        return cls(sparsity=0.9, finetune_steps=2)


def give_back(pruned: list[int], excess: int) -> list[int]:
    """Lower per-layer prune counts by `excess` in total, in proportion to each count (largest
    remainder, ties to the earlier layer): the allocation's shape is kept, and no count grows."""
    total = sum(pruned)
    if excess <= 0 or total == 0:
        return list(pruned)
    excess = min(excess, total)
    shares = [excess * k / total for k in pruned]
    cut = [int(s) for s in shares]
    order = sorted(range(len(pruned)), key=lambda i: (-(shares[i] - cut[i]), i))
    for i in order[: excess - sum(cut)]:
        cut[i] += 1
    return [k - c for k, c in zip(pruned, cut, strict=True)]


def choose_prune_counts(cm: CompressedModel, sparsity: float, ctx: CompressionContext
                        ) -> dict[str, int]:
    """{weight name: weights pruned} at the global sparsity budget (see AdaptivePruneConfig)."""
    targets = prunable_tensors(cm.model)
    z, x = probe_inputs(cm.model, ctx.seed, ctx.train_x)
    sens = drift_table(cm.model, targets, [prune_variant(s) for s in SPARSITY_CHOICES], z, x)
    numel = [getattr(m, p).numel() for _, m, p in targets]
    counts = np.array([[layer_prune_count(n, s) for s in SPARSITY_CHOICES] for n in numel])
    target = round(sparsity * sum(numel))
    kept = np.array(numel)[:, None] - counts  # the budget: kept weights <= n - round(s * n)
    try:
        choice = allocate(sens, kept.astype(np.float64), sum(numel) - target)
    except InfeasibleBudget as exc:
        raise ValueError(f"sparsity {sparsity} cannot be reached with every layer capped at "
                         f"{MAX_LAYER_SPARSITY}: {exc}") from exc
    pruned = [int(counts[i, j]) for i, j in enumerate(choice)]
    pruned = give_back(pruned, sum(pruned) - target)
    return {name: k for (name, _, _), k in zip(targets, pruned, strict=True)}


@register_method(AdaptivePruneConfig)
def prune_adaptive(cm: CompressedModel, cfg: AdaptivePruneConfig, ctx: CompressionContext
                   ) -> CompressedModel:
    counts = choose_prune_counts(cm, cfg.sparsity, ctx)
    targets = prunable_tensors(cm.model)
    extra = teacher_matching(cm.model, cfg.teacher_weight) if cfg.finetune_steps else None
    masks = [keep_mask(getattr(m, p).detach(), counts[name]) for name, m, p in targets]
    apply_masks(cm.model, targets, masks)
    # Keyed like prune_magnitude's single iteration: at equal settings both methods fine-tune on
    # the same batches and z (common random numbers), so their comparison is paired.
    losses = finetune(cm.model, ctx, cfg.finetune_steps, cfg.lr, extra_loss=extra,
                      after_step=_reapply(targets, masks),
                      key=(len(cm.steps), "prune_magnitude", 1))
    cm = _record(cm, targets, {"finetune_losses": losses})
    cm.notes["sparsity_allocation"] = {
        name: round(counts[name] / getattr(m, p).numel(), 4) for name, m, p in targets}
    return cm
