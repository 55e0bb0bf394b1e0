"""Which channels go together: per-family channel groups and the L1 ranking of Li et al. 2016."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from genmodels.base import GenerativeModel
from genmodels.registry import register

RNN_GATES = {nn.GRU: 3, nn.LSTM: 4}
NORM_LAYERS = (nn.BatchNorm1d, nn.BatchNorm2d)


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
    ss = model.generator.s**2
    return [
        ChannelGroup(
            "generator.fc",
            ss,
            norms=("generator.bn0",),
            consumers=(("generator.up1", 1),),
            size_attrs=(("generator", "c0"),),
        ),
        ChannelGroup("generator.up1", norms=("generator.bn1",), consumers=(("generator.up2", 1),)),
    ]


@register(CHANNEL_GROUPS, "vae")
def _vae_groups(model: GenerativeModel) -> list[ChannelGroup]:
    ss = model.s**2
    return [
        ChannelGroup("enc1", consumers=(("enc2", 1),)),
        ChannelGroup("enc2", consumers=(("enc_fc", ss),)),
        ChannelGroup("dec_fc", ss, consumers=(("dec1", 1),), size_attrs=(("", "c2"),)),
        ChannelGroup("dec1", consumers=(("dec2", 1),)),
    ]


@register(CHANNEL_GROUPS, "rvae")
def _rvae_groups(model: GenerativeModel) -> list[ChannelGroup]:
    return [
        ChannelGroup("encoder_rnn", consumers=(("enc_fc", 1),)),
        ChannelGroup("decoder_rnn", also_produce=("dec_init",), consumers=(("dec_out", 1),)),
    ]


# ddpm: the hidden channels of every residual block (conv1 -> GroupNorm norm2 -> conv2, plus the
# time-embedding projection that adds into them), removed by whole GroupNorm groups (block =
# channels per group), so the statistics of the kept groups are unchanged. The residual streams
# and the skip concatenations stay whole: pruning them would need every writer of a stream and
# the concat consumers' channel offsets in one group.
DDPM_BLOCKS = ("down0", "down1", "mid", "up1", "up0")


@register(CHANNEL_GROUPS, "ddpm")
def _ddpm_groups(model: GenerativeModel) -> list[ChannelGroup]:
    groups = []
    for name in DDPM_BLOCKS:
        path = f"unet.{name}"
        norm = model.get_submodule(f"{path}.norm2")
        per_group = norm.num_channels // norm.num_groups
        groups.append(
            ChannelGroup(
                f"{path}.conv1",
                per_group,
                also_produce=(f"{path}.temb",),
                norms=(f"{path}.norm2",),
                consumers=((f"{path}.conv2", per_group),),
            )
        )
    return groups


# ----------------------------------------------------------------------------- maths
def channel_blocks(idx: torch.Tensor, block: int) -> torch.Tensor:
    """Channel indices -> flat indices of channel-major blocks: c -> c*block + [0, block)."""
    return (idx[:, None] * block + torch.arange(block, device=idx.device)).flatten()


def rnn_gate_rows(idx: torch.Tensor, hidden: int, gates: int) -> torch.Tensor:
    """Hidden units -> rows of the stacked gate blocks (gate g of unit j is row g*hidden + j)."""
    return torch.cat([idx + g * hidden for g in range(gates)])


def channel_l1(module: nn.Module, block: int = 1) -> torch.Tensor:
    """L1 norm of each output channel's weights (Li et al. 2016, arXiv:1608.08710):
    ||W_j||_1 summed over the producer's weights of channel j (all gate blocks of an RNN unit)."""
    if isinstance(module, tuple(RNN_GATES)):
        hidden, gates = module.hidden_size, RNN_GATES[type(module)]
        norms = module.weight_ih_l0.abs().sum(1) + module.weight_hh_l0.abs().sum(1)
        return norms.view(gates, hidden).sum(0)
    weight = module.weight.detach().abs()
    per_output = weight.transpose(0, 1) if isinstance(module, nn.ConvTranspose2d) else weight
    return per_output.flatten(1).sum(1).view(-1, block).sum(1)


def channels_to_keep(norms: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Ascending indices of the n - round(s*n) largest-norm channels (>= 1); ties by index."""
    n = norms.numel()
    keep = max(1, n - round(sparsity * n))
    return torch.sort(torch.argsort(-norms, stable=True)[:keep]).values
