"""Which table cells are marked: best beyond noise (bold) and changes within noise (≈)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from bench.results.annotations import NoiseBand
from bench.tables.columns import Column


def best_mask(values: np.ndarray, direction: int, low: np.ndarray | None = None,
              high: np.ndarray | None = None, eligible: np.ndarray | None = None,
              reference: np.ndarray | None = None,
              beats_reference: np.ndarray | None = None) -> np.ndarray:
    """True where an eligible row is the column's best *beyond noise*.

    The best eligible value is marked when its interval [low, high] lies entirely on the better
    side of every other eligible row's interval and of every `reference` row's (the baseline:
    compared against, never marked). Touching counts as overlap; a missing interval is the
    point itself. `beats_reference` (1.0 / 0.0, NaN where unknown) replaces the interval check
    against the reference rows by a paired test (the change against the same-seed baseline on
    the same latents excludes 0 on the better side). Ties at the best are all marked when each
    clears the rest. Nothing is marked with fewer than two values or when all values tie."""
    values = np.asarray(values, float)
    low = values if low is None else np.where(np.isfinite(low), low, values)
    high = values if high is None else np.where(np.isfinite(high), high, values)
    finite = np.isfinite(values)
    candidates = finite & (True if eligible is None else np.asarray(eligible, bool))
    compared = finite & ~candidates & (False if reference is None
                                       else np.asarray(reference, bool))
    none = np.zeros(values.shape, dtype=bool)
    if candidates.sum() + compared.sum() < 2 or not candidates.any():
        return none
    score = direction * values
    score_low = np.minimum(direction * low, direction * high)
    score_high = np.maximum(direction * low, direction * high)
    top = candidates & np.isclose(score, score[candidates].max(), rtol=1e-9, atol=0.0)
    others = candidates & ~top
    if not others.any() and not compared.any():
        return none
    clear = top & (score_low > (score_high[others].max() if others.any() else -np.inf))
    beyond_reference = score_low > (score_high[compared].max() if compared.any() else -np.inf)
    if beats_reference is not None:
        paired = np.asarray(beats_reference, float)
        beyond_reference = np.where(np.isfinite(paired), paired == 1.0, beyond_reference)
    return clear & beyond_reference


def paired_better(summary: pd.DataFrame, metric: str, direction: int) -> np.ndarray:
    """Per row 1.0 where the paired change against the baseline has a 95% interval wholly on the
    better side of 0, 0.0 where it does not, NaN where the results have no paired change."""
    if f"{metric}_delta_low" not in summary:
        return np.full(len(summary), np.nan)
    low = direction * summary[f"{metric}_delta_low"].to_numpy(float)
    high = direction * summary[f"{metric}_delta_high"].to_numpy(float)
    known = np.isfinite(low) & np.isfinite(high)
    return np.where(known, (np.minimum(low, high) > 0).astype(float), np.nan)


def within_noise(summary: pd.DataFrame, metric: str) -> np.ndarray:
    """The paired change against the baseline has an interval that includes 0 (not baseline)."""
    if f"{metric}_delta_low" not in summary:
        return np.zeros(len(summary), dtype=bool)
    low, high = summary[f"{metric}_delta_low"], summary[f"{metric}_delta_high"]
    return ((low <= 0) & (high >= 0) & ~is_baseline(summary)).to_numpy()


def is_baseline(summary: pd.DataFrame) -> pd.Series:
    return summary["method"] == "baseline"


def quality_bold(summary: pd.DataFrame, column: Column, scale: float,
                 collapsed: np.ndarray) -> np.ndarray:
    """Bold of a result column. Variants only (the baseline is a reference, never bold),
    never a collapsed one; a noisy metric without any interval is never bold (its noise is
    unknown); against the baseline the paired change decides where the results have it."""
    source = column.source
    values = summary[f"{source}_mean"].to_numpy(float) * scale
    low = summary[f"{source}_low"].to_numpy(float) * scale
    high = summary[f"{source}_high"].to_numpy(float) * scale
    if not column.exact and not (np.isfinite(low) & np.isfinite(high)).any():
        return np.zeros(len(values), dtype=bool)
    base = is_baseline(summary).to_numpy()
    eligible = ~base & (True if column.exact else ~collapsed)
    paired = None if column.exact else paired_better(summary, source, column.direction)
    return best_mask(values, column.direction, low, high, eligible, base, paired)


def latency_bold(summary: pd.DataFrame, column: Column, band: NoiseBand | None,
                 unstable: np.ndarray) -> np.ndarray:
    """Bold of a p50 or speedup column: only with a measured noise band; each row's interval
    (the t-interval over seeds, or the point) widened by the band, [low / f, high * f]. The
    baseline's speedup is 1 by definition (a reference point); a row with an unstable seed is
    never bold, but the others must still clear the mean of its stable seeds."""
    if band is None:
        return np.zeros(len(summary), dtype=bool)
    source = column.source
    values = summary[f"{source}_mean"].to_numpy(float)
    low = np.where(np.isfinite(summary[f"{source}_low"]), summary[f"{source}_low"], values)
    high = np.where(np.isfinite(summary[f"{source}_high"]), summary[f"{source}_high"], values)
    low, high = low / band.factor, high * band.factor
    base = is_baseline(summary).to_numpy()
    if source == "speedup":
        values, low, high = (np.where(base, 1.0, a) for a in (values, low, high))
    return best_mask(values, column.direction, low, high, ~base & ~unstable, base | unstable)


def speedup_within_noise(summary: pd.DataFrame, band: NoiseBand | None) -> np.ndarray:
    """Variants whose mean speedup lies inside the noise band [1/f, f]."""
    if band is None or "speedup_mean" not in summary:
        return np.zeros(len(summary), dtype=bool)
    speedup = summary["speedup_mean"].to_numpy(float)
    inside = (speedup >= band.low) & (speedup <= band.high)
    return inside & ~is_baseline(summary).to_numpy()
