"""Real storage: k-bit codes bit-packed into bytes, in a safetensors file, loaded back exactly."""
from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save as safetensors_bytes
from torch import nn

from compression.api import CompressedModel
from compression.quantization.core import QuantizedWeight, check_bits
from genmodels.base import GenerativeModel
from genmodels.cache import atomic_write_bytes

FORMAT = "genbench-packed-v1"
# File layout (safetensors, no code): for each quantized tensor `name`
#   name + ".codes"       uint8 (ceil(numel * bits / 8),)  little-endian bit stream of the codes
#   name + ".scale"       float32 (rows, groups)  kept fp32 so loading is bit-exact to dequantize()
#   name + ".zero_point"  uint8 (rows, groups)    affine only; symmetric zp is 2^(bits-1)
# and every other tensor of deployable() as-is (floats in fp32). The metadata key "quantized" is
# JSON {name: {shape, bits, axis, group_size, scheme}}. Sparse weights are stored as dense codes:
# this format does not exploit sparsity.


def pack_codes(codes: torch.Tensor, bits: int) -> torch.Tensor:
    """Pack codes (any shape, values < 2^bits) into a uint8 stream of ceil(n * bits / 8) bytes:
    code i occupies stream bits [i*bits, (i+1)*bits), least significant first. For 2/4/8 bits
    this is exactly 4/2/1 codes per byte; 3, 5, 6, 7 bits straddle byte boundaries."""
    check_bits(bits)
    flat = codes.reshape(-1).to(torch.int64)
    if flat.numel() and int(flat.max()) >= 2**bits:
        raise ValueError(f"a code exceeds {bits} bits (max {int(flat.max())})")
    stream = ((flat[:, None] >> torch.arange(bits)) & 1).reshape(-1)  # (n * bits,)
    stream = torch.nn.functional.pad(stream, (0, (-stream.numel()) % 8))
    return (stream.reshape(-1, 8) << torch.arange(8)).sum(dim=1).to(torch.uint8)


def unpack_codes(packed: torch.Tensor, bits: int, shape: tuple[int, ...]) -> torch.Tensor:
    """Inverse of `pack_codes`: uint8 codes of `shape`."""
    numel = math.prod(shape)
    stream = ((packed.to(torch.int64)[:, None] >> torch.arange(8)) & 1).reshape(-1)
    stream = stream[: numel * bits].reshape(numel, bits)
    return (stream << torch.arange(bits)).sum(dim=1).to(torch.uint8).reshape(shape)


def deployable_state(model: GenerativeModel | nn.Module) -> dict[str, torch.Tensor]:
    """Plain tensors of deployable(), keyed like the root model's state_dict (the names used by
    accounting.prunable_tensors and cm.quantized). Int8-kernel modules keep their fp32 biases
    inside packed objects: those are read back through the modules' own getters."""
    root = model
    scope = model.deployable() if isinstance(model, GenerativeModel) else model
    prefix = next(name for name, m in root.named_modules() if m is scope)
    state: dict[str, torch.Tensor] = {}
    for mod_name, module in scope.named_modules(prefix=prefix):
        dot = f"{mod_name}." if mod_name else ""
        tensors = dict(module.named_parameters(recurse=False))
        tensors.update(module.named_buffers(recurse=False))
        if hasattr(module, "get_bias"):  # torch.ao DynamicQuantizedGRU/LSTM
            tensors.update(module.get_bias())
        elif callable(getattr(module, "bias", None)):  # torch.ao DynamicQuantizedLinear
            tensors["bias"] = module.bias()
        for key, tensor in tensors.items():
            if tensor is not None and type(tensor) in (torch.Tensor, nn.Parameter):
                state[dot + key] = tensor.detach().cpu()
    return state


def _float32(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: (v.float() if v.is_floating_point() else v).contiguous() for k, v in tensors.items()}


def save_fp32(model: GenerativeModel | nn.Module, path: str | Path) -> int:
    """The fp32 baseline file: deployable()'s state in safetensors. Returns its size in bytes."""
    data = safetensors_bytes(_float32(deployable_state(model)))
    atomic_write_bytes(Path(path), data)
    return len(data)


def save_compressed(cm: CompressedModel, path: str | Path) -> int:
    """Write cm's deployable part with every quantized tensor as packed codes (layout above).
    Returns the file size in bytes (what size_file_bytes reports)."""
    tensors: dict[str, torch.Tensor] = {}
    meta: dict[str, dict] = {}
    for name, qw in cm.quantized.items():
        tensors[f"{name}.codes"] = pack_codes(qw.codes, qw.bits)
        tensors[f"{name}.scale"] = qw.scale.float().contiguous()
        if qw.scheme == "affine":
            tensors[f"{name}.zero_point"] = qw.zero_point.to(torch.uint8).contiguous()
        meta[name] = {"shape": list(qw.shape), "bits": qw.bits, "axis": qw.axis,
                      "group_size": qw.group_size, "scheme": qw.scheme}
    rest = {k: v for k, v in deployable_state(cm.model).items() if k not in cm.quantized}
    clash = sorted(set(rest) & set(tensors))
    if clash:
        raise ValueError(f"tensor names clash with packed entries: {clash}")
    tensors.update(_float32(rest))
    data = safetensors_bytes(tensors, metadata={"format": FORMAT, "quantized": json.dumps(meta)})
    atomic_write_bytes(Path(path), data)
    return len(data)


def load_quantized(path: str | Path) -> tuple[dict[str, QuantizedWeight], dict[str, torch.Tensor]]:
    """(quantized weights, other tensors) of a file written by `save_compressed`."""
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata() or {}
        if metadata.get("format") != FORMAT:
            raise ValueError(f"{path} is not a {FORMAT} file (format={metadata.get('format')!r})")
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    quantized: dict[str, QuantizedWeight] = {}
    for name, info in json.loads(metadata["quantized"]).items():
        bits, shape = info["bits"], tuple(info["shape"])
        scale = tensors.pop(f"{name}.scale")
        if info["scheme"] == "affine":
            zero_point = tensors.pop(f"{name}.zero_point")
        else:
            zero_point = torch.full(scale.shape, 2 ** (bits - 1), dtype=torch.uint8)
        codes = unpack_codes(tensors.pop(f"{name}.codes"), bits, shape)
        quantized[name] = QuantizedWeight(codes, scale, zero_point, bits, info["axis"],
                                          info["group_size"], info["scheme"])
    return quantized, tensors


def load_compressed_state(path: str | Path) -> dict[str, torch.Tensor]:
    """Dequantized fp32 state of the deployable part, keyed like the root model's state_dict:
    load it with model.load_state_dict(state, strict=False)."""
    quantized, rest = load_quantized(path)
    return {**rest, **{name: qw.dequantize() for name, qw in quantized.items()}}
