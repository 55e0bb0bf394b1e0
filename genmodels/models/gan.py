"""DCGAN-style GAN (Radford et al. 2015, arXiv:1511.06434) sized for 28x28 / 32x32 images on CPU.

Recipe for 4,000 training digits (genmodels.train fits it; the EMA generator is the one kept):
spectral norm on every discriminator layer (Miyato et al. 2018, arXiv:1802.05957) bounds D's
Lipschitz constant, so the non-saturating G loss keeps a useful gradient; DiffAugment translation
+ cutout on real and fake images alike (Zhao et al. 2020, arXiv:2006.10738) against D memorising
the small training set (measured: cutout 125 vs 127 without; translation not ablated); an EMA
of G's weights (Karras et al. 2018, arXiv:1710.10196) is what is kept.
Many small steps matter more than width on this budget (batch 16, Adam betas (0, 0.9) as in SNGAN),
and a linear lr decay to 0 over the second half (TrainConfig.lr_decay_start) takes FID-proxy
63 -> 56. Options outside the default recipe: hinge loss (`loss="hinge"`), R1 penalty (`r1`).
Measured ablations: the comment above genmodels.train.DEFAULT_TRAIN."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call
from torch.nn.utils.parametrizations import spectral_norm

from genmodels.base import GenerativeModel
from genmodels.models import MODELS
from genmodels.models.common import check_model_args, scaled, spatial_base
from genmodels.registry import register

GAN_LOSSES = ("ns", "hinge")  # non-saturating, hinge


class Generator(nn.Module):
    """z -> Linear -> (C0, s, s) -> ConvT/2 -> (C1, 2s, 2s) -> ConvT/2 -> (C, 4s, 4s) in [0, 1]."""

    def __init__(
        self, image_shape: tuple[int, int, int], latent_dim: int, c0: int, c1: int
    ) -> None:
        super().__init__()
        self.c0, self.s = c0, spatial_base(image_shape)
        self.fc = nn.Linear(latent_dim, c0 * self.s * self.s, bias=False)  # BN follows: no bias
        self.bn0 = nn.BatchNorm1d(c0 * self.s * self.s)
        self.up1 = nn.ConvTranspose2d(c0, c1, 4, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c1)
        self.up2 = nn.ConvTranspose2d(c1, image_shape[0], 4, stride=2, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.bn0(self.fc(z))).view(-1, self.c0, self.s, self.s)
        h = F.relu(self.bn1(self.up1(h)))  # (B, C1, 2s, 2s)
        return torch.sigmoid(self.up2(h))  # (B, C, 4s, 4s) in [0, 1]


def diff_augment(
    x: torch.Tensor, generator: torch.Generator, shift: float = 0.125, cut: float = 0.5
) -> torch.Tensor:
    """DiffAugment (Zhao et al. 2020, arXiv:2006.10738), differentiable in x: translate each
    image by up to `shift` of its side (zero fill), then zero one square of `cut` of the side at
    a random centre. (B, C, H, W) -> same; draws from `generator` (CPU)."""
    b, _, h, w = x.shape
    pad = max(1, round(shift * h))
    d = torch.randint(0, 2 * pad + 1, (2, b, 1, 1), generator=generator).to(x.device)
    rows = torch.arange(h, device=x.device).view(1, h, 1) + d[0]  # (B, H, 1) rows of the pad
    cols = torch.arange(w, device=x.device).view(1, 1, w) + d[1]  # (B, 1, W)
    batch = torch.arange(b, device=x.device).view(b, 1, 1)
    padded = F.pad(x, (pad, pad, pad, pad)).permute(0, 2, 3, 1)  # (B, H+2p, W+2p, C)
    x = padded[batch, rows, cols].permute(0, 3, 1, 2)  # (B, C, H, W)
    half_h, half_w = round(cut * h) // 2, round(cut * w) // 2
    centre = torch.rand(2, b, 1, 1, generator=generator).to(x.device)
    cy, cx = (centre[0] * h).long(), (centre[1] * w).long()
    inside = ((rows - d[0] - cy).abs() < half_h) & ((cols - d[1] - cx).abs() < half_w)
    return x * (~inside).unsqueeze(1).to(x.dtype)


class Discriminator(nn.Module):
    """Two stride-2 convs with LeakyReLU(0.2), then a Linear to one logit per image; every layer
    spectrally normalised (weights are `<layer>.parametrizations.weight.original`)."""

    def __init__(self, image_shape: tuple[int, int, int], c1: int, c2: int) -> None:
        super().__init__()
        self.sizes = (tuple(image_shape), c1, c2)
        s = spatial_base(image_shape)
        self.conv1 = spectral_norm(nn.Conv2d(image_shape[0], c1, 4, stride=2, padding=1))
        self.conv2 = spectral_norm(nn.Conv2d(c1, c2, 4, stride=2, padding=1))
        self.fc = spectral_norm(nn.Linear(c2 * s * s, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(self.conv1(x), 0.2)
        h = F.leaky_relu(self.conv2(h), 0.2)
        return self.fc(h.flatten(1)).squeeze(1)  # (B,) logits

    def __reduce__(self) -> tuple:
        # Parametrized modules refuse pickle ("only supported through state_dict()"), and a
        # trained GAN travels pickled to pool and Dask workers: rebuild from sizes + state.
        frozen = [n for n, p in self.named_parameters() if not p.requires_grad]
        return _rebuild_discriminator, (self.sizes, self.state_dict(), frozen, self.training)


def _rebuild_discriminator(sizes: tuple, state: dict[str, torch.Tensor], frozen: list[str],
                           training: bool) -> Discriminator:
    """The exact discriminator `Discriminator.__reduce__` describes; the throwaway random init
    runs on a forked RNG so unpickling never moves the caller's generator."""
    with torch.random.fork_rng(devices=[]):
        disc = Discriminator(*sizes)
    device = next(iter(state.values())).device
    disc = disc.to(device)
    disc.load_state_dict(state)
    for name, param in disc.named_parameters():
        param.requires_grad_(name not in frozen)
    return disc.train(training)


