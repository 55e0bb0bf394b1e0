"""The VAEs' pixel likelihood: a logistic in logit space, discretised to the 256 grey levels.

What it is. The images are 8-bit greys stored as x = k/255 (k = 0..255), so the likelihood is
stated on that discretisation: each pixel is a 256-valued variable, p(x|z) is a probability mass
function, log p(x|z) <= 0, and the ELBO / IWAE bounds are bounds of a real log-probability that
converts to bits per dimension. Given the decoder's logit l of a pixel, v = logit(u) is
Logistic(l, 1) (u = sigmoid(v) in (0, 1), median sigmoid(l), so forward(z) = sigmoid(logits)
stays the per-pixel median image), and level k gets the mass of its bin [e_k, e_{k+1}),
e_k = (k - 1/2)/255 for k = 1..255, e_0 = 0, e_256 = 1:

    P(k | l) = sigmoid(logit(e_{k+1}) - l) - sigmoid(logit(e_k) - l),

the edge bins taking the tails (logit(0) = -inf, logit(1) = +inf) as in PixelCNN++'s
discretised logistic (Salimans et al. 2017, arXiv:1701.05517), so the masses sum to 1 exactly and
l = 0 gives each level its bin width (1/255, 1/510 at the edges).

Why this one. The unnormalised Bernoulli cross-entropy used before (train-v3) is not a density of
grey pixels. A continuous Bernoulli (Loaiza-Ganem & Cunningham 2019, arXiv:1907.06845)
discretised to these bins is proper but gives an exactly-black pixel (most of MNIST) a mass of
only 1 - e^{l/256}: 0.18 at l = -50, so the bound is dominated by the background. Here the edge
bins hold the tails: P(0 | l = -12) = 0.997. One logit per pixel, as before: the decoders, their
compression channel groups and forward(z) are unchanged (a learned scale would be a new output).
Stable form: sigmoid(b) - sigmoid(a) = sigmoid(b) sigmoid(-a) (1 - e^{a - b}).
"""

from __future__ import annotations

import math
from typing import TypeVar

import torch
import torch.nn.functional as F

GREY_LEVELS = 256  # 8-bit images: x = k / 255, k = 0..255
Nats = TypeVar("Nats")  # a float, tensor or numpy array of log-likelihoods


def bin_logit_edges(dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """(lower, upper) logit edges of the 256 levels' bins, (256,) each; -inf / +inf at the ends."""
    edges = (torch.arange(GREY_LEVELS + 1, dtype=torch.float64) - 0.5) / (GREY_LEVELS - 1)
    edges[0], edges[-1] = 0.0, 1.0
    logit_edges = torch.logit(edges)  # -inf, ..., +inf
    return logit_edges[:-1].to(dtype), logit_edges[1:].to(dtype)


def grey_levels(x: torch.Tensor) -> torch.Tensor:
    """Pixel values in [0, 1] -> their grey level k = round(255 x) in 0..255, int64."""
    return torch.round(x.detach() * (GREY_LEVELS - 1)).clamp(0, GREY_LEVELS - 1).long()


def discretised_logit_logistic_log_prob(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Elementwise log P(k | l) of the grey level k of x (module docstring), in nats; <= 0,
    finite and differentiable in l for every l (the edge bins drop their infinite terms)."""
    lower, upper = bin_logit_edges(logits.dtype)
    lower, upper = lower.to(logits.device), upper.to(logits.device)
    k = grey_levels(x)
    a, b = lower[k], upper[k]  # logit edges of each pixel's bin, same shape as x
    # At the edge bins a = -inf or b = +inf: logsigmoid(+inf) = 0 and log(1 - e^{-inf}) = 0,
    # exact values with zero gradient, so no case split is needed.
    return F.logsigmoid(b - logits) + F.logsigmoid(logits - a) + torch.log(-torch.expm1(a - b))


def pixel_log_lik(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """log p(x|z) of whole images, (B, ...) -> (B,) nats: the sum over pixels of
    `discretised_logit_logistic_log_prob`, the likelihood every VAE here trains on and is
    scored with."""
    return discretised_logit_logistic_log_prob(logits, x).flatten(1).sum(1)


def nats_to_bpd(log_lik_nats: Nats, dims: int) -> Nats:
    """Bits per dimension of a log-likelihood (or a bound of it) in nats per image over D
    dimensions: bpd = -log p / (D ln 2)."""
    if dims < 1:
        raise ValueError(f"dims must be >= 1, got {dims}")
    return -log_lik_nats / (dims * math.log(2.0))
