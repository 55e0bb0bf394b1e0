"""QualityEvaluator: batch-independent features, common random numbers, keys per family, NaNs."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bench.metrics.evaluate import EvalSettings, QualityEvaluator, make_feature_fn
from bench.schema import QUALITY_COLUMNS

SHAPE = (1, 8, 8)
SAMPLE_KEYS = {
    "fid_proxy",
    "kid_proxy",
    "kid_proxy_std",
    "precision",
    "recall",
    "density",
    "coverage",
}
SETTINGS = EvalSettings(
    n_samples=64, kid_subsets=5, kid_subset_size=32, iwae_k=4, n_recon=40, seed=0
)


class FeatureCNN(nn.Module):
    """Conv + BatchNorm feature net: batch independence only holds in eval mode."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.AvgPool2d(2)
        )
        self.fc = nn.Linear(4 * 4 * 4, 6)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x).flatten(1))


class TinyGAN(nn.Module):
    family, is_vae, latent_dim = "gan", False, 4

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Linear(4, 64)

    def latent(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return torch.randn(n, self.latent_dim, generator=generator)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(z)).view(-1, *SHAPE)


class TinyVAE(TinyGAN):
    """Gaussian encoder, Bernoulli decoder: log_weights, elbo, recon_bce as genmodels' contract."""

    family, is_vae = "vae", True

    def __init__(self) -> None:
        super().__init__()
        self.enc = nn.Linear(64, 8)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.enc(x.flatten(1)).chunk(2, dim=1)
        return mu, logvar.clamp(-4, 2)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(*z.shape[:-1], *SHAPE)

    def _log_px_z(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        logits = self.decode(z)
        return (
            -F.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none")
            .flatten(-3)
            .sum(-1)
        )

    def log_weights(self, x: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
        mu, logvar = self.encode(x)
        sd = (0.5 * logvar).exp()
        eps = torch.randn(k, *mu.shape, generator=generator)
        z = mu + sd * eps
        log_q = (-0.5 * eps**2 - sd.log()).sum(-1)
        log_p = (-0.5 * z**2).sum(-1)
        return self._log_px_z(x, z) + log_p - log_q  # (k, B); the 2*pi terms cancel

    def elbo(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        mu, logvar = self.encode(x)
        z = mu + (0.5 * logvar).exp() * torch.randn(mu.shape, generator=generator)
        kl = -0.5 * (1 + logvar - mu**2 - logvar.exp()).sum(-1)
        return self._log_px_z(x, z) - kl

    def recon_bce(self, x: torch.Tensor) -> torch.Tensor:
        return -self._log_px_z(x, self.encode(x)[0])


@pytest.fixture(scope="module")
def evaluator() -> QualityEvaluator:
    torch.manual_seed(0)
    net = FeatureCNN().eval()
    test_x = torch.rand(80, *SHAPE, generator=torch.Generator().manual_seed(1))
    return QualityEvaluator(make_feature_fn(net), test_x, SETTINGS)


def test_features_are_batch_size_independent() -> None:
    net = FeatureCNN()
    net.train()  # make_feature_fn must switch to eval mode itself
    x = torch.rand(50, *SHAPE)
    small, large = make_feature_fn(net, batch_size=7)(x), make_feature_fn(net, batch_size=500)(x)
    assert small.dtype == np.float64 and small.shape == (50, 6)
    np.testing.assert_allclose(small, large, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "model_cls, extra",
    [(TinyGAN, set()), (TinyVAE, {"recon_bce_nats", "elbo_nats", "nll_iwae_nats"})],
)
def test_keys_per_family_and_drift(
    evaluator: QualityEvaluator, model_cls: type, extra: set[str]
) -> None:
    model = model_cls()
    metrics = evaluator.evaluate(model)
    assert set(metrics) == SAMPLE_KEYS | extra and set(metrics) <= set(QUALITY_COLUMNS)
    with_baseline = evaluator.evaluate(model, baseline=copy.deepcopy(model))
    assert with_baseline["output_drift_mse"] == 0.0
    assert {k: v for k, v in with_baseline.items() if k != "output_drift_mse"} == metrics


def test_vae_likelihoods_are_ordered(evaluator: QualityEvaluator) -> None:
    metrics = evaluator.evaluate(TinyVAE())
    # IWAE with k = 4 is a tighter bound than the ELBO (checked loosely on 40 images).
    assert metrics["nll_iwae_nats"] <= -metrics["elbo_nats"] + 1.0
    assert metrics["recon_bce_nats"] > 0


def test_same_seed_same_metrics_and_common_random_numbers(evaluator: QualityEvaluator) -> None:
    model = TinyGAN()
    assert evaluator.evaluate(model) == evaluator.evaluate(model)
    np.testing.assert_array_equal(evaluator.latent(model), evaluator.latent(model))
    first = evaluator.samples(model, 16)
    assert first.shape == (16, *SHAPE) and first.dtype == np.float32
    np.testing.assert_array_equal(first, evaluator.samples(model, 16))
    other = QualityEvaluator(
        evaluator.feature_fn, evaluator.test_x, dataclasses.replace(SETTINGS, seed=1)
    )
    assert other.evaluate(model) != evaluator.evaluate(model)


def test_drift_sees_a_perturbed_variant(evaluator: QualityEvaluator) -> None:
    baseline = TinyGAN()
    variant = copy.deepcopy(baseline)
    with torch.no_grad():
        variant.net.weight.mul_(0.5)
    assert evaluator.evaluate(variant, baseline=baseline)["output_drift_mse"] > 0


def test_compressed_wrapper_is_unwrapped(evaluator: QualityEvaluator) -> None:
    model = TinyGAN()

    class Wrapper:  # stands in for compression.api.CompressedModel
        def __init__(self, inner: nn.Module) -> None:
            self.model = inner

    assert evaluator.evaluate(Wrapper(model), baseline=Wrapper(model)) == evaluator.evaluate(
        model, baseline=model
    )


def test_floor_is_cached_and_finite(evaluator: QualityEvaluator) -> None:
    floor = evaluator.floor()
    assert set(floor) == SAMPLE_KEYS and all(np.isfinite(v) for v in floor.values())
    floor["fid_proxy"] = -1.0  # a copy: callers cannot corrupt the cached floor
    assert evaluator.floor()["fid_proxy"] > 0


def test_non_finite_output_raises(evaluator: QualityEvaluator) -> None:
    model = TinyVAE()
    with torch.no_grad():
        model.enc.bias.fill_(float("nan"))
    with pytest.raises(FloatingPointError, match="recon_bce_nats|elbo_nats|nll_iwae_nats"):
        evaluator.evaluate(model)
    broken = TinyGAN()
    with torch.no_grad():
        broken.net.bias.fill_(float("nan"))
    with pytest.raises(FloatingPointError, match="non-finite"):
        evaluator.evaluate(broken)


@pytest.mark.parametrize(
    "field, value",
    [("n_samples", 0), ("kid_subsets", 0), ("iwae_k", 0), ("seed", -1), ("pr_k", 1.5)],
)
def test_settings_validation(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        EvalSettings(**{field: value})


def test_more_recon_images_than_test_set_is_an_error() -> None:
    with pytest.raises(ValueError, match="n_recon"):
        QualityEvaluator(
            lambda x: x.flatten(1).double().numpy(),
            torch.rand(10, *SHAPE),
            EvalSettings(n_recon=11),
        )
