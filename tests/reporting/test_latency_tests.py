"""Latency statistics: exact coverage of the median interval; ratio intervals that can decide."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binom, mannwhitneyu

from bench.compare.latency_tests import (
    median_ci,
    median_ratio_ci,
    min_samples_for_median_ci,
    speedup_ratio_ci,
)
from bench.compare.verdicts import DEFAULT_ALPHA, judge_ratio


def test_median_ci_order_statistics_known_answers() -> None:
    # n=10: [x_(2), x_(9)] covers with 1 - 2 * 11/1024 = 0.9785; [x_(3), x_(8)] only 0.891.
    assert median_ci(np.arange(1.0, 11.0)) == (2.0, 9.0)
    assert median_ci(np.arange(6.0, 0.0, -1.0)) == (1.0, 6.0)  # n=6: min, max (0.969)
    assert median_ci(np.arange(1.0, 6.0)) == (-math.inf, math.inf)  # n=5: 0.9375 < 0.95
    assert min_samples_for_median_ci(0.95) == 6 and min_samples_for_median_ci(0.99) == 8
    assert median_ci([3.0, 1.0, 2.0, 5.0, 4.0, 6.0, 7.0, 8.0], 0.99) == (1.0, 8.0)
    with pytest.raises(ValueError, match="confidence"):
        median_ci([1.0, 2.0], 1.5)


@pytest.mark.parametrize("n", [6, 10, 25])
def test_median_ci_coverage_by_simulation(n: int) -> None:
    rng = np.random.default_rng(2024)
    trials = 4000
    draws = rng.exponential(1.0, (trials, n))  # skewed: the interval must not care
    true_median = math.log(2.0)
    bounds = np.array([median_ci(row) for row in draws])
    covered = np.mean((bounds[:, 0] <= true_median) & (true_median <= bounds[:, 1]))
    j = next(j for j in range(n // 2, 0, -1) if 1 - 2 * binom.cdf(j - 1, n, 0.5) >= 0.95)
    exact = 1 - 2 * binom.cdf(j - 1, n, 0.5)
    assert exact >= 0.95
    assert abs(covered - exact) < 4 * math.sqrt(exact * (1 - exact) / trials)


def test_five_blocks_can_reach_alpha_where_mann_whitney_cannot() -> None:
    # The smoke case: 0.52 ms -> 65 ms with 5 blocks per side.
    rng = np.random.default_rng(0)
    base, cur = rng.normal(0.52, 0.01, 5), rng.normal(65.0, 1.0, 5)
    assert mannwhitneyu(base, cur).pvalue > DEFAULT_ALPHA  # 2 / C(10, 5) = 0.0079
    ratio, low, high = median_ratio_ci(base, cur, 1 - DEFAULT_ALPHA)
    assert ratio == pytest.approx(np.median(cur) / np.median(base))
    assert low > 1.0
    assert judge_ratio("latency_p50_ms", ratio, low, high) == "regression"


def test_same_distribution_rarely_differs() -> None:
    rng = np.random.default_rng(7)
    flagged = 0
    for _ in range(200):
        a, b = rng.lognormal(0.0, 0.05, (2, 10))
        _, low, high = median_ratio_ci(a, b, 1 - DEFAULT_ALPHA)
        flagged += not low <= 1.0 <= high
    assert flagged <= 4  # nominal 0.2%; the percentile bootstrap runs a little liberal


def test_ratio_intervals_are_deterministic_and_degenerate_safely() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.normal(1.0, 0.05, 8), rng.normal(1.3, 0.05, 8)
    assert median_ratio_ci(a, b) == median_ratio_ci(a, b)
    assert median_ratio_ci(a[:1], b[:1])[1:] == (-math.inf, math.inf)


def test_speedup_ratio_closed_form() -> None:
    ref = np.array([2.0, 2.1, 1.9, 2.0, 2.05, 1.95])
    variant = ref / 2  # speedup 2 in the baseline run
    ratio, low, high = speedup_ratio_ci(ref, variant, ref, ref / 1.5)  # 1.5 now
    assert ratio == pytest.approx(0.75)
    assert low <= 0.75 <= high and high < 1.0


def test_many_blocks_use_exact_order_statistic_bounds() -> None:
    # 40 blocks per side: both medians' exact 99.9% intervals, combined conservatively.
    rng = np.random.default_rng(5)
    base, cur = rng.normal(1.0, 0.02, 40), rng.normal(1.3, 0.02, 40)
    ratio, low, high = median_ratio_ci(base, cur, 0.998)
    (b_low, b_high), (c_low, c_high) = median_ci(base, 0.999), median_ci(cur, 0.999)
    assert (low, high) == (c_low / b_high, c_high / b_low)
    assert 1.0 < low <= ratio <= high
