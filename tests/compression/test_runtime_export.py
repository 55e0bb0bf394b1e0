"""ONNX export: every family and variant kind matches eager within EXPORT_ATOL on ORT fp32."""
from __future__ import annotations

import copy
import pickle

import pytest
import torch

from compression.api import EXECUTION_MASKED, EXECUTION_SHRUNK, EXECUTION_SIMULATED, compress
from compression.pruning import MagnitudePruneConfig
from compression.quantization.ptq import QuantConfig
from compression.runtimes import RuntimeContext, get_runtime
from compression.runtimes.export import EXPORT_ATOL, ExportMismatch, check_export
from compression.runtimes.graphs import RowInit, RowStep, is_row_driven
from compression.structured import StructuredPruneConfig
from genmodels.models import MODELS
from tests.compression.conftest import NEEDS_ORT, TINY_LATENT, TINY_SHAPE, build_model

pytestmark = NEEDS_ORT

# Each export costs seconds (the dynamo exporter): the default run covers every family once and
# the variant kinds on the GAN; the rest is marked slow.
FAMILIES = [pytest.param(f, marks=pytest.mark.slow) if f == "ddpm" else f for f in sorted(MODELS)]
SLOW = pytest.mark.slow


def _latents(n: int, dim: int = TINY_LATENT, seed: int = 1) -> torch.Tensor:
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("family", FAMILIES)
def test_onnxruntime_matches_eager_at_any_batch(family: str, tmp_path) -> None:
    model = build_model(family)
    deployed = get_runtime("onnxruntime").deploy(compress_none(model), "cpu",
                                                 RuntimeContext(workdir=tmp_path))
    assert deployed.execution == "ort-fp32" and deployed.changes_outputs is False
    assert deployed.size_file_bytes == sum(p.stat().st_size
                                           for p in (tmp_path / "onnxruntime").glob("*.onnx"))
    assert not list(deployed.model.parameters())  # a session wrapper: no torch weights
    for batch in (1, 5):  # dynamic batch axis: neither size is the exported example's (2)
        z = _latents(batch, model.latent_dim)
        with torch.no_grad():
            out, ref = deployed.model(z), model(z)
        assert out.shape == ref.shape == (batch, *TINY_SHAPE)
        if family != "ddpm":  # ddpm's sampler amplifies rounding: the denoiser is checked
            assert (out - ref).abs().max() <= EXPORT_ATOL
    if is_row_driven(model):
        assert sorted(p.name for p in (tmp_path / "onnxruntime").glob("*.onnx")) == [
            "init.onnx", "step.onnx"]


def compress_none(model):
    from compression.api import as_compressed

    return as_compressed(model)


@pytest.mark.parametrize("config, execution", [
    (MagnitudePruneConfig(sparsity=0.7), EXECUTION_MASKED),
    (StructuredPruneConfig(sparsity=0.5), EXECUTION_SHRUNK),
    (QuantConfig(bits=4, rounding="minmax"), EXECUTION_SIMULATED),
    (QuantConfig(bits=8, rounding="minmax", activation_bits=8), EXECUTION_SIMULATED),
])
@pytest.mark.parametrize("family", ["gan", pytest.param("rvae", marks=SLOW)])
def test_variants_export(family: str, config, execution: str, ctx) -> None:
    cm = compress(build_model(family), config, ctx)
    assert cm.execution == execution
    deployed = get_runtime("onnxruntime").deploy(cm, "cpu", RuntimeContext())
    z = _latents(4)
    with torch.no_grad():
        assert (deployed.model(z) - cm.model(z)).abs().max() <= EXPORT_ATOL
    assert deployed.export_max_abs_err <= EXPORT_ATOL


@pytest.mark.parametrize("cell", ["gru", "lstm"])
@pytest.mark.parametrize("cell_as_gemm", [False, True])
def test_rvae_row_step_driven_equals_free_running_decode(cell: str, cell_as_gemm: bool) -> None:
    """RowInit + RowStep driven row by row is RecurrentVAE's free-running decoder (torch only;
    the ONNX graphs of the GRU step are checked in test_onnxruntime_matches_eager_*)."""
    torch.manual_seed(0)
    model = MODELS["rvae"](image_shape=TINY_SHAPE, latent_dim=TINY_LATENT, width=0.25,
                           cell=cell).eval()
    assert is_row_driven(model)
    # The torch step module itself, driven row by row, is the decoder (no ONNX involved) ...
    from genmodels.data import from_rows

    z = _latents(3)
    with torch.no_grad():
        state, prev, rows = RowInit(model)(z), torch.zeros(3, model.row_dim), []
        for _ in range(model.n_rows):
            prev, *state = RowStep(model, cell_as_gemm)(prev, z, *state)
            rows.append(prev)
        driven = from_rows(torch.stack(rows, 1), model.image_shape)
        assert (driven - model(z)).abs().max() <= 1e-5


@SLOW
def test_lstm_rvae_exports_with_two_state_tensors(tmp_path) -> None:
    torch.manual_seed(0)
    model = MODELS["rvae"](image_shape=TINY_SHAPE, latent_dim=TINY_LATENT, width=0.25,
                           cell="lstm").eval()
    deployed = get_runtime("onnxruntime").deploy(compress_none(model), "cpu", RuntimeContext())
    z = _latents(3)
    with torch.no_grad():
        assert (deployed.model(z) - model(z)).abs().max() <= EXPORT_ATOL
    assert deployed.model.states == ("h", "c")


def test_mismatch_beyond_tolerance_raises() -> None:
    model = build_model("vae")
    shifted = copy.deepcopy(model)
    with torch.no_grad():
        shifted.dec2.bias.add_(0.5)  # logits + 0.5: sigmoid moves by up to 0.12 > 1e-4
    with pytest.raises(ExportMismatch, match="differs from eager by"):
        check_export(shifted, model, _latents(4))
    assert check_export(model, model, _latents(4)) == 0.0


def test_wrapper_pickles_and_runs_after() -> None:
    model = build_model("vae")
    deployed = get_runtime("onnxruntime").deploy(compress_none(model), "cpu", RuntimeContext())
    z = _latents(2)
    with torch.no_grad():
        before = deployed.model(z)
        clone = pickle.loads(pickle.dumps(deployed.model))
        assert torch.equal(clone(z), before)
    assert clone.family == "vae" and clone.device == torch.device("cpu")
    assert clone.sample(2, torch.Generator().manual_seed(0)).shape == (2, *TINY_SHAPE)


def test_openvino_matches_eager() -> None:
    pytest.importorskip("openvino")
    model = build_model("vae")
    deployed = get_runtime("openvino").deploy(compress_none(model), "cpu", RuntimeContext())
    z = _latents(3)
    with torch.no_grad():
        assert (deployed.model(z) - model(z)).abs().max() <= EXPORT_ATOL
