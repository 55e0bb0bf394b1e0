"""The budgeted allocation solver: exact optimum against brute force, budget never exceeded."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compression.adaptive.allocation import InfeasibleBudget, allocate, total
from compression.adaptive.methods import give_back


def brute_force(sens: np.ndarray, cost: np.ndarray, budget: float) -> float | None:
    """Smallest objective over every one-option-per-layer choice within budget (None: none)."""
    best = None
    for choice in itertools.product(*(range(sens.shape[1]),) * sens.shape[0]):
        idx = np.array(choice)
        if not np.isfinite(sens[np.arange(len(idx)), idx]).all():
            continue
        if total(cost, idx) <= budget:
            value = total(sens, idx)
            best = value if best is None else min(best, value)
    return best


def instance(seed: int, layers: int, options: int) -> tuple[np.ndarray, np.ndarray, float]:
    rng = np.random.default_rng(seed)
    numel = rng.integers(1, 2000, size=layers)
    bits = np.arange(2, 2 + options)
    cost = (numel[:, None] * bits[None, :]).astype(float)
    # Drift falls with bits (roughly 4^-b) with layer-specific scales spanning decades.
    sens = rng.lognormal(0, 2, size=(layers, 1)) * 4.0 ** -bits[None, :] * rng.uniform(
        0.5, 1.5, size=(layers, options))
    budget = float(rng.uniform(cost.min(axis=1).sum(), cost.max(axis=1).sum()))
    return sens, cost, budget


@pytest.mark.parametrize("seed", range(12))
def test_allocate_matches_brute_force_optimum(seed: int) -> None:
    sens, cost, budget = instance(seed, layers=4, options=5)  # 625 choices
    choice = allocate(sens, cost, budget)
    assert total(cost, choice) <= budget
    assert total(sens, choice) == pytest.approx(brute_force(sens, cost, budget), rel=1e-6)


def test_allocate_known_optimum_beats_uniform() -> None:
    # Two equal-size layers, budget of 2 x 3 bits: layer 0 barely cares, layer 1 cares a lot.
    # Uniform (3, 3) costs 1 + 1 = 2; the optimum spends layer 0's bit on layer 1: (2, 4), 1.5.
    sens = np.array([[1.0, 0.5, 0.4], [10.0, 1.5, 0.5]])  # options: 2, 3, 4 bits
    cost = np.array([[2.0, 3.0, 4.0], [2.0, 3.0, 4.0]])
    assert allocate(sens, cost, 6.0).tolist() == [0, 2]


def test_allocate_respects_disallowed_options() -> None:
    sens = np.array([[0.0, np.nan], [1.0, 0.0]])  # layer 0 may not take option 1
    cost = np.array([[1.0, 0.0], [1.0, 2.0]])
    assert allocate(sens, cost, 3.0).tolist() == [0, 1]


def test_allocate_infeasible_budget_raises() -> None:
    with pytest.raises(InfeasibleBudget, match="cheapest allocation 4"):
        allocate(np.ones((2, 2)), np.array([[2.0, 3.0], [2.0, 3.0]]), 3.9)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10**6), layers=st.integers(1, 8), options=st.integers(1, 7),
       slack=st.floats(0, 1))
def test_budget_never_exceeded(seed: int, layers: int, options: int, slack: float) -> None:
    sens, cost, _ = instance(seed, layers, options)
    low, high = cost.min(axis=1).sum(), cost.max(axis=1).sum()
    budget = low + slack * (high - low)
    choice = allocate(sens, cost, budget)
    assert choice.shape == (layers,) and total(cost, choice) <= budget
    # Never worse than the cheapest choice, which is always feasible.
    assert total(sens, choice) <= total(sens, cost.argmin(axis=1)) * (1 + 1e-9) + 1e-12


@pytest.mark.parametrize(("pruned", "excess", "expected"), [
    ([100, 50, 50], 20, [90, 45, 45]),  # proportional
    ([3, 1], 1, [2, 1]),  # remainder 0.75 vs 0.25: the larger remainder gives back
    ([10, 10], 0, [10, 10]),
    ([5, 0], 3, [2, 0]),  # an unpruned layer stays unpruned
])
def test_give_back_exact_and_proportional(pruned, excess, expected) -> None:
    out = give_back(pruned, excess)
    assert out == expected and sum(pruned) - sum(out) == excess
    assert all(0 <= k <= p for k, p in zip(out, pruned, strict=True))
