"""QualityEvaluator: batch-independent features, common random numbers, keys per family, NaNs."""

from __future__ import annotations

import copy
import dataclasses
import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from vae_closed_form import bce_log_lik, simulate_iwae_gap

from bench.metrics.classes import class_statistics
from bench.metrics.evaluate import EvalSettings, QualityEvaluator, make_feature_fn
from bench.results.schema import CI_SUFFIXES, CLASS_COLUMNS, INTERVAL_COLUMNS, QUALITY_COLUMNS

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
    n_samples=64, kid_subsets=5, kid_subset_size=32, iwae_k=4, n_recon=40, bootstrap=50, seed=0
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
    floor_x = torch.rand(100, *SHAPE, generator=torch.Generator().manual_seed(2))
    return QualityEvaluator(make_feature_fn(net), test_x, SETTINGS, floor_x=floor_x)


def test_features_are_batch_size_independent() -> None:
    net = FeatureCNN()
    net.train()  # make_feature_fn must switch to eval mode itself
    x = torch.rand(50, *SHAPE)
    small, large = make_feature_fn(net, batch_size=7)(x), make_feature_fn(net, batch_size=500)(x)
    assert small.dtype == np.float64 and small.shape == (50, 6)
    np.testing.assert_allclose(small, large, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "model_cls, extra",
    [
        (TinyGAN, set()),
        (TinyVAE, {"recon_bce_nats", "elbo_nats", "nll_iwae_nats", "elbo_bpd", "iwae_bpd"}),
    ],
)
def test_keys_per_family_and_drift(
    evaluator: QualityEvaluator, model_cls: type, extra: set[str]
) -> None:
    model = model_cls()
    metrics = evaluator.evaluate(model)
    values = SAMPLE_KEYS | extra
    intervals = {m + s for m in values - {"kid_proxy_std"} for s in CI_SUFFIXES}
    assert set(metrics) == values | intervals and set(metrics) <= set(QUALITY_COLUMNS) | set(
        INTERVAL_COLUMNS
    )
    with_baseline = evaluator.evaluate(model, baseline=copy.deepcopy(model))
    assert with_baseline["output_drift_mse"] == 0.0
    drift = {"output_drift_mse", "output_drift_mse_ci_low", "output_drift_mse_ci_high"}
    deltas = {k: v for k, v in with_baseline.items() if "_delta" in k}
    assert set(deltas) == {c for c in INTERVAL_COLUMNS if c.split("_delta")[0] in values}
    assert {k: v for k, v in with_baseline.items() if k not in drift | set(deltas)} == metrics


def _closed_form_vae(mu: float) -> tuple[TinyVAE, torch.Tensor]:
    """TinyVAE with p(x|z) = Bernoulli(sigmoid(logits)) free of z and q(z|x) = N(mu 1, I)."""
    model, logits = TinyVAE(), torch.linspace(-2.0, 2.0, 64)
    with torch.no_grad():
        model.net.weight.zero_()
        model.net.bias.copy_(logits)
        model.enc.weight.zero_()
        model.enc.bias.copy_(torch.tensor([mu] * 4 + [0.0] * 4))
    return model, logits.double().view(SHAPE)


def test_vae_likelihoods_equal_log_px_when_q_is_the_prior(evaluator: QualityEvaluator) -> None:
    # q = p(z) and a decoder free of z: every importance weight is p(x), so ELBO = L_k = log p(x)
    # and the reconstruction BCE is -log p(x), averaged over test_x[:n_recon] (not all 80).
    model, logits = _closed_form_vae(0.0)
    metrics = evaluator.evaluate(model)
    expected = bce_log_lik(logits, evaluator.test_x[: SETTINGS.n_recon]).mean().item()
    assert metrics["elbo_nats"] == pytest.approx(expected, rel=1e-6)
    assert metrics["nll_iwae_nats"] == pytest.approx(-expected, rel=1e-6)
    assert metrics["recon_bce_nats"] == pytest.approx(-expected, rel=1e-6)
    # Bits per dimension: exactly -nats / (D ln 2), D = 64 pixels, for each bound.
    assert metrics["elbo_bpd"] == -metrics["elbo_nats"] / (64 * math.log(2))
    assert metrics["iwae_bpd"] == metrics["nll_iwae_nats"] / (64 * math.log(2))
    # The interval maps with the unit (a negative scale swaps its ends).
    bits = 64 * math.log(2)
    assert metrics["elbo_bpd_ci_low"] == pytest.approx(-metrics["elbo_nats_ci_high"] / bits)
    assert metrics["elbo_bpd_ci_high"] == pytest.approx(-metrics["elbo_nats_ci_low"] / bits)


