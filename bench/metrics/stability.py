"""Latency you can rerun: re-measure while the timed blocks spread too much, then say so."""
from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass

from bench.metrics.cost import LatencyResult

# One measurement of a speedup: (baseline, variant, median_base / median_variant).
SpeedupMeasure = Callable[[], tuple[LatencyResult, LatencyResult, float]]


def load_avg_1m() -> float:
    """os.getloadavg()[0] (runnable processes, 1-minute average); NaN where the OS has none."""
    try:
        return float(os.getloadavg()[0])
    except (AttributeError, OSError):  # Windows; a container without /proc/loadavg
        return math.nan


@dataclass(frozen=True)
class Attempt:
    """One interleaved baseline-vs-variant measurement and the load it was taken under."""

    base: LatencyResult
    variant: LatencyResult
    speedup: float
    load_avg_1m: float

    @property
    def rel_iqr(self) -> float:
        """max(IQR / median) over both sides: the speedup is only as steady as its noisier side."""
        return max(self.base.rel_iqr, self.variant.rel_iqr)


@dataclass(frozen=True)
class StableMeasurement:
    """The attempt kept (the steadiest), how many were taken, and whether it passed the gate."""

    kept: Attempt
    attempts: int
    stable: bool


def measure_until_stable(
    measure: SpeedupMeasure,
    *,
    max_rel_iqr: float,
    max_attempts: int,
    load_avg: Callable[[], float] = load_avg_1m,
) -> StableMeasurement:
    """Call `measure` until an attempt's rel IQR (Attempt.rel_iqr) is <= max_rel_iqr, at most
    `max_attempts` times in all.

    Stable: that attempt is kept. Never stable: the attempt with the smallest rel IQR is kept
    (its figures are the least disturbed ones) and `stable` is False, so the caller marks the
    row unstable instead of dropping it. The IQR/median gate and its 10% default follow
    torch.utils.benchmark (Measurement warns above 0.1; adaptive_autorange's threshold).
    """
    if max_attempts < 1:
        raise ValueError(f"max_attempts must be >= 1, got {max_attempts}")
    if not max_rel_iqr > 0:
        raise ValueError(f"max_rel_iqr must be > 0 (0.1 = 10%), got {max_rel_iqr}")
    attempts: list[Attempt] = []
    while len(attempts) < max_attempts:
        base, variant, speedup = measure()
        # Read after the measurement: the 1-minute average then covers the blocks just timed.
        attempts.append(Attempt(base, variant, speedup, load_avg()))
        if attempts[-1].rel_iqr <= max_rel_iqr:
            return StableMeasurement(attempts[-1], len(attempts), True)
    return StableMeasurement(min(attempts, key=lambda a: a.rel_iqr), len(attempts), False)
