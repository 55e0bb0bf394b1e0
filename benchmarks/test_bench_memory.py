"""Cost of one in-process peak-memory measurement per family and execution (the old spawned
process took ~7 s each).

Run: .venv/bin/python -m pytest benchmarks/test_bench_memory.py --benchmark-only -s
"""
from __future__ import annotations

import warnings

import pytest
import torch

from bench.metrics import peak_memory_for_model
from compression.api import compress
from compression.quantization.kernels import Int8KernelConfig
from genmodels.models import MODELS

BUDGET_S = 1.0  # per measurement, on a loaded 2-core machine; measured 2-350 ms


@pytest.mark.parametrize("batch_size", [1, 64])
@pytest.mark.parametrize("execution", ["fp32", "int8_kernel"])
@pytest.mark.parametrize("family", sorted(MODELS))
def test_bench_peak_memory(benchmark, family: str, execution: str, batch_size: int) -> None:
    torch.set_num_threads(1)
    model = MODELS[family]().eval()  # untrained: the bytes do not depend on the weights' values
    if execution == "int8_kernel":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.ao's deprecation notices
            model = compress(model, Int8KernelConfig()).model
    peak_memory_for_model(model, batch_size, "cpu")  # first use: the profiler's one-off set-up
    result = benchmark.pedantic(peak_memory_for_model, args=(model, batch_size, "cpu"),
                                rounds=3, iterations=1)
    benchmark.extra_info.update(peak_bytes=result.peak_bytes, weight_bytes=result.weight_bytes,
                                activation_bytes=result.activation_bytes)
    assert benchmark.stats.stats.median < BUDGET_S
