"""The VAEs' discretised continuous Bernoulli: a pmf over 256 grey levels, its reference, bpd."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import ContinuousBernoulli
from vae_closed_form import build_closed_form, log_px

from genmodels.models.likelihood import (
    GREY_LEVELS,
    discretised_cb_log_prob,
    grey_levels,
    nats_to_bpd,
    pixel_log_lik,
)

LEVELS = torch.arange(GREY_LEVELS, dtype=torch.float64)  # k = 0..255
X = LEVELS / 255  # the 8-bit images' pixel values


def _all_levels(logits: torch.Tensor) -> torch.Tensor:
    """(256, L) log P(k | l) for every level k (rows) and logit l (columns)."""
    return discretised_cb_log_prob(logits.expand(GREY_LEVELS, -1), X[:, None].to(logits.dtype))


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-12), (torch.float32, 1e-4)])
def test_masses_sum_to_one_over_the_grey_levels_for_every_logit(dtype, tol) -> None:
    # The bins [k/256, (k+1)/256) tile [0, 1]: a pmf for any logit, tiny, zero or huge.
    logits = torch.tensor([-1e3, -60.0, -5.0, -0.3, -4e-3, -1e-7, 0.0, 1e-7, 0.02, 3.0, 40.0, 1e3],
                          dtype=dtype)
    log_p = _all_levels(logits)
    assert torch.isfinite(log_p).all() and (log_p <= 0).all()
    torch.testing.assert_close(torch.logsumexp(log_p, 0), torch.zeros_like(logits),
                               atol=tol, rtol=0)


def test_masses_equal_continuous_bernoulli_cdf_differences() -> None:
    # Reference: torch.distributions.ContinuousBernoulli (Loaiza-Ganem & Cunningham 2019), whose
    # CDF is accurate away from l = 0 (it switches to a Taylor form for |lambda - 1/2| < 1e-3).
    logits = torch.tensor([-20.0, -3.0, -0.5, 0.1, 1.0, 7.0], dtype=torch.float64)
    cb = ContinuousBernoulli(logits=logits)
    upper = cb.cdf(((LEVELS + 1) / 256).clamp(max=1)[:, None].expand(-1, logits.numel()))
    lower = cb.cdf((LEVELS / 256)[:, None].expand(-1, logits.numel()))
    reference = torch.log(upper - lower)
    ok = torch.isfinite(reference)  # far tails of |l| = 20 underflow in the reference
    assert ok.float().mean() > 0.9
    # CDF differences lose digits near F = 1 (cancellation): 1e-6 relative is the reference.
    torch.testing.assert_close(_all_levels(logits)[ok], reference[ok], rtol=1e-6, atol=1e-9)


def test_zero_logits_are_the_uniform_pmf_and_8_bits_per_pixel() -> None:
    # l = 0: lambda = 1/2, CB is uniform on [0, 1], every level has mass 1/256 = 8 bits.
    x = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    log_p = pixel_log_lik(torch.zeros_like(x), x)
    torch.testing.assert_close(log_p, torch.full((3,), -784 * 8 * math.log(2)))
    assert nats_to_bpd(log_p, 784) == pytest.approx(torch.full((3,), 8.0))


def test_bpd_is_minus_nats_over_dims_ln2_exactly() -> None:
    assert nats_to_bpd(-784 * math.log(2), 784) == 1.0
    assert nats_to_bpd(-100.0, 784) == 100.0 / (784 * math.log(2))
    with pytest.raises(ValueError, match="dims"):
        nats_to_bpd(-1.0, 0)


def test_grey_levels_round_to_the_nearest_of_256() -> None:
    x = torch.tensor([0.0, 0.4 / 255, 0.6 / 255, 0.5, 1.0, 1.2, -0.1])
    assert grey_levels(x).tolist() == [0, 0, 1, 128, 255, 255, 0]


def test_gradient_is_finite_everywhere_and_zero_at_the_maximum() -> None:
    # d/dl log P(k|l) is finite at l = 0 and at extremes; for one pixel at every level, the
    # mean of the levels' log-masses peaks at l = 0 (symmetry), so its gradient is 0 there.
    logits = torch.tensor([-80.0, -1e-6, 0.0, 1e-6, 5e-3, 80.0], requires_grad=True)
    _all_levels(logits).sum().backward()
    assert torch.isfinite(logits.grad).all()
    assert logits.grad[2].abs() < 1e-3


@pytest.mark.parametrize("family", ["vae", "rvae"])
def test_bounds_are_below_the_exact_log_likelihood_and_iwae_tightens(family) -> None:
    # Decoder free of z (exact log p(x) from the reference in vae_closed_form) and q != prior:
    # ELBO = log p(x) - KL < L_16 < log p(x) on average over images (E[L_k] rises with k).
    mu, logvar = torch.tensor([0.9, -0.4, 0.5]), torch.tensor([-0.6, 0.2, -0.1])
    model, logits = build_closed_form(family, mu, logvar)
    x = torch.round(torch.rand(200, 1, 28, 28, generator=torch.Generator().manual_seed(3)) * 255)
    x = x / 255
    exact = log_px(logits, x).mean().item()
    gen = torch.Generator().manual_seed(4)
    elbo = model.elbo(x, gen).double().mean().item()
    lw = model.log_weights(x, 16, gen).double()
    iwae = (torch.logsumexp(lw, 0) - math.log(16)).mean().item()
    assert elbo < iwae < exact
    assert exact < 0
