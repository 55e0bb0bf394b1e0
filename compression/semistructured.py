"""N:M semi-structured magnitude pruning (2:4): keep the N largest of M consecutive weights."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from compression.accounting import prunable_tensors
from compression.api import CompressedModel, CompressionContext, MethodConfig, register_method
from compression.distillation import teacher_matching
from compression.finetune import finetune, step_key
from compression.pruning import _reapply, _record, apply_masks

_PATTERN = re.compile(r"^(\d+):(\d+)$")


def parse_pattern(pattern: str) -> tuple[int, int]:
    """"N:M" -> (N, M) with 1 <= N < M <= 16; anything else is a ValueError naming the pattern."""
    match = _PATTERN.match(pattern) if isinstance(pattern, str) else None
    if match is None or not 1 <= int(match[1]) < int(match[2]) <= 16:
        raise ValueError(
            f"pattern must be 'N:M' with 1 <= N < M <= 16 (e.g. '2:4'), got {pattern!r}"
        )
    return int(match[1]), int(match[2])


# ----------------------------------------------------------------------------- maths
def nm_mask(matrix: torch.Tensor, n: int, m: int) -> torch.Tensor:
    """Keep mask of a (rows, k) matrix whose rows are split into groups of m consecutive entries
    along k: in each group the n largest |w| are kept (ties: the lower index), which maximises
    the kept sum of |w| under the N:M constraint (the groups are independent). This is the 2:4
    "sparse tensor core" pattern (Mishra et al. 2021, arXiv:2104.08378). A tail group of r < m
    entries (k not a multiple of m) is one zero-padded group: it keeps min(n, r) entries."""
    rows, k = matrix.shape
    scores = matrix.detach().abs().float()
    pad = (-k) % m
    # -1 < any |w|: padding is never kept while a real entry is available.
    scores = torch.nn.functional.pad(scores, (0, pad), value=-1.0).view(rows, -1, m)
    order = torch.argsort(-scores, dim=2, stable=True)  # (rows, groups, m) largest first
    keep = torch.zeros_like(scores, dtype=torch.bool)
    keep.scatter_(2, order[..., :n], True)
    return keep.view(rows, -1)[:, :k]


def gemm_view(module: nn.Module, weight: torch.Tensor) -> torch.Tensor:
    """`weight` as the (rows, reduction) matrix of the layer's GEMM, the layout N:M groups run
    along: Linear and GRU/LSTM (out, in) as is; Conv2d (out, in/g, kH, kW) -> (out, in/g*kH*kW),
    PyTorch's flattening order; ConvTranspose2d (in, out/g, kH, kW) -> (out/g*kH*kW, in), since
    its GEMM (col = W^T x, then col2im) reduces over input channels."""
    if isinstance(module, nn.ConvTranspose2d):
        return weight.permute(1, 2, 3, 0).reshape(-1, weight.shape[0])
    return weight.reshape(weight.shape[0], -1)


def from_gemm_view(module: nn.Module, matrix: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """Inverse of `gemm_view`: the (rows, reduction) matrix back in the weight's `shape`."""
    if isinstance(module, nn.ConvTranspose2d):
        cin, cout, kh, kw = shape
        return matrix.reshape(cout, kh, kw, cin).permute(3, 0, 1, 2)
    return matrix.reshape(shape)


def layer_nm_mask(module: nn.Module, weight: torch.Tensor, n: int, m: int) -> torch.Tensor:
    """N:M keep mask of one layer's weight, in the weight's own shape (groups: `gemm_view`)."""
    return from_gemm_view(module, nm_mask(gemm_view(module, weight), n, m), weight.shape)


def is_nm_sparse(module: nn.Module, weight: torch.Tensor, n: int, m: int) -> bool:
    """Does every group of m consecutive entries along the GEMM reduction (tail zero-padded)
    hold at most n nonzeros?"""
    matrix = gemm_view(module, weight.detach())
    nonzero = torch.nn.functional.pad((matrix != 0).int(), (0, (-matrix.shape[1]) % m))
    return bool((nonzero.view(matrix.shape[0], -1, m).sum(dim=2) <= n).all())


# ----------------------------------------------------------------------------- method
@dataclass(frozen=True)
class NMPruneConfig(MethodConfig):
    """Semi-structured N:M pruning of every prunable weight (biases are never pruned): in each
    group of M consecutive weights along the GEMM reduction (`gemm_view`), keep the N largest
    |w|; "2:4" is exactly 50% sparse where the reduction length is a multiple of 4. Optionally
    fine-tuned with the masks fixed, with teacher_weight > 0 adding output matching to the
    unpruned model (as prune_magnitude)."""

    method: ClassVar[str] = "prune_nm"
    pattern: str = "2:4"
    finetune_steps: int = 0
    lr: float = 1e-4
    teacher_weight: float = 0.0

    def __post_init__(self) -> None:
        parse_pattern(self.pattern)
        if self.finetune_steps < 0:
            raise ValueError(f"finetune_steps must be >= 0, got {self.finetune_steps}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if not self.teacher_weight >= 0:
            raise ValueError(f"teacher_weight must be >= 0, got {self.teacher_weight}")

    def settings(self) -> dict[str, Any]:
        n, m = parse_pattern(self.pattern)
        return {"sparsity_target": 1 - n / m, "pattern": self.pattern,
                "finetune_steps": self.finetune_steps, "lr": self.lr,
                "teacher_weight": self.teacher_weight}

    @classmethod
    def example(cls) -> NMPruneConfig:
        return cls(pattern="2:4", finetune_steps=2)


@register_method(NMPruneConfig)
def prune_nm(cm: CompressedModel, cfg: NMPruneConfig, ctx: CompressionContext) -> CompressedModel:
    n, m = parse_pattern(cfg.pattern)
    targets = prunable_tensors(cm.model)
    extra = teacher_matching(cm.model, cfg.teacher_weight) if cfg.finetune_steps else None
    masks = [layer_nm_mask(module, getattr(module, p).detach(), n, m) for _, module, p in targets]
    apply_masks(cm.model, targets, masks)
    losses = finetune(cm.model, ctx, cfg.finetune_steps, cfg.lr, extra_loss=extra,
                      after_step=_reapply(targets, masks), key=step_key(cm, cfg))
    # The pattern rides in the notes so that size accounting and the sparse runtime find it.
    return _record(cm, targets, {"finetune_losses": losses, "nm_pattern": cfg.pattern})
