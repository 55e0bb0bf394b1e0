"""Pareto front of a trade-off: the points no other point beats on both axes."""
from __future__ import annotations

import numpy as np
import pandas as pd

from bench.results import schema

# On the speed axis only variants at least as fast as the uncompressed baseline can be on the
# front: a slower variant that keeps the quality is no speed trade-off at all.
MIN_X = {"speedup": 1.0}


def pareto_mask(x: np.ndarray, y: np.ndarray, x_direction: int = +1,
                y_direction: int = -1) -> np.ndarray:
    """Boolean mask of non-dominated points.

    Point i is dominated when some j has d_x*x_j >= d_x*x_i and d_y*y_j >= d_y*y_i with at
    least one strict (directions +1: higher is better, -1: lower is better, as in DIRECTIONS).
    Points with a NaN coordinate are never on the front. O(n^2), n is a handful of cells.
    """
    sx = x_direction * np.asarray(x, dtype=float)
    sy = y_direction * np.asarray(y, dtype=float)
    finite = np.isfinite(sx) & np.isfinite(sy)
    # (n, n): [i, j] is True when j dominates i.
    geq = (sx[None, :] >= sx[:, None]) & (sy[None, :] >= sy[:, None])
    strict = (sx[None, :] > sx[:, None]) | (sy[None, :] > sy[:, None])
    dominated = (geq & strict & finite[None, :]).any(axis=1)
    return finite & ~dominated


def front_mask(points: pd.DataFrame, x: str, y: str) -> np.ndarray:
    """Which trade-off points (rows of `tradeoff_points`) are on the front of y against x.

    Only eligible points compete: finite coordinates, output not collapsed, and x at least
    MIN_X[x] (speedup: not slower than the baseline, whose own speedup is 1 by definition).
    Columns read: `<x>_mean`, `<y>_rel`, `collapsed`.
    """
    xs = points[f"{x}_mean"].to_numpy(float)
    ys = points[f"{y}_rel"].to_numpy(float)
    eligible = np.isfinite(xs) & np.isfinite(ys)
    if "collapsed" in points:
        eligible &= ~points["collapsed"].fillna(False).to_numpy(bool)
    if x in MIN_X:
        eligible &= np.nan_to_num(xs, nan=-np.inf) >= MIN_X[x]
    mask = np.zeros(len(points), dtype=bool)
    mask[eligible] = pareto_mask(xs[eligible], ys[eligible], schema.DIRECTIONS[x],
                                 schema.DIRECTIONS[y])
    return mask
