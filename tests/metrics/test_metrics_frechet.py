"""Frechet distance: closed forms, invariances, finite-sample bias, agreement with pytorch-fid."""

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


@pytest.mark.parametrize("rotate", [False, True])
def test_commuting_covariances_closed_form(rotate: bool) -> None:
    # S1 = Q diag(a) Q^T, S2 = Q diag(b) Q^T commute, so (S1 S2)^(1/2) = Q diag(sqrt(ab)) Q^T and
    # d^2 = ||mu1 - mu2||^2 + sum (sqrt(a) - sqrt(b))^2; with Q random the matrices are dense.
    rng = np.random.default_rng(2)
    mu1, mu2 = rng.normal(size=50), rng.normal(size=50)
    v1, v2 = rng.uniform(0.1, 3.0, size=50), rng.uniform(0.1, 3.0, size=50)
    q = np.linalg.qr(rng.normal(size=(50, 50)))[0] if rotate else np.eye(50)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(v1) - np.sqrt(v2)) ** 2)
    got = frechet_distance(mu1, q @ np.diag(v1) @ q.T, mu2, q @ np.diag(v2) @ q.T)
    assert got == pytest.approx(expected, rel=1e-9)


def test_non_commuting_2x2_by_hand() -> None:
    # For 2x2 M = S1 S2 with eigenvalues l1, l2 >= 0: Tr M^(1/2) = sqrt(l1) + sqrt(l2)
    # = sqrt(Tr M + 2 sqrt(det M)). S1 = [[2, 1], [1, 2]], S2 = diag(1, 4): Tr S1 S2 = 10,
    # det S1 det S2 = 12, so d^2 = (1 + 4) + (4 + 5) - 2 sqrt(10 + 4 sqrt 3) = 25 + 9 - 8.2288.
    s1, s2 = np.array([[2.0, 1.0], [1.0, 2.0]]), np.diag([1.0, 4.0])
    mu1, mu2 = np.array([1.0, 2.0]), np.array([0.0, 0.0])
    expected = 5.0 + 9.0 - 2.0 * np.sqrt(10.0 + 4.0 * np.sqrt(3.0))
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-12)


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


@pytest.mark.filterwarnings("ignore:The `disp` argument:DeprecationWarning")  # scipy >= 1.16
@pytest.mark.parametrize("n_a, n_b, d, seed", [(100, 120, 8, 9), (300, 200, 64, 10)])
def test_fid_proxy_agrees_with_pytorch_fid(n_a: int, n_b: int, d: int, seed: int) -> None:
    # The reference implementation end to end: np.mean / np.cov(rowvar=False) statistics as in
    # pytorch_fid.fid_score.calculate_activation_statistics, then its calculate_frechet_distance.
    fid_score = pytest.importorskip("pytorch_fid.fid_score")
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n_a, d)) @ rng.normal(size=(d, d))
    b = rng.normal(size=(n_b, d)) @ rng.normal(size=(d, d)) * 1.5 + 0.3
    stats = [(f.mean(axis=0), np.cov(f, rowvar=False)) for f in (a, b)]
    reference = fid_score.calculate_frechet_distance(*stats[0], *stats[1])
    assert reference > 1.0
    assert fid_proxy(a, b) == pytest.approx(reference, rel=1e-7)


def test_fid_proxy_of_shifted_and_scaled_features() -> None:
    # Features b = a + c: same covariance, d^2 = ||c||^2. Features b = k a (k > 0): N(k mu, k^2 S)
    # against N(mu, S) gives (k - 1)^2 (||mu||^2 + Tr S), since Tr (k^2 S^2)^(1/2) = k Tr S.
    rng = np.random.default_rng(11)
    a = rng.normal(size=(150, 12)) @ rng.normal(size=(12, 12)) + rng.normal(size=12)
    shift = rng.normal(size=12)
    assert fid_proxy(a, a + shift) == pytest.approx(shift @ shift, rel=1e-9)
    mean, trace = a.mean(axis=0), np.trace(np.cov(a, rowvar=False))
    assert fid_proxy(a, 2.5 * a) == pytest.approx(1.5**2 * (mean @ mean + trace), rel=1e-9)


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
