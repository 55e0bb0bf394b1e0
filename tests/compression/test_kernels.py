"""Int8 kernels ("quant_int8_kernel"): outputs match the simulated int8 model, codes are stored."""
from __future__ import annotations

import pytest
import torch
from probes import one_call

from compression import compress
from compression.accounting import count_macs, prunable_tensors
from compression.api import EXECUTION_INT8_KERNEL
from compression.quantization.kernels import Int8KernelConfig
from compression.quantization.storage import load_compressed_state, save_compressed

pytest.importorskip("torchao")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")

# Tolerances on outputs in [0, 1], max |kernel - simulated|: weight-only runs the same int8
# weights, so only float summation order differs; dynamic mode also rounds each activation row
# to 8 bits (relative step 1/127 of the row's max), which the simulated model does not do.
TOL_WEIGHT_ONLY = 1e-5
TOL_DYNAMIC = 2e-2


def _simulated(make_model, family: str, cm, tmp_path):
    """An fp32 model holding exactly the stored int8 weights: the file loaded back."""
    path = tmp_path / "int8.safetensors"
    save_compressed(cm, path)
    model = make_model(family)
    model.load_state_dict(load_compressed_state(path), strict=False)
    return model


@pytest.mark.parametrize("mode,tol", [("weight_only", TOL_WEIGHT_ONLY), ("dynamic", TOL_DYNAMIC)])
def test_int8_kernel_matches_simulated(make_model, family, tmp_path, mode, tol) -> None:
    model = make_model(family)
    cm = compress(model, Int8KernelConfig(mode=mode))
    assert cm.execution == EXECUTION_INT8_KERNEL and cm.notes["int8_kernel_layers"]
    assert sorted(cm.quantized) == sorted(n for n, _, _ in prunable_tensors(model))
    assert all(q.bits == 8 for q in cm.quantized.values())
    simulated = _simulated(make_model, family, cm, tmp_path)
    z = model.latent(16, torch.Generator().manual_seed(0))
    with torch.inference_mode():
        out, ref, fp32 = one_call(cm.model, z), one_call(simulated, z), one_call(model, z)
    assert float((out - ref).abs().max()) <= tol
    assert float((out - fp32).abs().max()) <= tol + 0.05  # int8 is close to fp32 as well


def test_conv_layers_are_reported_as_simulated(make_model) -> None:
    cm = compress(make_model("vae"), Int8KernelConfig(mode="weight_only"))
    kernel = " ".join(cm.notes["int8_kernel_layers"])
    assert "(torchao)" in kernel
    assert cm.notes["simulated_int8_layers"]  # Conv2d/ConvTranspose2d: no int8 kernel here


def test_torch_ao_dynamic_backend(make_model, tmp_path) -> None:
    pytest.importorskip("torch.ao.quantization")
    model = make_model("rvae")
    cm = compress(model, Int8KernelConfig(backend="torch.ao-dynamic"))
    assert any("torch.ao" in name for name in cm.notes["int8_kernel_layers"])
    assert sorted(cm.quantized) == sorted(n for n, _, _ in prunable_tensors(model))
    assert all(q.bits == 8 for q in cm.quantized.values())
    simulated = _simulated(make_model, "rvae", cm, tmp_path)
    z = cm.model.latent(8, torch.Generator().manual_seed(0))
    with torch.inference_mode():
        assert float((cm.model(z) - simulated(z)).abs().max()) <= TOL_DYNAMIC


@pytest.mark.parametrize("backend", ["auto", "torch.ao-dynamic"])
def test_int8_kernel_models_count_the_same_dense_macs(make_model, family, backend) -> None:
    # Packed int8 modules are not nn.Linear/nn.GRU; they must still be counted.
    model = make_model(family)
    cm = compress(model, Int8KernelConfig(backend=backend))
    z = model.latent(2, torch.Generator().manual_seed(0))
    assert count_macs(cm.model, z)[0] == count_macs(model, z)[0] > 0


@pytest.mark.parametrize("backend", ["auto", "torch.ao-dynamic"])
def test_int8_models_repeat_exactly_under_inference_mode(make_model, family, backend) -> None:
    # What latency timing relies on: every timed call of the deployed int8 model does the same
    # work and gives the same output (speed itself is measured in benchmarks/, not asserted here).
    cm = compress(make_model(family), Int8KernelConfig(backend=backend))
    z = cm.model.latent(8, torch.Generator().manual_seed(0))
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.inference_mode():
            first, second = cm.model(z), cm.model(z)
    finally:
        torch.set_num_threads(previous)
    assert first.shape == (8, *cm.model.image_shape) and bool(torch.isfinite(first).all())
    assert torch.equal(first, second)


@pytest.mark.parametrize("kwargs,match", [({"backend": "onnx"}, "backend"),
                                          ({"mode": "static"}, "mode"),
                                          ({"backend": "torch.ao-dynamic", "mode": "weight_only"},
                                           "dynamic")])
def test_kernel_config_rejects_bad_input(kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        Int8KernelConfig(**kwargs)
