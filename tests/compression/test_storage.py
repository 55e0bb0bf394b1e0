"""Packed storage: exact bit packing, bit-exact file round trips, file sizes that add up."""
from __future__ import annotations

import json
import math
import struct

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from compression import compress
from compression.accounting import count_params, prunable_tensors
from compression.api import CompressedModel
from compression.quantization.core import quantize_weight
from compression.quantization.ptq import QuantConfig, channel_axis
from compression.quantization.storage import (
    deployable_state,
    load_compressed_state,
    load_quantized,
    pack_codes,
    save_compressed,
    save_fp32,
    unpack_codes,
)


@settings(max_examples=40, deadline=None)
@given(bits=st.integers(2, 8), n=st.integers(0, 67), seed=st.integers(0, 1000))
def test_pack_unpack_round_trip(bits: int, n: int, seed: int) -> None:
    codes = torch.randint(0, 2**bits, (n,), generator=torch.Generator().manual_seed(seed))
    packed = pack_codes(codes.to(torch.uint8), bits)
    assert packed.dtype == torch.uint8 and packed.numel() == math.ceil(n * bits / 8)
    assert torch.equal(unpack_codes(packed, bits, (n,)), codes.to(torch.uint8))


def test_pack_layout_known_answer() -> None:
    # 2 bits: 4 codes per byte, first code in the low bits; 4 bits: 2 per byte
    assert pack_codes(torch.tensor([1, 2, 3, 0]), 2).tolist() == [1 | 2 << 2 | 3 << 4]
    assert pack_codes(torch.tensor([0xA, 0x5]), 4).tolist() == [0x5A]
    # 3 bits straddle bytes: 7, 7, 7 -> 9 ones -> 0xFF, 0x01
    assert pack_codes(torch.tensor([7, 7, 7]), 3).tolist() == [0xFF, 0x01]


def test_pack_rejects_wide_codes() -> None:
    with pytest.raises(ValueError, match="exceeds 2 bits"):
        pack_codes(torch.tensor([4]), 2)


class _OddModel(nn.Module):
    """Odd shapes on every layer type, to exercise padding of groups and of the bit stream."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(13, 7)
        self.conv = nn.Conv2d(3, 5, 3)
        self.up = nn.ConvTranspose2d(5, 3, 3)
        self.rnn = nn.GRU(7, 5)
        self.norm = nn.BatchNorm1d(7)


def _quantize(model: nn.Module, bits: int, scheme: str, granularity: str) -> CompressedModel:
    cm = CompressedModel(model=model)
    for name, module, pname in prunable_tensors(model):
        cm.quantized[name] = quantize_weight(getattr(module, pname), bits, scheme, granularity,
                                             "minmax", channel_axis(module), group_size=5)
    return cm


def _header_bytes(path) -> int:
    with open(path, "rb") as handle:
        return 8 + struct.unpack("<Q", handle.read(8))[0]


@pytest.mark.parametrize("bits", range(2, 9))
@pytest.mark.parametrize("scheme,granularity", [("affine", "channel"), ("symmetric", "tensor"),
                                                ("affine", "group")])
def test_file_round_trip_is_bit_exact_and_sized(tmp_path, bits, scheme, granularity) -> None:
    model = _OddModel()
    cm = _quantize(model, bits, scheme, granularity)
    path = tmp_path / "model.safetensors"
    size = save_compressed(cm, path)
    assert size == path.stat().st_size
    state = load_compressed_state(path)
    for name, qw in cm.quantized.items():
        assert torch.equal(state[name], qw.dequantize()), name
    others = {k: v for k, v in deployable_state(model).items() if k not in cm.quantized}
    for name, tensor in others.items():
        assert torch.equal(state[name], tensor), name
    # payload = packed codes + fp32 scales + uint8 zero points (affine) + other tensors as stored
    payload = sum(qw.packed_bytes() for qw in cm.quantized.values())
    payload += sum(v.numel() * v.element_size() for v in others.values())
    assert size == _header_bytes(path) + payload


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
def test_file_size_within_two_percent_of_nominal(tmp_path, bits) -> None:
    # big enough that the JSON header is a small part of the file
    model = nn.Sequential(nn.Linear(256, 512), nn.ReLU(), nn.ConvTranspose2d(8, 16, 4))
    cm = _quantize(model, bits, "symmetric", "channel")
    size = save_compressed(cm, tmp_path / "q.safetensors")
    weights = sum(qw.codes.numel() for qw in cm.quantized.values())
    scales = sum(qw.scale.numel() for qw in cm.quantized.values())
    biases = count_params(model) - weights
    nominal = weights * bits / 8 + 4 * scales + 4 * biases
    assert abs(size - nominal) <= 0.02 * nominal
    fp32 = save_fp32(model, tmp_path / "fp32.safetensors")
    assert fp32 == pytest.approx(4 * count_params(model), rel=0.02)
    # the compression ratio is what the bytes say, overheads (scales, fp32 biases) included
    assert fp32 / size == pytest.approx(4 * count_params(model) / nominal, rel=0.03)
    assert fp32 / size < 32 / bits


def test_metadata_and_reload_into_model(tmp_path, make_model, family) -> None:
    model = make_model(family)
    cm = compress(model, QuantConfig(bits=3, rounding="minmax"))
    path = tmp_path / "m.safetensors"
    save_compressed(cm, path)
    quantized, _ = load_quantized(path)
    assert set(quantized) == set(cm.quantized)
    assert all(q.bits == 3 for q in quantized.values())
    fresh = make_model(family, seed=1)
    missing, unexpected = fresh.load_state_dict(load_compressed_state(path), strict=False)
    assert not unexpected
    z = model.latent(4, torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(fresh(z), cm.model(z))


def test_not_our_format(tmp_path) -> None:
    path = tmp_path / "fp32.safetensors"
    save_fp32(nn.Linear(2, 2), path)
    with pytest.raises(ValueError, match="not a genbench-packed"):
        load_compressed_state(path)


def test_metadata_is_json(tmp_path) -> None:
    from safetensors import safe_open

    cm = _quantize(_OddModel(), 5, "affine", "group")
    save_compressed(cm, tmp_path / "x.safetensors")
    with safe_open(str(tmp_path / "x.safetensors"), framework="pt") as handle:
        meta = json.loads(handle.metadata()["quantized"])
    assert meta["up.weight"] == {"shape": [5, 3, 3, 3], "bits": 5, "axis": 1, "group_size": 5,
                                 "scheme": "affine"}
