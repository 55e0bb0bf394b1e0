"""The `sparse` runtime: CSR Linear layers match the dense masked model; 2:4 on CUDA skips."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from compression.api import EXECUTION_INT8_KERNEL, compress
from compression.pruning import MagnitudePruneConfig
from compression.quantization.storage import deployable_state
from compression.runtimes import RuntimeContext, get_runtime
from compression.runtimes.sparse import EXECUTION_2_4, EXECUTION_CSR, SparseRuntime
from compression.runtimes.sparse_layers import CSRLinear, layer_sparsity
from compression.semistructured import NMPruneConfig
from compression.sparse_accounting import csr_bytes
from genmodels.models import MODELS

ATOL = 1e-5  # float32 summation order only: outputs are in [0, 1]


def _sparse_linear(out: int, inp: int, zeros: int, bias: bool, seed: int = 0) -> nn.Linear:
    torch.manual_seed(seed)
    layer = nn.Linear(inp, out, bias=bias)
    with torch.no_grad():
        flat = layer.weight.view(-1)
        flat[torch.randperm(flat.numel())[:zeros]] = 0.0
    return layer


def _check_z(model, n: int = 8) -> RuntimeContext:
    return RuntimeContext(check_z=model.latent(n, torch.Generator().manual_seed(1)))


def test_registered() -> None:
    assert isinstance(get_runtime("sparse"), SparseRuntime)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("lead", [(1,), (64,), (2, 3)])
def test_csr_linear_equals_the_dense_layer(bias: bool, lead: tuple[int, ...]) -> None:
    dense = _sparse_linear(24, 40, zeros=int(0.95 * 24 * 40), bias=bias)
    csr = CSRLinear(dense)
    x = torch.randn(*lead, 40)
    with torch.inference_mode():
        assert torch.allclose(csr(x), dense(x), atol=ATOL, rtol=0)
    assert csr.nnz == int(torch.count_nonzero(dense.weight))
    assert csr.crow_indices.dtype == csr.col_indices.dtype == torch.int32


def test_deployed_model_matches_the_masked_model(family: str, make_model) -> None:
    model = make_model(family, width=0.5)
    cm = compress(model, MagnitudePruneConfig(sparsity=0.95, scope="layer"))
    runtime = get_runtime("sparse")
    assert runtime.unavailable(cm, "cpu") is None
    deployed = runtime.deploy(cm, "cpu", _check_z(model))
    assert deployed.execution == EXECUTION_CSR and deployed.runtime == "sparse"
    assert deployed.int8_mac_fraction is None and not deployed.changes_outputs
    z = model.latent(16, torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert torch.allclose(deployed.model(z), cm.model(z), atol=ATOL, rtol=0)
    assert deployed.export_max_abs_err is not None and deployed.export_max_abs_err <= ATOL
    replaced = [n for n, m in deployed.model.named_modules() if isinstance(m, CSRLinear)]
    assert replaced and all(f"{n}: Linear" in " ".join(deployed.notes) for n in replaced)
    assert not any(isinstance(m, CSRLinear) for m in cm.model.modules())  # variant untouched
    assert deployed.model.family == model.family and deployed.model.latent_dim == model.latent_dim


@pytest.mark.parametrize("zeros,runs_sparse", [(90, True), (89, False)])
def test_the_90_percent_threshold_is_per_layer(make_model, zeros: int, runs_sparse: bool) -> None:
    """A 10x10 Linear with exactly 90 zeros on the VAE's sampling path runs CSR; with 89 it
    stays dense (and is the highest sparsity the message reports)."""
    cm = compress(make_model("vae"), MagnitudePruneConfig(sparsity=0.0))
    layer = _sparse_linear(10, 10, zeros=zeros, bias=True)
    dec_fc = cm.model.dec_fc
    cm.model.dec_fc = _Head(dec_fc.in_features, layer, dec_fc.out_features)
    reason = get_runtime("sparse").unavailable(cm, "cpu")
    assert (reason is None) == runs_sparse
    if not runs_sparse:
        assert ">= 90% unstructured sparsity" in reason and "89.0%" in reason


class _Head(nn.Module):
    """Linear (in->10) -> the layer under test (10->10) -> Linear (10->out)."""

    def __init__(self, inp: int, layer: nn.Linear, out: int) -> None:
        super().__init__()
        self.a, self.b, self.c = nn.Linear(inp, 10), layer, nn.Linear(10, out)
        with torch.no_grad():  # keep a and c dense (no zeros) so only b can qualify
            self.a.weight.add_(1.0)
            self.c.weight.add_(1.0)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.c(self.b(self.a(z)))


def test_unavailable_below_90_percent_and_for_int8_kernels(make_model) -> None:
    runtime = get_runtime("sparse")
    half = compress(make_model("gan"), MagnitudePruneConfig(sparsity=0.5))
    assert ">= 90% unstructured sparsity" in runtime.unavailable(half, "cpu")
    two_four = compress(make_model("gan"), NMPruneConfig())  # 50%: CSR does not pay on CPU
    assert ">= 90% unstructured sparsity" in runtime.unavailable(two_four, "cpu")
    sparse = compress(make_model("gan"), MagnitudePruneConfig(sparsity=0.95, scope="layer"))
    sparse.execution = EXECUTION_INT8_KERNEL
    assert "int8-kernel" in runtime.unavailable(sparse, "cpu")
    with pytest.raises(ValueError, match="90%"):
        runtime.deploy(half, "cpu", RuntimeContext())


def test_size_file_bytes_counts_csr_parts(make_model) -> None:
    cm = compress(make_model("vae", width=0.5), MagnitudePruneConfig(sparsity=0.95, scope="layer"))
    deployed = get_runtime("sparse").deploy(cm, "cpu", RuntimeContext())
    dense_state = deployable_state(cm.model)
    expected = sum(t.numel() * t.element_size() for t in dense_state.values())
    for name, module in deployed.model.named_modules():
        if isinstance(module, CSRLinear):
            weight = dense_state[f"{name}.weight"]
            expected += csr_bytes(module.nnz, module.out_features, 4, 4) - weight.numel() * 4
    # safetensors adds a JSON header (names, dtypes, shapes, offsets): under 8 KiB here.
    assert expected <= deployed.size_file_bytes < expected + 8192
    assert layer_sparsity(cm.model.dec_fc.weight) >= 0.9


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_2_4_on_cuda_is_close_to_the_masked_model() -> None:
    if torch.cuda.get_device_capability() < (8, 0):
        pytest.skip("2:4 sparse tensor cores need compute capability >= 8.0")
    torch.manual_seed(0)
    model = MODELS["gan"]().eval()  # fc: Linear 32 -> 3136, a shape the 2:4 kernels accept
    cm = compress(model, NMPruneConfig())
    runtime = get_runtime("sparse")
    assert runtime.unavailable(cm, "cuda") is None
    deployed = runtime.deploy(cm, "cuda", _check_z(model, 64))
    assert deployed.execution == EXECUTION_2_4 and deployed.changes_outputs
    assert deployed.export_max_abs_err < 1e-2  # fp16 rounding of one Linear layer
