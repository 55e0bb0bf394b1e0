"""Intervals: agreement with scipy and with the metrics on each half-sample, and coverage.

Coverage: over 200 independent draws of synthetic Gaussian features, the 95% interval must
contain the target in 90-99% of draws. The target of the sample metrics is their expectation at
the sample size, E[theta_n], estimated by Monte Carlo over further independent draws.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import bootstrap

from bench.metrics.intervals import bootstrap_interval, delta_columns, mean_interval
from bench.metrics.quality import (
    density_coverage,
    fid_proxy,
    mmd2_unbiased,
    precision_recall,
)
from bench.metrics.replicates import SAMPLE_METRICS, ReplicateMetrics, half_samples

N, D, REPLICATES, DRAWS, MC_DRAWS = 120, 12, 200, 200, 600
PR_K, DC_K = 3, 5


def _point(real: np.ndarray, fake: np.ndarray) -> dict[str, float]:
    precision, recall = precision_recall(real, fake, PR_K)
    density, coverage = density_coverage(real, fake, DC_K)
    return {
        "fid_proxy": fid_proxy(real, fake),
        "kid_proxy": mmd2_unbiased(real, fake),
        "precision": precision,
        "recall": recall,
        "density": density,
        "coverage": coverage,
    }


def _draw(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Real N(0, I); a baseline N(0, 1.2^2 I) shifted by 1 along one axis; and a variant that is
    the baseline's output on the same latents, shifted a further 0.5 (a paired pair)."""
    real, latent = rng.normal(size=(N, D)), rng.normal(size=(N, D))
    base = 1.2 * latent
    base[:, 0] += 1.0
    variant = base.copy()
    variant[:, 1] += 0.5
    return real, base, variant


@pytest.fixture(scope="module")
def coverage_runs() -> dict[str, object]:
    """Targets by Monte Carlo, then DRAWS intervals (variant and paired delta) per metric."""
    rng = np.random.default_rng(2024)
    mc = [_draw(rng) for _ in range(MC_DRAWS)]
    points = [(_point(r, b), _point(r, v)) for r, b, v in mc]
    target = {m: np.mean([p[1][m] for p in points]) for m in SAMPLE_METRICS}
    target_delta = {m: np.mean([p[1][m] - p[0][m] for p in points]) for m in SAMPLE_METRICS}
    real_masks, fake_masks = half_samples(N, REPLICATES, 1), half_samples(N, REPLICATES, 2)
    hits = {(m, how): 0 for m in SAMPLE_METRICS for how in ("centered", "delta")}
    for _ in range(DRAWS):
        real, base, variant = _draw(rng)
        reps = ReplicateMetrics(real, real_masks, PR_K, DC_K)
        rep_base, rep_var = reps.replicates(base, fake_masks), reps.replicates(variant, fake_masks)
        p_base, p_var = _point(real, base), _point(real, variant)
        for m in SAMPLE_METRICS:
            low, high = bootstrap_interval(p_var[m], rep_var[m])
            hits[(m, "centered")] += low <= target[m] <= high
            low, high = bootstrap_interval(p_var[m] - p_base[m], rep_var[m] - rep_base[m])
            hits[(m, "delta")] += low <= target_delta[m] <= high
    return {key: count / DRAWS for key, count in hits.items()}


@pytest.mark.parametrize("metric", SAMPLE_METRICS)
def test_centered_interval_covers_the_expectation_at_n(coverage_runs: dict, metric: str) -> None:
    assert 0.90 <= coverage_runs[(metric, "centered")] <= 0.99


@pytest.mark.parametrize("metric", SAMPLE_METRICS)
def test_paired_delta_interval_covers_the_expected_change(
    coverage_runs: dict, metric: str
) -> None:
    assert 0.90 <= coverage_runs[(metric, "delta")] <= 0.99


