"""Quality floors of the DEFAULT_TRAIN reference models on mnist5k (slow: real training budgets)."""

from __future__ import annotations

import pytest
import torch

from bench.metrics.quality import fid_proxy
from genmodels.data import load_dataset
from genmodels.features import train_feature_net
from genmodels.models import build_model
from genmodels.models.common import bernoulli_log_lik
from genmodels.train import DEFAULT_TRAIN, train_model

pytestmark = pytest.mark.slow
N_SAMPLES = 1000


@pytest.fixture(scope="module")
def mnist5k():
    return load_dataset("mnist5k")


@pytest.fixture(scope="module")
def features(mnist5k):
    net, _ = train_feature_net(mnist5k, progress=False)
    return lambda x: net.features(x).double().numpy()


@torch.no_grad()
def test_trained_gan_fid_proxy_is_under_a_quarter_of_untrained(mnist5k, features) -> None:
    real = features(mnist5k.test_x)
    trained = train_model("gan", mnist5k, DEFAULT_TRAIN["gan"], seed=0, progress=False).model
    torch.manual_seed(0)
    untrained = build_model("gan", latent_dim=DEFAULT_TRAIN["gan"].latent_dim).eval()
    fid = fid_proxy(features(trained.sample(N_SAMPLES, torch.Generator().manual_seed(1))), real)
    fid_untrained = fid_proxy(
        features(untrained.sample(N_SAMPLES, torch.Generator().manual_seed(1))), real
    )
    assert fid <= fid_untrained / 4, (fid, fid_untrained)


@pytest.mark.parametrize("family", ["vae", "rvae"])
@torch.no_grad()
def test_vae_test_elbo_beats_the_mean_image_model(family, mnist5k) -> None:
    # Baseline: a Bernoulli with the per-pixel train mean; log-likelihood = -BCE(x, mean) summed.
    mean = mnist5k.train_x.mean(0, keepdim=True).clamp(1e-6, 1 - 1e-6)
    mean_ll = bernoulli_log_lik(torch.logit(mean).expand_as(mnist5k.test_x), mnist5k.test_x).mean()
    model = train_model(family, mnist5k, DEFAULT_TRAIN[family], seed=0, progress=False).model
    elbo = model.elbo(mnist5k.test_x, torch.Generator().manual_seed(2)).mean()
    assert elbo > mean_ll, (float(elbo), float(mean_ll))
