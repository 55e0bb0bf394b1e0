"""Unstructured magnitude pruning: by threshold, by exact sparsity (layer/global), iterative."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.utils.prune as prune
from torch import nn

from compression import structured  # noqa: F401  (registers prune_structured alongside)
from compression.accounting import prunable_tensors
from compression.api import (
    EXECUTION_DENSE,
    EXECUTION_MASKED,
    CompressedModel,
    CompressionContext,
    MethodConfig,
    register_method,
)
from compression.distillation import teacher_matching
from compression.finetune import finetune, step_key

SCOPES = ("layer", "global", "lamp")


# ----------------------------------------------------------------------------- maths
def threshold_mask(weight: torch.Tensor, threshold: float) -> torch.Tensor:
    """Keep mask m = 1[|w| >= t]: weights with |w| < t are pruned. (The project's seed multiplied
    by 1[|w| < t], which kept only the small weights.)"""
    return weight.abs() >= threshold


def magnitude_masks(weights: list[torch.Tensor], sparsity: float, scope: str) -> list[torch.Tensor]:
    """Keep masks zeroing exactly k = round(s * n) lowest-scored weights: |w| per tensor (scope
    "layer"); |w| over all tensors, i.e. one threshold (scope "global", Han et al. 2015,
    arXiv:1506.02626); or the LAMP score over all tensors (scope "lamp", see `lamp_scores`).
    Ties are broken deterministically by flat index (stable sort)."""
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES}, got {scope!r}")
    if scope == "layer":
        return [_smallest_k_mask(w.detach().abs().flatten(), sparsity).view_as(w) for w in weights]
    score = lamp_scores if scope == "lamp" else (lambda w: w.detach().abs().flatten().float())
    keep = _smallest_k_mask(torch.cat([score(w) for w in weights]), sparsity)
    return [
        m.view_as(w) for m, w in zip(keep.split([w.numel() for w in weights]), weights, strict=True)
    ]


def lamp_scores(weight: torch.Tensor) -> torch.Tensor:
    """LAMP score (Lee et al. 2021, arXiv:2010.07611) of each weight, flattened: with the
    layer's w^2 sorted ascending, score(u) = w_u^2 / sum_{v >= u} w_v^2. The largest weight of
    every layer scores 1, so a global cut on these scores never empties a layer (|w| can:
    a layer of small-scale weights falls entirely under one global threshold)."""
    squared = weight.detach().flatten().double().pow(2)
    order = torch.argsort(squared, stable=True)
    sorted_sq = squared[order]
    suffix = sorted_sq.flip(0).cumsum(0).flip(0)  # sum_{v >= u} in sorted order
    scores = torch.empty_like(squared)
    scores[order] = torch.where(suffix > 0, sorted_sq / suffix.clamp_min(1e-300), 0.0)
    return scores


def _smallest_k_mask(magnitudes: torch.Tensor, sparsity: float) -> torch.Tensor:
    k = round(sparsity * magnitudes.numel())
    keep = torch.ones_like(magnitudes, dtype=torch.bool)
    keep[torch.argsort(magnitudes, stable=True)[:k]] = False
    return keep


def cubic_schedule(final_sparsity: float, iterations: int) -> list[float]:
    """Gradual pruning targets s_i = s_f * (1 - (1 - i/n)^3), i = 1..n (Zhu & Gupta 2017,
    arXiv:1710.01878); the last one is exactly s_f."""
    return [final_sparsity * (1 - (1 - i / iterations) ** 3) for i in range(1, iterations + 1)]


# ----------------------------------------------------------------------------- model surgery
def apply_masks(
    model: nn.Module, targets: list[tuple[str, nn.Module, str]], masks: list[torch.Tensor]
) -> None:
    """w <- w * m through torch.nn.utils.prune, then prune.remove: a plain Parameter again
    (no weight_orig / weight_mask), kept weights bit-identical (w * 1.0 == w)."""
    for (_, module, pname), mask in zip(targets, masks, strict=True):
        prune.custom_from_mask(module, pname, mask.to(getattr(module, pname).device))
        prune.remove(module, pname)
        if isinstance(module, nn.RNNBase):
            module.flatten_parameters()  # refresh the cuDNN flat weight buffer


def _reapply(targets: list[tuple[str, nn.Module, str]], masks: list[torch.Tensor]):
    # Masks held fixed during fine-tuning: zero the pruned entries again after each Adam step.
    def after_step(_model: nn.Module) -> None:
        for (_, module, pname), mask in zip(targets, masks, strict=True):
            getattr(module, pname).mul_(mask)

    return after_step


def _record(cm: CompressedModel, targets: list, note: dict[str, Any]) -> CompressedModel:
    names = tuple(name for name, _, _ in targets)
    cm.pruned_tensors = tuple(dict.fromkeys((*cm.pruned_tensors, *names)))
    cm.notes["sparsity_per_layer"] = {
        name: 1.0 - int(torch.count_nonzero(getattr(m, p))) / getattr(m, p).numel()
        for name, m, p in targets
    }
    # Global pruning can empty a whole small-scale layer; say so rather than hide it.
    cm.notes["fully_pruned_tensors"] = [
        n for n, s in cm.notes["sparsity_per_layer"].items() if s == 1.0
    ]
    cm.notes.update(note)
    if cm.execution == EXECUTION_DENSE:
        cm.execution = EXECUTION_MASKED  # honest: zeros in dense tensors, no kernel skips them
    return cm


def _check_common(finetune_steps: int, lr: float) -> None:
    if finetune_steps < 0:
        raise ValueError(f"finetune_steps must be >= 0, got {finetune_steps}")
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr}")


# ----------------------------------------------------------------------------- methods
@dataclass(frozen=True)
class ThresholdPruneConfig(MethodConfig):
    """Zero every prunable weight with |w| < threshold, then optionally fine-tune (masks fixed)."""

    method: ClassVar[str] = "prune_threshold"
    threshold: float
    finetune_steps: int = 0
    lr: float = 1e-4
    include_bias: bool = False

    def __post_init__(self) -> None:
        if not self.threshold >= 0:
            raise ValueError(f"threshold must be >= 0, got {self.threshold}")
        _check_common(self.finetune_steps, self.lr)

    @classmethod
    def example(cls) -> ThresholdPruneConfig:
        return cls(threshold=0.05, finetune_steps=2)


@register_method(ThresholdPruneConfig)
def prune_threshold(
    cm: CompressedModel, cfg: ThresholdPruneConfig, ctx: CompressionContext
) -> CompressedModel:
    targets = prunable_tensors(cm.model, include_bias=cfg.include_bias)
    masks = [threshold_mask(getattr(m, p).detach(), cfg.threshold) for _, m, p in targets]
    apply_masks(cm.model, targets, masks)
    losses = finetune(
        cm.model,
        ctx,
        cfg.finetune_steps,
        cfg.lr,
        after_step=_reapply(targets, masks),
        key=step_key(cm, cfg),
    )
    return _record(cm, targets, {"finetune_losses": losses})


@dataclass(frozen=True)
class MagnitudePruneConfig(MethodConfig):
    """Zero exactly round(s*n) lowest-scored weights (scope: layer, global or lamp), optionally
    in `iterations` cubic steps with finetune_steps/iterations masked fine-tuning steps between.
    teacher_weight > 0 adds output (and VAE posterior) matching to the unpruned model to the
    fine-tuning loss (self-distillation, as `distill` does for students)."""

    method: ClassVar[str] = "prune_magnitude"
    sparsity: float
    scope: str = "global"
    finetune_steps: int = 0
    iterations: int = 1
    lr: float = 1e-4
    include_bias: bool = False
    teacher_weight: float = 0.0

    def __post_init__(self) -> None:
        if not 0 <= self.sparsity < 1:
            raise ValueError(f"sparsity must be in [0, 1), got {self.sparsity}")
        if not self.teacher_weight >= 0:
            raise ValueError(f"teacher_weight must be >= 0, got {self.teacher_weight}")
        if self.scope not in SCOPES:
            raise ValueError(f"scope must be one of {SCOPES}, got {self.scope!r}")
        if self.iterations < 1:
            raise ValueError(f"iterations must be >= 1, got {self.iterations}")
        _check_common(self.finetune_steps, self.lr)

    def settings(self) -> dict[str, Any]:
        return {
            "sparsity_target": self.sparsity,
            "scope": self.scope,
            "finetune_steps": self.finetune_steps,
            "iterations": self.iterations,
            "lr": self.lr,
            "include_bias": self.include_bias,
            "teacher_weight": self.teacher_weight,
        }

    @classmethod
    def example(cls) -> MagnitudePruneConfig:
        return cls(sparsity=0.5, finetune_steps=2, iterations=2)


@register_method(MagnitudePruneConfig)
def prune_magnitude(
    cm: CompressedModel, cfg: MagnitudePruneConfig, ctx: CompressionContext
) -> CompressedModel:
    targets = prunable_tensors(cm.model, include_bias=cfg.include_bias)
    schedule = cubic_schedule(cfg.sparsity, cfg.iterations)
    extra = teacher_matching(cm.model, cfg.teacher_weight) if cfg.finetune_steps else None
    losses: list[float] = []
    for i, sparsity in enumerate(schedule, start=1):
        masks = magnitude_masks([getattr(m, p) for _, m, p in targets], sparsity, cfg.scope)
        apply_masks(cm.model, targets, masks)
        # Spread the budget so the steps add up to finetune_steps exactly.
        steps = (
            cfg.finetune_steps * i // cfg.iterations
            - cfg.finetune_steps * (i - 1) // cfg.iterations
        )
        losses += finetune(
            cm.model,
            ctx,
            steps,
            cfg.lr,
            extra_loss=extra,
            after_step=_reapply(targets, masks),
            key=(*step_key(cm, cfg), i),  # each iteration its own batches and z
        )
    return _record(cm, targets, {"finetune_losses": losses, "sparsity_schedule": schedule})
