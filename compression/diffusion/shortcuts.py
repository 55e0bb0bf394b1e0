"""Which layers read a skip concatenation, and where its parts start (Q-Diffusion's split)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

CONCATS = (torch.cat, torch.concat, torch.concatenate)
# Ops that keep each channel where it was (normalisation, pointwise activations): a
# concatenation read through them still has its parts at the same channel offsets. A conv or
# linear mixes channels, so the parts end there.
CHANNEL_PRESERVING = (F.group_norm, F.batch_norm, F.instance_norm, F.silu, F.relu, F.gelu,
                      F.leaky_relu, F.dropout, torch.sigmoid, torch.tanh, torch.Tensor.contiguous)


class _ConcatTracer(TorchFunctionMode):
    """Tags every (B, C, H, W) concatenation along channels with its parts' channel counts and
    carries the tag through channel-preserving ops of the same shape. Only used in one probe
    forward, so the hooks that run at sampling time need no tracing."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: dict[int, tuple[torch.Tensor, tuple[int, ...]]] = {}  # id -> (tensor, sizes)

    def sizes_of(self, x: object) -> tuple[int, ...] | None:
        entry = self.tags.get(id(x)) if isinstance(x, torch.Tensor) else None
        return entry[1] if entry is not None and entry[0] is x else None

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if not isinstance(out, torch.Tensor) or out.dim() != 4:
            return out
        if func in CONCATS:
            parts = args[0] if args else kwargs.get("tensors", ())
            dim = args[1] if len(args) > 1 else kwargs.get("dim", 0)
            if dim in (1, -3) and len(parts) > 1:
                self.tags[id(out)] = (out, tuple(int(p.shape[1]) for p in parts))
        elif func in CHANNEL_PRESERVING and args:
            sizes = self.sizes_of(args[0])
            if sizes is not None and out.shape == args[0].shape:
                self.tags[id(out)] = (out, sizes)
        return out


@torch.no_grad()
def concat_inputs(unet: nn.Module, layers: dict[str, nn.Module], x: torch.Tensor,
                  t: torch.Tensor) -> dict[str, tuple[int, ...]]:
    """{layer name: channel counts of the concatenated parts} for the layers (of `layers`) whose
    input is a channel concatenation, directly or through norms/activations, found by one
    traced call unet(x, t). In a UNet's up path these are the first conv and the 1x1 shortcut
    of each residual block after a skip concatenation (Li et al. arXiv:2302.04304, Sec. 4.3)."""
    tracer = _ConcatTracer()
    found: dict[str, tuple[int, ...]] = {}

    def probe(name: str):
        def hook(module: nn.Module, args: tuple) -> None:
            sizes = tracer.sizes_of(args[0]) if args else None
            if sizes is not None:
                found[name] = sizes
        return hook

    handles = [m.register_forward_pre_hook(probe(n)) for n, m in layers.items()]
    try:
        with tracer:
            unet(x, t)
    finally:
        for handle in handles:
            handle.remove()
    return found
