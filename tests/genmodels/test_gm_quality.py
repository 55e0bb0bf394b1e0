"""Quality floors of the DEFAULT_TRAIN reference models on mnist5k (slow: real training budgets).

Targets of issue 13, scored with the shipped feature net at 1,000 samples, seed 0."""

from __future__ import annotations

import pytest
import torch

from bench.metrics.classes import class_statistics
from bench.metrics.quality import fid_proxy
from genmodels.data import load_dataset
from genmodels.models import build_model
from genmodels.models.likelihood import GREY_LEVELS, grey_levels
from genmodels.train import DEFAULT_TRAIN, train_model
from genmodels.yardstick import load_feature_net

pytestmark = pytest.mark.slow
N_SAMPLES = 1000


def independent_pixels_log_lik(train_x: torch.Tensor, test_x: torch.Tensor) -> float:
    """Mean test log-likelihood (nats/image) of the best model with independent pixels on the
    same 256-level discretisation: each pixel's level histogram on the train split, smoothed
    with 1/2 per level (Krichevsky-Trofimov). -942 nats (1.73 bpd) on mnist5k with 0.1."""
    k_train, k_test = grey_levels(train_x).flatten(1), grey_levels(test_x).flatten(1)
    counts = torch.zeros(k_train.shape[1], GREY_LEVELS, dtype=torch.float64)
    counts.scatter_add_(1, k_train.T, torch.ones_like(k_train.T, dtype=torch.float64))
    log_p = torch.log((counts + 0.5) / (counts.sum(1, keepdim=True) + 0.5 * GREY_LEVELS))
    return log_p.gather(1, k_test.T).T.sum(1).mean().item()


@pytest.fixture(scope="module")
def mnist5k():
    return load_dataset("mnist5k")


@pytest.fixture(scope="module")
def net(mnist5k):
    return load_feature_net(mnist5k, progress=False)[0]


@pytest.fixture(scope="module")
def real(mnist5k, net):
    with torch.no_grad():
        return net.features(mnist5k.test_x).double().numpy()


@pytest.fixture(scope="module")
def trained(mnist5k):
    cache: dict[str, torch.nn.Module] = {}

    def get(family: str) -> torch.nn.Module:
        if family not in cache:
            cache[family] = train_model(
                family, mnist5k, DEFAULT_TRAIN[family], seed=0, progress=False
            ).model
        return cache[family]

    return get


def _samples(model: torch.nn.Module) -> torch.Tensor:
    return model.sample(N_SAMPLES, torch.Generator().manual_seed(1))


# Issue 13's GAN target is not reached yet (measured on the 2-core reference machine, seed 0:
# FID-proxy 63.0 > 60 and mean confidence 0.873 < 0.9; 10 digits present, 9 of them in 5-15%).
# A third generator layer (ConvT to 16 channels + BN + 3x3 conv, same recipe) measured worse:
# FID-proxy 66.5, confidence 0.864, 297 CPU s (H7, train-v3 code).
# Kept as the target, not loosened: xfail until a recipe reaches it (strict=False because float
# training differs between CPU types, so another machine may land either side of the line).
@pytest.mark.xfail(reason="issue 13 GAN target not reached: FID-proxy 63.0, confidence 0.873",
                   strict=False)
@torch.no_grad()
def test_gan_draws_every_digit_cleanly(trained, net, real) -> None:
    x = _samples(trained("gan"))
    fid = fid_proxy(net.features(x).double().numpy(), real)
    stats = class_statistics(net(x).double().numpy())
    balanced = sum(0.05 <= f <= 0.15 for f in stats["class_fractions"])
    assert fid <= 60, fid
    assert balanced >= 9, stats["class_fractions"]
    assert stats["mean_confidence"] >= 0.9, stats["mean_confidence"]


@torch.no_grad()
def test_trained_gan_fid_proxy_is_under_a_quarter_of_untrained(trained, net, real) -> None:
    torch.manual_seed(0)
    untrained = build_model("gan", latent_dim=DEFAULT_TRAIN["gan"].latent_dim).eval()
    fid = fid_proxy(net.features(_samples(trained("gan"))).double().numpy(), real)
    fid_untrained = fid_proxy(net.features(_samples(untrained)).double().numpy(), real)
    assert fid <= fid_untrained / 4, (fid, fid_untrained)


@pytest.mark.parametrize("family", ["vae", "rvae"])
@torch.no_grad()
def test_vae_samples_fid_proxy_at_most_150(family, trained, net, real) -> None:
    fid = fid_proxy(net.features(_samples(trained(family))).double().numpy(), real)
    assert fid <= 150, fid


@torch.no_grad()
def test_rvae_uses_its_latent(trained, mnist5k) -> None:
    model = trained("rvae")
    mu, logvar = model.encode(mnist5k.test_x)
    kl = (0.5 * (mu**2 + logvar.exp() - 1 - logvar).sum(1)).mean().item()
    assert kl >= 10, kl


@pytest.mark.parametrize("family", ["vae", "rvae"])
@torch.no_grad()
def test_vae_test_elbo_beats_independent_pixels(family, trained, mnist5k) -> None:
    # A lower bound of the VAE's log-likelihood above the exact one of the best independent-pixel
    # model, both on the 256 grey levels: the latent (and the RVAE's rows) buy real fit.
    baseline = independent_pixels_log_lik(mnist5k.train_x, mnist5k.test_x)
    elbo = trained(family).elbo(mnist5k.test_x, torch.Generator().manual_seed(2)).mean().item()
    assert elbo > baseline, (elbo, baseline)
