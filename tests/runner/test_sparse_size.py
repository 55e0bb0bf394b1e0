"""size_packed_bytes of 2:4-pruned cells: kept fp32 values + 2-bit positions, in closed form."""

from __future__ import annotations

import math

import torch

from bench.cell.size import packed_bytes
from compression.accounting import prunable_tensors
from compression.api import CompressedModel, apply_pipeline
from compression.pruning import MagnitudePruneConfig
from compression.semistructured import NMPruneConfig, gemm_view
from genmodels.models import MODELS


def _vae() -> torch.nn.Module:
    torch.manual_seed(0)
    return MODELS["vae"](image_shape=(1, 16, 16), latent_dim=4, width=0.5).eval()


def test_2_4_weights_are_counted_as_kept_values_plus_2_bit_positions() -> None:
    model = _vae()
    base = packed_bytes(CompressedModel(model=model))
    cm = apply_pipeline(model, [NMPruneConfig()])
    saved = 0
    for _, module, pname in prunable_tensors(model):
        rows, k = gemm_view(module, getattr(module, pname)).shape
        kept = rows * math.ceil(k / 4) * 2  # 2 of every (zero-padded) group of 4
        saved += 4 * rows * k - (4 * kept + math.ceil(kept * 2 / 8))
    assert saved > 0 and packed_bytes(cm) == base - saved


def test_unstructured_masks_stay_dense_in_packed_bytes() -> None:
    model = _vae()
    base = packed_bytes(CompressedModel(model=model))
    assert packed_bytes(apply_pipeline(model, [MagnitudePruneConfig(sparsity=0.5)])) == base
