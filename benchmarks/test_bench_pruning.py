"""Speed of pruning/distillation per family, and measured CPU latency of shrunk models vs MACs.

Run: .venv/bin/python -m pytest benchmarks/test_bench_pruning.py --benchmark-only
extra_info of the latency benchmarks holds macs_ratio (shrunk/dense MACs, theory) and
latency_ratio (shrunk/dense median latency from torch.utils.benchmark, measured) side by side.
"""

from __future__ import annotations

import pytest
import torch
import torch.utils.benchmark as tbench

from compression.accounting import count_macs, count_params
from compression.api import CompressionContext, MethodConfig, compress
from compression.distillation import DistillConfig
from compression.pruning import MagnitudePruneConfig, ThresholdPruneConfig
from compression.structured import StructuredPruneConfig
from genmodels.models import MODELS

SHAPE = (1, 28, 28)
BATCH = 64
CONFIGS: dict[str, MethodConfig] = {
    "prune_threshold": ThresholdPruneConfig(threshold=0.02),
    "prune_magnitude_global90": MagnitudePruneConfig(sparsity=0.9),
    "prune_magnitude_iter3_ft30": MagnitudePruneConfig(
        sparsity=0.9, iterations=3, finetune_steps=30
    ),
    "prune_structured50": StructuredPruneConfig(sparsity=0.5),
    "distill_w05_30steps": DistillConfig(width=0.5, steps=30),
}


def _model(family: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return MODELS[family](image_shape=SHAPE).eval()


@pytest.fixture(scope="module")
def ctx() -> CompressionContext:
    return CompressionContext(
        train_x=torch.rand(256, *SHAPE, generator=torch.Generator().manual_seed(0))
    )


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("family", sorted(MODELS))
def test_compression_time(benchmark, family: str, name: str, ctx) -> None:
    model = _model(family)
    benchmark.group = f"compress-{family}"
    cm = benchmark.pedantic(compress, args=(model, CONFIGS[name], ctx), rounds=2, iterations=1)
    benchmark.extra_info.update(params=count_params(cm.model), execution=cm.execution)


def _paired_medians(
    a: torch.nn.Module, b: torch.nn.Module, z: torch.Tensor, rounds: int = 5
) -> tuple[float, float]:
    """Median seconds per call of a(z) and b(z), measured in alternating blocks so that load
    from other processes on a shared machine hits both alike."""
    timers = [tbench.Timer(stmt="m(z)", globals={"m": m, "z": z}, num_threads=1) for m in (a, b)]
    samples: list[list[float]] = [[], []]
    for _ in range(rounds):
        for timer, out in zip(timers, samples, strict=True):
            out.append(timer.blocked_autorange(min_run_time=0.1).median)
    return tuple(sorted(x)[len(x) // 2] for x in samples)


@pytest.mark.parametrize("sparsity", [0.0, 0.25, 0.5, 0.75])
@pytest.mark.parametrize("family", sorted(MODELS))
def test_structured_latency_vs_macs(benchmark, family: str, sparsity: float, ctx) -> None:
    dense = _model(family)
    shrunk = compress(dense, StructuredPruneConfig(sparsity=sparsity), ctx).model
    z = dense.latent(BATCH, torch.Generator().manual_seed(0))
    macs_dense, macs_shrunk = count_macs(dense, z[:1])[0], count_macs(shrunk, z[:1])[0]
    with torch.inference_mode():
        t_dense, t_shrunk = _paired_medians(dense, shrunk, z)
        benchmark.group = f"latency-structured-{family}-batch{BATCH}"
        benchmark(shrunk, z)
    benchmark.extra_info.update(
        macs_dense=macs_dense,
        macs_shrunk=macs_shrunk,
        macs_ratio=macs_shrunk / macs_dense,
        latency_dense_ms=t_dense * 1e3,
        latency_shrunk_ms=t_shrunk * 1e3,
        latency_ratio=t_shrunk / t_dense,
        params_shrunk=count_params(shrunk),
    )
