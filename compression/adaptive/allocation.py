"""Budgeted per-layer allocation: a multiple-choice knapsack solved exactly with scipy's MILP."""
from __future__ import annotations

import math

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, isotonic_regression, milp


class InfeasibleBudget(ValueError):
    """No choice of one option per layer meets the budget."""


def monotone_in_cost(sensitivity: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """Each row of `sensitivity` made non-increasing in its row of `cost` by isotonic
    regression (the least-squares monotone fit, pool-adjacent-violators via
    scipy.optimize.isotonic_regression); NaN (disallowed) entries stay NaN.

    Why: a layer given more bits (or more kept weights) is never expected to drift more, but a
    drift measured on a fixed 64-latent probe is noisy, e.g. 7 bits measured above 6. Left
    as measured, such an inversion makes the solver take the cheaper option and leave budget
    unused; pooled, the two options tie and the tie-break in `allocate` spends the budget.
    Options of equal cost keep their order (stable sort)."""
    sens = np.array(sensitivity, dtype=np.float64)
    for row, costs in zip(sens, np.asarray(cost, dtype=np.float64), strict=True):
        finite = np.flatnonzero(np.isfinite(row))
        order = finite[np.argsort(costs[finite], kind="stable")]
        if len(order) > 1:
            row[order] = isotonic_regression(row[order], increasing=False).x
    return sens


def _solve(objective: np.ndarray, allowed: np.ndarray, rows: list[LinearConstraint]
           ) -> np.ndarray | None:
    """0/1 program: minimise objective . x, one allowed option per layer, plus `rows`.
    Returns the chosen option per layer, or None when infeasible."""
    layers, options = allowed.shape
    one_per_layer = np.kron(np.eye(layers), np.ones(options))  # (layers, layers*options)
    result = milp(objective.ravel(), integrality=np.ones(layers * options),
                  bounds=Bounds(0, allowed.ravel().astype(np.float64)),  # disallowed: pinned 0
                  constraints=[LinearConstraint(one_per_layer, 1, 1), *rows],
                  options={"mip_rel_gap": 0.0, "presolve": True})
    if result.x is None:
        return None
    return np.round(result.x).reshape(layers, options).argmax(axis=1)


def allocate(sensitivity: np.ndarray, cost: np.ndarray, budget: float, fill: float = 0.0
             ) -> np.ndarray:
    """Choose one option j_l per layer l minimising sum_l S[l, j_l] subject to
    low <= sum_l C[l, j_l] <= budget, and among the minimisers take one that spends the most
    (a lexicographic objective). low = min(fill * budget, the largest spend <= budget that any
    allocation reaches), so a fill the layers' granularity cannot meet is relaxed to the
    fullest allocation there is, never to infeasibility. Returns the option per layer, (layers,).

    This is the multiple-choice knapsack problem (MCKP, NP-hard in general), written as a 0/1
    integer program: x[l, j] in {0, 1}, sum_j x[l, j] = 1 for every layer, budget rows on
    sum C x, minimise sum S x. It is solved exactly by HiGHS branch-and-bound
    (scipy.optimize.milp) with a zero optimality gap, in up to three solves: the largest spend
    (only when fill > 0), the least drift, then the largest spend among the allocations whose
    drift is no larger. Why an integer program and not the textbook dynamic program: the costs
    are bit or weight counts (10^5..10^7 per layer), so a DP over the budget would need a table
    that large or a rounding of the costs (losing exactness), while the program has only
    layers x options (about 10 x 16) binaries and solves in milliseconds.

    `sensitivity` and `cost` are (layers, options); an option a layer cannot take is NaN in
    `sensitivity`. Costs must be integers (they are counts): the budget checks are then exact.
    Raises InfeasibleBudget when even the cheapest choice exceeds the budget.
    """
    sens = np.asarray(sensitivity, dtype=np.float64)
    cost = np.asarray(cost, dtype=np.float64)
    if sens.ndim != 2 or sens.shape != cost.shape or sens.size == 0:
        raise ValueError(f"sensitivity and cost must be equal non-empty 2-D arrays; got "
                         f"{sens.shape} and {cost.shape}")
    if not 0.0 <= fill <= 1.0:
        raise ValueError(f"fill must be in [0, 1]; got {fill}")
    allowed = np.isfinite(sens)
    if not allowed.any(axis=1).all():
        raise ValueError("every layer needs at least one allowed (finite) option")
    cheapest = np.where(allowed, cost, np.inf).min(axis=1).sum()
    if cheapest > budget:
        raise InfeasibleBudget(f"budget {budget:g} is below the cheapest allocation "
                               f"{cheapest:g}")
    # Integer costs: an allocation fits `budget` exactly when it fits floor(budget). Giving the
    # solver the integer bound keeps its 1e-7 tolerance from admitting a cost just above a
    # budget such as 14874.999999999998 (found by hypothesis).
    budget = math.floor(budget)
    spend = np.where(allowed, cost, 0.0).ravel()[None, :]
    low = -np.inf
    if fill > 0:
        fullest = _solve(-np.where(allowed, cost, 0.0), allowed,
                         [LinearConstraint(spend, -np.inf, budget)])
        reachable = total(cost, fullest) if fullest is not None else cheapest
        low = math.ceil(min(fill * budget, reachable) - 1e-9)  # integer costs: exact
    within = LinearConstraint(spend, low, budget)
    # Scale the objective to [0, 1] so that tiny drifts (1e-9) are not lost in the tolerances.
    span = np.nanmax(np.abs(sens))
    scaled = np.where(allowed, sens / span if span > 0 else sens, 0.0)
    best = _solve(scaled, allowed, [within])
    if best is None:
        raise InfeasibleBudget(f"no allocation meets budget {budget:g}")
    # Tie-break: the largest spend among allocations at most the optimum's drift. HiGHS may
    # bend that row by its tolerance (1e-7 of the scaled objective), so a result that drifts
    # more than the optimum, measured exactly here, is refused.
    drift_row = LinearConstraint(scaled.ravel()[None, :], -np.inf, total(scaled, best) + 1e-9)
    fuller = _solve(-np.where(allowed, cost, 0.0), allowed, [within, drift_row])
    if fuller is not None and total(sens, fuller) <= total(sens, best) + 1e-12 * span:
        best = fuller
    if total(cost, best) > budget:  # never trust tolerances with a budget: exact for integers
        raise InfeasibleBudget(f"solver returned cost {total(cost, best):g} above budget "
                               f"{budget:g}")
    return best


def total(table: np.ndarray, choice: np.ndarray) -> float:
    """sum_l table[l, choice[l]]: the objective or the cost of an allocation."""
    return float(np.asarray(table)[np.arange(len(choice)), choice].sum())
