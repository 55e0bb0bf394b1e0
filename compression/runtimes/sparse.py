"""The `sparse` runtime: pruned Linear layers on sparse kernels (CSR on CPU, 2:4 on CUDA).

What runs sparse: the Linear layers of the sampling path (forward(z)). On CPU those with >= 90%
zeros run torch.sparse CSR (`CSRLinear`); convolutions and GRU/LSTM stay dense, because torch
has no sparse conv or recurrent kernel on CPU (an im2col + CSR matmul is measured in
benchmarks/test_bench_sparse.py, not deployed). On CUDA (compute capability >= 8.0) the Linear
layers of a 2:4-pruned variant (prune_nm, pattern "2:4") run on semi-structured sparse tensor
cores in fp16 (`SemiStructuredLinear`), so their outputs change by fp16 rounding.
"""

from __future__ import annotations

import copy

import torch
from safetensors.torch import save as safetensors_bytes
from torch import nn

from compression.accounting import macs_by_layer
from compression.api import EXECUTION_INT8_KERNEL, CompressedModel
from compression.quantization.storage import deployable_state
from compression.runtimes.base import Deployed, Runtime, RuntimeContext, register_runtime
from compression.runtimes.sparse_layers import (
    MIN_LAYER_SPARSITY,
    CSRLinear,
    SemiStructuredLinear,
    layer_sparsity,
    replace_module,
)
from compression.semistructured import is_nm_sparse
from genmodels.base import GenerativeModel

EXECUTION_CSR = "sparse-csr"
EXECUTION_2_4 = "sparse-2:4-fp16"


def sampling_linears(model: GenerativeModel) -> list[tuple[str, nn.Linear]]:
    """(name, layer) of the float nn.Linear layers that forward(z) calls, in call order."""
    z = model.latent(1, torch.Generator().manual_seed(0))
    modules = dict(model.named_modules())
    return [(name, modules[name]) for name in macs_by_layer(model, z)
            if type(modules[name]) is nn.Linear and type(modules[name].weight) is nn.Parameter]


def csr_candidates(model: GenerativeModel) -> list[tuple[str, nn.Linear]]:
    """Sampling-path Linear layers with at least MIN_LAYER_SPARSITY zeros."""
    # The tolerance keeps 1 - nnz/n from missing the threshold by one rounding (90/100 zeros).
    return [(n, m) for n, m in sampling_linears(model)
            if layer_sparsity(m.weight) >= MIN_LAYER_SPARSITY - 1e-12]


def semi_structured_candidates(model: GenerativeModel) -> list[tuple[str, nn.Linear]]:
    """Sampling-path Linear layers holding the 2:4 pattern whose shape the kernels accept
    (tried on the GPU: the shape rules differ between cuSPARSELt and CUTLASS)."""
    found = []
    for name, layer in sampling_linears(model):
        if not is_nm_sparse(layer, layer.weight, 2, 4):
            continue
        try:
            SemiStructuredLinear(layer)
        except (RuntimeError, ValueError):
            continue
        found.append((name, layer))
    return found


@register_runtime
class SparseRuntime(Runtime):
    name = "sparse"
    devices = ("cpu", "cuda")

    def unavailable(self, cm: CompressedModel, device: str) -> str | None:
        reason = super().unavailable(cm, device)
        if reason is not None:
            return reason
        if cm.execution == EXECUTION_INT8_KERNEL:
            return "sparse runtime runs fp32 weights; int8-kernel variants cannot be converted"
        if torch.device(device).type == "cpu":
            if csr_candidates(cm.model):
                return None
            highest = max((layer_sparsity(m.weight) for _, m in sampling_linears(cm.model)),
                          default=0.0)
            return ("sparse runtime needs >= 90% unstructured sparsity in a Linear layer of the "
                    f"sampling path (highest here: {highest:.1%})")
        if torch.cuda.get_device_capability(device) < (8, 0):
            return "sparse runtime on cuda needs 2:4 sparse tensor cores (capability >= 8.0)"
        if cm.notes.get("nm_pattern") != "2:4":
            return "sparse runtime on cuda needs a 2:4-pruned variant (method prune_nm, '2:4')"
        if not semi_structured_candidates(cm.model):
            return "sparse runtime on cuda: no 2:4 Linear layer of a shape the 2:4 kernels accept"
        return None

    def deploy(self, cm: CompressedModel, device: str, ctx: RuntimeContext) -> Deployed:
        reason = self.unavailable(cm, device)
        if reason is not None:
            raise ValueError(reason)
        model = copy.deepcopy(cm.model).to(device)
        on_cpu = torch.device(device).type == "cpu"
        chosen = csr_candidates(model) if on_cpu else semi_structured_candidates(model)
        notes = []
        for name, layer in chosen:
            notes.append(f"{name}: Linear {layer.out_features}x{layer.in_features} "
                         f"{layer_sparsity(layer.weight):.1%} zeros ran "
                         f"{'CSR' if on_cpu else '2:4 fp16'}")
            replace_module(model, name, CSRLinear(layer) if on_cpu else SemiStructuredLinear(layer))
        dense = [n for n, _ in macs_by_layer(cm.model, cm.model.latent(1, torch.Generator()))
                 .items() if n not in dict(chosen)]
        notes.append(f"dense: {', '.join(dense) or 'none'} (no sparse conv/RNN kernel; "
                     "Linear layers below the threshold)")
        return Deployed(
            model=model, runtime=self.name, execution=EXECUTION_CSR if on_cpu else EXECUTION_2_4,
            export_max_abs_err=_max_abs_err(model, cm.model, ctx.check_z),
            # A file of plain tensors (CSR parts as values + int32 indices); 2:4 tensors are not.
            size_file_bytes=len(safetensors_bytes(deployable_state(model))) if on_cpu else None,
            changes_outputs=not on_cpu, notes=tuple(notes),
        )


@torch.no_grad()
def _max_abs_err(
    deployed: GenerativeModel, eager: GenerativeModel, z: torch.Tensor | None
) -> float | None:
    """max |deployed(z) - eager(z)| over ctx.check_z, each model on its own device."""
    if z is None:
        return None
    a = deployed(z.to(deployed.device)).float().cpu()
    b = eager(z.to(eager.device)).float().cpu()
    return float((a - b).abs().max())
