"""Budgeted per-layer allocation: a multiple-choice knapsack solved exactly with scipy's MILP."""
from __future__ import annotations

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp


class InfeasibleBudget(ValueError):
    """No choice of one option per layer meets the budget."""


def allocate(sensitivity: np.ndarray, cost: np.ndarray, budget: float) -> np.ndarray:
    """Choose one option j_l per layer l minimising sum_l S[l, j_l] subject to
    sum_l C[l, j_l] <= budget. Returns the chosen option index per layer, shape (layers,).

    This is the multiple-choice knapsack problem (MCKP, NP-hard in general), written as a 0/1
    integer program: x[l, j] in {0, 1}, sum_j x[l, j] = 1 for every layer, sum C x <= budget,
    minimise sum S x. It is solved exactly by HiGHS branch-and-bound (scipy.optimize.milp) with
    a zero optimality gap. Why an integer program and not the textbook dynamic program: the
    costs here are bit or weight counts (10^5..10^7 per layer), so a DP over the budget would
    need a table that large or a rounding of the costs (losing exactness), while the program
    has only layers x options (about 10 x 16) binaries and solves in milliseconds.

    `sensitivity` and `cost` are (layers, options); an option that a layer cannot take is NaN in
    `sensitivity`. Costs must be integers for the budget check to be exact (they are counts).
    Raises InfeasibleBudget when even the cheapest choice exceeds the budget.
    """
    sens = np.asarray(sensitivity, dtype=np.float64)
    cost = np.asarray(cost, dtype=np.float64)
    if sens.ndim != 2 or sens.shape != cost.shape or sens.size == 0:
        raise ValueError(f"sensitivity and cost must be equal non-empty 2-D arrays; got "
                         f"{sens.shape} and {cost.shape}")
    allowed = np.isfinite(sens)
    if not allowed.any(axis=1).all():
        raise ValueError("every layer needs at least one allowed (finite) option")
    cheapest = np.where(allowed, cost, np.inf).min(axis=1).sum()
    if cheapest > budget:
        raise InfeasibleBudget(f"budget {budget:g} is below the cheapest allocation "
                               f"{cheapest:g}")
    layers, options = sens.shape
    # Scale the objective to [0, 1] so that tiny drifts (1e-9) are not lost in the tolerances.
    span = np.nanmax(np.abs(sens))
    objective = np.where(allowed, sens / span if span > 0 else sens, 0.0).ravel()
    one_per_layer = np.kron(np.eye(layers), np.ones(options))  # (layers, layers*options)
    constraints = [LinearConstraint(one_per_layer, 1, 1),
                   LinearConstraint(np.where(allowed, cost, 0.0).ravel()[None, :], -np.inf,
                                    budget)]
    upper = allowed.ravel().astype(np.float64)  # a disallowed option is pinned to 0
    result = milp(objective, integrality=np.ones(layers * options), bounds=Bounds(0, upper),
                  constraints=constraints, options={"mip_rel_gap": 0.0, "presolve": True})
    if result.x is None:
        raise InfeasibleBudget(f"no allocation meets budget {budget:g} ({result.message})")
    choice = np.round(result.x).reshape(layers, options).argmax(axis=1)
    spent = cost[np.arange(layers), choice].sum()
    if spent > budget:  # never trust tolerances with a budget: integer costs make this exact
        raise InfeasibleBudget(f"solver returned cost {spent:g} above budget {budget:g}")
    return choice


def total(table: np.ndarray, choice: np.ndarray) -> float:
    """sum_l table[l, choice[l]]: the objective or the cost of an allocation."""
    return float(np.asarray(table)[np.arange(len(choice)), choice].sum())
