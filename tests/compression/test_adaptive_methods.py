"""quant_mixed and prune_adaptive: exact budgets, no empty layer, determinism, packed storage."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from compression.accounting import (
    bits_per_weight,
    layers_emptied,
    prunable_tensors,
    weight_sparsity,
)
from compression.adaptive.allocation import allocate, monotone_in_cost, total
from compression.adaptive.methods import (
    BIT_CHOICES,
    AdaptivePruneConfig,
    MixedQuantConfig,
)
from compression.adaptive.mixed import BUDGET_FILL
from compression.adaptive.sensitivity import (
    MAX_LAYER_SPARSITY,
    drift_table,
    layer_prune_count,
    probe_inputs,
    quant_variant,
)
from compression.api import apply_pipeline, compress
from compression.quantization import QuantConfig, load_compressed_state, save_compressed


def numels(model) -> dict[str, int]:
    return {name: getattr(m, p).numel() for name, m, p in prunable_tensors(model)}


@pytest.mark.parametrize("avg_bits", [2.5, 3.0, 4.0, 5.5])
def test_quant_mixed_achieved_bits_exact_and_within_budget(family, make_model, ctx, avg_bits):
    model = make_model(family)
    cm = compress(model, MixedQuantConfig(avg_bits=avg_bits), ctx)
    chosen, n = cm.notes["bits_per_layer"], numels(model)
    assert set(chosen) == set(n) == set(cm.quantized)
    assert all(cm.quantized[k].bits == b and b in BIT_CHOICES for k, b in chosen.items())
    expected = sum(n[k] * b for k, b in chosen.items()) / sum(n.values())
    assert bits_per_weight(cm) == pytest.approx(expected, abs=1e-12)
    assert bits_per_weight(cm) <= avg_bits


def test_quant_mixed_at_two_bits_is_uniform(family, make_model, ctx):
    # The only allocation within 2.0 bits: every layer at 2. (At 8.0 the solver may take 7 for
    # a layer whose measured drift is no larger at 7 than at 8: cheaper at equal objective.)
    cm = compress(make_model(family), MixedQuantConfig(avg_bits=2.0), ctx)
    assert set(cm.notes["bits_per_layer"].values()) == {2}


@pytest.mark.parametrize("bits", [3, 4])
def test_quant_mixed_milp_summed_drift_never_above_uniform(family, make_model, ctx, bits):
    # Uniform b bits is feasible at avg_bits = b (and meets the fill), so the MILP candidate's
    # summed drift, on the monotone fit of the table the solver sees, is at most uniform's.
    model = make_model(family)
    targets = prunable_tensors(model)
    z, x = probe_inputs(model, ctx.seed, ctx.train_x)
    sens = drift_table(model, targets, [quant_variant(b) for b in BIT_CHOICES], z, x)
    numel = np.array([getattr(m, p).numel() for _, m, p in targets], dtype=float)
    cost = numel[:, None] * np.array(BIT_CHOICES, dtype=float)[None, :]
    fitted = monotone_in_cost(sens, cost)
    choice = allocate(fitted, cost, bits * numel.sum(), fill=BUDGET_FILL)
    uniform = np.full(len(targets), BIT_CHOICES.index(bits))
    assert total(fitted, choice) <= total(fitted, uniform) * (1 + 1e-9)


def test_quant_mixed_matches_uniform_quantizer_per_layer(make_model, ctx):
    # Each layer's codes are exactly what `quant` (channel, mse, affine) gives at that width.
    model = make_model("vae")
    mixed = compress(model, MixedQuantConfig(avg_bits=4.0), ctx)
    for name, b in mixed.notes["bits_per_layer"].items():
        uniform = compress(model, QuantConfig(bits=b, granularity="channel", rounding="mse"), ctx)
        assert torch.equal(mixed.quantized[name].codes, uniform.quantized[name].codes)


def test_quant_mixed_stored_packed_round_trip(family, make_model, ctx, tmp_path):
    model = make_model(family)
    cm = compress(model, MixedQuantConfig(avg_bits=3.0), ctx)
    uniform = compress(model, QuantConfig(bits=3, granularity="channel", rounding="mse"), ctx)
    size = save_compressed(cm, tmp_path / "mixed.safetensors")
    # Same scales and zero points as uniform per channel, no more code bits: never larger than
    # uniform 3-bit beyond one ceil byte per tensor.
    assert size <= save_compressed(uniform, tmp_path / "uniform.safetensors") + len(cm.quantized)
    state = load_compressed_state(tmp_path / "mixed.safetensors")
    for name, qw in cm.quantized.items():
        assert torch.equal(state[name], qw.dequantize())


@pytest.mark.parametrize("method", ["mixed", "adaptive"])
def test_same_seed_same_choice(family, make_model, ctx, method):
    config = (MixedQuantConfig(avg_bits=3.0) if method == "mixed"
              else AdaptivePruneConfig(sparsity=0.8, finetune_steps=2))
    key = "bits_per_layer" if method == "mixed" else "sparsity_allocation"
    a = compress(make_model(family), config, ctx)
    b = compress(make_model(family), config, ctx)
    assert a.notes[key] == b.notes[key]
    for (name, t), (_, u) in zip(a.model.state_dict().items(), b.model.state_dict().items(),
                                 strict=True):
        assert torch.equal(t, u), name


@pytest.mark.parametrize("sparsity", [0.5, 0.9, 0.95])
def test_prune_adaptive_exact_sparsity_and_no_empty_layer(family, make_model, ctx, sparsity):
    model = make_model(family)
    cm = compress(model, AdaptivePruneConfig(sparsity=sparsity), ctx)
    n = numels(model)
    target = round(sparsity * sum(n.values()))
    assert weight_sparsity(cm.model) == pytest.approx(target / sum(n.values()), abs=1e-12)
    assert layers_emptied(cm.model) == [] and cm.notes["fully_pruned_tensors"] == []
    assert set(cm.notes["sparsity_allocation"]) == set(n)
    assert all(s <= MAX_LAYER_SPARSITY for s in cm.notes["sparsity_per_layer"].values())


def test_prune_adaptive_masks_hold_through_finetuning(make_model, ctx):
    model = make_model("gan")
    cm = compress(model, AdaptivePruneConfig(sparsity=0.9, finetune_steps=3, teacher_weight=1.0),
                  ctx)
    assert len(cm.notes["finetune_losses"]) == 3
    assert weight_sparsity(cm.model) == pytest.approx(
        round(0.9 * sum(numels(model).values())) / sum(numels(model).values()), abs=1e-12)


def test_prune_adaptive_beyond_the_cap_is_an_error(make_model, ctx):
    with pytest.raises(ValueError, match="capped at 0.98"):
        compress(make_model("gan"), AdaptivePruneConfig(sparsity=0.99), ctx)


def test_layer_prune_count_never_empties() -> None:
    assert layer_prune_count(1000, 0.9) == 900
    assert layer_prune_count(1000, 0.999) == 980  # the cap
    assert layer_prune_count(512, 0.98) == 501  # floor(0.98 * 512); round would give 502
    assert layer_prune_count(10, 0.98) == 9 and layer_prune_count(1, 0.98) == 0


def test_pipeline_prune_then_mixed_quant(family, make_model, ctx):
    model = make_model(family)
    cm = apply_pipeline(model, [AdaptivePruneConfig(sparsity=0.5), MixedQuantConfig(avg_bits=4)],
                        ctx)
    assert cm.method == "prune_adaptive+quant_mixed"
    assert bits_per_weight(cm) <= 4.0
    # A pruned zero stays exactly zero through quantization (0 is on every affine grid).
    assert weight_sparsity(cm.model) >= round(0.5 * sum(numels(model).values())) / sum(
        numels(model).values()) - 1e-12


def test_drift_table_restores_model_and_orders_bits(family, make_model, ctx):
    model = make_model(family)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    targets = prunable_tensors(model)
    z, x = probe_inputs(model, ctx.seed, ctx.train_x)
    identity = lambda w, m: w  # noqa: E731
    table = drift_table(model, targets, [identity, quant_variant(8), quant_variant(2)], z, x)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert (table[:, 0] == 0).all()
    assert (table[:, 1] <= table[:, 2]).all()  # 8 bits never drifts more than 2 bits here


@pytest.mark.parametrize("bad", [1.9, 8.5, True])
def test_mixed_config_rejects_bad_budget(bad) -> None:
    with pytest.raises(ValueError, match="avg_bits"):
        MixedQuantConfig(avg_bits=bad)
