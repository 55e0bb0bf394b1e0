"""Peak memory of one forward in a fresh process: activations and weights show up; CUDA skips."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from bench.metrics.memory import cuda_peak_memory, peak_memory, peak_memory_for_model
from genmodels.base import GenerativeModel

requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

IN, HIDDEN = 64, 16384  # weights 2 * 64 * 16384 * 4 B = 8 MiB; activations 64 KiB per sample


class WideGenerator(GenerativeModel):
    """z (B, 64) -> Linear(64, 16384) -> ReLU -> Linear(16384, 64) -> (B, 1, 8, 8)."""

    family = "test-wide"

    def __init__(self) -> None:
        super().__init__((1, 8, 8), IN, 1.0)
        self.net = nn.Sequential(nn.Linear(IN, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, IN))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(-1, *self.image_shape)


def test_cpu_peak_grows_with_activations_and_counts_weights() -> None:
    # Two fresh processes (each imports torch: the slow part of this test).
    model = WideGenerator()
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    small = peak_memory_for_model(model, batch_size=1, device="cpu")  # pickles a GenerativeModel
    large = peak_memory(model.net, torch.randn(256, IN), "cpu")  # a plain module
    activation = 256 * HIDDEN * 4  # one (256, HIDDEN) float32 tensor: 16 MiB
    assert small.batch_size == 1 and large.batch_size == 256
    assert (
        small.reserved_bytes is None
        and "VmHWM" in small.method
        and "not pinned" not in small.method
    )
    assert small.peak_bytes >= 0.9 * weights  # the weights are resident in the fresh child
    # Linear output and ReLU output are both alive at the peak: ~2 activations (measured 35 MB).
    assert 1.5 * activation <= large.peak_bytes - small.peak_bytes <= 4 * activation
    with pytest.raises(ValueError, match="batch_size"):
        peak_memory_for_model(model, batch_size=0, device="cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised without CUDA")
def test_cuda_memory_without_gpu_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="CUDA is not available"):
        cuda_peak_memory(lambda: None, "cuda")


@requires_cuda
def test_cuda_peak_grows_with_batch() -> None:
    module = WideGenerator().net
    small = peak_memory(module, torch.randn(1, IN), "cuda")
    large = peak_memory(module, torch.randn(256, IN), "cuda")
    assert large.reserved_bytes >= large.peak_bytes
    assert large.peak_bytes - small.peak_bytes >= 256 * HIDDEN * 4
