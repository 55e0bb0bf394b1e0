"""Speed of quantization: time to quantize per family and bit width, latency per execution path.

Run: .venv/bin/python -m pytest benchmarks/test_bench_quantization.py --benchmark-only
Latency is also measured with torch.utils.benchmark (1 thread, inference_mode) against the fp32
model on the same z; the ratio goes to extra_info["speedup_vs_fp32"] whatever it is (a value
below 1 means the path is slower than fp32 and is reported as such).
"""
from __future__ import annotations

import warnings

import pytest
import torch
from torch.utils import benchmark as tbench

from compression import compress
from compression.quantization import Int8KernelConfig, QATConfig, QuantConfig
from genmodels.models import MODELS, build_model

FAMILIES = sorted(MODELS)
BATCH = 64
PATHS = {
    "fp32": None,
    "simulated-w8": QuantConfig(bits=8, rounding="minmax"),
    "simulated-w4-mse": QuantConfig(bits=4),
    "simulated-w8a8": QuantConfig(bits=8, activation_bits=8),
    "int8-kernel-dynamic": Int8KernelConfig(mode="dynamic"),
    "int8-kernel-weight-only": Int8KernelConfig(mode="weight_only"),
}


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", category=DeprecationWarning)


def _model(family: str):
    torch.manual_seed(0)
    return build_model(family).eval()


def _ctx():
    from compression.api import CompressionContext

    x = torch.rand(128, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    return CompressionContext(train_x=x, seed=0)


def _median_seconds(model, z) -> float:
    with torch.inference_mode():
        timer = tbench.Timer("m(z)", globals={"m": model, "z": z}, num_threads=1)
        return timer.blocked_autorange(min_run_time=0.5).median


@pytest.mark.parametrize("bits", [8, 4, 2])
@pytest.mark.parametrize("rounding", ["minmax", "mse"])
@pytest.mark.parametrize("family", FAMILIES)
def test_quantization_time(benchmark, family, bits, rounding) -> None:
    model = _model(family)
    benchmark.extra_info.update(family=family, bits=bits, rounding=rounding)
    cm = benchmark(compress, model, QuantConfig(bits=bits, rounding=rounding))
    assert len(cm.quantized) > 0


@pytest.mark.parametrize("family", FAMILIES)
def test_qat_time(benchmark, family) -> None:
    model, ctx = _model(family), _ctx()
    cfg = QATConfig(bits=2, steps=20, lr=1e-3, batch_size=64)
    benchmark.extra_info.update(family=family, bits=2, steps=20)
    benchmark.pedantic(compress, args=(model, cfg, ctx), rounds=1, iterations=1)


@pytest.mark.parametrize("path", list(PATHS))
@pytest.mark.parametrize("family", FAMILIES)
def test_latency(benchmark, family, path) -> None:
    model = _model(family)
    cfg = PATHS[path]
    cm = compress(model, cfg, _ctx()) if cfg is not None else None
    run = cm.model if cm is not None else model
    z = model.latent(BATCH, torch.Generator().manual_seed(0))
    fp32_s, path_s = _median_seconds(model, z), _median_seconds(run, z)
    benchmark.extra_info.update(
        family=family, path=path, batch_size=BATCH,
        execution=cm.execution if cm is not None else "dense",
        torch_benchmark_median_ms=path_s * 1e3, fp32_median_ms=fp32_s * 1e3,
        speedup_vs_fp32=fp32_s / path_s,
        int8_kernel_layers=(cm.notes.get("int8_kernel_layers", []) if cm is not None else []),
    )
    with torch.inference_mode():
        benchmark(run, z)