@register(MODELS, "gan")
class GAN(GenerativeModel):
    """forward(z) = generator(z). The discriminator ignores `width` (its channels are fixed by
    `disc_channels`), so a student built at width 0.5 can load its teacher's discriminator."""

    family = "gan"

    def __init__(
        self,
        image_shape: tuple[int, int, int] = (1, 28, 28),
        latent_dim: int = 32,
        width: float = 1.0,
        channels: int = 32,
        disc_channels: int = 32,
        cutout: float = 0.5,
        loss: str = "ns",
        r1: float = 0.0,
    ) -> None:
        check_model_args(image_shape, latent_dim, width)
        if channels < 1 or disc_channels < 1:
            raise ValueError(
                f"channels and disc_channels must be >= 1, got {channels}, {disc_channels}"
            )
        if not 0 <= cutout < 1:
            raise ValueError(f"cutout (side fraction of DiffAugment's cutout) must be in [0, 1), "
                             f"got {cutout}")
        if loss not in GAN_LOSSES:
            raise ValueError(f"loss must be one of {', '.join(GAN_LOSSES)}, got {loss!r}")
        if not (r1 >= 0 and math.isfinite(r1)):
            raise ValueError(f"r1 (weight of the R1 penalty) must be finite and >= 0, got {r1}")
        super().__init__(image_shape, latent_dim, width)
        self.channels, self.disc_channels, self.cutout = int(channels), int(disc_channels), cutout
        self.loss, self.r1 = loss, float(r1)
        self.generator = Generator(
            self.image_shape, self.latent_dim, scaled(2 * channels, width), scaled(channels, width)
        )
        self.discriminator = Discriminator(self.image_shape, disc_channels, 2 * disc_channels)

    def init_kwargs(self) -> dict[str, Any]:
        return {
            **super().init_kwargs(),
            "channels": self.channels,
            "disc_channels": self.disc_channels,
            "cutout": self.cutout,
            "loss": self.loss,
            "r1": self.r1,
        }

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.generator(z)

    def deployable(self) -> nn.Module:
        return self.generator

    def _frozen_disc(self, images: torch.Tensor) -> torch.Tensor:
        # Detached parameters: gradients reach the images (and so G) but never D's weights.
        params = {n: p.detach() for n, p in self.discriminator.named_parameters()}
        return functional_call(self.discriminator, params, (images,))

    def finetune_loss(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Generator loss against the frozen D on T(G(z)), T = diff_augment as D was trained, batch
        mean; x only sets the batch size. "ns": non-saturating -log D = softplus(-logit)
        (Goodfellow et al. 2014, arXiv:1406.2661); "hinge": -logit (Lim & Ye 2017,
        arXiv:1705.02894)."""
        fake = self.generator(self.latent(x.shape[0], generator))
        logits = self._frozen_disc(diff_augment(fake, generator, cut=self.cutout))
        return -logits.mean() if self.loss == "hinge" else F.softplus(-logits).mean()

    def discriminator_loss(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """"ns": softplus(-D(T(x))) + softplus(D(T(G(z)))); "hinge": relu(1 - D(T(x))) +
        relu(1 + D(T(G(z)))); batch means, T = diff_augment, G's output detached. Plus, when
        r1 > 0, the R1 penalty r1/2 E||grad_x D(T(x))||^2 on real images (Mescheder et al. 2018,
        arXiv:1801.04406)."""
        with torch.no_grad():
            fake = self.generator(self.latent(x.shape[0], generator))
        real = diff_augment(x, generator, cut=self.cutout)
        if self.r1 > 0:
            real = real.detach().requires_grad_(True)
        real_logits = self.discriminator(real)
        fake_logits = self.discriminator(diff_augment(fake, generator, cut=self.cutout))
        if self.loss == "hinge":
            loss = F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()
        else:
            loss = F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()
        if self.r1 > 0:
            (grad,) = torch.autograd.grad(real_logits.sum(), real, create_graph=True)
            loss = loss + 0.5 * self.r1 * grad.pow(2).flatten(1).sum(1).mean()
        return loss
