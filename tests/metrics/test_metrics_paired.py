"""Paired deltas against the baseline: exactly 0 for the baseline, signed and significant for a
known shift, tighter than unpaired, per-image ELBO differences, and the baseline cache."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bench.metrics.evaluate import EvalSettings, QualityEvaluator
from bench.metrics.intervals import mean_interval
from bench.metrics.likelihood import elbo_per_image, output_drift
from bench.metrics.paired import weights_key
from bench.results.schema import DELTA_METRICS

SHAPE = (1, 4, 4)
SETTINGS = EvalSettings(
    n_samples=200, kid_subsets=5, kid_subset_size=100, iwae_k=4, n_recon=150, bootstrap=100
)
LIKELIHOODS = ("recon_bce_nats", "elbo_nats", "nll_iwae_nats", "elbo_bpd", "iwae_bpd")


class Gen(nn.Module):
    family, is_vae, latent_dim = "gan", False, 3

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Linear(3, 16)
        self.calls = 0

    def latent(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return torch.randn(n, self.latent_dim, generator=generator)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return torch.sigmoid(self.net(z)).view(-1, *SHAPE)


class Vae(Gen):
    """Gaussian encoder, Bernoulli decoder, as genmodels' VAE contract (elbo, log_weights)."""

    family, is_vae = "vae", True

    def __init__(self) -> None:
        super().__init__()
        self.enc = nn.Linear(16, 6)

    def _posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.enc(x.flatten(1)).chunk(2, dim=1)
        return mu, logvar.clamp(-4, 2)

    def _log_px_z(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        logits = self.net(z).view(*z.shape[:-1], *SHAPE)
        bce = F.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none")
        return -bce.flatten(-3).sum(-1)

    def elbo(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        mu, logvar = self._posterior(x)
        z = mu + (0.5 * logvar).exp() * torch.randn(mu.shape, generator=generator)
        return self._log_px_z(x, z) + 0.5 * (1 + logvar - mu**2 - logvar.exp()).sum(-1)

    def log_weights(self, x: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
        mu, logvar = self._posterior(x)
        sd = (0.5 * logvar).exp()
        eps = torch.randn(k, *mu.shape, generator=generator)
        z = mu + sd * eps
        return self._log_px_z(x, z) + (-0.5 * z**2 + 0.5 * eps**2 + sd.log()).sum(-1)

    def recon_bce(self, x: torch.Tensor) -> torch.Tensor:
        return -self._log_px_z(x, self._posterior(x)[0])


@pytest.fixture(scope="module")
def evaluator() -> QualityEvaluator:
    test_x = torch.rand(200, *SHAPE, generator=torch.Generator().manual_seed(1))
    return QualityEvaluator(lambda x: x.flatten(1).double().numpy(), test_x, SETTINGS)


def _perturbed(model: Gen, scale: float = 1.0, shift: float = 0.0) -> Gen:
    variant = copy.deepcopy(model)
    with torch.no_grad():
        variant.net.weight.mul_(scale)
        variant.net.bias.add_(shift)
    return variant


@pytest.mark.parametrize("cls", [Gen, Vae])
def test_baseline_against_itself_is_exactly_zero(evaluator: QualityEvaluator, cls: type) -> None:
    baseline = cls()
    row = evaluator.evaluate(copy.deepcopy(baseline), baseline=baseline)
    metrics = [m for m in DELTA_METRICS if m in row]
    assert len(metrics) == (11 if cls is Vae else 6)  # VAE: 3 likelihoods in nats, 2 in bpd
    for metric in metrics:
        assert row[f"{metric}_delta"] == 0.0
        assert (row[f"{metric}_delta_ci_low"], row[f"{metric}_delta_ci_high"]) == (0.0, 0.0)
        assert row[f"{metric}_delta_significant"] is False
    assert row["output_drift_mse"] == row["output_drift_mse_ci_high"] == 0.0


def test_a_known_shift_is_a_significant_change(evaluator: QualityEvaluator) -> None:
    baseline = Gen()
    row = evaluator.evaluate(_perturbed(baseline, shift=0.5), baseline=baseline)
    for metric in ("fid_proxy", "kid_proxy"):  # the variant moved away from the data
        low, delta, high = (row[f"{metric}_delta{s}"] for s in ("_ci_low", "", "_ci_high"))
        assert 0 < low <= delta <= high and row[f"{metric}_delta_significant"] is True
    assert row["output_drift_mse_ci_low"] > 0


def test_pairing_makes_the_delta_tighter_than_the_metric(evaluator: QualityEvaluator) -> None:
    # A 1% weight change: common latents and halves cancel most of the sampling noise.
    baseline = Gen()
    row = evaluator.evaluate(_perturbed(baseline, scale=1.01), baseline=baseline)
    for metric in ("fid_proxy", "precision", "coverage"):
        paired = row[f"{metric}_delta_ci_high"] - row[f"{metric}_delta_ci_low"]
        marginal = row[f"{metric}_ci_high"] - row[f"{metric}_ci_low"]
        assert paired < 0.5 * marginal, metric


def test_vae_delta_is_the_mean_of_per_image_differences(evaluator: QualityEvaluator) -> None:
    baseline = Vae()
    variant = _perturbed(baseline, scale=0.9)
    row = evaluator.evaluate(variant, baseline=baseline)
    x, seed = evaluator.test_x[: SETTINGS.n_recon], SETTINGS.seed
    diffs = (
        elbo_per_image(variant, x, torch.Generator().manual_seed(seed))
        - elbo_per_image(baseline, x, torch.Generator().manual_seed(seed))
    ).numpy()
    assert row["elbo_nats_delta"] == pytest.approx(diffs.mean(), rel=1e-9)
    assert (row["elbo_nats_delta_ci_low"], row["elbo_nats_delta_ci_high"]) == pytest.approx(
        mean_interval(diffs, SETTINGS.bootstrap, seed), rel=1e-9
    )
    # The same images and posterior draws: the paired interval is far narrower than either ELBO's.
    width = row["elbo_nats_delta_ci_high"] - row["elbo_nats_delta_ci_low"]
    assert width < 0.5 * (row["elbo_nats_ci_high"] - row["elbo_nats_ci_low"])
    for metric in LIKELIHOODS:
        assert row[f"{metric}_ci_low"] <= row[metric] <= row[f"{metric}_ci_high"]


def test_baseline_outputs_are_cached_by_weights(evaluator: QualityEvaluator) -> None:
    baseline = Gen()
    with torch.no_grad():
        baseline.net.bias.add_(0.123)  # weights no other test uses: a fresh cache entry
    twin = copy.deepcopy(baseline)
    assert weights_key(twin) == weights_key(baseline)
    assert weights_key(_perturbed(baseline, scale=1.0001)) != weights_key(baseline)
    first = evaluator.evaluate(_perturbed(baseline, scale=0.9), baseline=baseline)
    calls = twin.calls
    again = evaluator.evaluate(_perturbed(baseline, scale=0.9), baseline=twin)
    assert twin.calls == calls  # an unpickled copy of the same baseline is not re-run
    assert again == first


def test_bootstrap_setting_is_validated() -> None:
    with pytest.raises(ValueError, match="bootstrap"):
        EvalSettings(bootstrap=5)


def test_drift_equals_output_drift_of_the_same_latents(evaluator: QualityEvaluator) -> None:
    baseline = Gen()
    variant = _perturbed(baseline, scale=0.8, shift=0.1)
    row = evaluator.evaluate(variant, baseline=baseline)
    z = evaluator.latent(baseline)
    assert row["output_drift_mse"] == pytest.approx(output_drift(variant, baseline, z=z), rel=1e-9)
    low, high = row["output_drift_mse_ci_low"], row["output_drift_mse_ci_high"]
    assert low < row["output_drift_mse"] < high


def test_a_collapsed_generator_still_gets_finite_intervals(evaluator: QualityEvaluator) -> None:
    # One image for every z (zero weights): zero covariance, zero k-NN radii, ties everywhere.
    baseline = Gen()
    collapsed = _perturbed(baseline, scale=0.0)
    row = evaluator.evaluate(collapsed, baseline=baseline)
    assert row["recall"] == 0.0 and row["recall_ci_low"] == row["recall_ci_high"] == 0.0
    assert row["fid_proxy_ci_low"] <= row["fid_proxy"] <= row["fid_proxy_ci_high"]
    assert row["fid_proxy_delta_significant"] is True and row["fid_proxy_delta"] > 0