@pytest.mark.parametrize("method", ["percentile", "basic"])
def test_interval_rules_agree_with_scipy(method: str) -> None:
    values = np.random.default_rng(0).exponential(size=80)
    result = bootstrap(
        (values,), np.mean, n_resamples=999, method=method, rng=np.random.default_rng(1)
    )
    ours = bootstrap_interval(float(values.mean()), result.bootstrap_distribution, method)
    np.testing.assert_allclose(ours, tuple(result.confidence_interval), rtol=1e-12)


def test_centered_interval_of_a_shifted_replicate_law() -> None:
    # Replicates = estimate + 10 + noise: 'centered' removes the shift, 'basic' reflects it.
    reps = 5.0 + 10.0 + np.linspace(-1.0, 1.0, 1001)
    low, high = bootstrap_interval(5.0, reps, "centered")
    assert (low, high) == pytest.approx((5.0 - 0.95, 5.0 + 0.95))
    assert bootstrap_interval(5.0, reps, "basic") == pytest.approx((-5.95, -4.05))
    with pytest.raises(ValueError, match="method"):
        bootstrap_interval(5.0, reps, "bca")


def test_full_weights_give_the_metrics_of_quality_py() -> None:
    rng = np.random.default_rng(3)
    real, fake = rng.normal(size=(90, 5)), 1.1 * rng.normal(size=(70, 5)) + 0.3
    ones_real, ones_fake = np.ones((1, 90), np.int64), np.ones((1, 70), np.int64)
    reps = ReplicateMetrics(real, ones_real, PR_K, DC_K).replicates(fake, ones_fake)
    expected = _point(real, fake)
    for metric in SAMPLE_METRICS:
        assert reps[metric][0] == pytest.approx(expected[metric], rel=1e-5, abs=1e-12), metric


def test_each_replicate_is_the_metric_of_its_halves() -> None:
    rng = np.random.default_rng(4)
    real, fake = rng.normal(size=(60, 4)), rng.normal(size=(50, 4)) + 0.4
    real_masks, fake_masks = half_samples(60, 5, 7), half_samples(50, 5, 8)
    assert (real_masks.sum(1) == 30).all() and (fake_masks.sum(1) == 25).all()
    reps = ReplicateMetrics(real, real_masks, PR_K, DC_K).replicates(fake, fake_masks)
    for b in range(5):
        expected = _point(real[real_masks[b] == 1], fake[fake_masks[b] == 1])
        for metric in SAMPLE_METRICS:
            assert reps[metric][b] == pytest.approx(expected[metric], rel=1e-5), (metric, b)


def test_replicate_counts_must_pair_up() -> None:
    rng = np.random.default_rng(5)
    reps = ReplicateMetrics(rng.normal(size=(20, 3)), half_samples(20, 4, 0))
    with pytest.raises(ValueError, match="replicates"):
        reps.replicates(rng.normal(size=(20, 3)), half_samples(20, 3, 0))


def test_mean_interval_covers_a_skewed_mean() -> None:
    # Per-image values (an ELBO difference is skewed): exponential, true mean 2.
    rng = np.random.default_rng(6)
    hits = 0
    for seed in range(DRAWS):
        low, high = mean_interval(rng.exponential(2.0, size=150), 200, seed)
        hits += low <= 2.0 <= high
    assert 0.90 <= hits / DRAWS <= 0.99


def test_mean_interval_of_constant_values_and_bad_input() -> None:
    assert mean_interval(np.zeros(10), 100, 0) == (0.0, 0.0)
    with pytest.raises(ValueError, match="finite"):
        mean_interval(np.array([1.0, np.nan]), 100, 0)


def test_delta_columns_flag_intervals_that_exclude_zero() -> None:
    assert delta_columns("fid_proxy", 0.0, (0.0, 0.0))["fid_proxy_delta_significant"] is False
    assert delta_columns("fid_proxy", 1.0, (0.2, 1.8))["fid_proxy_delta_significant"] is True
    assert delta_columns("elbo_nats", -1.0, (-2.0, -0.1))["elbo_nats_delta_significant"] is True
    assert delta_columns("recall", 0.1, (-0.1, 0.3))["recall_delta_significant"] is False
