"""Structured pruning that shrinks: remove whole channels / hidden units by L1 norm (arXiv:1608.08710)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from compression.api import (
    EXECUTION_SHRUNK,
    CompressedModel,
    CompressionContext,
    MethodConfig,
    register_method,
)
from compression.finetune import finetune
from genmodels.base import GenerativeModel
from genmodels.registry import register

_GATES = {nn.GRU: 3, nn.LSTM: 4}
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)


@dataclass(frozen=True)
class ChannelGroup:
    """One set of channels removed together. `producer` makes them (Conv2d: weight dim 0,
    ConvTranspose2d: dim 1, Linear: rows, GRU/LSTM: hidden units of every gate block); `block`
    outputs per channel when a Linear output is viewed as (C, s, s) (block = s*s, channel-major).
    `also_produce` are Linear layers writing the same channels (an RNN's initial-state Linear),
    `norms` BatchNorms on them (same block), `consumers` layers reading them as input with their
    block (a flatten of (C, s, s) into a Linear: s*s). `size_attrs` are (module path, attribute)
    ints holding the channel count (used by views in forward)."""

    producer: str
    block: int = 1
    also_produce: tuple[str, ...] = ()
    norms: tuple[str, ...] = ()
    consumers: tuple[tuple[str, int], ...] = ()
    size_attrs: tuple[tuple[str, str], ...] = ()


# Per-family dependency descriptions, written against genmodels.models' attribute names. The
# latent input, the image output and the GAN discriminator never appear in a group.
CHANNEL_GROUPS: dict[str, Callable[[GenerativeModel], list[ChannelGroup]]] = {}


@register(CHANNEL_GROUPS, "gan")
def _gan_groups(model: GenerativeModel) -> list[ChannelGroup]:
    ss = model.generator.s ** 2
    return [ChannelGroup("generator.fc", ss, norms=("generator.bn0",),
                         consumers=(("generator.up1", 1),), size_attrs=(("generator", "c0"),)),
            ChannelGroup("generator.up1", norms=("generator.bn1",), consumers=(("generator.up2", 1),))]


@register(CHANNEL_GROUPS, "vae")
def _vae_groups(model: GenerativeModel) -> list[ChannelGroup]:
    ss = model.s ** 2
    return [ChannelGroup("enc1", consumers=(("enc2", 1),)),
            ChannelGroup("enc2", consumers=(("enc_fc", ss),)),
            ChannelGroup("dec_fc", ss, consumers=(("dec1", 1),), size_attrs=(("", "c2"),)),
            ChannelGroup("dec1", consumers=(("dec2", 1),))]


@register(CHANNEL_GROUPS, "rvae")
def _rvae_groups(model: GenerativeModel) -> list[ChannelGroup]:
    return [ChannelGroup("encoder_rnn", consumers=(("enc_fc", 1),)),
            ChannelGroup("decoder_rnn", also_produce=("dec_init",), consumers=(("dec_out", 1),))]


# ----------------------------------------------------------------------------- maths
def _blocks(idx: torch.Tensor, block: int) -> torch.Tensor:
    """Channel indices -> flat feature indices of channel-major blocks: c -> c*block + [0, block)."""
    return (idx[:, None] * block + torch.arange(block)).flatten()


def _rnn_rows(idx: torch.Tensor, hidden: int, gates: int) -> torch.Tensor:
    """Hidden units -> rows of the stacked gate blocks (gate g of unit j is row g*hidden + j)."""
    return torch.cat([idx + g * hidden for g in range(gates)])


def channel_l1(module: nn.Module, block: int = 1) -> torch.Tensor:
    """L1 norm of each output channel's weights (Li et al. 2016, arXiv:1608.08710):
    ||W_j||_1 summed over the producer's weights of channel j (all gate blocks of an RNN unit)."""
    if isinstance(module, tuple(_GATES)):
        hidden, gates = module.hidden_size, _GATES[type(module)]
        norms = (module.weight_ih_l0.abs().sum(1) + module.weight_hh_l0.abs().sum(1))
        return norms.view(gates, hidden).sum(0)
    weight = module.weight.detach().abs()
    per_output = weight.transpose(0, 1) if isinstance(module, nn.ConvTranspose2d) else weight
    return per_output.flatten(1).sum(1).view(-1, block).sum(1)


def channels_to_keep(norms: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Indices (ascending) of the n - round(s*n) largest-norm channels, at least one; ties by index."""
    n = norms.numel()
    keep = max(1, n - round(sparsity * n))
    return torch.sort(torch.argsort(-norms, stable=True)[:keep]).values


# ----------------------------------------------------------------------------- surgery
def _param(tensor: torch.Tensor, like: nn.Parameter) -> nn.Parameter:
    return nn.Parameter(tensor.detach().clone().contiguous(), requires_grad=like.requires_grad)


def _slice_out(module: nn.Module, idx: torch.Tensor, block: int) -> None:
    rows = _blocks(idx, block)
    if isinstance(module, _NORMS):
        for name in ("weight", "bias"):
            setattr(module, name, _param(getattr(module, name)[rows], getattr(module, name)))
        module.running_mean = module.running_mean[rows].clone()
        module.running_var = module.running_var[rows].clone()
        module.num_features = rows.numel()
        return
    axis = 1 if isinstance(module, nn.ConvTranspose2d) else 0
    module.weight = _param(module.weight.index_select(axis, rows), module.weight)
    if module.bias is not None:
        module.bias = _param(module.bias[rows], module.bias)
    if isinstance(module, nn.Linear):
        module.out_features = rows.numel()
    else:
        module.out_channels = rows.numel()


def _slice_in(module: nn.Module, idx: torch.Tensor, block: int) -> None:
    cols = _blocks(idx, block)
    if isinstance(module, nn.Linear):
        module.weight = _param(module.weight[:, cols], module.weight)
        module.in_features = cols.numel()
    elif isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        axis = 0 if isinstance(module, nn.ConvTranspose2d) else 1  # ConvT weight: (in, out, k, k)
        module.weight = _param(module.weight.index_select(axis, cols), module.weight)
        module.in_channels = cols.numel()
    else:
        raise ValueError(f"cannot slice the input of {type(module).__name__}")


def _shrunk_rnn(rnn: nn.Module, idx: torch.Tensor) -> nn.Module:
    """A new GRU/LSTM with the kept hidden units: gate-block rows of weight_ih/weight_hh/biases
    and the matching weight_hh columns (the recurrence reads the hidden state itself)."""
    if type(rnn) not in _GATES or rnn.num_layers != 1 or rnn.bidirectional or rnn.proj_size:
        raise ValueError("structured pruning supports single-layer unidirectional GRU/LSTM only")
    rows = _rnn_rows(idx, rnn.hidden_size, _GATES[type(rnn)])
    new = type(rnn)(rnn.input_size, idx.numel(), bias=rnn.bias, batch_first=rnn.batch_first)
    with torch.no_grad():
        new.weight_ih_l0.copy_(rnn.weight_ih_l0[rows])
        new.weight_hh_l0.copy_(rnn.weight_hh_l0[rows][:, idx])
        if rnn.bias:
            new.bias_ih_l0.copy_(rnn.bias_ih_l0[rows])
            new.bias_hh_l0.copy_(rnn.bias_hh_l0[rows])
    return new.to(rnn.weight_ih_l0.device).train(rnn.training)


def _set_module(root: nn.Module, path: str, module: nn.Module) -> None:
    parent, _, name = path.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, name, module)


def shrink_group(model: nn.Module, group: ChannelGroup, keep: torch.Tensor) -> None:
    """Keep only channels `keep` of `group` in every layer that produces, normalises or reads them."""
    producer = model.get_submodule(group.producer)
    if type(producer) in _GATES:
        _set_module(model, group.producer, _shrunk_rnn(producer, keep))
    else:
        _slice_out(producer, keep, group.block)
    for path in group.also_produce:
        _slice_out(model.get_submodule(path), keep, group.block)
    for path in group.norms:
        _slice_out(model.get_submodule(path), keep, group.block)
    for path, block in group.consumers:
        _slice_in(model.get_submodule(path), keep, block)
    for path, attr in group.size_attrs:
        setattr(model.get_submodule(path) if path else model, attr, keep.numel())


@torch.no_grad()
def zero_channels(model: nn.Module, group: ChannelGroup, keep: torch.Tensor) -> None:
    """The masked counterpart of `shrink_group`: the removed channels output exactly 0 (producer
    rows and biases zeroed; BatchNorm weight and bias zeroed so the normalised output is 0; an
    RNN unit with all gate rows zero and zero initial state stays at 0)."""
    def removed(n: int) -> torch.Tensor:
        mask = torch.ones(n, dtype=torch.bool)
        mask[keep] = False
        return mask.nonzero().flatten()

    producer = model.get_submodule(group.producer)
    if type(producer) in _GATES:
        rows = _rnn_rows(removed(producer.hidden_size), producer.hidden_size, _GATES[type(producer)])
        for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
            getattr(producer, name)[rows] = 0
    else:
        n = producer.weight.shape[1 if isinstance(producer, nn.ConvTranspose2d) else 0] // group.block
        rows = _blocks(removed(n), group.block)
        producer.weight.index_fill_(1 if isinstance(producer, nn.ConvTranspose2d) else 0, rows, 0)
        if producer.bias is not None:
            producer.bias[rows] = 0
    for path in (*group.also_produce, *group.norms):
        module = model.get_submodule(path)
        rows = _blocks(removed(module.weight.shape[0] // group.block), group.block)
        module.weight[rows] = 0
        if module.bias is not None:
            module.bias[rows] = 0


def plan(model: GenerativeModel, sparsity: float) -> list[tuple[ChannelGroup, torch.Tensor]]:
    """(group, kept channel indices) for every group of the model's family, ranked by L1 norm."""
    if model.family not in CHANNEL_GROUPS:
        raise ValueError(f"no channel groups for family {model.family!r}; "
                         f"allowed: {', '.join(sorted(CHANNEL_GROUPS))}")
    return [(g, channels_to_keep(channel_l1(model.get_submodule(g.producer), g.block), sparsity))
            for g in CHANNEL_GROUPS[model.family](model)]


# ----------------------------------------------------------------------------- method
@dataclass(frozen=True)
class StructuredPruneConfig(MethodConfig):
    """Remove round(s*n) lowest-L1 channels / hidden units of every group, then fine-tune."""

    method: ClassVar[str] = "prune_structured"
    sparsity: float
    finetune_steps: int = 0
    lr: float = 1e-4

    def __post_init__(self) -> None:
        if not 0 <= self.sparsity < 1:
            raise ValueError(f"sparsity must be in [0, 1), got {self.sparsity}")
        if self.finetune_steps < 0 or not self.lr > 0:
            raise ValueError(f"need finetune_steps >= 0 and lr > 0, got {self.finetune_steps}, {self.lr}")

    def settings(self) -> dict[str, Any]:
        return {"sparsity_target": self.sparsity, "finetune_steps": self.finetune_steps,
                "lr": self.lr, "granularity": "channel"}

    @classmethod
    def example(cls) -> StructuredPruneConfig:
        return cls(sparsity=0.5, finetune_steps=2)


@register_method(StructuredPruneConfig)
def prune_structured(cm: CompressedModel, cfg: StructuredPruneConfig,
                     ctx: CompressionContext) -> CompressedModel:
    kept: dict[str, list[int]] = {}
    for group, keep in plan(cm.model, cfg.sparsity):
        total = channel_l1(cm.model.get_submodule(group.producer), group.block).numel()
        shrink_group(cm.model, group, keep)
        kept[group.producer] = [keep.numel(), total]
    losses = finetune(cm.model, ctx, cfg.finetune_steps, cfg.lr)
    cm.notes.update({"kept_channels": kept, "finetune_losses": losses})
    cm.execution = EXECUTION_SHRUNK
    return cm
