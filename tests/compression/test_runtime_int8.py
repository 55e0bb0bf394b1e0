"""ONNX Runtime static QDQ int8: MAC share against a hand count, closeness to fp32, sub-pixel."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from compression.api import as_compressed
from compression.runtimes import RuntimeContext, get_runtime
from compression.runtimes.subpixel import SubPixelConvTranspose2d, replace_conv_transposes, supports
from genmodels.base import GenerativeModel
from tests.compression.conftest import NEEDS_ORT, TINY_SHAPE, build_model

pytestmark = NEEDS_ORT


class HandCounted(GenerativeModel):
    """z (8) -> Linear -> (4, 7, 7) -> Conv 3x3 -> (6, 7, 7) -> ConvT s2 (output_padding 1, which
    the sub-pixel rewrite refuses, so it stays fp32) -> (2, 14, 14) in [0, 1]."""

    family = "hand"

    def __init__(self) -> None:
        super().__init__((2, 14, 14), 8, 1.0)
        self.fc = nn.Linear(8, 4 * 7 * 7)
        self.conv = nn.Conv2d(4, 6, 3, padding=1)
        self.up = nn.ConvTranspose2d(6, 2, 3, stride=2, padding=1, output_padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.fc(z)).view(-1, 4, 7, 7)
        return torch.sigmoid(self.up(torch.relu(self.conv(h))))


# MACs per image: Linear 8 * 196; Conv |Y| * Cin * 3 * 3; ConvTranspose |X| * Cout * 3 * 3.
LINEAR_MACS, CONV_MACS, CONVT_MACS = 8 * 196, (6 * 7 * 7) * 4 * 9, (6 * 7 * 7) * 2 * 9


def _ctx(dim: int, n: int = 64) -> RuntimeContext:
    gen = torch.Generator().manual_seed(3)
    return RuntimeContext(calib_z=torch.randn(n, dim, generator=gen),
                          check_z=torch.randn(32, dim, generator=gen))


def test_int8_mac_fraction_equals_hand_count() -> None:
    torch.manual_seed(0)
    model = HandCounted().eval()
    assert not supports(model.up)
    deployed = get_runtime("onnxruntime_int8").deploy(as_compressed(model), "cpu", _ctx(8))
    expected = (LINEAR_MACS + CONV_MACS) / (LINEAR_MACS + CONV_MACS + CONVT_MACS)
    assert deployed.int8_mac_fraction == pytest.approx(expected, rel=1e-12)
    assert deployed.fp32_ops == ("ConvTranspose x1",)


def test_int8_gan_close_to_fp32_with_all_macs_on_int8() -> None:
    model = build_model("gan")
    ctx = _ctx(model.latent_dim)
    deployed = get_runtime("onnxruntime_int8").deploy(as_compressed(model), "cpu", ctx)
    assert deployed.execution == "ort-int8-qdq" and deployed.changes_outputs is True
    assert deployed.int8_mac_fraction == 1.0 and deployed.fp32_ops == ()
    with torch.no_grad():
        diff = deployed.model(ctx.check_z) - model(ctx.check_z)
    assert diff.shape == (32, *TINY_SHAPE)
    # 8-bit activations over ranges of O(1): errors of a few 1/255 steps, far below the
    # spread of the images themselves.
    assert diff.pow(2).mean().sqrt() < 0.02
    assert 0 < deployed.export_max_abs_err == pytest.approx(float(diff.abs().max()))
    assert deployed.size_file_bytes > 0


@pytest.mark.parametrize("family", ["vae", "rvae"])
def test_int8_vae_and_rvae_step_on_int8(family: str) -> None:
    model = build_model(family)
    ctx = _ctx(model.latent_dim)
    deployed = get_runtime("onnxruntime_int8").deploy(as_compressed(model), "cpu", ctx)
    assert deployed.int8_mac_fraction == 1.0  # RVAE: the GRU cell exported as Gemm + gates
    with torch.no_grad():
        diff = deployed.model(ctx.check_z) - model(ctx.check_z)
    assert diff.pow(2).mean().sqrt() < 0.02


@pytest.mark.parametrize("kernel, stride, padding", [
    (4, 2, 1), (2, 2, 0), (3, 1, 1), (6, 3, 0), (4, 2, 3), (3, 3, 0), (1, 1, 0)])
def test_subpixel_equals_conv_transpose(kernel: int, stride: int, padding: int) -> None:
    torch.manual_seed(0)
    convt = nn.ConvTranspose2d(3, 5, kernel, stride=stride, padding=padding)
    x = torch.randn(2, 3, 7, 6)
    with torch.no_grad():
        ref, out = convt(x), SubPixelConvTranspose2d(convt)(x)
    assert out.shape == ref.shape
    assert (out - ref).abs().max() <= 1e-5
    # Same MACs: the phase kernels hold every tap of the transposed kernel exactly once.
    sub = SubPixelConvTranspose2d(convt)
    assert sum(c.weight.numel() for c in sub.convs) == convt.weight.numel()


def test_subpixel_rectangular_stride() -> None:
    torch.manual_seed(0)
    convt = nn.ConvTranspose2d(3, 4, (4, 3), stride=(2, 1), padding=(1, 1))
    x = torch.randn(2, 3, 5, 4)
    with torch.no_grad():
        assert (SubPixelConvTranspose2d(convt)(x) - convt(x)).abs().max() <= 1e-5


@pytest.mark.parametrize("module", [
    nn.ConvTranspose2d(2, 2, 3, stride=2, padding=1, output_padding=1),
    nn.ConvTranspose2d(2, 2, 3, stride=2, padding=1),  # stride does not divide k
    nn.ConvTranspose2d(2, 2, 6, stride=3, padding=2),  # out = 3L - 1: phases unequal
    nn.ConvTranspose2d(2, 4, 4, stride=2, padding=1, groups=2)])
def test_subpixel_refuses_what_it_cannot_do_exactly(module: nn.ConvTranspose2d) -> None:
    assert not supports(module)
    with pytest.raises(ValueError, match="cannot decompose"):
        SubPixelConvTranspose2d(module)
    holder = nn.Sequential(module)
    assert replace_conv_transposes(holder) == [] and holder[0] is module
