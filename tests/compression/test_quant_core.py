"""Quantization maths: code counts, error bounds, exact zero, SQNR floors, MSE clipping, axes."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from compression.quantization.core import (
    GRANULARITIES,
    SCHEMES,
    from_groups,
    mse_clip_ratio,
    quantize_codes,
    quantize_weight,
    sqnr_db,
    to_groups,
)
from compression.quantization.ptq import channel_axis

BITS = list(range(2, 9))


def _gaussian(shape=(32, 48), seed=0) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("bits", BITS)
@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("granularity", GRANULARITIES)
def test_codes_per_group_and_error_bound(bits: int, scheme: str, granularity: str) -> None:
    w = _gaussian((6, 5, 3, 3))
    qw = quantize_weight(w, bits, scheme, granularity, "minmax", channel_axis=1, group_size=7)
    codes = to_groups(qw.codes.float(), qw.axis, qw.group_size)
    assert int(qw.codes.max()) < 2**bits
    for row in codes.reshape(-1, codes.shape[-1]):
        assert row.unique().numel() <= 2**bits
    # min-max: every weight is inside the clipping range, so |w - w_hat| <= s / 2
    err = to_groups((w - qw.dequantize()).abs(), qw.axis, qw.group_size)
    assert bool((err <= qw.scale[..., None] / 2 * (1 + 1e-5) + 1e-7).all())


@pytest.mark.parametrize("bits", BITS)
def test_error_bound_inside_clipping_range(bits: int) -> None:
    w = _gaussian()
    ratio = mse_clip_ratio(w, bits, "affine", axis=0)
    qw = quantize_codes(w, bits, "affine", axis=0, clip_ratio=ratio)
    lo, hi = (w.amin(1, keepdim=True) * ratio), (w.amax(1, keepdim=True) * ratio)
    inside = (w >= lo) & (w <= hi)
    err = (w - qw.dequantize()).abs()
    assert bool((err[inside] <= (qw.scale / 2 * (1 + 1e-5)).expand_as(w)[inside]).all())


@pytest.mark.parametrize("bits", BITS)
@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("rounding", ["minmax", "mse"])
def test_zero_is_exact(bits: int, scheme: str, rounding: str) -> None:
    w = _gaussian() + 3.0  # all positive rows: the range must still be extended to hold 0
    w[torch.rand(w.shape, generator=torch.Generator().manual_seed(1)) < 0.5] = 0.0
    qw = quantize_weight(w, bits, scheme, "channel", rounding)
    assert bool((qw.dequantize()[w == 0] == 0).all())


def test_affine_known_answer() -> None:
    # s = (3 - (-1)) / 3 = 4/3, zp = round(0.75) = 1: codes 0, 1, round(2.25) + 1 = 3
    qw = quantize_codes(torch.tensor([[-1.0, 0.0, 3.0]]), 2, "affine", axis=None)
    assert qw.codes.tolist() == [[0, 1, 3]]
    torch.testing.assert_close(qw.dequantize(), torch.tensor([[-4 / 3, 0.0, 8 / 3]]))


def test_symmetric_known_answer() -> None:
    # 3 bits: s = 2 / 3, zp = 4: -2 -> 1, 1 -> round(1.5) = 2 -> 6, 0.5 -> round(0.75) = 1 -> 5
    qw = quantize_codes(torch.tensor([[-2.0, 1.0, 0.5]]), 3, "symmetric", axis=None)
    assert qw.codes.tolist() == [[1, 6, 5]]
    torch.testing.assert_close(qw.dequantize(), torch.tensor([[-2.0, 4 / 3, 2 / 3]]))


@pytest.mark.parametrize("bits,floor_db", [(8, 35.0), (4, 15.0)])
@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("rounding", ["minmax", "mse"])
def test_sqnr_floor_gaussian_per_channel(bits: int, floor_db: float, scheme: str,
                                         rounding: str) -> None:
    w = _gaussian((64, 256))
    qw = quantize_weight(w, bits, scheme, "channel", rounding)
    assert sqnr_db(w, qw.dequantize()) >= floor_db


def test_more_bits_more_sqnr() -> None:
    w = _gaussian((64, 256))
    values = [sqnr_db(w, quantize_weight(w, b, "affine", "channel", "minmax").dequantize())
              for b in BITS]
    assert values == sorted(values)
    # each extra bit halves the step: about 6.02 dB per bit in the high-resolution regime
    assert values[-1] - values[-2] == pytest.approx(6.02, abs=0.5)


@settings(max_examples=25, deadline=None)
@given(bits=st.integers(2, 8), rows=st.integers(1, 6), cols=st.integers(1, 40),
       scheme=st.sampled_from(SCHEMES), group=st.sampled_from([None, 4, 7]),
       seed=st.integers(0, 10_000))
def test_mse_clipping_never_worse_than_minmax(bits, rows, cols, scheme, group, seed) -> None:
    w = torch.randn(rows, cols, generator=torch.Generator().manual_seed(seed)) ** 3  # heavy tails
    ratio = mse_clip_ratio(w, bits, scheme, axis=0, group_size=group)
    mse = (w - quantize_codes(w, bits, scheme, 0, group, ratio).dequantize()).pow(2).sum()
    minmax = (w - quantize_codes(w, bits, scheme, 0, group).dequantize()).pow(2).sum()
    assert float(mse) <= float(minmax) * (1 + 1e-6) + 1e-12


@settings(max_examples=25, deadline=None)
@given(shape=st.lists(st.integers(1, 6), min_size=1, max_size=4), group=st.sampled_from(
    [None, 1, 3, 5]), data=st.data())
def test_groups_round_trip(shape, group, data) -> None:
    axis = data.draw(st.sampled_from([None, *range(len(shape))]))
    w = torch.randn(shape)
    assert torch.equal(from_groups(to_groups(w, axis, group), tuple(shape), axis), w)


@pytest.mark.parametrize("module,axis,channels", [
    (nn.Conv2d(3, 5, 3), 0, 5), (nn.ConvTranspose2d(3, 5, 3), 1, 5), (nn.Linear(4, 6), 0, 6),
])
def test_channel_axis_is_output_channels(module: nn.Module, axis: int, channels: int) -> None:
    assert channel_axis(module) == axis
    w = module.weight.detach().clone()
    qw = quantize_weight(w, 4, "affine", "channel", "minmax", channel_axis(module))
    assert qw.scale.shape == (channels, 1)
    # per-channel invariance: blowing up one output channel leaves the others' codes unchanged
    w2 = w.clone()
    w2.select(axis, 0).mul_(1000.0)
    qw2 = quantize_weight(w2, 4, "affine", "channel", "minmax", axis)
    rest = channels - 1
    assert torch.equal(qw.codes.narrow(axis, 1, rest), qw2.codes.narrow(axis, 1, rest))


def test_gru_rows_are_gate_rows() -> None:
    gru = nn.GRU(5, 4)
    qw = quantize_weight(gru.weight_ih_l0, 4, "symmetric", "channel", "minmax", channel_axis(gru))
    assert qw.scale.shape == (3 * 4, 1)


@pytest.mark.parametrize("bits", [0, 1, 9, 2.5])
def test_bits_out_of_range(bits) -> None:
    with pytest.raises(ValueError, match="2..8"):
        quantize_codes(torch.ones(3), bits)


def test_naive_is_per_tensor_with_2_pow_b_levels() -> None:
    w = torch.linspace(-1.0, 3.0, 1001).reshape(7, 143)
    qw = quantize_weight(w, 3, "affine", "tensor", "naive")
    assert qw.scale.numel() == 1 and qw.dequantize().unique().numel() == 8
    torch.testing.assert_close(qw.scale, torch.tensor([[4.0 / 7]]))
