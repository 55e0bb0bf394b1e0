"""What a cell measures, at the unit level: settings columns, packed bytes, latency/memory rows."""
from __future__ import annotations

import json

import pytest
import torch
from conftest import TINY_TOML

from bench.config import parse_config
from bench.cell_latency import latency_rows
from bench.cell_size import packed_bytes
from bench.runner import settings_columns
from compression.api import CompressedModel, apply_pipeline, config_from_dict
from genmodels.models import MODELS


@pytest.fixture(params=sorted(MODELS))
def tiny_model(request):
    torch.manual_seed(0)
    return MODELS[request.param](image_shape=(1, 16, 16), latent_dim=4).eval()


def test_settings_split_into_columns_and_json():
    row = settings_columns({"sparsity_target": 0.5, "scope": "global", "lr": 1e-4,
                            "iterations": 2})
    assert row["sparsity_target"] == 0.5 and row["scope"] == "global"
    assert json.loads(row["settings_json"]) == {"iterations": 2, "lr": 1e-4}
    assert settings_columns({})["settings_json"] == ""


def test_packed_bytes_of_an_fp32_model_is_4_bytes_per_value(tiny_model):
    scope = tiny_model.deployable()
    values = sum(p.numel() for p in scope.parameters()) + sum(
        b.numel() for b in scope.buffers() if b.dtype.is_floating_point)
    int_buffers = sum(b.numel() * b.element_size() for b in scope.buffers()
                      if not b.dtype.is_floating_point)  # BatchNorm's num_batches_tracked
    assert packed_bytes(CompressedModel(model=tiny_model)) == 4 * values + int_buffers


def test_packed_bytes_of_8_bit_weights(tiny_model):
    base = packed_bytes(CompressedModel(model=tiny_model))
    quant = config_from_dict({"method": "quant", "bits": 8, "granularity": "tensor",
                              "rounding": "naive"})
    cm = apply_pipeline(tiny_model, [quant])
    weights = sum(q.dequantize().numel() for q in cm.quantized.values())
    overhead = sum(q.packed_bytes() for q in cm.quantized.values()) - weights  # scales etc.
    assert cm.quantized and 0 <= overhead < 64 * len(cm.quantized)
    # Each quantized fp32 weight (4 bytes) becomes one byte plus its few scale bytes.
    assert packed_bytes(cm) == base - 3 * weights + overhead


def test_latency_rows_with_peak_memory_and_skipped_cuda():
    config = parse_config(TINY_TOML.replace("memory = false", "memory = true"))
    torch.manual_seed(0)
    model = MODELS["vae"](image_shape=(1, 16, 16), latent_dim=4).eval()
    rows, samples = latency_rows(config, "abc", CompressedModel(model=model), model)
    cpu = [r for r in rows if r["device"] == "cpu"]
    assert len(cpu) == 1 and cpu[0]["status"] == "ok", cpu
    assert cpu[0]["peak_mem_bytes"] > 0 and cpu[0]["latency_p50_ms"] > 0
    assert 0.2 < cpu[0]["speedup"] < 5  # the same model against itself
    assert len(samples) >= 5 and all(s["seconds_per_call"] > 0 for s in samples)
    cuda = [r for r in rows if r["device"] == "cuda"]
    if not torch.cuda.is_available():
        assert [r["status"] for r in cuda] == ["skipped"]
