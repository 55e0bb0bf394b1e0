"""Latency statistics that can decide with few timing blocks: median intervals and ratio tests."""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from scipy.stats import binom, bootstrap

# Fixed: the same two runs must always get the same verdict (the bootstrap is random).
BOOTSTRAP_SEED = 0
# 9999 resamples leave ~10 draws in each tail at alpha 0.002: enough for a percentile bound.
BOOTSTRAP_RESAMPLES = 9999


def median_ci(samples: Sequence[float] | np.ndarray,
              confidence: float = 0.95) -> tuple[float, float]:
    """Distribution-free interval [x_(j), x_(n+1-j)] for the median of `samples`.

    With B ~ Binomial(n, 1/2) the number of samples below the true median, the interval
    between the j-th and (n+1-j)-th order statistics covers it with probability
    1 - 2 P(B <= j - 1) (exact for any continuous distribution; Hollander & Wolfe,
    Nonparametric Statistical Methods, ch. 3). j is the largest index with that coverage
    >= confidence. When even [min, max] covers with less than `confidence`
    (1 - 2^(1-n) < confidence, e.g. n <= 5 at 95%) no interval of order statistics can, and
    (-inf, inf) is returned: a bounded interval there would claim more than the data allow.
    """
    values = np.sort(np.asarray(samples, dtype=float))
    values = values[np.isfinite(values)]
    if not 0 < confidence < 1:
        raise ValueError(f"confidence {confidence}: must be in (0, 1)")
    n = len(values)
    if n == 0:
        return math.nan, math.nan
    # cdf[m] = P(B <= m); j - 1 = the largest m with 2 * cdf[m] <= 1 - confidence.
    cdf = binom.cdf(np.arange(n + 1), n, 0.5)
    j = int(np.count_nonzero(2 * cdf <= (1 - confidence) * (1 + 1e-12)))
    if j == 0:
        return -math.inf, math.inf
    return float(values[j - 1]), float(values[n - j])


def min_samples_for_median_ci(confidence: float = 0.95) -> int:
    """Smallest n for which median_ci is bounded: 1 - 2^(1-n) >= confidence."""
    return max(1, math.ceil(1 - math.log2(1 - confidence)))


def _median_ratio(numerator: np.ndarray, denominator: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.median(numerator, axis=axis) / np.median(denominator, axis=axis)


def _speedup_ratio(base_ref: np.ndarray, base_var: np.ndarray, cur_ref: np.ndarray,
                   cur_var: np.ndarray, axis: int = -1) -> np.ndarray:
    # speedup = median(reference) / median(variant) on each side; current over baseline.
    return (_median_ratio(cur_ref, cur_var, axis) / _median_ratio(base_ref, base_var, axis))


def _exact_bounds(samples: tuple[np.ndarray, ...],
                  confidence: float) -> list[tuple[float, float]] | None:
    """median_ci of each sample at 1 - (1 - confidence) / k (Bonferroni over the k samples,
    so all k cover at once with probability >= confidence); None when one is unbounded."""
    level = 1 - (1 - confidence) / len(samples)
    bounds = [median_ci(sample, level) for sample in samples]
    return None if any(math.isinf(low) for low, _ in bounds) else bounds


def _bootstrap_ci(samples: tuple[np.ndarray, ...], statistic: Callable[..., np.ndarray],
                  confidence: float) -> tuple[float, float]:
    """Percentile bootstrap interval, each sample resampled independently (fixed seed)."""
    result = bootstrap(samples, statistic, n_resamples=BOOTSTRAP_RESAMPLES,
                       confidence_level=confidence, method="percentile", vectorized=True,
                       paired=False, random_state=np.random.default_rng(BOOTSTRAP_SEED))
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def median_ratio_ci(base: np.ndarray, current: np.ndarray,
                    confidence: float = 0.998) -> tuple[float, float, float]:
    """median(current) / median(base) and its percentile-bootstrap interval (Efron &
    Tibshirani 1993, ch. 13): (ratio, low, high). The ratio differs from 1 at level
    1 - confidence when the interval excludes 1.

    With enough blocks for exact order-statistic intervals of both medians at
    1 - (1 - confidence) / 2 (12 per side at 0.998), the interval is the conservative
    [cur_low / base_high, cur_high / base_low] of those (distribution-free, and fast on many
    blocks). With fewer it is the bootstrap's: unlike Mann-Whitney, whose smallest two-sided
    p with 5 blocks per side is 2 / C(10, 5) = 0.0079, it can reach alpha 0.002 with 5 blocks,
    but its coverage there is below nominal, which is why a latency verdict also needs the
    relative threshold (20%).
    """
    base, current = np.asarray(base, float), np.asarray(current, float)
    ratio = float(np.median(current) / np.median(base))
    if len(base) < 2 or len(current) < 2:
        return ratio, -math.inf, math.inf  # one block says nothing about its spread
    exact = _exact_bounds((base, current), confidence)
    if exact is not None:
        (base_low, base_high), (cur_low, cur_high) = exact
        return ratio, cur_low / base_high, cur_high / base_low
    low, high = _bootstrap_ci((current, base), _median_ratio, confidence)
    return ratio, low, high


def speedup_ratio_ci(base_ref: np.ndarray, base_var: np.ndarray, cur_ref: np.ndarray,
                     cur_var: np.ndarray, confidence: float = 0.998
                     ) -> tuple[float, float, float]:
    """speedup_current / speedup_baseline with speedup = median(reference blocks) /
    median(variant blocks) on each side, and its interval over the four independent block
    samples (exact order-statistic bounds combined when every sample is large enough, else the
    percentile bootstrap, as median_ratio_ci): (ratio, low, high)."""
    arrays = tuple(np.asarray(a, float) for a in (base_ref, base_var, cur_ref, cur_var))
    ratio = float(_speedup_ratio(*arrays))
    if min(len(a) for a in arrays) < 2:
        return ratio, -math.inf, math.inf
    exact = _exact_bounds(arrays, confidence)
    if exact is not None:
        (br_lo, br_hi), (bv_lo, bv_hi), (cr_lo, cr_hi), (cv_lo, cv_hi) = exact
        return ratio, (cr_lo / cv_hi) / (br_hi / bv_lo), (cr_hi / cv_lo) / (br_lo / bv_hi)
    low, high = _bootstrap_ci(arrays, _speedup_ratio, confidence)
    return ratio, low, high
