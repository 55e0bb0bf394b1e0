"""A tiny stand-in diffusion model whose skip concatenation has parts of known, unequal ranges."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from genmodels.base import GenerativeModel

SHAPE = (1, 8, 8)


class StandInUNet(nn.Module):
    """eps = unet(x, t): a = conv_a(x) (2 channels), b = 50 * conv_b(x) (2 channels, a range ~50x
    larger), h = cat[a, b]; out = conv_out(SiLU(GN(h))) + skip(h). So conv_out reads the concat
    through a norm and an activation, skip reads it directly, and conv_a/conv_b/time read none."""

    def __init__(self) -> None:
        super().__init__()
        self.time = nn.Linear(4, 2)
        self.conv_a = nn.Conv2d(1, 2, 3, padding=1)
        self.conv_b = nn.Conv2d(1, 2, 3, padding=1)
        self.norm = nn.GroupNorm(2, 4)
        self.conv_out = nn.Conv2d(4, 1, 3, padding=1)
        self.skip = nn.Conv2d(4, 1, 1)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        freqs = torch.arange(1, 3, device=x.device).float()
        emb = torch.cat([torch.sin(t.float()[:, None] / 1000 * freqs),
                         torch.cos(t.float()[:, None] / 1000 * freqs)], dim=1)  # (B, 4)
        a = self.conv_a(x) + self.time(emb)[:, :, None, None]
        h = torch.cat([a, 50 * self.conv_b(x)], dim=1)  # (B, 4, H, W)
        return self.conv_out(F.silu(self.norm(h))) + 0.01 * self.skip(h)


class StandInDiffusion(GenerativeModel):
    """The interface of the ddpm family in miniature: `unet`, `steps`, `ddim_timesteps`,
    `ddim_sample` (one unet call per step, a deterministic toy update), deployable() = unet."""

    family = "standin_diffusion"

    def __init__(self, steps: int = 5) -> None:
        super().__init__(SHAPE, SHAPE[0] * SHAPE[1] * SHAPE[2], 1.0)
        self.unet = StandInUNet()
        self.steps = steps

    def ddim_timesteps(self, steps: int) -> list[int]:
        if not 1 <= steps <= 1000:
            raise ValueError(f"steps must be in [1, 1000], got {steps}")
        return [1000 - 1 - i * (1000 // steps) for i in range(steps)]

    def ddim_sample(self, z: torch.Tensor, steps: int) -> torch.Tensor:
        x = z.reshape(-1, *self.image_shape)
        for t in self.ddim_timesteps(steps):
            x = x - 0.1 * self.unet(x, torch.full((x.shape[0],), t, dtype=torch.long))
        return torch.sigmoid(x)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.ddim_sample(z, self.steps)

    def deployable(self) -> nn.Module:
        return self.unet

    def finetune_loss(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        eps = torch.randn(x.shape, generator=generator)
        t = torch.randint(0, 1000, (x.shape[0],), generator=generator)
        return F.mse_loss(self.unet(x + eps, t), eps)


def standin(seed: int = 0, steps: int = 5) -> StandInDiffusion:
    torch.manual_seed(seed)
    return StandInDiffusion(steps).eval()
