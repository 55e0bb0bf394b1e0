"""Bytes of sparse weight formats: N:M semi-structured (kept values + indices) and CSR."""

from __future__ import annotations

import math
from typing import Any

from compression.accounting import prunable_tensors
from compression.semistructured import gemm_view, is_nm_sparse, parse_pattern


def semi_structured_bytes(rows: int, k: int, n: int, m: int, value_bits: int = 32) -> int:
    """Bytes of a (rows, k) matrix stored N:M: each group of m along k (the tail zero-padded)
    keeps n values of `value_bits` plus a ceil(log2 m)-bit position per kept value, NVIDIA's
    2:4 layout (2-bit metadata per kept value, 4 bits per group of 4; cuSPARSELt / CUTLASS):
    ceil(V * value_bits / 8) + ceil(V * ceil(log2 m) / 8) with V = rows * ceil(k/m) * n.
    2:4 at fp32: 0.5 * 4 + 0.5 * 2/8 = 2.25 bytes per dense weight (56.25% of dense)."""
    kept = rows * math.ceil(k / m) * n
    return math.ceil(kept * value_bits / 8) + math.ceil(kept * math.ceil(math.log2(m)) / 8)


def csr_bytes(nnz: int, rows: int, value_bytes: int = 4, index_bytes: int = 8) -> int:
    """Bytes of a CSR matrix: nnz values + nnz column indices + (rows + 1) row pointers
    (torch's `to_sparse_csr` uses int64 indices: index_bytes 8)."""
    return nnz * (value_bytes + index_bytes) + (rows + 1) * index_bytes


def nm_packed_bytes(cm: Any) -> dict[str, int]:
    """{name: bytes stored N:M} of the fp32 prunable weights of `cm` that hold the N:M pattern
    recorded by prune_nm (cm.notes["nm_pattern"]), checked on the tensor itself. Quantized
    tensors (in cm.quantized) are left out: their codes are packed dense."""
    pattern = cm.notes.get("nm_pattern")
    if pattern is None:
        return {}
    n, m = parse_pattern(pattern)
    out: dict[str, int] = {}
    for name, module, pname in prunable_tensors(cm.model):
        weight = getattr(module, pname)
        if name in cm.quantized or not is_nm_sparse(module, weight, n, m):
            continue
        rows, k = gemm_view(module, weight).shape
        out[name] = semi_structured_bytes(rows, k, n, m, weight.element_size() * 8)
    return out
