"""Registered VAEs set to a closed form: a decoder that ignores z and a fixed Gaussian q(z|x).

Zeroing the decoder's output-layer weights leaves logits = its bias, whatever z is, so
p(x|z) = p(x) = prod over pixels of the mass of x's grey level k = round(255 x) under the
discretised logit-logistic: P(k | l) = sigmoid(logit(e_{k+1}) - l) - sigmoid(logit(e_k) - l),
e_k = (k - 1/2)/255 clipped to [0, 1] (genmodels.models.likelihood), exactly.
Zeroing the encoder head's weights leaves (mu, logvar) = its bias for every x, so q(z|x) =
N(m, diag(exp(lv))) and, with p(x|z) constant in z, ELBO = log p(x) - KL(q || N(0, I)) and every
importance weight is p(x) * p(z) / q(z): with m = 0, lv = 0 it is p(x) exactly, for every k.
Shared by tests/genmodels (model methods) and tests/metrics (bench.metrics.likelihood).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from genmodels.models import MODELS

# family -> (encoder head giving (mu, logvar), decoder output layer, its bias -> logits (C, H, W)).
# A new VAE family must be added here: test_every_vae_family_has_a_closed_form fails until it is.
Layout = Callable[[torch.Tensor, tuple[int, int, int]], torch.Tensor]
HEADS: dict[str, tuple[str, str, Layout]] = {
    # ConvTranspose2d with zero weights: every pixel of channel c is bias[c].
    "vae": ("enc_fc", "dec2", lambda b, shape: b.view(-1, 1, 1).expand(shape)),
    # Linear over a row of W*C pixels (channels interleaved, genmodels.data.to_rows), every row.
    "rvae": ("enc_fc", "dec_out",
             lambda b, shape: b.view(shape[2], shape[0]).T.unsqueeze(1).expand(shape)),
}
TINY = {"vae": {"channels": 4}, "rvae": {"hidden": 8}}
VAES = sorted(name for name, cls in MODELS.items() if cls.is_vae)


@torch.no_grad()
def set_posterior(model: nn.Module, mu: torch.Tensor, logvar: torch.Tensor) -> None:
    """Make q(z|x) = N(mu, diag(exp(logvar))) for every x (the head's output is (mu, logvar))."""
    enc = getattr(model, HEADS[model.family][0])
    enc.weight.zero_()
    enc.bias.copy_(torch.cat([mu, logvar]))


@torch.no_grad()
def set_closed_form(
    model: nn.Module, mu: torch.Tensor, logvar: torch.Tensor, seed: int = 0
) -> torch.Tensor:
    """set_posterior, and p(x|z) independent of z with output logits drawn uniform in [-2, 2]
    from `seed`; returns those logits (C, H, W), float64."""
    set_posterior(model, mu, logvar)
    _, dec_name, layout = HEADS[model.family]
    dec = getattr(model, dec_name)
    dec.weight.zero_()
    gen = torch.Generator().manual_seed(seed)
    dec.bias.copy_(torch.rand(dec.bias.shape, generator=gen) * 4 - 2)
    return layout(dec.bias.detach().double(), model.image_shape)


def log_px(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """(B,) float64 log p(x): the sum over pixels of log P(k | l), written directly as a
    difference of sigmoids at the bin edges in float64 (a reference independent of
    genmodels.models.likelihood's stable form; fine for |l| <= 2, where nothing cancels)."""
    loc = logits.double().expand_as(x)
    k = torch.round(x.double() * 255)
    lower = ((k - 0.5) / 255).clamp(0, 1)
    upper = ((k + 0.5) / 255).clamp(0, 1)
    mass = torch.sigmoid(torch.logit(upper) - loc) - torch.sigmoid(torch.logit(lower) - loc)
    return mass.log().flatten(1).sum(1)


def bce_log_lik(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """(B,) float64 -BCE = sum over pixels of x log sigmoid(l) + (1 - x) log sigmoid(-l) (what
    recon_bce reports, negated)."""
    x = x.double()
    return (x * F.logsigmoid(logits) + (1 - x) * F.logsigmoid(-logits)).flatten(1).sum(1)


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> float:
    """KL(N(mu, diag(exp(logvar))) || N(0, I)) by torch.distributions (a reference)."""
    q = torch.distributions.Normal(mu.double(), (0.5 * logvar.double()).exp())
    prior = torch.distributions.Normal(torch.zeros_like(q.loc), torch.ones_like(q.scale))
    return torch.distributions.kl_divergence(q, prior).sum().item()


def log_ratio_variance(mu: torch.Tensor, logvar: torch.Tensor) -> float:
    """Var of log p(z) - log q(z), z ~ q = N(m, s^2) per dim: that difference is
    const - m s eps + (1 - s^2) eps^2 / 2 (eps ~ N(0, 1)), so Var = sum m^2 s^2 + (1 - s^2)^2 / 2
    (Var eps^2 = 2, Cov(eps, eps^2) = 0)."""
    var = logvar.double().exp()
    return (mu.double() ** 2 * var + 0.5 * (1 - var) ** 2).sum().item()


def simulate_iwae_gap(
    mu: torch.Tensor, logvar: torch.Tensor, k: int, n: int = 20_000, seed: int = 99
) -> tuple[float, float]:
    """Mean and SD of L_k - log p(x) = log mean_i p(z_i) / q(z_i), z_i ~ q, by numpy Monte Carlo
    with its own RNG (an independent reference for E[L_k] of the z-free decoder)."""
    rng = np.random.default_rng(seed)
    m, s = mu.double().numpy(), (0.5 * logvar.double()).exp().numpy()
    z = m + s * rng.standard_normal((n, k, m.size))
    log_r = (-0.5 * z**2 + 0.5 * ((z - m) / s) ** 2 + np.log(s)).sum(-1)  # (n, k)
    gap = np.logaddexp.reduce(log_r, axis=1) - np.log(k)
    return float(gap.mean()), float(gap.std(ddof=1))


def build_closed_form(
    family: str, mu: torch.Tensor, logvar: torch.Tensor, **kwargs: object
) -> tuple[nn.Module, torch.Tensor]:
    """A tiny registered VAE of `family` (eval mode) set to the closed form, and its logits."""
    torch.manual_seed(0)
    model = MODELS[family](latent_dim=mu.numel(), **{**TINY[family], **kwargs}).eval()
    return model, set_closed_form(model, mu, logvar)
