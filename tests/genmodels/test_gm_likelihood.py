"""The VAEs' discretised logit-logistic: a pmf over 256 grey levels, its closed forms, bpd."""

from __future__ import annotations

import math

import pytest
import torch
from vae_closed_form import build_closed_form, log_px

from genmodels.models.likelihood import (
    GREY_LEVELS,
    bin_logit_edges,
    discretised_logit_logistic_log_prob,
    grey_levels,
    nats_to_bpd,
    pixel_log_lik,
)

LEVELS = torch.arange(GREY_LEVELS, dtype=torch.float64)  # k = 0..255
X = LEVELS / 255  # the 8-bit images' pixel values


def _all_levels(logits: torch.Tensor) -> torch.Tensor:
    """(256, L) log P(k | l) for every level k (rows) and logit l (columns)."""
    x = X[:, None].to(logits.dtype).expand(-1, logits.numel())
    return discretised_logit_logistic_log_prob(logits.expand(GREY_LEVELS, -1), x)


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-12), (torch.float32, 1e-4)])
def test_masses_sum_to_one_over_the_grey_levels_for_every_logit(dtype, tol) -> None:
    # The bins [k/256, (k+1)/256) tile [0, 1]: a pmf for any logit, tiny, zero or huge.
    logits = torch.tensor([-1e3, -60.0, -5.0, -0.3, -4e-3, -1e-7, 0.0, 1e-7, 0.02, 3.0, 40.0, 1e3],
                          dtype=dtype)
    log_p = _all_levels(logits)
    assert torch.isfinite(log_p).all() and (log_p <= 0).all()
    torch.testing.assert_close(torch.logsumexp(log_p, 0), torch.zeros_like(logits),
                               atol=tol, rtol=0)


def test_masses_equal_the_logistic_cdf_in_logit_space() -> None:
    # Reference: torch.distributions' Logistic as a TransformedDistribution (Uniform -> logit ->
    # affine), its CDF at the logit bin edges; moderate logits, where its plain form is exact.
    logits = torch.tensor([-4.0, -1.0, 0.3, 2.0], dtype=torch.float64)
    base = torch.distributions.Uniform(torch.zeros(4, dtype=torch.float64), 1.0)
    logistic = torch.distributions.TransformedDistribution(
        base, [torch.distributions.SigmoidTransform().inv,
               torch.distributions.AffineTransform(loc=logits, scale=1.0)])
    lower, upper = bin_logit_edges()
    mass = logistic.cdf(upper[:, None].clamp(-40, 40)) - logistic.cdf(lower[:, None].clamp(-40, 40))
    torch.testing.assert_close(_all_levels(logits), mass.log(), rtol=1e-9, atol=1e-9)


def test_zero_logits_give_each_level_its_bin_width() -> None:
    # l = 0: u = sigmoid(v) is uniform on (0, 1), so P(k) = the width of k's bin in [0, 1]:
    # 1/255 inside, 1/510 for black and white. A black image costs 784 log 510 nats.
    masses = _all_levels(torch.zeros(1, dtype=torch.float64))[:, 0].exp()
    expected = torch.full((256,), 1 / 255, dtype=torch.float64)
    expected[0] = expected[-1] = 1 / 510
    torch.testing.assert_close(masses, expected, rtol=1e-12, atol=0)
    black = torch.zeros(2, 1, 28, 28)
    torch.testing.assert_close(pixel_log_lik(torch.zeros_like(black), black),
                               torch.full((2,), -784 * math.log(510)))
    assert nats_to_bpd(-784 * math.log(510), 784) == pytest.approx(math.log2(510))


def test_confident_logits_put_almost_all_mass_on_black_and_white() -> None:
    # Edge bins hold the tails: P(0 | l) = sigmoid(logit(1/510) - l), P(255 | l) = its mirror.
    log_p = _all_levels(torch.tensor([-12.0, 12.0], dtype=torch.float64))
    expected = torch.sigmoid(torch.logit(torch.tensor(1 / 510, dtype=torch.float64)) + 12)
    assert log_p[0, 0].exp().item() == pytest.approx(expected.item(), rel=1e-12)
    assert log_p[0, 0].exp() > 0.99 and log_p[-1, 1].exp() > 0.99


def test_bpd_is_minus_nats_over_dims_ln2_exactly() -> None:
    assert nats_to_bpd(-784 * math.log(2), 784) == 1.0
    assert nats_to_bpd(-100.0, 784) == 100.0 / (784 * math.log(2))
    with pytest.raises(ValueError, match="dims"):
        nats_to_bpd(-1.0, 0)


def test_grey_levels_round_to_the_nearest_of_256() -> None:
    x = torch.tensor([0.0, 0.4 / 255, 0.6 / 255, 0.5, 1.0, 1.2, -0.1])
    assert grey_levels(x).tolist() == [0, 0, 1, 128, 255, 255, 0]


def test_gradient_is_finite_everywhere_and_zero_at_the_symmetric_point() -> None:
    # d/dl log P(k|l) is finite at 0 and at extremes (no NaN from the infinite edges); summed
    # over all 256 levels, which are symmetric about 1/2, it is 0 at l = 0.
    logits = torch.tensor([-1e4, -80.0, 0.0, 1e-6, 80.0, 1e4], requires_grad=True)
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
