"""The runtime registry: names, errors, unavailable reasons, eager identity, CPU flag parsing."""
from __future__ import annotations

import pytest
import torch

from compression.api import EXECUTION_INT8_KERNEL, as_compressed
from compression.runtimes import RUNTIMES, Deployed, Runtime, RuntimeContext, get_runtime
from compression.runtimes.base import register_runtime
from compression.runtimes.ort_int8 import has_vnni
from tests.compression.conftest import NEEDS_OPENVINO, NEEDS_ORT, build_model

CORE = ("eager", "compiled", "onnxruntime", "onnxruntime_int8", "openvino")
NO_GPU = not torch.cuda.is_available()


def test_core_runtimes_registered() -> None:
    assert set(CORE) <= set(RUNTIMES)
    for name, runtime in RUNTIMES.items():
        assert runtime.name == name and isinstance(runtime, Runtime)


def test_unknown_runtime_lists_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown runtime 'tensorrt'; known: .*onnxruntime"):
        get_runtime("tensorrt")


def test_duplicate_name_refused() -> None:
    with pytest.raises(ValueError, match="already registered"):
        @register_runtime
        class Again(Runtime):
            name = "eager"


def test_eager_is_identity() -> None:
    cm = as_compressed(build_model("gan"))
    deployed = get_runtime("eager").deploy(cm, "cpu", RuntimeContext())
    assert isinstance(deployed, Deployed)
    assert deployed.model is cm.model and deployed.execution == cm.execution == "dense"
    assert deployed.changes_outputs is False and deployed.int8_mac_fraction is None


@pytest.mark.parametrize("name", [pytest.param("onnxruntime", marks=NEEDS_ORT),
                                  pytest.param("onnxruntime_int8", marks=NEEDS_ORT),
                                  pytest.param("openvino", marks=[NEEDS_ORT, NEEDS_OPENVINO])])
def test_int8_kernel_variants_cannot_be_exported(name: str) -> None:
    cm = as_compressed(build_model("vae"))
    assert get_runtime(name).unavailable(cm, "cpu") is None
    cm.execution = EXECUTION_INT8_KERNEL
    reason = get_runtime(name).unavailable(cm, "cpu")
    assert reason is not None and "cannot export" in reason and "\n" not in reason


@pytest.mark.parametrize("name", ["onnxruntime_int8",
                                  pytest.param("openvino", marks=NEEDS_OPENVINO)])
def test_cpu_only_runtimes_refuse_cuda(name: str) -> None:
    reason = get_runtime(name).unavailable(as_compressed(build_model("gan")), "cuda")
    assert reason is not None and "cuda" in reason


@pytest.mark.skipif(not NO_GPU, reason="checks the no-GPU message")
@pytest.mark.parametrize("name", ["eager", "compiled", "onnxruntime"])
def test_cuda_without_gpu_is_a_reason(name: str) -> None:
    reason = get_runtime(name).unavailable(as_compressed(build_model("gan")), "cuda")
    assert reason is not None and ("GPU" in reason or "CUDAExecutionProvider" in reason)


@pytest.mark.cuda
@pytest.mark.skipif(NO_GPU, reason="needs a CUDA GPU")
def test_onnxruntime_cuda_provider_or_reason() -> None:
    import onnxruntime as ort

    reason = get_runtime("onnxruntime").unavailable(as_compressed(build_model("gan")), "cuda")
    has_provider = "CUDAExecutionProvider" in ort.get_available_providers()
    assert (reason is None) == has_provider


@pytest.mark.parametrize("flags, expected", [
    ("fpu avx2 avx512f avx512_vnni", True), ("fpu avx2 avx_vnni", True),
    ("fpu avx2 avx512f avx512bw", False)])
def test_vnni_flag_parsing(tmp_path, flags: str, expected: bool) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
    assert has_vnni(str(cpuinfo)) is expected


def test_vnni_unreadable_cpuinfo_means_no_vnni(tmp_path) -> None:
    assert has_vnni(str(tmp_path / "missing")) is False
