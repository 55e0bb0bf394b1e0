"""Linear layers on sparse kernels: CSR on CPU (torch.sparse), 2:4 semi-structured on CUDA."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

# Sparsity from which a layer runs CSR: below it CSR is slower than dense MKL at every shape we
# measured (benchmarks/test_bench_sparse.py; PR pytorch#51647 found the same crossover at ~90%).
MIN_LAYER_SPARSITY = 0.9


@contextlib.contextmanager
def quiet_csr_beta() -> Iterator[None]:
    # torch warns once per process that CSR support is "in beta"; the kernels used here
    # (to_sparse_csr, addmm) are the long-standing MKL path, tested against dense below.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        yield


def layer_sparsity(weight: torch.Tensor) -> float:
    """Fraction of exact zeros: 1 - nnz / n."""
    return 1.0 - int(torch.count_nonzero(weight)) / max(weight.numel(), 1)


class CSRLinear(nn.Module):
    """y = x W^T + b with W in CSR (int32 indices) on CPU, computed as addmm(b, W, x^T)^T.

    Measured faster than (W @ x^T)^T, torch.sparse.mm and F.linear(x, W_csr) at batch 64 and
    as fast at batch 1; int32 indices beat torch's default int64 ones (MKL's LP64 interface
    converts int64 indices on every call). The CSR parts are plain buffers (values fp32,
    crow/col int32) so the module's state is a file of ordinary tensors; outputs equal the
    dense layer's up to float summation order."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        with quiet_csr_beta():
            csr = linear.weight.detach().cpu().float().to_sparse_csr()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.register_buffer("values", csr.values().contiguous())
        self.register_buffer("crow_indices", csr.crow_indices().to(torch.int32))
        self.register_buffer("col_indices", csr.col_indices().to(torch.int32))
        bias = linear.bias
        self.register_buffer(
            "bias", (bias.detach().cpu().float() if bias is not None
                     else torch.zeros(self.out_features)).reshape(-1, 1).contiguous()
        )  # (out, 1): addmm broadcasts it over the batch columns
        self.nnz = int(csr.values().numel())
        self._csr: torch.Tensor | None = None
        self._weight()  # built (and its invariants checked) here, outside any inference_mode

    def _weight(self) -> torch.Tensor:
        # Built lazily from the buffers (shares their memory): survives deepcopy / load_state_dict.
        if self._csr is None or self._csr.values().data_ptr() != self.values.data_ptr():
            with quiet_csr_beta():
                self._csr = torch.sparse_csr_tensor(
                    self.crow_indices, self.col_indices, self.values,
                    (self.out_features, self.in_features), check_invariants=True,
                )  # checked once per construction: the buffers may come from a file
        return self._csr

    def matmul_t(self, columns: torch.Tensor) -> torch.Tensor:
        """W @ columns + b for columns (in, N): (out, N)."""
        return torch.addmm(self.bias, self._weight(), columns)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, self.in_features)  # (B, in)
        y = self.matmul_t(flat.T).T  # (B, out), a transposed view
        return y.reshape(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, nnz={self.nnz}"


class SemiStructuredLinear(nn.Module):
    """Linear on CUDA 2:4 sparse tensor cores (torch.sparse.to_sparse_semi_structured, cuSPARSELt
    or CUTLASS) in float16: x is cast to fp16 and y back to fp32, so outputs differ from the fp32
    layer by fp16 rounding (~1e-3 relative)."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        from torch.sparse import to_sparse_semi_structured

        weight = linear.weight.detach().to("cuda", torch.float16)
        self.weight = nn.Parameter(to_sparse_semi_structured(weight), requires_grad=False)
        bias = linear.bias
        self.bias = (nn.Parameter(bias.detach().to("cuda", torch.float16), requires_grad=False)
                     if bias is not None else None)
        self.in_features, self.out_features = linear.in_features, linear.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, self.in_features).half()
        y = F.linear(flat, self.weight, self.bias).float()
        return y.reshape(*x.shape[:-1], self.out_features)


def replace_module(root: nn.Module, name: str, new: nn.Module) -> None:
    """Put `new` where the sub-module `name` (dotted) of `root` is."""
    parent_name, _, child = name.rpartition(".")
    setattr(root.get_submodule(parent_name) if parent_name else root, child, new)
