"""Peak memory in-process: weight bytes and live activations against closed forms from shapes."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from bench.metrics.memory import cuda_peak_memory, peak_memory, peak_memory_for_model
from bench.metrics.resident import resident_weight_bytes
from genmodels.base import GenerativeModel
from genmodels.models import MODELS

requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
F32 = 4
IN, HIDDEN, OUT = 64, 1024, 784


class LinearStack(GenerativeModel):
    """z (B, 64) -> Linear(64, 1024) -> ReLU -> Linear(1024, 1024) -> ReLU -> Linear(1024, 784)."""

    family = "test-linear-stack"

    def __init__(self) -> None:
        super().__init__((1, 28, 28), IN, 1.0)
        self.net = nn.Sequential(nn.Linear(IN, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, HIDDEN),
                                 nn.ReLU(), nn.Linear(HIDDEN, OUT))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(-1, *self.image_shape)


# By hand: weights + biases of the three layers.
STACK_WEIGHTS = F32 * ((IN * HIDDEN + HIDDEN) + (HIDDEN * HIDDEN + HIDDEN) + (HIDDEN * OUT + OUT))
# Largest live set, per sample: z (64) held by the caller + two (1024,) tensors at once (a
# Linear's output and the ReLU's output; nn.Sequential drops each input when the next is made).
STACK_ACTIVATIONS_PER_SAMPLE = F32 * (IN + 2 * HIDDEN)


def test_linear_stack_reports_weights_plus_largest_live_activations() -> None:
    batch = 256
    result = peak_memory_for_model(LinearStack(), batch, "cpu")
    activations = batch * STACK_ACTIVATIONS_PER_SAMPLE
    assert result.weight_bytes == STACK_WEIGHTS
    assert result.activation_bytes == pytest.approx(activations, rel=0.10)
    assert result.peak_bytes == pytest.approx(STACK_WEIGHTS + activations, rel=0.10)
    assert result.peak_bytes == result.weight_bytes + result.activation_bytes
    assert (result.device, result.batch_size, result.reserved_bytes) == ("cpu", batch, None)
    assert "profiler" in result.method


def test_memory_grows_with_batch_by_the_activation_bytes() -> None:
    model = LinearStack()
    small, large = (peak_memory_for_model(model, b, "cpu") for b in (1, 128))
    assert large.peak_bytes - small.peak_bytes == pytest.approx(
        127 * STACK_ACTIVATIONS_PER_SAMPLE, rel=0.10)


def test_linear_1_1_costs_bytes_not_an_interpreter() -> None:
    # The spawned-process RSS method reported 4.6 MB here. Weights 2 floats; z and output 1 each.
    result = peak_memory(nn.Linear(1, 1), torch.randn(1, 1), "cpu")
    assert result.weight_bytes == 2 * F32
    assert 2 * F32 <= result.activation_bytes
    assert result.peak_bytes < 64 * 1024


def _gan_generator_bytes(latent: int = 32, c0: int = 64, c1: int = 32, s: int = 7) -> int:
    """GAN generator at its defaults, by hand: fc (no bias), bn0, up1 (no bias), bn1, up2."""
    fc, up1, up2 = latent * c0 * s * s, c0 * c1 * 4 * 4, c1 * 1 * 4 * 4 + 1
    batchnorms = 4 * (c0 * s * s) + 4 * c1  # weight, bias, running mean, running var
    return F32 * (fc + batchnorms + up1 + up2) + 2 * 8  # + two int64 num_batches_tracked


def _gan_activations(batch: int, latent: int = 32, c0: int = 64, c1: int = 32, s: int = 7) -> int:
    """Largest live set of Generator.forward: `h` (relu0 out) stays referenced while up1, bn1 and
    relu1 make three (c1, 2s, 2s) tensors, two of them alive at once with it; + z."""
    h0, h1 = c0 * s * s, c1 * (2 * s) ** 2
    return F32 * batch * (latent + h0 + 3 * h1)


@pytest.mark.parametrize("batch, tolerance", [(1, 2.0), (64, 1.10)])
def test_gan_generator_is_weights_plus_activations(batch: int, tolerance: float) -> None:
    gan = MODELS["gan"]()  # untrained; the discriminator is not shipped, so not counted
    result = peak_memory_for_model(gan, batch, "cpu")
    assert result.weight_bytes == _gan_generator_bytes()
    expected = _gan_generator_bytes() + _gan_activations(batch)
    # At batch 1 oneDNN's weight reorders (~0.2 MB, live inside the transposed convolutions) are
    # of the order of the activations themselves; at 64 they are a few percent.
    assert expected <= result.peak_bytes <= tolerance * expected


def test_caller_model_left_as_it_was() -> None:
    model = LinearStack().train()
    model.net[2].eval()  # a frozen sub-module keeps its own mode
    peak_memory_for_model(model, 2, "cpu")
    assert [m.training for m in model.net] == [True, True, False, True, True]
    assert model.training and next(model.parameters()).device.type == "cpu"


def test_torch_ao_dynamic_int8_counts_packed_weights() -> None:
    from torch.ao.quantization import quantize_dynamic

    # In-features a multiple of 512: fbgemm pads K to 512-blocks, so smaller layers hold more.
    for layer in (nn.Linear(1024, 1024), nn.GRU(512, 512, batch_first=True)):
        fp32 = resident_weight_bytes(layer)
        int8 = quantize_dynamic(nn.Sequential(layer), {type(layer)}, dtype=torch.qint8)
        assert not list(int8.parameters())  # what params-based counting missed
        weights = sum(p.numel() for n, p in layer.named_parameters() if "weight" in n)
        biases = sum(p.numel() for n, p in layer.named_parameters() if "bias" in n)
        assert fp32 == F32 * (weights + biases)
        # int8 codes (1 B per weight) + fp32 biases, plus fbgemm's column offsets and padding.
        assert weights + F32 * biases <= resident_weight_bytes(int8) <= 0.30 * fp32


def test_gan_int8_kernel_cell_is_measured_in_process() -> None:
    # The spawned-process method could not pickle torchao's Int8Tensor: no figure at all.
    from compression.api import compress
    from compression.quantization.kernels import Int8KernelConfig

    cm = compress(MODELS["gan"](), Int8KernelConfig())
    result = peak_memory_for_model(cm.model, 1, "cpu")
    fc_codes = 32 * 64 * 7 * 7  # torchao Int8Tensor: qdata int8, scale fp32 and zero_point int8
    fc = fc_codes + (64 * 7 * 7) * (F32 + 1)  # per output row
    assert result.weight_bytes == _gan_generator_bytes() - F32 * fc_codes + fc
    assert result.activation_bytes > _gan_activations(1)


def test_torchao_int8_tensor_counts_its_inner_tensors() -> None:
    from torchao.quantization import Int8WeightOnlyConfig, quantize_

    layer = nn.Linear(256, 512)
    quantize_(layer, Int8WeightOnlyConfig())
    # qdata int8 (512, 256) + scale fp32 (512, 1) + zero_point int8 (512, 1) + bias fp32 (512,).
    assert resident_weight_bytes(layer) == 512 * 256 + 512 * F32 + 512 + 512 * F32


def test_tied_weights_count_once_and_gan_counts_only_the_generator() -> None:
    first = nn.Linear(8, 8, bias=False)
    tied = nn.Sequential(first, nn.Linear(8, 8, bias=False))
    tied[1].weight = first.weight
    assert resident_weight_bytes(tied) == 8 * 8 * F32
    gan = MODELS["gan"]()
    assert resident_weight_bytes(gan) == resident_weight_bytes(gan.generator)
    assert resident_weight_bytes(gan) < resident_weight_bytes(nn.ModuleList(gan.children()))


def test_unknown_packed_module_is_a_clear_error() -> None:
    holder = nn.Module()
    weight = torch.quantize_per_tensor(torch.randn(4, 4), 0.1, 0, torch.qint8)
    holder.blob = torch.ops.quantized.linear_prepack(weight, None)
    with pytest.raises(ValueError, match="packed weights of Module"):
        resident_weight_bytes(holder)


def test_bad_arguments_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        peak_memory_for_model(LinearStack(), 0, "cpu")
    with pytest.raises(ValueError, match="threads"):
        peak_memory(nn.Linear(1, 1), torch.randn(1, 1), "cpu", threads=0)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised without CUDA")
def test_cuda_memory_without_gpu_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="CUDA is not available"):
        cuda_peak_memory(lambda: None, "cuda")


@requires_cuda
def test_cuda_linear_stack_matches_the_closed_form() -> None:
    model = LinearStack()
    small, large = (peak_memory_for_model(model, b, "cuda") for b in (1, 256))
    assert large.weight_bytes == STACK_WEIGHTS
    # The caching allocator rounds each block up to 512 B: exact enough at 256 samples.
    assert large.activation_bytes == pytest.approx(256 * STACK_ACTIVATIONS_PER_SAMPLE, rel=0.10)
    assert large.reserved_bytes >= large.peak_bytes > small.peak_bytes
    assert next(model.parameters()).device.type == "cpu"  # measured on a copy
