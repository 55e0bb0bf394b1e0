"""The VAEs' pixel likelihood: a continuous Bernoulli discretised to the data's 256 grey levels.

Why this one. The images are 8-bit greys stored as k/255 (k = 0..255), so the likelihood is
stated on that discretisation: each pixel is a 256-valued variable, p(x|z) a probability mass
function, log p(x) <= 0, and the ELBO / IWAE bounds are bounds of a real log-likelihood that
converts to bits per dimension (8 = uniform over the levels). The unnormalised Bernoulli
cross-entropy used before (train-v3) is not a density of grey pixels. Among proper choices, the
continuous Bernoulli (Loaiza-Ganem & Cunningham 2019, arXiv:1907.06845) keeps one logit per
pixel: the decoders, their compression channel groups and forward(z) = sigmoid(logits) are
unchanged; a discretised logistic (Salimans et al. 2017, arXiv:1701.05517) would need a second
output map per pixel. CB(lambda) on [0, 1] with logit l = log(lambda / (1 - lambda)) has density
l e^{l u} / (e^l - 1) (a truncated exponential), so the mass of grey level k, the bin
[a, b) = [k/256, (k+1)/256) of width w = 1/256, is

    P(k | l) = (e^{b l} - e^{a l}) / (e^l - 1) = w e^{a l} exp(g(w l) - g(l)),
    g(t) = log((e^t - 1) / t),  g(0) = 0,

which sums to 1 over k exactly (the bins tile [0, 1]); l = 0 is the uniform 1/256.
"""

from __future__ import annotations

import math
from typing import TypeVar

import torch

GREY_LEVELS = 256  # 8-bit images: x = k / 255, k = 0..255
_SMALL = 1e-2  # |t| below which g uses its series (error < 1e-11)
Nats = TypeVar("Nats")  # a float, tensor or numpy array of log-likelihoods


def _log_expm1_ratio(t: torch.Tensor) -> torch.Tensor:
    """g(t) = log((e^t - 1) / t) elementwise, stable for every t (no overflow, exact at 0):
    g(t) = max(t, 0) + log(1 - e^{-|t|}) - log|t|, and t/2 + t^2/24 + O(t^4) near 0."""
    u = t.abs()
    small = u < _SMALL
    safe = torch.where(small, torch.ones_like(u), u)  # both branches finite: finite gradients
    direct = t.clamp(min=0) + torch.log(-torch.expm1(-safe)) - torch.log(safe)
    return torch.where(small, t / 2 + t * t / 24, direct)


def grey_levels(x: torch.Tensor) -> torch.Tensor:
    """Pixel values in [0, 1] -> their grey level k = round(255 x) in 0..255 (same shape)."""
    return torch.round(x.detach() * (GREY_LEVELS - 1)).clamp(0, GREY_LEVELS - 1)


def discretised_cb_log_prob(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Elementwise log P(k | l) of the grey level k of x under the discretised continuous
    Bernoulli with logits l (module docstring), in nats; <= 0, differentiable in l."""
    w = 1.0 / GREY_LEVELS
    a = grey_levels(x) * w
    return a * logits + math.log(w) + _log_expm1_ratio(w * logits) - _log_expm1_ratio(logits)


def pixel_log_lik(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """log p(x|z) of whole images, (B, ...) -> (B,) nats: the sum over pixels of
    `discretised_cb_log_prob`, the likelihood every VAE here trains on and is scored with."""
    return discretised_cb_log_prob(logits, x).flatten(1).sum(1)


def nats_to_bpd(log_lik_nats: Nats, dims: int) -> Nats:
    """Bits per dimension of a log-likelihood (or a bound of it) in nats per image over D
    dimensions: bpd = -log p / (D ln 2)."""
    if dims < 1:
        raise ValueError(f"dims must be >= 1, got {dims}")
    return -log_lik_nats / (dims * math.log(2.0))
