"""KID, precision/recall, density/coverage and the real-vs-real floor on synthetic Gaussians."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from bench.metrics.quality import (
    density_coverage,
    fid_proxy,
    kid,
    kth_neighbour_radii,
    mmd2_unbiased,
    precision_recall,
    real_floor,
)


def _loop_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    # Direct O(n^2) transcription of the unbiased estimator, as a reference.
    d = x.shape[1]
    k = lambda a, b: (float(a @ b) / d + 1.0) ** 3  # noqa: E731
    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i, j in itertools.permutations(range(m), 2)) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i, j in itertools.permutations(range(n), 2)) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2 * xy


def test_mmd2_matches_loop() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(15, 5)), rng.normal(size=(12, 5)) + 0.3
    assert mmd2_unbiased(x, y) == pytest.approx(_loop_mmd2(x, y), rel=1e-10)


def test_kid_with_one_full_subset_is_mmd2_of_the_sets() -> None:
    # A subset of size N without replacement is a permutation, and MMD^2 ignores order.
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(40, 6)), rng.normal(size=(40, 6)) + 0.2
    mean, std = kid(x, y, subsets=1, subset_size=1000)
    assert mean == pytest.approx(mmd2_unbiased(x, y), rel=1e-10) and std == 0.0


def test_kid_near_zero_same_distribution_positive_under_shift() -> None:
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(1000, 32)), rng.normal(size=(1000, 32))
    same, same_std = kid(a, b, subsets=20, subset_size=500)
    shifted, _ = kid(a, b + 0.5, subsets=20, subset_size=500)
    assert abs(same) < 0.01 and same_std < 0.01
    assert shifted > 0.5  # measured ~1.0 for a 0.5 shift in every coordinate (reference note B.2)


def test_kid_subset_size_is_capped_at_the_smaller_set() -> None:
    rng = np.random.default_rng(9)
    a, b = rng.normal(size=(30, 4)), rng.normal(size=(50, 4))
    mean, std = kid(a, b, subsets=4, subset_size=1000)  # subsets of 30 from each set
    assert np.isfinite(mean) and std > 0  # b's subsets differ, so the values do too


def test_kid_is_seeded_and_reproducible() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(300, 8)), rng.normal(size=(300, 8)) + 0.1
    assert kid(a, b, subsets=5, subset_size=100, seed=7) == kid(
        a, b, subsets=5, subset_size=100, seed=7
    )
    assert kid(a, b, subsets=5, subset_size=100, seed=7) != kid(
        a, b, subsets=5, subset_size=100, seed=8
    )


def test_kid_rejects_bad_arguments() -> None:
    a = np.zeros((10, 4))
    with pytest.raises(ValueError, match="feature dims"):
        kid(a, np.zeros((10, 3)))
    with pytest.raises(ValueError, match="subsets"):
        kid(a, a, subsets=0)


def test_kth_neighbour_excludes_self() -> None:
    points = np.array([[0.0], [1.0], [3.0], [6.0]])
    np.testing.assert_allclose(kth_neighbour_radii(points, 1), [1.0, 1.0, 2.0, 3.0])
    np.testing.assert_allclose(kth_neighbour_radii(points, 2), [3.0, 2.0, 3.0, 5.0])
    with pytest.raises(ValueError, match="k must be"):
        kth_neighbour_radii(points, 4)


def test_collapsed_generator_high_precision_low_recall() -> None:
    # torch-fidelity's convention: fake = 0.1 * N(0, I_16), real = 3 * N(0, I_16).
    rng = np.random.default_rng(4)
    real, fake = 3 * rng.normal(size=(1000, 16)), 0.1 * rng.normal(size=(1000, 16))
    precision, recall = precision_recall(real, fake, k=3)
    assert precision > 0.8 and recall < 0.3


def test_precision_recall_boundary_is_inclusive() -> None:
    # Fake point exactly on a real ball's boundary counts (<=); density/coverage use strict <.
    real, fake = np.array([[0.0], [1.0], [-10.0]]), np.array([[2.0], [2.0], [2.0]])
    precision, _ = precision_recall(real, fake, k=1)  # radius of real[1] = 1: 2.0 is on it
    assert precision == 1.0
    density, coverage = density_coverage(real, fake, k=1)
    assert density == 0.0 and coverage == 0.0


def test_density_coverage_identical_distributions() -> None:
    rng = np.random.default_rng(5)
    real, fake = rng.normal(size=(1500, 8)), rng.normal(size=(1500, 8))
    density, coverage = density_coverage(real, fake, k=5)
    assert density == pytest.approx(1.0, abs=0.1)
    assert coverage == pytest.approx(1 - 2**-5, abs=0.02)


def test_density_coverage_of_a_collapsed_generator() -> None:
    rng = np.random.default_rng(6)
    real, fake = rng.normal(size=(500, 8)), 0.05 * rng.normal(size=(500, 8))
    _, coverage = density_coverage(real, fake, k=5)
    assert coverage < 0.2


def test_real_floor_is_reproducible_and_at_the_cells_size() -> None:
    rng = np.random.default_rng(7)
    d, n = 8, 400
    reference, pool = rng.normal(size=(n, d)), rng.normal(size=(3 * n, d))
    settings = {"kid_subsets": 5, "kid_subset_size": 100}
    mean, spread = real_floor(reference, pool, n, repeats=10, seed=0, **settings)
    assert (mean, spread) == real_floor(reference, pool, n, repeats=10, seed=0, **settings)
    assert mean != real_floor(reference, pool, n, repeats=10, seed=1, **settings)[0]
    keys = {"fid_proxy", "kid_proxy", "kid_proxy_std", "precision", "recall", "density", "coverage"}
    assert set(mean) == set(spread) == keys
    assert all(v > 0 for k, v in spread.items() if k != "kid_proxy_std")
    # n vs n from one Gaussian: E[FD] ~ 2d/n (means) + d(d+1)/(2n) (covariances) = d(d+5)/(2n).
    expected = d * (d + 5) / (2 * n)
    assert expected / 2 < mean["fid_proxy"] < 2 * expected


def test_real_floor_at_n_is_half_the_old_halves_figure() -> None:
    # FD's bias is ~ (1/n_a + 1/n_b): n vs n gives about half of what n/2 vs n/2 gave (the old
    # floor compared two halves of the test set). Averaged over draws so the ratio is stable.
    rng = np.random.default_rng(11)
    d, n, settings = 8, 300, {"kid_subsets": 2, "kid_subset_size": 50}
    at_n, halves = [], []
    for _ in range(20):
        reference, pool = rng.normal(size=(n, d)), rng.normal(size=(2 * n, d))
        at_n.append(real_floor(reference, pool, n, repeats=2, **settings)[0]["fid_proxy"])
        halves.append(fid_proxy(reference[: n // 2], reference[n // 2 :]))
    assert np.mean(at_n) / np.mean(halves) == pytest.approx(0.5, abs=0.1)


def test_real_floor_rejects_a_small_pool() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="pool"):
        real_floor(rng.normal(size=(50, 3)), rng.normal(size=(20, 3)), 30)


def test_kid_from_full_kernels_equals_the_per_subset_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(12)
    a, b = rng.normal(size=(120, 6)), rng.normal(size=(90, 6)) + 0.2
    fast = kid(a, b, subsets=7, subset_size=40, seed=3)
    monkeypatch.setattr("bench.metrics.quality.KID_FULL_KERNEL_MAX", 0)  # force the loop
    loop = kid(a, b, subsets=7, subset_size=40, seed=3)
    assert fast == pytest.approx(loop, rel=1e-12)
    assert loop[0] == pytest.approx(
        np.mean([mmd2_unbiased(a[i], b[j]) for i, j in _subsets(120, 90, 7, 40, 3)]), rel=1e-12
    )


def _subsets(n_a: int, n_b: int, subsets: int, m: int, seed: int) -> list:
    rng = np.random.default_rng(seed)
    return [(rng.choice(n_a, m, replace=False), rng.choice(n_b, m, replace=False))
            for _ in range(subsets)]
