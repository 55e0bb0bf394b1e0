"""Pipelines (prune -> quant, distill -> quant, ...): accounting composes through apply_pipeline."""
from __future__ import annotations

import struct

import pytest
import torch

from compression import apply_pipeline
from compression.accounting import bits_per_weight, prunable_tensors, weight_sparsity
from compression.api import METHODS, MethodNotApplicable, _ensure_methods_loaded
from compression.pruning import MagnitudePruneConfig, ThresholdPruneConfig
from compression.quantization.ptq import QuantConfig
from compression.quantization.storage import deployable_state, save_compressed

_ensure_methods_loaded()
QUANT_METHODS = {"quant", "qat", "quant_int8_kernel", "quant_wa"}
FIRST_STEPS = sorted(set(METHODS) - QUANT_METHODS)


def _zeros(model) -> dict[str, torch.Tensor]:
    return {name: getattr(m, p) == 0 for name, m, p in prunable_tensors(model)}


def _file_payload(cm) -> int:
    others = {k: v for k, v in deployable_state(cm.model).items() if k not in cm.quantized}
    return (sum(q.packed_bytes() for q in cm.quantized.values())
            + sum(v.numel() * v.element_size() for v in others.values()))


def test_seed_pipeline_threshold_prune_then_8_bits(make_model, family, tmp_path) -> None:
    model = make_model(family)
    pruned = apply_pipeline(model, [ThresholdPruneConfig(threshold=0.05)])
    cm = apply_pipeline(pruned, [QuantConfig.naive(8)])
    assert cm.method == "prune_threshold+quant"
    assert weight_sparsity(cm.model) == weight_sparsity(pruned.model) > 0
    for name, was_zero in _zeros(pruned.model).items():
        assert torch.equal(_zeros(cm.model)[name], was_zero), name  # exactly the same zeros
    assert bits_per_weight(cm) == 8
    path = tmp_path / "m.safetensors"
    size = save_compressed(cm, path)
    header = 8 + struct.unpack("<Q", path.read_bytes()[:8])[0]
    assert size == header + _file_payload(cm)


def test_sparse_4_bit_file_is_as_large_as_dense(make_model, family, tmp_path) -> None:
    # The packed format stores dense codes: sparsity does not shrink the file (reported as is).
    model = make_model(family)
    dense = apply_pipeline(model, [QuantConfig(bits=4)])
    sparse = apply_pipeline(model, [MagnitudePruneConfig(sparsity=0.9), QuantConfig(bits=4)])
    assert weight_sparsity(sparse.model) >= 0.85
    assert _file_payload(sparse) == _file_payload(dense)


def test_prune_finetune_then_quant_keeps_sparsity(make_model, ctx) -> None:
    model = make_model("vae")
    cm = apply_pipeline(model, [MagnitudePruneConfig(sparsity=0.5, finetune_steps=3, lr=1e-3),
                                QuantConfig(bits=4, scheme="symmetric")], ctx)
    assert weight_sparsity(cm.model) >= 0.5 - 1e-6
    assert bits_per_weight(cm) == 4


@pytest.mark.parametrize("first", FIRST_STEPS)
def test_any_method_then_quant_composes(make_model, ctx, first) -> None:
    """Registered non-quantization methods (pruning, structured pruning, distillation) followed by
    4-bit PTQ: the codes describe the final model's weights, shapes included (students, shrunk
    layers), and the sparsity the first step produced survives."""
    model = make_model("vae")
    config = METHODS[first].config_cls.example()
    try:
        config.check_applicable(model)
    except MethodNotApplicable as exc:  # e.g. "steps": tests/compression/test_diffusion_steps.py
        pytest.skip(str(exc))
    step = apply_pipeline(model, [config], ctx)
    cm = apply_pipeline(step, [QuantConfig(bits=4)], ctx)
    assert cm.method == f"{first}+quant"
    state = cm.model.state_dict()
    assert sorted(cm.quantized) == sorted(n for n, _, _ in prunable_tensors(cm.model))
    for name, qw in cm.quantized.items():
        assert qw.shape == tuple(state[name].shape)
        assert torch.equal(state[name], qw.dequantize())
    assert weight_sparsity(cm.model) >= weight_sparsity(step.model) - 1e-9
    assert bits_per_weight(cm) == 4
