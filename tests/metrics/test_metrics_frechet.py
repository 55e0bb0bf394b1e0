"""Frechet distance: closed forms, invariances, finite-sample bias, agreement with sqrtm."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

from bench.metrics.quality import features_to_statistics, fid_proxy, frechet_distance


def _random_stats(rng: np.random.Generator, d: int, n: int = 400) -> tuple[np.ndarray, np.ndarray]:
    feats = rng.normal(size=(n, d)) @ rng.normal(size=(d, d)) + rng.normal(size=d)
    return features_to_statistics(feats)


def _sqrtm_route(mu1, s1, mu2, s2) -> float:
    # pytorch-fid's route: matrix square root of S1 S2 with scipy.
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def test_identical_statistics_give_zero() -> None:
    mu, sigma = _random_stats(np.random.default_rng(0), 32)
    assert abs(frechet_distance(mu, sigma, mu, sigma)) < 1e-8


def test_equal_covariance_is_squared_mean_gap_2048d() -> None:
    # pytorch-fid's own test: mu 0 vs 1 in 2048-d with identity covariances -> exactly 2048.
    eye = np.eye(2048)
    assert frechet_distance(np.zeros(2048), eye, np.ones(2048), eye) == pytest.approx(
        2048.0, abs=1e-9
    )


def test_equal_random_covariance_is_squared_mean_gap() -> None:
    rng = np.random.default_rng(1)
    mu, sigma = _random_stats(rng, 24)
    shift = rng.normal(size=24)
    assert frechet_distance(mu, sigma, mu + shift, sigma) == pytest.approx(shift @ shift, rel=1e-8)


def test_diagonal_closed_form() -> None:
    rng = np.random.default_rng(2)
    mu1, mu2 = rng.normal(size=50), rng.normal(size=50)
    v1, v2 = rng.uniform(0.1, 3.0, size=50), rng.uniform(0.1, 3.0, size=50)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(v1) - np.sqrt(v2)) ** 2)
    got = frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2))
    assert abs(got - expected) <= 1e-10 * expected


@pytest.mark.parametrize("seed", [3, 4])
def test_symmetric_rotation_shift_and_scale(seed: int) -> None:
    rng = np.random.default_rng(seed)
    d = 16
    mu1, s1 = _random_stats(rng, d)
    mu2, s2 = _random_stats(rng, d)
    base = frechet_distance(mu1, s1, mu2, s2)
    assert base > 1.0
    assert frechet_distance(mu2, s2, mu1, s1) == pytest.approx(base, rel=1e-9)
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    rotated = frechet_distance(q @ mu1, q @ s1 @ q.T, q @ mu2, q @ s2 @ q.T)
    assert rotated == pytest.approx(base, rel=1e-9)
    shift = rng.normal(size=d) * 10
    assert frechet_distance(mu1 + shift, s1, mu2 + shift, s2) == pytest.approx(base, rel=1e-9)
    c = 3.0
    scaled = frechet_distance(c * mu1, c**2 * s1, c * mu2, c**2 * s2)
    assert scaled / base == pytest.approx(9.0, rel=1e-9)


def test_finite_when_fewer_samples_than_dims() -> None:
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=(40, 128)), rng.normal(size=(40, 128)) + 0.5
    value = fid_proxy(a, b)
    assert np.isfinite(value) and value > 0
    assert abs(fid_proxy(a, a)) < 1e-4  # rank 39 of 128: round-off ~1e-8 of Tr S = 128


@pytest.mark.parametrize("seed", [6, 7])
def test_agrees_with_sqrtm_route_on_full_rank(seed: int) -> None:
    rng = np.random.default_rng(seed)
    stats = (*_random_stats(rng, 32), *_random_stats(rng, 32))
    assert frechet_distance(*stats) == pytest.approx(_sqrtm_route(*stats), rel=1e-5, abs=1e-5)


def test_finite_sample_mean_matches_d_d_plus_5_over_2n() -> None:
    # Two independent N-samples of N(0, I_d): E[FD] ~ d(d+5)/(2N) (bias of the plug-in estimate).
    rng = np.random.default_rng(8)
    d, n = 16, 500
    values = [fid_proxy(rng.normal(size=(n, d)), rng.normal(size=(n, d))) for _ in range(20)]
    assert np.mean(values) == pytest.approx(d * (d + 5) / (2 * n), rel=0.25)


def test_statistics_use_n_minus_1() -> None:
    mu, sigma = features_to_statistics(np.array([[0.0, 1.0], [2.0, 1.0]]))
    np.testing.assert_allclose(mu, [1.0, 1.0])
    np.testing.assert_allclose(sigma, [[2.0, 0.0], [0.0, 0.0]])  # N-1 = 1, not N = 2


def test_fid_proxy_is_frechet_of_statistics() -> None:
    rng = np.random.default_rng(9)
    a, b = rng.normal(size=(100, 8)), rng.normal(size=(120, 8)) * 2
    assert fid_proxy(a, b) == frechet_distance(
        *features_to_statistics(a), *features_to_statistics(b)
    )


@pytest.mark.parametrize(
    "args, match",
    [
        ((np.zeros(3), np.eye(3), np.zeros(4), np.eye(4)), "shapes"),
        ((np.zeros(3), np.eye(3), np.full(3, np.nan), np.eye(3)), "mu2"),
    ],
)
def test_bad_inputs_raise(args, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        frechet_distance(*args)


def test_bad_features_raise() -> None:
    with pytest.raises(ValueError, match="N >= 2"):
        features_to_statistics(np.zeros((1, 4)))
    with pytest.raises(ValueError, match="NaN"):
        fid_proxy(np.full((5, 2), np.inf), np.zeros((5, 2)))
