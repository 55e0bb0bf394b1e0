"""Bytes a model's weights really occupy in memory, whatever backend holds them."""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable

import torch
from torch import nn
from torch.utils._python_dispatch import is_traceable_wrapper_subclass

from genmodels.base import GenerativeModel

try:  # torch.ao's dynamic int8 modules (deprecated, still shipped) keep weights in packed blobs.
    from torch.ao.nn.quantized import dynamic as _ao_dynamic

    _PACKED_LINEAR: tuple[type, ...] = (_ao_dynamic.Linear,)
    _PACKED_RNN: tuple[type, ...] = (_ao_dynamic.GRU, _ao_dynamic.LSTM)
except ImportError:  # a torch without torch.ao
    _PACKED_LINEAR, _PACKED_RNN = (), ()

_MALLINFO2_FIELDS = ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
                     "uordblks", "fordblks", "keepcost")


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in _MALLINFO2_FIELDS]


@functools.cache
def _mallinfo2() -> Callable[[], _MallInfo2] | None:
    """glibc >= 2.33's mallinfo2, or None (musl, macOS, older glibc)."""
    try:
        function = ctypes.CDLL("libc.so.6").mallinfo2
    except (OSError, AttributeError):
        return None
    function.restype = _MallInfo2
    return function


def malloc_bytes_in_use() -> int | None:
    """Bytes malloc has handed out and not taken back (heap chunks in use + mmapped chunks), or
    None where glibc's mallinfo2 is missing. Sees what torch's allocator cannot: fbgemm's and
    oneDNN's own buffers."""
    function = _mallinfo2()
    if function is None:
        return None
    info = function()
    return int(info.uordblks + info.hblkhd)


def _storage_bytes(tensor: torch.Tensor, seen: set[tuple[str, int]]) -> int:
    """Bytes of the storages behind `tensor`, each storage counted once across calls (`seen`).

    A torchao tensor subclass (Int8Tensor: qdata int8, scale, zero_point) is a wrapper whose own
    storage is a fake of the dense shape; the bytes are those of its inner tensors
    (__tensor_flatten__), counted recursively."""
    if is_traceable_wrapper_subclass(tensor):
        names, _ = tensor.__tensor_flatten__()
        return sum(_storage_bytes(getattr(tensor, name), seen) for name in names)
    storage = tensor.untyped_storage()
    key = (str(tensor.device), storage.data_ptr())
    if storage.nbytes() == 0 or key in seen:
        return 0
    seen.add(key)
    return int(storage.nbytes())


def _nominal_packed_bytes(weight: torch.Tensor) -> int:
    """Codes + scales + zero points of an unpacked weight (where mallinfo2 is missing)."""
    if not weight.is_quantized:  # float16 dynamic modules: a plain fp16 tensor
        return weight.numel() * weight.element_size()
    if weight.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric):
        extra = weight.q_per_channel_scales().nbytes + weight.q_per_channel_zero_points().nbytes
    else:
        extra = 16  # one float64 scale + one int64 zero point
    return weight.numel() * weight.element_size() + extra


def _packed_bytes(weight: torch.Tensor) -> int:
    """Bytes torch.ao's packed form of an unpacked weight holds: measured by packing it again
    (linear_prepack, what quantize_dynamic ran) and reading malloc's in-use bytes before and
    after. fbgemm (the x86 engine) packs into its own blocks, K padded to a multiple of 512, with
    column offsets: invisible to torch's allocator, and for in_features < 512 larger than the
    fp32 weight. Never below the codes + scales (nominal): qnnpack packs lazily at the first
    forward, and a free elsewhere during the call could only lower the reading."""
    prepack = (torch.ops.quantized.linear_prepack if weight.is_quantized
               else torch.ops.quantized.linear_prepack_fp16)
    before = malloc_bytes_in_use()
    if before is None:
        return _nominal_packed_bytes(weight)
    packed = prepack(weight, None)
    after = malloc_bytes_in_use()
    del packed
    return max(int(after - before), _nominal_packed_bytes(weight))


def _torch_ao_weights(module: nn.Module) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """(unpacked weights, biases) of a torch.ao dynamic Linear, GRU or LSTM."""
    if isinstance(module, _PACKED_LINEAR):
        weight, bias = module._weight_bias()
        return [weight], [b for b in [bias] if b is not None]
    unpacked = module._weight_bias()  # {"weight": {name: qint8}, "bias": {name: float}}
    return list(unpacked["weight"].values()), [b for b in unpacked["bias"].values()
                                               if b is not None]


def resident_weight_bytes(model: nn.Module) -> int:
    """Bytes held by the weights of `model.deployable()` (the module itself if it is not a
    GenerativeModel): every parameter and buffer, each storage once (tied weights once); torchao
    tensor subclasses by their inner tensors; torch.ao dynamic int8 Linear/GRU/LSTM by their
    packed weights (measured, see _packed_bytes) plus their float biases.

    A module holding another packed TorchScript object is a ValueError rather than a silent
    undercount."""
    scope = model.deployable() if isinstance(model, GenerativeModel) else model
    seen: set[tuple[str, int]] = set()
    handled: set[int] = set()
    total = 0
    for module in scope.modules():
        if isinstance(module, _PACKED_LINEAR + _PACKED_RNN):
            weights, biases = _torch_ao_weights(module)
            total += sum(_packed_bytes(w) for w in weights)
            total += sum(_storage_bytes(b, seen) for b in biases)
            handled |= {id(m) for m in module.modules()}
            continue
        if id(module) in handled:
            continue
        if any(isinstance(v, torch.ScriptObject) for v in vars(module).values()):
            raise ValueError(f"cannot count the packed weights of {type(module).__name__}; "
                             "teach bench.metrics.resident to unpack it")
        tensors = [*module.parameters(recurse=False), *module.buffers(recurse=False)]
        total += sum(_storage_bytes(t, seen) for t in tensors)
    return total
