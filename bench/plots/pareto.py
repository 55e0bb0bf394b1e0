"""Pareto front of a trade-off: the points no other point beats on both axes."""
from __future__ import annotations

import numpy as np


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
