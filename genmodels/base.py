"""The small interface every reference model exposes to compression and benchmarking."""
from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn


class GenerativeModel(nn.Module):
    """Base class of the registered families (`MODELS["gan"|"vae"|"rvae"]`).

    Contract used by `compression/` and `bench/` (do not change without updating both):
      * `family`, `image_shape` (C, H, W), `latent_dim`, `width` attributes.
      * `forward(z)`: (B, latent_dim) -> images (B, C, H, W) in [0, 1]. The deployed sampling
        path: what latency, MACs and output drift are measured on.
      * `latent(n, generator)`: z ~ N(0, I), drawn on CPU from `generator` (common random
        numbers: baseline and compressed variants see the same z), moved to the model's device.
      * `sample(n, generator) == forward(latent(n, generator))`.
      * `deployable()`: the sub-module that is shipped and compressed (GAN: the generator;
        VAEs: the whole model). Compression only touches modules inside it.
      * `finetune_loss(x, generator)`: scalar loss of the family's own objective for the
        deployable parameters (GAN: non-saturating generator loss against its own, frozen,
        discriminator; VAE/RVAE: negative ELBO in nats per image, batch mean).
      * `matching_output(z, x)`: what distillation matches between a student and its teacher on
        shared (z, x): forward(z), except where one differentiable forward is too costly
        (ddpm: the UNet's noise prediction at one noise level drawn from z, not 50 DDIM steps).
      * `init_kwargs()`: constructor kwargs, so `type(m)(**{**m.init_kwargs(), "width": 0.5})`
        builds a student of the same family.
    VAEs (`is_vae = True`) add `encode`, `decode`, `log_weights`, `elbo`, `recon_bce`.
    """

    family: ClassVar[str] = ""
    is_vae: ClassVar[bool] = False

    def __init__(self, image_shape: tuple[int, int, int], latent_dim: int, width: float) -> None:
        super().__init__()
        self.image_shape = tuple(image_shape)
        self.latent_dim = int(latent_dim)
        self.width = float(width)

    @property
    def device(self) -> torch.device:
        # A model whose layers all became torch.ao int8 modules holds no nn.Parameter (CPU-only).
        first = next(self.parameters(), None)
        return first.device if first is not None else torch.device("cpu")

    def latent(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return torch.randn(n, self.latent_dim, generator=generator).to(self.device)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return self.forward(self.latent(n, generator))

    def deployable(self) -> nn.Module:
        return self

    def init_kwargs(self) -> dict[str, Any]:
        return {"image_shape": self.image_shape, "latent_dim": self.latent_dim, "width": self.width}

    def finetune_loss(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        raise NotImplementedError

    def matching_output(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The output distillation matches on shared (z, x); forward(z) unless overridden."""
        return self.forward(z)
