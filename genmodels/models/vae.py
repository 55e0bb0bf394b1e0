"""Convolutional VAE, Gaussian q(z|x), 256-level discretised decoder (arXiv:1312.6114)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from genmodels.base import GenerativeModel
from genmodels.models import MODELS
from genmodels.models.common import VAEMixin, check_model_args, scaled, spatial_base
from genmodels.registry import register


@register(MODELS, "vae")
class ConvVAE(VAEMixin, GenerativeModel):
    """Encoder: two stride-2 convs -> Linear -> (mu, logvar). Decoder: mirror image with ConvT,
    returning logits; forward(z) = sigmoid(decode(z)). Trained with KL warm-up
    (VAEMixin.training_loss; DEFAULT_TRAIN["vae"])."""

    family = "vae"

    def __init__(
        self,
        image_shape: tuple[int, int, int] = (1, 28, 28),
        latent_dim: int = 16,
        width: float = 1.0,
        channels: int = 32,
    ) -> None:
        check_model_args(image_shape, latent_dim, width)
        if channels < 1:
            raise ValueError(f"channels must be >= 1, got {channels}")
        super().__init__(image_shape, latent_dim, width)
        self.channels = int(channels)
        c, s = self.image_shape[0], spatial_base(self.image_shape)
        c1, c2 = scaled(channels, width), scaled(2 * channels, width)
        self.c2, self.s = c2, s
        self.enc1 = nn.Conv2d(c, c1, 4, stride=2, padding=1)
        self.enc2 = nn.Conv2d(c1, c2, 4, stride=2, padding=1)
        self.enc_fc = nn.Linear(c2 * s * s, 2 * latent_dim)
        self.dec_fc = nn.Linear(latent_dim, c2 * s * s)
        self.dec1 = nn.ConvTranspose2d(c2, c1, 4, stride=2, padding=1)
        self.dec2 = nn.ConvTranspose2d(c1, c, 4, stride=2, padding=1)

    def init_kwargs(self) -> dict[str, Any]:
        return {**super().init_kwargs(), "channels": self.channels}

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = F.relu(self.enc2(F.relu(self.enc1(x))))
        mu, logvar = self.enc_fc(h.flatten(1)).chunk(2, dim=1)
        return mu, logvar

    def decode(self, z: torch.Tensor, x: torch.Tensor | None = None) -> torch.Tensor:
        """(B, D) -> logits (B, C, H, W); x is accepted for interface parity and ignored."""
        h = F.relu(self.dec_fc(z)).view(-1, self.c2, self.s, self.s)
        return self.dec2(F.relu(self.dec1(h)))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.decode(z))
