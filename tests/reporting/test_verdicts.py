"""Pure verdict rules: threshold AND tolerance AND beyond noise; floors are not noise bands."""
from __future__ import annotations

import math

import numpy as np
import pytest

from bench.compare.verdicts import (
    ABS_TOLERANCES,
    DEFAULT_THRESHOLDS,
    floor_noise,
    judge_intervals,
    judge_ratio,
    judge_values,
    relative_change,
    seed_noise,
)


def test_relative_change_and_noise_closed_forms() -> None:
    assert relative_change(10.0, 13.0) == pytest.approx(0.3)
    assert relative_change(-100.0, -130.0) == pytest.approx(-0.3)
    assert relative_change(0.0, 0.0) == 0.0 and relative_change(0.0, 1.0) == math.inf
    # 2 * sqrt((var_a + var_b) / 2) with var = 1 and 4 (ddof=1).
    assert seed_noise(np.array([0.0, 2.0 ** 0.5]), np.array([0.0, 8.0 ** 0.5])) == \
        pytest.approx(2 * np.sqrt((1 + 4) / 2))
    assert seed_noise(np.array([1.0]), np.array([2.0])) is None
    # Difference of two draws of std s: std s*sqrt(2), two sigma.
    assert floor_noise(0.5) == pytest.approx(2 * math.sqrt(2) * 0.5)
    assert floor_noise(None) is None and floor_noise(-3.39) is None


@pytest.mark.parametrize(("metric", "base", "base_ci", "cur", "cur_ci", "verdict"), [
    ("fid_proxy", 10.0, (9.8, 10.2), 15.0, (14.7, 15.3), "regression"),    # +50%, disjoint
    ("fid_proxy", 10.0, (9.8, 10.2), 5.0, (4.9, 5.1), "improvement"),
    ("fid_proxy", 10.0, (9.8, 10.2), 10.2, (10.0, 10.4), "unchanged"),     # +2% < 10%
    ("fid_proxy", 10.0, (8.0, 12.0), 12.5, (11.0, 14.0), "unchanged"),     # +25%, overlap
    ("elbo_nats", -100.0, (-101, -99), -130.0, (-131, -129), "regression"),  # higher better
    ("recall", 0.008, (0.0078, 0.0082), 0.007, (0.0069, 0.0071), "unchanged"),  # abs tol
    ("recall", 0.80, (0.79, 0.81), 0.60, (0.59, 0.61), "regression"),
    ("size_file_bytes", 100.0, (math.nan, math.nan), 110.0, (math.nan, math.nan),
     "regression"),  # no interval: the point itself, threshold decides
])
def test_judge_intervals(metric, base, base_ci, cur, cur_ci, verdict) -> None:
    assert judge_intervals(metric, base, base_ci, cur, cur_ci) == verdict


def test_judge_intervals_overrides_and_defaults() -> None:
    assert DEFAULT_THRESHOLDS["fid_proxy"] == 0.10 and ABS_TOLERANCES["recall"] == 0.02
    ci = (0.0069, 0.0071)
    # With no absolute tolerance the relative rule alone would flag recall near zero.
    assert judge_intervals("recall", 0.008, (0.0078, 0.0082), 0.007, ci, abs_tol=0.0) \
        == "regression"
    assert judge_intervals("fid_proxy", 10.0, (9.9, 10.1), 10.5, (10.4, 10.6),
                           threshold=0.01) == "regression"
    assert judge_intervals("fid_proxy", 10.0, (9.9, 10.1), math.nan, ci) == "unchanged"


@pytest.mark.parametrize(("metric", "base", "cur", "noise", "verdict"), [
    ("fid_proxy", 10.0, 13.0, 0.2, "regression"),
    ("fid_proxy", 10.0, 13.0, 5.0, "unchanged"),   # inside the noise band
    ("fid_proxy", 10.0, 10.5, None, "unchanged"),  # below the threshold
    ("speedup", 2.0, 1.0, None, "regression"),
    ("precision", 0.01, 0.005, None, "unchanged"),  # -50% but 0.005 < 0.02 absolute
])
def test_judge_values(metric, base, cur, noise, verdict) -> None:
    assert judge_values(metric, base, cur, noise) == verdict


def test_negative_kid_floor_is_not_a_noise_band() -> None:
    # The old rule used the floor (-3.39) as the band: |diff| > -3.39 always held. The band of
    # a difference comes from the floor's spread over real subsets.
    band = floor_noise(1.2)
    assert judge_values("kid_proxy", 1.0, 1.5, band) == "unchanged"  # 0.5 < 3.39
    assert judge_values("kid_proxy", 1.0, 6.0, band) == "regression"


@pytest.mark.parametrize(("ratio", "low", "high", "verdict"), [
    (1.3, 1.2, 1.4, "regression"),    # 30% slower, interval excludes 1
    (1.3, 0.9, 1.8, "unchanged"),     # not significant
    (1.1, 1.05, 1.15, "unchanged"),   # significant but under 20%
    (0.5, 0.45, 0.55, "improvement"),
])
def test_judge_ratio_latency(ratio, low, high, verdict) -> None:
    assert judge_ratio("latency_p50_ms", ratio, low, high) == verdict


def test_judge_ratio_speedup_direction() -> None:
    assert judge_ratio("speedup", 0.5, 0.4, 0.6) == "regression"  # speedup halved


@pytest.mark.parametrize(("base", "current", "band", "expected"), [
    (1.0, 0.7, 1.21, "regression"),    # -30%, ratio 0.7 below the band's 1/1.21
    (1.0, 0.85, None, "unchanged"),    # -15%: within the 20% threshold
    (1.0, 0.75, 1.5, "unchanged"),     # -25% but inside [1/1.5, 1.5]: noise
    (2.0, 3.0, 1.1, "improvement"),
    (1.0, float("nan"), 1.1, "unchanged"),
])
def test_judge_speedup(base: float, current: float, band: float | None, expected: str) -> None:
    from bench.compare.judge import judge_speedup

    assert judge_speedup(base, current, band, 0.2) == expected
