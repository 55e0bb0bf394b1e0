"""Dense vs CSR on CPU: Linear layers at the models' shapes and larger, a ConvT via im2col, models.

Run: .venv/bin/python -m pytest benchmarks/test_bench_sparse.py --benchmark-only
 or: .venv/bin/python benchmarks/test_bench_sparse.py   (prints the markdown table of ratios)
One thread; dense and sparse are timed in alternating blocks of torch.utils.benchmark (medians),
so load from other processes hits both alike. extra_info / the table hold both medians and
csr_over_dense (< 1: CSR is faster). Indicative only on a loaded machine.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
import torch.utils.benchmark as tbench
from torch import nn

from compression.api import compress
from compression.pruning import MagnitudePruneConfig
from compression.runtimes import RuntimeContext, get_runtime
from compression.runtimes.sparse_layers import CSRLinear
from compression.semistructured import gemm_view
from genmodels.models import MODELS

# (out, in): GAN fc, VAE dec_fc, VAE enc_fc, RVAE dec_out, then larger square layers.
LINEAR_SHAPES = [(3136, 32), (3136, 16), (32, 3136), (28, 128), (1024, 1024), (4096, 4096)]
SPARSITIES = [0.9, 0.95, 0.99]
FAMILIES = ["gan", "vae", "rvae"]
BATCHES = [1, 64]


def paired_medians(a, b, rounds: int = 5, min_run_time: float = 0.05) -> tuple[float, float]:
    """Median seconds per call of a() and b(), alternating blocks (see test_bench_pruning)."""
    timers = [tbench.Timer(stmt="f()", globals={"f": f}, num_threads=1) for f in (a, b)]
    samples: list[list[float]] = [[], []]
    for _ in range(rounds):
        for timer, out in zip(timers, samples, strict=True):
            out.append(timer.blocked_autorange(min_run_time=min_run_time).median)
    return tuple(sorted(x)[len(x) // 2] for x in samples)


def pruned_linear(out: int, inp: int, sparsity: float, seed: int = 0) -> nn.Linear:
    torch.manual_seed(seed)
    layer = nn.Linear(inp, out)
    with torch.no_grad():
        flat = layer.weight.view(-1)
        flat[torch.randperm(flat.numel())[: round(sparsity * flat.numel())]] = 0.0
    return layer


Case = tuple[dict[str, float], Callable[[], torch.Tensor]]  # (figures, the sparse call)


def _figures(t_dense: float, t_csr: float) -> dict[str, float]:
    return {"dense_us": t_dense * 1e6, "csr_us": t_csr * 1e6, "csr_over_dense": t_csr / t_dense}


def linear_case(out: int, inp: int, sparsity: float, batch: int) -> Case:
    dense = pruned_linear(out, inp, sparsity)
    csr = CSRLinear(dense)
    x = torch.randn(batch, inp)

    def sparse() -> torch.Tensor:
        return csr(x)

    with torch.inference_mode():
        t_dense, t_csr = paired_medians(lambda: dense(x), sparse)
    return _figures(t_dense, t_csr), sparse


def convt_case(sparsity: float, batch: int) -> Case:
    """GAN up1 (ConvT 64 -> 32, k4 s2 p1, 7x7 -> 14x14): dense conv_transpose2d vs the CSR GEMM
    of the runtime (CSRLinear of gemm_view(W), (512, 64)) + col2im (F.fold), the only sparse
    conv route torch offers on CPU."""
    torch.manual_seed(0)
    convt = nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1, bias=False)
    with torch.no_grad():
        convt.weight.mul_(torch.rand_like(convt.weight) >= sparsity)
    gemm = nn.Linear(64, 512, bias=False)
    gemm.weight.data = gemm_view(convt, convt.weight.detach()).contiguous()
    csr = CSRLinear(gemm)
    x = torch.randn(batch, 64, 7, 7)

    def sparse() -> torch.Tensor:
        flat = x.permute(1, 0, 2, 3).reshape(64, -1)  # (Cin, B*49): one GEMM for the batch
        cols = csr.matmul_t(flat).view(512, batch, 49).transpose(0, 1)  # (B, Cout*kH*kW, 49)
        return F.fold(cols.contiguous(), (14, 14), 4, stride=2, padding=1)

    with torch.inference_mode():
        assert torch.allclose(sparse(), convt(x), atol=1e-4)
        t_dense, t_csr = paired_medians(lambda: convt(x), sparse)
    return _figures(t_dense, t_csr), sparse


def model_case(family: str, sparsity: float, batch: int) -> Case:
    """A default-size model pruned per layer to `sparsity`: eager (masked) vs the sparse runtime."""
    torch.manual_seed(0)
    cm = compress(MODELS[family]().eval(), MagnitudePruneConfig(sparsity=sparsity, scope="layer"))
    deployed = get_runtime("sparse").deploy(cm, "cpu", RuntimeContext()).model
    z = cm.model.latent(batch, torch.Generator().manual_seed(0))
    def sparse() -> torch.Tensor:
        return deployed(z)

    with torch.inference_mode():
        t_dense, t_csr = paired_medians(lambda: cm.model(z), sparse)
    return _figures(t_dense, t_csr), sparse


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("sparsity", SPARSITIES)
@pytest.mark.parametrize("shape", LINEAR_SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_linear_dense_vs_csr(benchmark, shape, sparsity: float, batch: int) -> None:
    benchmark.group = f"sparse-linear-{shape[0]}x{shape[1]}-batch{batch}"
    figures, sparse = linear_case(*shape, sparsity, batch)
    benchmark.extra_info.update(figures)
    with torch.inference_mode():
        benchmark(sparse)


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("sparsity", SPARSITIES)
def test_convt_dense_vs_im2col_csr(benchmark, sparsity: float, batch: int) -> None:
    benchmark.group = f"sparse-convt-batch{batch}"
    figures, sparse = convt_case(sparsity, batch)
    benchmark.extra_info.update(figures)
    with torch.inference_mode():
        benchmark(sparse)


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("family", FAMILIES)
def test_model_eager_vs_sparse_runtime(benchmark, family: str, batch: int) -> None:
    benchmark.group = f"sparse-model-{family}-batch{batch}"
    figures, sparse = model_case(family, 0.95, batch)
    benchmark.extra_info.update(figures)
    with torch.inference_mode():
        benchmark(sparse)


def main() -> None:
    torch.set_num_threads(1)
    print("| case | sparsity | batch | dense us | CSR us | CSR/dense |\n|---|---|---|---|---|---|")
    rows = [(f"Linear {o}x{i}", s, b, lambda o=o, i=i, s=s, b=b: linear_case(o, i, s, b))
            for (o, i) in LINEAR_SHAPES for s in SPARSITIES for b in BATCHES]
    rows += [("ConvT 64->32 k4 (GAN up1), im2col+CSR", s, b,
              lambda s=s, b=b: convt_case(s, b)) for s in SPARSITIES for b in BATCHES]
    rows += [(f"model {f} (per-layer pruned), sparse runtime", 0.95, b,
              lambda f=f, b=b: model_case(f, 0.95, b)) for f in FAMILIES for b in BATCHES]
    for name, sparsity, batch, case in rows:
        r, _ = case()
        print(f"| {name} | {sparsity:.2f} | {batch} | {r['dense_us']:.1f} | {r['csr_us']:.1f} "
              f"| {r['csr_over_dense']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
