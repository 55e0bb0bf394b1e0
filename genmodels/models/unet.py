"""A small epsilon-prediction UNet for 28x28 / 32x32 images (Ho et al. 2020, arXiv:2006.11239).

Three resolutions (H, H/2, H/4), one residual block per resolution on the way down and on the way
up, GroupNorm + SiLU, a sinusoidal timestep embedding added inside every residual block, optional
self-attention at the lowest resolution. Skip connections concatenate the encoder's residual
stream with the decoder's upsampled stream (channel order: [decoder, skip]).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

# Channels per GroupNorm group at full width; structured pruning removes whole groups, so this is
# also its granularity (compression.channel_groups' `ddpm` entry).
GROUP_CHANNELS = 4


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding (Vaswani et al. 2017, arXiv:1706.03762), (B,) -> (B, dim):
    [cos(t * f_k), sin(t * f_k)], f_k = max_period^(-k / (dim/2)), k = 0 .. dim/2 - 1."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]  # (B, half)
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=1)
    return F.pad(emb, (0, dim % 2))  # odd dim: one zero column


def group_norm(channels: int) -> nn.GroupNorm:
    """GroupNorm with GROUP_CHANNELS channels per group (one group per channel below that)."""
    per_group = GROUP_CHANNELS if channels % GROUP_CHANNELS == 0 else 1
    return nn.GroupNorm(channels // per_group, channels)


class ResBlock(nn.Module):
    """x -> conv1(SiLU(GN(x))) + proj(temb) -> conv2(SiLU(GN(.))) + skip(x); `hidden` channels
    between the two convs (what structured pruning shrinks), `cout` on the residual stream."""

    def __init__(self, cin: int, hidden: int, cout: int, temb_dim: int) -> None:
        super().__init__()
        self.norm1 = group_norm(cin)
        self.conv1 = nn.Conv2d(cin, hidden, 3, padding=1)
        self.temb = nn.Linear(temb_dim, hidden)
        self.norm2 = group_norm(hidden)
        self.conv2 = nn.Conv2d(hidden, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x))) + self.temb(temb)[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return h + self.skip(x)


class Attention(nn.Module):
    """Single-head self-attention over the H*W positions with a residual connection."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.norm = group_norm(channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).flatten(2).transpose(1, 2).chunk(3, dim=2)  # (B, HW, C)
        y = F.scaled_dot_product_attention(q, k, v)  # (B, HW, C)
        return x + self.out(y.transpose(1, 2).reshape(b, c, h, w))


class UNet(nn.Module):
    """eps = unet(x, t): x (B, C, H, W) in the data scale [-1, 1] plus noise, t int64 (B,).

    Channels: c0 at H, c1 at H/2 and H/4 (c1 = 2 c0 at full width). Layout:
      conv_in -> down0 (c0) =skip0-> down_conv0 -> down1 (c1) =skip1-> down_conv1
      -> mid (c1, attention if `attention`) -> up_conv1 -> up1(cat[., skip1]) (c1)
      -> up_conv0 -> up0(cat[., skip0]) (c0) -> conv_out.
    """

    def __init__(self, channels: int, c0: int, c1: int, temb_dim: int, attention: bool) -> None:
        super().__init__()
        self.temb_dim = temb_dim
        self.temb_mlp = nn.Sequential(
            nn.Linear(temb_dim, temb_dim), nn.SiLU(), nn.Linear(temb_dim, temb_dim)
        )
        self.conv_in = nn.Conv2d(channels, c0, 3, padding=1)
        self.down0 = ResBlock(c0, c0, c0, temb_dim)
        self.down_conv0 = nn.Conv2d(c0, c0, 3, stride=2, padding=1)
        self.down1 = ResBlock(c0, c1, c1, temb_dim)
        self.down_conv1 = nn.Conv2d(c1, c1, 3, stride=2, padding=1)
        self.mid = ResBlock(c1, c1, c1, temb_dim)
        self.attn = Attention(c1) if attention else nn.Identity()
        self.up_conv1 = nn.ConvTranspose2d(c1, c1, 4, stride=2, padding=1)
        self.up1 = ResBlock(2 * c1, c1, c1, temb_dim)
        self.up_conv0 = nn.ConvTranspose2d(c1, c0, 4, stride=2, padding=1)
        self.up0 = ResBlock(2 * c0, c0, c0, temb_dim)
        self.norm_out = group_norm(c0)
        self.conv_out = nn.Conv2d(c0, channels, 3, padding=1)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        temb = self.temb_mlp(timestep_embedding(t, self.temb_dim))  # (B, temb_dim)
        skip0 = self.down0(self.conv_in(x), temb)  # (B, c0, H, W)
        skip1 = self.down1(self.down_conv0(skip0), temb)  # (B, c1, H/2, W/2)
        h = self.attn(self.mid(self.down_conv1(skip1), temb))  # (B, c1, H/4, W/4)
        h = self.up1(torch.cat([self.up_conv1(h), skip1], dim=1), temb)  # (B, c1, H/2, W/2)
        h = self.up0(torch.cat([self.up_conv0(h), skip0], dim=1), temb)  # (B, c0, H, W)
        return self.conv_out(F.silu(self.norm_out(h)))
