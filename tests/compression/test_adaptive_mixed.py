"""quant_mixed's selection: joint-drift tables, candidates, the fill, never worse than uniform."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from compression.accounting import bits_per_weight, prunable_tensors
from compression.adaptive import MixedQuantConfig
from compression.adaptive.mixed import (
    BIT_CHOICES,
    BUDGET_FILL,
    JOINT_ROUNDS,
    MILP,
    UNIFORM,
    drift_at,
    joint_drift,
    select_bits,
)
from compression.adaptive.sensitivity import (
    channel_mse_quantize,
    drift_table,
    probe_inputs,
    quant_variant,
)
from compression.api import compress


def quant_options(model, ctx):
    targets = prunable_tensors(model)
    z, x = probe_inputs(model, ctx.seed, ctx.train_x)
    options = [[channel_mse_quantize(getattr(m, p), m, b).dequantize() for b in BIT_CHOICES]
               for _, m, p in targets]
    return targets, options, z, x


def test_drift_at_alone_equals_drift_table(family, make_model, ctx):
    # With no operating point, drift_at is the one-layer-alone table of the sensitivity module.
    model = make_model(family)
    targets, options, z, x = quant_options(model, ctx)
    expected = drift_table(model, targets, [quant_variant(b) for b in BIT_CHOICES], z, x)
    assert np.array_equal(drift_at(model, targets, options, None, z, x), expected)


def test_drift_at_operating_point_is_joint_drift_and_restores(family, make_model, ctx):
    # D[l, base[l]] is the drift of the base allocation itself, for every layer l; the model
    # comes back bit-identical from both functions.
    model = make_model(family)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    targets, options, z, x = quant_options(model, ctx)
    base = [(3 * i + 1) % len(BIT_CHOICES) for i in range(len(targets))]
    table = drift_at(model, targets, options, base, z, x)
    joint = joint_drift(model, targets, options, base, z, x)
    assert table[np.arange(len(targets)), base] == pytest.approx(joint, rel=1e-12, abs=0)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


@pytest.mark.parametrize("avg_bits", [3.0, 4.0])
def test_selection_never_drifts_more_than_uniform(family, make_model, ctx, avg_bits):
    # Uniform is a candidate at integer budgets and the least joint drift wins: the chosen
    # widths never drift more than uniform on the probe, measured independently here.
    model = make_model(family)
    sel = select_bits(model, avg_bits, ctx)
    names = [MILP, *(f"joint_{r}" for r in range(1, JOINT_ROUNDS + 1)), UNIFORM]
    assert list(sel.joint_drift) == names and sel.chosen in names
    assert sel.joint_drift[sel.chosen] == min(sel.joint_drift.values())
    targets, options, z, x = quant_options(model, ctx)
    chosen = [BIT_CHOICES.index(sel.bits[name]) for name, _, _ in targets]
    uniform = [BIT_CHOICES.index(int(avg_bits))] * len(targets)
    assert joint_drift(model, targets, options, chosen, z, x) <= joint_drift(
        model, targets, options, uniform, z, x)
    assert sel.avg_bits[UNIFORM] == avg_bits


@pytest.mark.parametrize("avg_bits", [3.0, 4.0])
def test_quant_mixed_fills_the_budget_within_two_percent(family, make_model, ctx, avg_bits):
    # At an integer budget uniform spends it exactly, so the fill is always reachable.
    cm = compress(make_model(family), MixedQuantConfig(avg_bits=avg_bits), ctx)
    assert BUDGET_FILL * avg_bits <= bits_per_weight(cm) <= avg_bits
    note = cm.notes["bits_selection"]
    assert bits_per_weight(cm) == pytest.approx(note["avg_bits"][note["chosen"]], abs=1e-4)


def test_uniform_left_out_when_it_misses_the_fill(make_model, ctx):
    # 3.5 bits: uniform 3 spends 86% of the budget, below the fill, so it is no candidate.
    sel = select_bits(make_model("vae"), 3.5, ctx)
    assert UNIFORM not in sel.joint_drift
    assert all(b <= 3.5 for b in sel.avg_bits.values())


def test_selection_note_deterministic(make_model, ctx):
    a = compress(make_model("rvae"), MixedQuantConfig(avg_bits=3.0), ctx).notes
    b = compress(make_model("rvae"), MixedQuantConfig(avg_bits=3.0), ctx).notes
    assert a["bits_selection"] == b["bits_selection"] and a["bits_per_layer"] == b["bits_per_layer"]


@pytest.mark.parametrize("target", [UNIFORM, MILP])
def test_a_score_decides_and_sees_each_candidates_weights(make_model, ctx, target):
    # A score that is 0 exactly on one candidate's weights and 1 elsewhere: that candidate wins
    # whatever the drifts say, every candidate is scored once with its own weights in place,
    # and the model comes back bit-identical.
    model = make_model("vae")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    plain = select_bits(model, 4.0, ctx)
    targets, options, _, _ = quant_options(model, ctx)
    wanted = ([BIT_CHOICES.index(4)] * len(targets) if target == UNIFORM
              else [BIT_CHOICES.index(plain.bits[name]) for name, _, _ in targets])
    seen = []

    def score(m):
        seen.append(1)
        at = [getattr(mod, p) for _, mod, p in targets]
        return 0.0 if all(torch.equal(w, options[i][j]) for i, (w, j)
                          in enumerate(zip(at, wanted, strict=True))) else 1.0

    sel = select_bits(model, 4.0, dataclasses.replace(ctx, score=score))
    assert sel.chosen_by == "score" and sel.score[sel.chosen] == 0.0
    assert [BIT_CHOICES.index(sel.bits[name]) for name, _, _ in targets] == wanted
    assert len(seen) == len(set(sel.joint_drift.values()))  # one call per distinct allocation
    assert set(sel.score) == set(sel.joint_drift) and sel.joint_drift == plain.joint_drift
    assert sel.note()["score"][sel.chosen] == 0.0 and plain.chosen_by == "joint_drift"
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