def test_vae_iwae_estimate_matches_reference_between_elbo_and_log_px() -> None:
    # q = N(1, I) over 4 dims: KL = 2 nats, so ELBO = log p(x) - 2 exactly. -nll_iwae_nats is the
    # mean of L_4 over n_recon images: within 5 standard errors of E[L_4] by numpy Monte Carlo,
    # which lies strictly between the ELBO and log p(x) (E[L_1] = ELBO <= E[L_4] <= log p(x)).
    n = 2000
    test_x = torch.rand(n, *SHAPE, generator=torch.Generator().manual_seed(2))
    settings = dataclasses.replace(SETTINGS, n_recon=n)
    metrics = QualityEvaluator(make_feature_fn(FeatureCNN()), test_x, settings).evaluate(
        _closed_form_vae(1.0)[0]
    )
    expected = bce_log_lik(_closed_form_vae(1.0)[1], test_x).mean().item()
    assert metrics["elbo_nats"] == pytest.approx(expected - 2.0, rel=1e-6)
    assert metrics["recon_bce_nats"] == pytest.approx(-expected, rel=1e-6)
    ref_mean, ref_sd = simulate_iwae_gap(torch.ones(4), torch.zeros(4), settings.iwae_k)
    tolerance = 5 * ref_sd * math.sqrt(1 / n + 1 / 20_000)
    assert -2.0 + 5 * tolerance < ref_mean < -5 * tolerance  # the check can tell k = 1 from k = 4
    assert -metrics["nll_iwae_nats"] - expected == pytest.approx(ref_mean, abs=tolerance)


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
    assert set(evaluator.floor_spread()) == SAMPLE_KEYS
    assert "64 real images" in evaluator.floor_method()
    floor["fid_proxy"] = -1.0  # a copy: callers cannot corrupt the cached floor
    assert evaluator.floor()["fid_proxy"] > 0
    no_pool = QualityEvaluator(evaluator.feature_fn, evaluator.test_x, SETTINGS)
    with pytest.raises(ValueError, match="floor_x"):
        no_pool.floor()


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


class ClassifierCNN(FeatureCNN):
    """FeatureCNN as a 6-class classifier: forward gives the logits (here its features)."""

    n_classes = 6

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


def _classifier_evaluator() -> tuple[QualityEvaluator, ClassifierCNN]:
    torch.manual_seed(0)
    net = ClassifierCNN().eval()
    test_x = torch.rand(80, *SHAPE, generator=torch.Generator().manual_seed(1))
    return QualityEvaluator(make_feature_fn(net), test_x, SETTINGS), net


def test_a_model_drawing_one_class_has_one_class_present_and_zero_entropy() -> None:
    # Zero weights: G(z) = sigmoid(bias) for every z, so all samples fall in one class.
    evaluator, _ = _classifier_evaluator()
    model = TinyGAN()
    with torch.no_grad():
        model.net.weight.zero_()
    metrics = evaluator.evaluate(model)
    assert set(CLASS_COLUMNS) <= set(metrics)
    assert metrics["classes_present"] == 1 and metrics["class_entropy_norm"] == 0.0
    fractions = json.loads(metrics["class_fractions"])
    assert len(fractions) == 6 and sorted(fractions) == [0.0] * 5 + [1.0]


def test_class_columns_agree_with_class_statistics_of_the_samples_logits() -> None:
    evaluator, net = _classifier_evaluator()
    model = TinyGAN()
    metrics = evaluator.evaluate(model, baseline=copy.deepcopy(model))
    with torch.no_grad():
        logits = net(model(evaluator.latent(model))).double().numpy()
    stats = class_statistics(logits)
    assert json.loads(metrics["class_fractions"]) == stats["class_fractions"]
    assert metrics["classes_present"] == stats["classes_present"] >= 2
    assert metrics["class_entropy_norm"] == pytest.approx(stats["class_entropy_norm"], abs=1e-12)
    assert metrics["mean_confidence"] == pytest.approx(stats["mean_confidence"], rel=1e-9)
