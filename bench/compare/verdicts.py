"""Pure verdict rules: a change counts when it passes the threshold AND is beyond noise (asv)."""
from __future__ import annotations

import math

import numpy as np

from bench.results import schema

REGRESSION, IMPROVEMENT, UNCHANGED = "regression", "improvement", "unchanged"
RESULT_METRICS = [m for m in schema.DIRECTIONS if m in schema.RESULTS_COLUMNS]
SIZE_METRICS = [m for m in RESULT_METRICS if m in schema.SIZE_COLUMNS]
QUALITY_METRICS = [m for m in RESULT_METRICS if m in schema.QUALITY_COLUMNS]
# Timed on the machine that ran: compared only between runs with the same machine id.
MACHINE_METRICS = ["latency_p50_ms", "speedup", "throughput_sps", "peak_mem_bytes"]
# Derived from the same timing blocks as their source: they take its verdict, never their own.
DERIVED_METRICS = {"throughput_sps": "latency_p50_ms"}
# Relative thresholds: quality 10% (asv's factor 1.1), size 5% (deterministic, so any real
# change counts), latency 20% (TorchBench's noise notes: 5-9% run to run, more on shared CPUs).
DEFAULT_THRESHOLDS = {m: 0.10 for m in schema.DIRECTIONS}
DEFAULT_THRESHOLDS.update({m: 0.05 for m in SIZE_METRICS})
DEFAULT_THRESHOLDS.update({m: 0.20 for m in MACHINE_METRICS})
# Absolute tolerances of the bounded k-NN metrics (fractions of n_samples): near 0 a relative
# threshold alone calls recall 0.008 -> 0.007 "-12.5%". 0.02 is 20 samples of 1000 and about
# 3x the real-vs-real spread of these metrics over subsets (0.006-0.016 on mnist5k).
ABS_TOLERANCES = {"precision": 0.02, "recall": 0.02, "density": 0.02, "coverage": 0.02}
# Significance for latency: asv's alpha; the ratio test in bench/latency_tests can reach it.
DEFAULT_ALPHA = 0.002
# Two-sigma band of a difference of two independent draws of spread s: 2 * sqrt(2) * s.
NOISE_SIGMAS = 2.0


def relative_change(base: float, current: float) -> float:
    """(current - base) / |base|; +-inf when base is 0 and current differs."""
    if base == 0:
        return 0.0 if current == 0 else math.copysign(math.inf, current)
    return (current - base) / abs(base)


def _direction(metric: str, change: float) -> str:
    return REGRESSION if schema.DIRECTIONS[metric] * change < 0 else IMPROVEMENT


def _defaults(metric: str, threshold: float | None, abs_tol: float | None) -> tuple[float, float]:
    return (DEFAULT_THRESHOLDS.get(metric, 0.10) if threshold is None else threshold,
            ABS_TOLERANCES.get(metric, 0.0) if abs_tol is None else abs_tol)


def _past_limits(change: float, diff: float, threshold: float, abs_tol: float) -> bool:
    return abs(change) > threshold and abs(diff) > abs_tol


def judge_intervals(metric: str, base: float, base_ci: tuple[float, float], cur: float,
                    cur_ci: tuple[float, float], threshold: float | None = None,
                    abs_tol: float | None = None) -> str:
    """"regression" | "improvement" | "unchanged" for two estimates with 95% intervals.

    A change counts when |relative change| > threshold AND |cur - base| > abs_tol AND the
    intervals do not overlap (each side's interval excludes the other's). None takes the
    metric's defaults (DEFAULT_THRESHOLDS, ABS_TOLERANCES). An interval with a NaN bound is
    unknown noise and counts as the point itself (threshold and tolerance decide alone, as for
    deterministic sizes). Disjoint 95% intervals are a conservative test (about alpha 0.006 for
    equal widths; Schenker & Gentleman 2001): a regression so flagged is not noise.
    """
    threshold, abs_tol = _defaults(metric, threshold, abs_tol)
    if not (math.isfinite(base) and math.isfinite(cur)):
        return UNCHANGED
    change = relative_change(base, cur)
    if not _past_limits(change, cur - base, threshold, abs_tol):
        return UNCHANGED
    base_low, base_high = (base if math.isnan(b) else b for b in base_ci)
    cur_low, cur_high = (cur if math.isnan(b) else b for b in cur_ci)
    if cur_low <= base_high and base_low <= cur_high:
        return UNCHANGED
    return _direction(metric, change)


def seed_noise(base: np.ndarray, current: np.ndarray) -> float | None:
    """Two-sigma band of a difference of seed means: 2 * sqrt((s_a^2 + s_b^2) / 2) with >= 2
    seeds on both sides, None otherwise (one seed says nothing about its spread)."""
    if len(base) >= 2 and len(current) >= 2:
        return NOISE_SIGMAS * math.sqrt((np.var(base, ddof=1) + np.var(current, ddof=1)) / 2.0)
    return None


def floor_noise(spread: float | None) -> float | None:
    """Two-sigma band of a difference of two single-seed values from the real-vs-real spread
    s of the metric (its std over real subsets, run.json floors_spread): 2 * sqrt(2) * s.

    The floor itself (the real-vs-real value) is a bias, not a noise band: KID's floor is
    negative, and |diff| > floor would always hold.
    """
    if spread is None or not math.isfinite(spread) or spread < 0:
        return None
    return NOISE_SIGMAS * math.sqrt(2.0) * spread


def judge_values(metric: str, base: float, current: float, noise: float | None,
                 threshold: float | None = None, abs_tol: float | None = None) -> str:
    """Verdict for two means with a noise band of their difference (None: no noise known,
    threshold and tolerance decide alone, e.g. deterministic sizes)."""
    threshold, abs_tol = _defaults(metric, threshold, abs_tol)
    if not (math.isfinite(base) and math.isfinite(current)) or base == current:
        return UNCHANGED
    change = relative_change(base, current)
    if not _past_limits(change, current - base, threshold, abs_tol):
        return UNCHANGED
    if noise is not None and abs(current - base) <= noise:
        return UNCHANGED
    return _direction(metric, change)


def judge_ratio(metric: str, ratio: float, low: float, high: float,
                threshold: float | None = None) -> str:
    """Verdict from a ratio current/baseline and its (1 - alpha) interval: |ratio - 1| >
    threshold AND the interval excludes 1."""
    threshold, _ = _defaults(metric, threshold, 0.0)
    change = ratio - 1.0
    if not math.isfinite(change) or abs(change) <= threshold or low <= 1.0 <= high:
        return UNCHANGED
    return _direction(metric, change)


def seed_band(n_base: int, n_cur: int, std_base: float, std_cur: float) -> float | None:
    """Two-sigma band of a difference of seed means, 2 sqrt((s_a^2 + s_b^2) / 2), with >= 2
    seeds per side; None with fewer (no spread known)."""
    if n_base >= 2 and n_cur >= 2:
        return 2.0 * math.sqrt((std_base ** 2 + std_cur ** 2) / 2.0)
    return None
