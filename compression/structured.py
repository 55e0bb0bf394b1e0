"""Structured pruning that shrinks: drop whole channels / hidden units by L1 norm (1608.08710)."""

from __future__ import annotations

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
from compression.channel_groups import (
    CHANNEL_GROUPS,
    NORM_LAYERS,
    RNN_GATES,
    ChannelGroup,
    channel_blocks,
    channel_l1,
    channels_to_keep,
    rnn_gate_rows,
)
from compression.distillation import teacher_matching
from compression.finetune import finetune, step_key
from genmodels.base import GenerativeModel


# ----------------------------------------------------------------------------- surgery
def _param(tensor: torch.Tensor, like: nn.Parameter) -> nn.Parameter:
    return nn.Parameter(tensor.detach().clone().contiguous(), requires_grad=like.requires_grad)


def _slice_out(module: nn.Module, idx: torch.Tensor, block: int) -> None:
    rows = channel_blocks(idx, block)
    if isinstance(module, nn.GroupNorm):  # whole groups only (block = channels per group)
        per_group = module.num_channels // module.num_groups
        if block % per_group:
            raise ValueError(f"pruning blocks of {block} channels split GroupNorm groups of "
                             f"{per_group}; describe the group with block = channels per group")
        module.weight = _param(module.weight[rows], module.weight)
        module.bias = _param(module.bias[rows], module.bias)
        module.num_channels, module.num_groups = rows.numel(), rows.numel() // per_group
        return
    if isinstance(module, NORM_LAYERS):
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
    cols = channel_blocks(idx, block)
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
    if type(rnn) not in RNN_GATES or rnn.num_layers != 1 or rnn.bidirectional or rnn.proj_size:
        raise ValueError("structured pruning supports single-layer unidirectional GRU/LSTM only")
    rows = rnn_gate_rows(idx, rnn.hidden_size, RNN_GATES[type(rnn)])
    with torch.random.fork_rng(devices=[]):  # its random init is overwritten: spare the RNG
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
    """Keep only channels `keep` of `group` in every layer producing, normalising, reading them."""
    producer = model.get_submodule(group.producer)
    if type(producer) in RNN_GATES:
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
        mask = torch.ones(n, dtype=torch.bool, device=keep.device)
        mask[keep] = False
        return mask.nonzero().flatten()

    producer = model.get_submodule(group.producer)
    if type(producer) in RNN_GATES:
        rows = rnn_gate_rows(
            removed(producer.hidden_size), producer.hidden_size, RNN_GATES[type(producer)]
        )
        for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
            getattr(producer, name)[rows] = 0
    else:
        n = (
            producer.weight.shape[1 if isinstance(producer, nn.ConvTranspose2d) else 0]
            // group.block
        )
        rows = channel_blocks(removed(n), group.block)
        producer.weight.index_fill_(1 if isinstance(producer, nn.ConvTranspose2d) else 0, rows, 0)
        if producer.bias is not None:
            producer.bias[rows] = 0
    for path in (*group.also_produce, *group.norms):
        module = model.get_submodule(path)
        rows = channel_blocks(removed(module.weight.shape[0] // group.block), group.block)
        module.weight[rows] = 0
        if module.bias is not None:
            module.bias[rows] = 0


def plan(model: GenerativeModel, sparsity: float) -> list[tuple[ChannelGroup, torch.Tensor]]:
    """(group, kept channel indices) for every group of the model's family, ranked by L1 norm."""
    if model.family not in CHANNEL_GROUPS:
        raise ValueError(
            f"no channel groups for family {model.family!r}; "
            f"allowed: {', '.join(sorted(CHANNEL_GROUPS))}"
        )
    try:
        groups = CHANNEL_GROUPS[model.family](model)
        return [
            (g, channels_to_keep(channel_l1(model.get_submodule(g.producer), g.block), sparsity))
            for g in groups
        ]
    except AttributeError as exc:  # the model's layout changed under compression.channel_groups
        raise ValueError(
            f"channel groups of family {model.family!r} do not match {type(model).__name__} "
            f"({exc}); update compression/channel_groups.py"
        ) from exc


# ----------------------------------------------------------------------------- method
@dataclass(frozen=True)
class StructuredPruneConfig(MethodConfig):
    """Remove round(s*n) lowest-L1 channels / hidden units of every group, then fine-tune;
    teacher_weight > 0 adds output (and VAE posterior) matching to the unshrunk model."""

    method: ClassVar[str] = "prune_structured"
    sparsity: float
    finetune_steps: int = 0
    lr: float = 1e-4
    teacher_weight: float = 0.0

    def __post_init__(self) -> None:
        if not 0 <= self.sparsity < 1:
            raise ValueError(f"sparsity must be in [0, 1), got {self.sparsity}")
        if self.finetune_steps < 0 or not self.lr > 0:
            raise ValueError(
                f"need finetune_steps >= 0 and lr > 0, got {self.finetune_steps}, {self.lr}"
            )
        if not self.teacher_weight >= 0:
            raise ValueError(f"teacher_weight must be >= 0, got {self.teacher_weight}")

    def settings(self) -> dict[str, Any]:
        return {
            "sparsity_target": self.sparsity,
            "finetune_steps": self.finetune_steps,
            "lr": self.lr,
            "teacher_weight": self.teacher_weight,
            "granularity": "channel",
        }

    @classmethod
    def example(cls) -> StructuredPruneConfig:
        return cls(sparsity=0.5, finetune_steps=2)


@register_method(StructuredPruneConfig)
def prune_structured(
    cm: CompressedModel, cfg: StructuredPruneConfig, ctx: CompressionContext
) -> CompressedModel:
    extra = teacher_matching(cm.model, cfg.teacher_weight) if cfg.finetune_steps else None
    kept: dict[str, list[int]] = {}
    for group, keep in plan(cm.model, cfg.sparsity):
        total = channel_l1(cm.model.get_submodule(group.producer), group.block).numel()
        shrink_group(cm.model, group, keep)
        kept[group.producer] = [keep.numel(), total]
    losses = finetune(
        cm.model, ctx, cfg.finetune_steps, cfg.lr, extra_loss=extra, key=step_key(cm, cfg)
    )
    cm.notes.update({"kept_channels": kept, "finetune_losses": losses})
    cm.execution = EXECUTION_SHRUNK
    return cm
