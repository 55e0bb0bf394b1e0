"""The budgeted allocation solver: exact optimum against brute force, budget never exceeded."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compression.adaptive.allocation import InfeasibleBudget, allocate, monotone_in_cost, total
from compression.adaptive.methods import give_back

# Measured one-layer drifts of the default preset's VAE (seed 0, 4 significant digits) at
# 2..8 bits; layers enc1, enc2, enc_fc, dec_fc, dec1, dec2 of 512, 32768, 100352, 50176,
# 32768, 512 weights. The summed-drift optimum at 3.0 bits leaves 4% of the budget unused
# (2.873 bits per weight): no single one-bit step of a large layer fits in what is left.
VAE_DRIFT = np.array([
    [7.759e-04, 2.294e-04, 2.037e-05, 1.040e-05, 1.392e-06, 1.731e-07, 8.512e-08],
    [3.302e-04, 7.753e-05, 2.940e-05, 7.594e-06, 2.812e-06, 4.606e-07, 1.331e-07],
    [2.561e-03, 3.795e-04, 9.700e-05, 2.671e-05, 1.161e-05, 2.613e-06, 5.814e-07],
    [3.903e-03, 8.437e-04, 1.790e-04, 4.356e-05, 1.132e-05, 2.729e-06, 6.905e-07],
    [3.550e-03, 4.308e-04, 1.117e-04, 3.085e-05, 8.034e-06, 2.212e-06, 5.380e-07],
    [2.522e-03, 1.474e-03, 2.902e-04, 1.004e-04, 1.514e-05, 6.551e-06, 7.941e-07]])
VAE_NUMEL = np.array([512, 32768, 100352, 50176, 32768, 512])


def feasible(sens: np.ndarray, cost: np.ndarray, budget: float, low: float = -np.inf
             ) -> list[tuple[float, float]]:
    """(objective, spend) of every one-option-per-layer choice with low <= spend <= budget."""
    found = []
    for choice in itertools.product(*(range(sens.shape[1]),) * sens.shape[0]):
        idx = np.array(choice)
        if np.isfinite(sens[np.arange(len(idx)), idx]).all() and low <= total(cost, idx) <= budget:
            found.append((total(sens, idx), total(cost, idx)))
    return found


def brute_force(sens: np.ndarray, cost: np.ndarray, budget: float) -> float | None:
    """Smallest objective over every one-option-per-layer choice within budget (None: none)."""
    found = feasible(sens, cost, budget)
    return min(v for v, _ in found) if found else None


def brute_force_lexicographic(sens: np.ndarray, cost: np.ndarray, budget: float, fill: float
                              ) -> tuple[float, float]:
    """(least objective, largest spend among the choices at that objective) with spend in
    [min(fill * budget, largest spend <= budget), budget]: `allocate`'s specification."""
    reachable = max(c for _, c in feasible(sens, cost, budget))
    found = feasible(sens, cost, budget, low=min(fill * budget, reachable) if fill else -np.inf)
    best = min(v for v, _ in found)
    return best, max(c for v, c in found if v == best)


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


@pytest.mark.parametrize("fill", [0.0, 0.9, 0.98, 1.0])
@pytest.mark.parametrize("seed", range(10))
def test_allocate_optimal_then_fullest_against_brute_force(seed: int, fill: float) -> None:
    # Integer drifts from a small range: many exact ties, so the tie-break decides; gaps of
    # at least 1 in 20 are far above the solver's tolerances.
    rng = np.random.default_rng(seed)
    layers, options = 4, 4
    cost = (rng.integers(1, 9, size=(layers, 1)) * np.arange(2, 2 + options)).astype(float)
    sens = np.sort(rng.integers(0, 20, size=(layers, options)), axis=1)[:, ::-1].astype(float)
    budget = float(rng.integers(cost.min(axis=1).sum(), cost.max(axis=1).sum() + 1))
    choice = allocate(sens, cost, budget, fill=fill)
    best, fullest = brute_force_lexicographic(sens, cost, budget, fill)
    assert total(cost, choice) <= budget
    assert (total(sens, choice), total(cost, choice)) == (best, fullest)


def test_allocate_spends_the_budget_on_ties() -> None:
    # Every option drifts the same: the tie-break takes the most expensive allocation in budget.
    cost = np.array([[2.0, 3.0, 4.0], [4.0, 6.0, 8.0]])
    assert allocate(np.ones((2, 3)), cost, 11.0).tolist() == [1, 2]
    assert allocate(np.ones((2, 3)), cost, 12.0).tolist() == [2, 2]


def test_allocate_fill_reaches_98_percent_on_the_vae() -> None:
    # The summed-drift optimum alone spends 2.873 of 3 bits per weight (4% short); with the
    # 98% fill the allocation is within 2% of the budget, never above it.
    cost = (VAE_NUMEL[:, None] * np.arange(2, 9)[None, :]).astype(float)
    budget = 3.0 * VAE_NUMEL.sum()
    assert total(cost, allocate(VAE_DRIFT, cost, budget)) / VAE_NUMEL.sum() < 2.9
    spent = total(cost, allocate(VAE_DRIFT, cost, budget, fill=0.98))
    assert 0.98 * budget <= spent <= budget


def test_allocate_fill_beyond_reach_is_relaxed_not_infeasible() -> None:
    # Costs 10 and 20 per layer, budget 25: the fullest reachable spend is 20 < 0.98 * 25.
    cost = np.array([[10.0, 20.0], [0.0, 0.0]])
    choice = allocate(np.array([[1.0, 0.0], [0.0, 0.0]]), cost, 25.0, fill=0.98)
    assert total(cost, choice) == 20.0


def test_monotone_in_cost_known_answers() -> None:
    # Pool adjacent violators: [3, 1, 2, 0.5] -> the violating pair (1, 2) pooled at 1.5.
    sens = np.array([[3.0, 1.0, 2.0, 0.5]])
    assert monotone_in_cost(sens, np.array([[1, 2, 3, 4]])).tolist() == [[3.0, 1.5, 1.5, 0.5]]
    # Costs falling along the row (pruning: more sparsity keeps fewer weights): fitted in the
    # cost order, so the drift must rise along the row.
    rising = monotone_in_cost(np.array([[0.0, 2.0, 1.0, 4.0]]), np.array([[4, 3, 2, 1]]))
    assert rising.tolist() == [[0.0, 1.5, 1.5, 4.0]]
    with_nan = monotone_in_cost(np.array([[2.0, np.nan, 3.0]]), np.array([[1, 2, 3]]))
    assert np.isnan(with_nan[0, 1]) and with_nan[0, [0, 2]].tolist() == [2.5, 2.5]


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10**6), layers=st.integers(1, 6), options=st.integers(1, 7))
def test_monotone_in_cost_is_monotone_and_keeps_monotone_rows(seed, layers, options) -> None:
    sens, cost, _ = instance(seed, layers, options)
    fitted = monotone_in_cost(sens, cost)
    assert (np.diff(fitted, axis=1) <= 1e-15 * np.abs(fitted[:, :-1])).all()
    already = np.sort(sens, axis=1)[:, ::-1]
    assert np.allclose(monotone_in_cost(already, cost), already, rtol=1e-12, atol=0)


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
