"""DDPM family: epsilon-prediction UNet, cosine schedule, deterministic DDIM sampling (eta = 0).

forward(z) maps the initial noise x_T (z, flattened) to an image with `steps` DDIM steps; with
eta = 0 that map is deterministic, so every compressed variant sees the same z (common random
numbers) and differs from the baseline only through its UNet or its number of steps.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from genmodels.base import GenerativeModel
from genmodels.models import MODELS
from genmodels.models.common import check_model_args, scaled, spatial_base
from genmodels.models.unet import UNet
from genmodels.registry import register

NUM_TIMESTEPS = 1000  # T of the forward process (Ho et al. 2020)
SCHEDULES = ("cosine", "linear")


def cosine_alphas_bar(num_timesteps: int, s: float = 0.008) -> torch.Tensor:
    """(T,) float64 alpha_bar_t, t = 1..T, of the cosine schedule (Nichol & Dhariwal 2021,
    arXiv:2102.09672): f(t) = cos(((t/T + s) / (1 + s)) * pi/2)^2, beta_t = min(1 - f(t)/f(t-1),
    0.999), alpha_bar_t = prod_{i<=t} (1 - beta_i)."""
    steps = torch.arange(num_timesteps + 1, dtype=torch.float64) / num_timesteps
    f = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
    betas = (1 - f[1:] / f[:-1]).clamp(max=0.999)
    return torch.cumprod(1 - betas, dim=0)


def linear_alphas_bar(
    num_timesteps: int, beta_1: float = 1e-4, beta_t: float = 0.02
) -> torch.Tensor:
    """(T,) float64 alpha_bar_t of the linear schedule beta_t in [1e-4, 0.02] (Ho et al. 2020,
    arXiv:2006.11239), rescaled to T steps as in Nichol & Dhariwal (1000 / T)."""
    scale = 1000 / num_timesteps
    betas = torch.linspace(scale * beta_1, scale * beta_t, num_timesteps, dtype=torch.float64)
    return torch.cumprod(1 - betas, dim=0)


def ddim_timesteps(num_timesteps: int, steps: int) -> list[int]:
    """Descending 0-based timesteps of a `steps`-step DDIM sampler, "trailing" spacing
    (Lin et al. 2023, arXiv:2305.08891): t_i = round(T - i*T/steps) - 1, so the first step is
    always t = T-1 (pure noise) and the steps are evenly spread down to about T/steps - 1."""
    if not 1 <= steps <= num_timesteps:
        raise ValueError(f"steps must be in [1, {num_timesteps}], got {steps}")
    return [int(round(num_timesteps - i * num_timesteps / steps)) - 1 for i in range(steps)]


def ddim_step(
    x_t: torch.Tensor, eps: torch.Tensor, alpha_bar_t: float, alpha_bar_prev: float
) -> torch.Tensor:
    """One DDIM update with eta = 0 (Song et al. 2020, arXiv:2010.02502, eq. 12):
    x0 = (x_t - sqrt(1 - a_t) eps) / sqrt(a_t), clipped to the data range [-1, 1] (then eps is
    re-derived from the clipped x0, as in Ho et al.'s clipped sampler),
    x_prev = sqrt(a_prev) x0 + sqrt(1 - a_prev) eps. a_prev = 1 returns x0."""
    x0 = ((x_t - math.sqrt(1 - alpha_bar_t) * eps) / math.sqrt(alpha_bar_t)).clamp(-1, 1)
    eps = (x_t - math.sqrt(alpha_bar_t) * x0) / math.sqrt(1 - alpha_bar_t)
    return math.sqrt(alpha_bar_prev) * x0 + math.sqrt(1 - alpha_bar_prev) * eps


def min_snr_weight(alpha_bar: torch.Tensor, gamma: float) -> torch.Tensor:
    """Min-SNR-gamma loss weight of epsilon prediction (arXiv:2303.09556, eq. 8 divided by SNR):
    min(SNR, gamma) / SNR with SNR = alpha_bar / (1 - alpha_bar); 1 where SNR <= gamma."""
    snr = alpha_bar / (1 - alpha_bar)
    return snr.clamp(max=gamma) / snr


@register(MODELS, "ddpm")
class DDPM(GenerativeModel):
    """Denoising diffusion model on images scaled to [-1, 1]; `unet` is the deployable part.

    latent_dim is C*H*W whatever is passed (the latent is the initial noise image; the argument
    is accepted so the registry-wide constructors and TrainConfig.latent_dim work unchanged).
    `steps` (DDIM steps of forward) is no weight-shape argument: a compression method may change
    it on a copy; init_kwargs carries it so students and copies keep it.
    """

    family = "ddpm"
    # The training curve's FID-proxy (genmodels.curve_fid): 10 points, each 500 samples at 10
    # DDIM steps (~6 CPU-s; at the 50 steps of evaluation ~30). It reads as a trend: fewer
    # steps score higher than the evaluation's 50.
    curve_fid_points = 10
    curve_steps = 10
    # The layers that read the noisy image and write the predicted noise (names of modules):
    # what PTQ recipes keep at 8 bits (compression.diffusion quant_wa's head_stem_bits).
    io_layers = ("unet.conv_in", "unet.conv_out")

    def __init__(
        self,
        image_shape: tuple[int, int, int] = (1, 28, 28),
        latent_dim: int | None = None,
        width: float = 1.0,
        channels: int = 12,
        attention: bool = True,
        schedule: str = "cosine",
        steps: int = 50,
        min_snr_gamma: float = 0.0,
    ) -> None:
        image_shape = tuple(image_shape)
        check_model_args(image_shape, 1, width)
        spatial_base(image_shape)  # square, side divisible by 4: two stride-2 stages
        if channels < 1:
            raise ValueError(f"channels must be >= 1, got {channels}")
        if schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, got {schedule!r}")
        ddim_timesteps(NUM_TIMESTEPS, steps)  # validates steps
        if min_snr_gamma < 0:
            raise ValueError(f"min_snr_gamma must be >= 0 (0: unweighted), got {min_snr_gamma}")
        super().__init__(image_shape, math.prod(image_shape), width)
        self.channels, self.attention, self.schedule = int(channels), bool(attention), schedule
        self.steps = int(steps)
        self.min_snr_gamma = float(min_snr_gamma)
        self.num_timesteps = NUM_TIMESTEPS
        c0, c1 = scaled(channels, width), scaled(2 * channels, width)
        self.unet = UNet(image_shape[0], c0, c1, scaled(4 * channels, width), self.attention)
        table = cosine_alphas_bar if schedule == "cosine" else linear_alphas_bar
        # Not in the state dict: a function of `schedule`, and kept out of what compression sees.
        self.register_buffer("alphas_bar", table(NUM_TIMESTEPS).float(), persistent=False)
        self._alphas_bar64 = table(NUM_TIMESTEPS).tolist()  # python floats for the sampler

    def init_kwargs(self) -> dict[str, Any]:
        return {
            **super().init_kwargs(),
            "channels": self.channels,
            "attention": self.attention,
            "schedule": self.schedule,
            "steps": self.steps,
            "min_snr_gamma": self.min_snr_gamma,
        }

    def deployable(self) -> nn.Module:
        return self.unet

    def ddim_timesteps(self, steps: int) -> list[int]:
        """Descending timesteps the sampler visits at `steps` steps (see `ddim_timesteps`)."""
        return ddim_timesteps(self.num_timesteps, steps)

    def ddim_sample(self, z: torch.Tensor, steps: int) -> torch.Tensor:
        """(B, latent_dim) initial noise -> (B, C, H, W) images in [0, 1]; one `self.unet`
        call per step (hooks on its layers see every timestep)."""
        x = z.reshape(-1, *self.image_shape)
        ts = self.ddim_timesteps(steps)
        for i, t in enumerate(ts):
            t_batch = torch.full((x.shape[0],), t, dtype=torch.long, device=x.device)
            eps = self.unet(x, t_batch)
            prev = self._alphas_bar64[ts[i + 1]] if i + 1 < len(ts) else 1.0
            x = ddim_step(x, eps, self._alphas_bar64[t], prev)
        return ((x + 1) / 2).clamp(0, 1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.ddim_sample(z, self.steps)

    def finetune_loss(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Simple DDPM loss (Ho et al. 2020, eq. 14): E_{t, eps} w_t ||eps - unet(x_t, t)||^2,
        mean over pixels and batch, x_t = sqrt(a_t) x0 + sqrt(1 - a_t) eps, x0 = 2x - 1, t
        uniform over 0..T-1; t and eps are drawn on CPU from `generator`. w_t = 1, or with
        min_snr_gamma > 0 the Min-SNR weighting for epsilon prediction (Hang et al. 2023,
        arXiv:2303.09556): w_t = min(SNR_t, gamma) / SNR_t, SNR_t = a_t / (1 - a_t), which
        stops the nearly noise-free timesteps from dominating the gradient."""
        b = x.shape[0]
        t = torch.randint(0, self.num_timesteps, (b,), generator=generator).to(x.device)
        eps = torch.randn(x.shape, generator=generator).to(x.device)
        a = self.alphas_bar[t].view(b, 1, 1, 1)
        x_t = a.sqrt() * (2 * x - 1) + (1 - a).sqrt() * eps
        if not self.min_snr_gamma:
            return F.mse_loss(self.unet(x_t, t), eps)
        per_image = F.mse_loss(self.unet(x_t, t), eps, reduction="none").mean(dim=(1, 2, 3))
        return (min_snr_weight(self.alphas_bar[t], self.min_snr_gamma) * per_image).mean()

    def matching_output(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The UNet's noise prediction on a noised training batch, both drawn from z so that
        student and teacher see the same (x_t, t): t = floor(Phi(z_0) * T), uniform over
        0..T-1 for z ~ N(0, I), and x_t = sqrt(a_t) (2x - 1) + sqrt(1 - a_t) z (as an image)."""
        b = x.shape[0]
        u = torch.special.ndtr(z[:, 0])
        t = (u * self.num_timesteps).long().clamp(0, self.num_timesteps - 1)
        a = self.alphas_bar[t].view(b, 1, 1, 1)
        x_t = a.sqrt() * (2 * x - 1) + (1 - a).sqrt() * z.view(b, *self.image_shape)
        return self.unet(x_t, t)
