"""ELBO / IWAE bound on a linear-Gaussian VAE with log p(x) in closed form; output drift."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn
from vae_closed_form import (
    VAES,
    bce_log_lik,
    build_closed_form,
    gaussian_kl,
    log_px,
    simulate_iwae_gap,
)

from bench.metrics.likelihood import (
    elbo_nats,
    iwae_bound,
    nll_iwae_nats,
    output_drift,
    recon_bce_nats,
    reconstruct,
)

LOG_2PI = math.log(2 * math.pi)


def _log_normal(x: torch.Tensor, mean: torch.Tensor, sd: torch.Tensor) -> torch.Tensor:
    return (-0.5 * ((x - mean) / sd) ** 2 - torch.log(sd) - 0.5 * LOG_2PI).sum(-1)


class LinearGaussianVAE(nn.Module):
    """p(z) = N(0, I), p(x|z) = N(W z + b, s^2 I); q(z|x) = N(shrink * m(x), (inflate * sd_post)^2).

    W has orthogonal columns, so the exact posterior N(M (x - b), S) has a diagonal S and
    shrink = inflate = 1 makes q exact. log p(x) = log N(x; b, W W^T + s^2 I)."""

    is_vae = True

    def __init__(
        self, d_x: int = 6, d_z: int = 3, s: float = 0.5, shrink: float = 1.0, inflate: float = 1.0
    ):
        super().__init__()
        gen = torch.Generator().manual_seed(0)
        q, _ = torch.linalg.qr(torch.randn(d_x, d_x, generator=gen, dtype=torch.float64))
        self.W = nn.Parameter(q[:, :d_z] * torch.tensor([2.0, 1.0, 0.5], dtype=torch.float64)[:d_z])
        self.b = nn.Parameter(torch.randn(d_x, generator=gen, dtype=torch.float64))
        self.s, self.shrink, self.inflate = s, shrink, inflate
        self.post_var = 1.0 / (1.0 + (self.W.detach() ** 2).sum(0) / s**2)  # diag of S, (d_z,)

    def _q(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean = (x - self.b) @ self.W * self.post_var / self.s**2
        return self.shrink * mean, self.inflate * self.post_var.sqrt().expand_as(mean)

    def _log_w(
        self, x: torch.Tensor, z: torch.Tensor, mu: torch.Tensor, sd: torch.Tensor
    ) -> torch.Tensor:
        log_px_z = _log_normal(x, z @ self.W.T + self.b, torch.tensor(self.s, dtype=torch.float64))
        return (
            log_px_z
            + _log_normal(z, torch.zeros_like(z), torch.ones_like(z))
            - _log_normal(z, mu, sd)
        )

    def log_weights(self, x: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
        mu, sd = self._q(x)
        z = mu + sd * torch.randn(
            k, *mu.shape, generator=generator, dtype=torch.float64
        )  # (k, B, d_z)
        return self._log_w(x, z, mu, sd)  # (k, B)

    def elbo(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        mu, sd = self._q(x)
        z = mu + sd * torch.randn(mu.shape, generator=generator, dtype=torch.float64)
        return self._log_w(x, z, mu, sd)  # single-sample Monte Carlo ELBO, (B,)

    def log_px(self, x: torch.Tensor) -> torch.Tensor:
        cov = self.W @ self.W.T + self.s**2 * torch.eye(len(self.b), dtype=torch.float64)
        return torch.distributions.MultivariateNormal(self.b, cov).log_prob(x)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, sd = self._q(x)
        return mu, 2 * sd.log()

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return z @ self.W.T + self.b

    def data(self, n: int, seed: int = 12345) -> torch.Tensor:  # not a seed the tests sample z with
        gen = torch.Generator().manual_seed(seed)
        z = torch.randn(n, self.W.shape[1], generator=gen, dtype=torch.float64)
        return (
            z @ self.W.T
            + self.b
            + self.s * torch.randn(n, len(self.b), generator=gen, dtype=torch.float64)
        )


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_iwae_k1_equals_elbo_on_the_same_samples() -> None:
    model = LinearGaussianVAE(shrink=0.7, inflate=1.6)
    x = model.data(300)
    for batch_size in (64, 1000):
        elbo = elbo_nats(model, x, _gen(3), batch_size=batch_size)
        assert iwae_bound(model, x, 1, _gen(3), batch_size=batch_size) == pytest.approx(
            elbo, rel=1e-12
        )


def test_exact_posterior_gives_log_px_for_every_k() -> None:
    # With q(z|x) = p(z|x) every importance weight equals p(x): L_k = log p(x) exactly.
    model = LinearGaussianVAE()
    x = model.data(200)
    log_px = model.log_px(x).mean().item()
    for k in (1, 5, 50):
        assert iwae_bound(model, x, k, _gen(k)) == pytest.approx(log_px, rel=1e-10)


def test_iwae_increases_with_k_towards_log_px() -> None:
    model = LinearGaussianVAE(shrink=0.7, inflate=1.6)
    x = model.data(2000)
    log_px = model.log_px(x).mean().item()
    bounds = [iwae_bound(model, x, k, _gen(k)) for k in (1, 4, 16, 64)]
    assert all(lo < hi for lo, hi in zip(bounds, bounds[1:], strict=False)), bounds
    assert bounds[-1] <= log_px
    assert log_px - bounds[-1] < 0.25 * (log_px - bounds[0])  # most of the gap is closed by k = 64
    assert nll_iwae_nats(model, x, 4, _gen(4)) == -bounds[1]


def test_iwae_rejects_bad_k_and_shapes() -> None:
    model = LinearGaussianVAE()
    with pytest.raises(ValueError, match="k must be"):
        iwae_bound(model, model.data(4), 0, _gen())
    broken = LinearGaussianVAE()
    broken.log_weights = lambda x, k, g: torch.zeros(k + 1, x.shape[0])  # type: ignore[method-assign]
    with pytest.raises(ValueError, match=r"\(k, B\)"):
        iwae_bound(broken, broken.data(4), 2, _gen())


def test_output_drift_on_samples_is_the_squared_offset() -> None:
    baseline = nn.Linear(5, 7)
    variant = copy.deepcopy(baseline)
    with torch.no_grad():
        variant.bias += 0.1  # every output moves by exactly 0.1
    z = torch.randn(300, 5)
    assert output_drift(baseline, baseline, z=z) == 0.0
    assert output_drift(variant, baseline, z=z, batch_size=64) == pytest.approx(0.01, rel=1e-5)


def test_output_drift_on_reconstructions() -> None:
    baseline = LinearGaussianVAE()
    variant = copy.deepcopy(baseline)
    with torch.no_grad():
        variant.W.mul_(0.9)
    x = baseline.data(100)
    expected = (reconstruct(variant, x) - reconstruct(baseline, x)).pow(2).mean().item()
    assert expected > 0
    assert output_drift(variant, baseline, x=x, batch_size=32) == pytest.approx(expected, rel=1e-10)
    with pytest.raises(ValueError, match="exactly one"):
        output_drift(variant, baseline, z=x, x=x)


@pytest.mark.parametrize("family", VAES)
def test_registered_vae_with_prior_posterior_gives_log_px_for_every_k(family: str) -> None:
    # q(z|x) = p(z), p(x|z) = p(x) (tests/vae_closed_form.py): every bound equals log p(x).
    model, logits = build_closed_form(family, torch.zeros(6), torch.zeros(6))
    x = torch.rand(7, 1, 28, 28, generator=_gen(1))
    expected = log_px(logits, x).mean().item()  # about -4,000 nats; float32 sums: ~5e-4
    bce = -bce_log_lik(logits, x).mean().item()
    assert recon_bce_nats(model, x, batch_size=3) == pytest.approx(bce, rel=1e-6, abs=1e-4)
    assert elbo_nats(model, x, _gen(2), batch_size=3) == pytest.approx(expected, rel=1e-6, abs=1e-4)
    for k in (1, 4, 16):
        bound = iwae_bound(model, x, k, _gen(k), batch_size=32)
        assert bound == pytest.approx(expected, rel=1e-6, abs=1e-4)
    assert nll_iwae_nats(model, x, 4, _gen(4)) == pytest.approx(-expected, rel=1e-6, abs=1e-4)


@pytest.mark.parametrize("family", VAES)
def test_registered_vae_bounds_match_closed_form_kl_and_reference_iwae(family: str) -> None:
    # q = N(m, diag(s^2)) for every x, decoder free of z: ELBO = log p(x) - KL exactly, and
    # L_k - log p(x) = log mean_i p(z_i) / q(z_i) has the law simulate_iwae_gap samples with
    # numpy. Averaged over n images, L_k must sit within 5 standard errors of that reference mean.
    mu, logvar = torch.tensor([0.8, -0.6, 0.4, 1.0]), torch.tensor([-0.5, 0.3, 0.0, -0.2])
    model, logits = build_closed_form(family, mu, logvar)
    n = 2000
    x = torch.rand(n, 1, 28, 28, generator=_gen(1))
    expected, kl = log_px(logits, x).mean().item(), gaussian_kl(mu, logvar)
    assert elbo_nats(model, x, _gen(2)) == pytest.approx(expected - kl, rel=1e-6, abs=1e-4)
    bce = -bce_log_lik(logits, x).mean().item()
    assert recon_bce_nats(model, x) == pytest.approx(bce, rel=1e-6, abs=1e-4)
    gaps = []
    for k in (1, 4, 16):
        ref_mean, ref_sd = simulate_iwae_gap(mu, logvar, k)
        gap = iwae_bound(model, x, k, _gen(k)) - expected
        assert abs(gap - ref_mean) < 5 * ref_sd * math.sqrt(1 / n + 1 / 20_000), (k, gap, ref_mean)
        gaps.append(gap)
    # E[L_1] = -KL; the bound tightens with k and stays below log p(x) (here by > 10 SE each).
    assert gaps[0] == pytest.approx(-kl, abs=0.2) and gaps[0] < gaps[1] < gaps[2] < 0
