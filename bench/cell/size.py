"""The size columns of one cell: parameters, nonzeros, sparsities, bits, bytes, MACs, int8 share."""
from __future__ import annotations

from typing import Any

import torch

from compression.quantization import storage


def packed_bytes(cm: Any) -> int:
    """Bytes of the deployed weights as stored: packed codes (+ scales) of every quantized tensor,
    N:M-pruned fp32 weights (prune_nm) in the N:M format (kept values + ceil(log2 M)-bit
    positions, compression.sparse_accounting), element bytes of every other parameter and buffer
    of deployable() (fp32). Zeros of unstructured masked pruning are stored dense (no sparse
    format), as in the saved file."""
    from compression.quantization.storage import deployable_state
    from compression.sparse_accounting import nm_packed_bytes

    state = deployable_state(cm.model)  # keyed like cm.quantized
    nm = nm_packed_bytes(cm)  # never holds a quantized tensor
    plain = sum(t.numel() * t.element_size() for k, t in state.items()
                if k not in cm.quantized and k not in nm)
    return plain + sum(nm.values()) + sum(int(q.packed_bytes()) for q in cm.quantized.values())


def size_columns(cm: Any, baseline: Any) -> dict[str, Any]:
    """The schema's SIZE_COLUMNS of `cm` (the baseline gives the fp32 file the ratio is against).
    Every parameter the deployed model executes counts, whatever holds it (accounting's
    `deployed_tensors`). `sparsity` is over the prunable weights, what a sparsity target applies
    to (their biases too when a step pruned with include_bias); `sparsity_model` over every
    parameter. `int8_mac_fraction` only for int8-kernel cells, else None (empty)."""
    from bench.run.runner import file_bytes
    from compression.accounting import (
        bits_per_weight,
        count_nonzero,
        count_params,
        int8_mac_fraction,
        macs_by_layer,
        total_macs,
        weight_sparsity,
    )
    from compression.api import EXECUTION_INT8_KERNEL

    params, nonzero = count_params(cm.model), count_nonzero(cm.model)
    z = cm.model.latent(1, torch.Generator().manual_seed(0))
    layers = macs_by_layer(cm.model, z)
    macs, macs_effective = total_macs(layers)
    include_bias = any(getattr(step, "include_bias", False) for step in cm.steps)
    out = {"params": params, "nonzero_params": nonzero,
           "sparsity": weight_sparsity(cm.model, include_bias),
           "sparsity_model": 1.0 - nonzero / params if params else None,
           "bits_per_weight": bits_per_weight(cm), "size_packed_bytes": packed_bytes(cm),
           "macs": macs, "macs_effective": macs_effective,
           "int8_mac_fraction": (int8_mac_fraction(cm.model, layers)
                                 if cm.execution == EXECUTION_INT8_KERNEL else None)}
    fp32_bytes = file_bytes(storage.save_fp32, baseline)
    # The baseline is shipped as the fp32 file itself: ratio exactly 1 by definition.
    out["size_file_bytes"] = file_bytes(storage.save_compressed, cm) if cm.steps else fp32_bytes
    out["compression_ratio"] = fp32_bytes / out["size_file_bytes"]
    return out
