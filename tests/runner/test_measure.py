"""What a cell measures, at the unit level: settings columns, packed bytes, latency/memory rows.

Latency rows are driven by injected block sequences: no assertion here depends on a real clock
(those live in benchmarks/test_bench_latency.py)."""
from __future__ import annotations

import json
import math
import os

import pytest
import torch
from conftest import TINY_TOML

import bench.metrics
import bench.metrics.idle
from bench.cell.latency import latency_rows
from bench.cell.size import packed_bytes
from bench.config.sweep import parse_config
from bench.metrics import LatencyResult
from bench.run.runner import settings_columns
from compression.accounting import prunable_tensors
from compression.api import CompressedModel, apply_pipeline, config_from_dict
from genmodels.models import MODELS

STEADY = (0.004, 0.004, 0.004, 0.004, 0.004)  # rel IQR 0
UNSTEADY = (0.010, 0.010, 0.012, 0.014, 0.014)  # IQR 4 ms / median 12 ms: rel IQR 1/3


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


@pytest.mark.parametrize("bits,scheme,extra", [(8, "affine", 5), (4, "symmetric", 4),
                                                (2, "affine", 5)])
def test_packed_bytes_of_low_bit_weights_in_closed_form(tiny_model, bits, scheme, extra):
    # Per-tensor: each quantized weight of n fp32 values (4n bytes) is stored as ceil(n*bits/8)
    # code bytes plus one fp32 scale (4 bytes) and, affine only, one uint8 zero point.
    base = packed_bytes(CompressedModel(model=tiny_model))
    quant = config_from_dict({"method": "quant", "bits": bits, "granularity": "tensor",
                              "rounding": "naive", "scheme": scheme})
    cm = apply_pipeline(tiny_model, [quant])
    sizes = [getattr(module, name).numel() for _, module, name in prunable_tensors(tiny_model)]
    assert sorted(cm.quantized) == sorted(key for key, _, _ in prunable_tensors(tiny_model))
    expected = base - sum(4 * n - math.ceil(n * bits / 8) - extra for n in sizes)
    assert packed_bytes(cm) == expected


class Injected:
    """Stands in for speedup_for_models: returns (base blocks, variant blocks) pairs in turn."""

    def __init__(self, *pairs):
        self.pairs, self.calls = list(pairs), []

    def __call__(self, baseline, variant, batch, device, threads, min_run_time):
        pair = self.pairs[len(self.calls)]
        base, var = (LatencyResult(device, threads, batch, blocks, 3) for blocks in pair)
        self.calls.append((device, batch))
        return base, var, base.p50_ms / var.p50_ms


def _rows(monkeypatch, injected, latency="", devices='["cpu"]', memory=False):
    text = (TINY_TOML.replace("max_rel_iqr = 1e9", latency)
            .replace('devices = ["auto"]', f"devices = {devices}")
            .replace("memory = false", f"memory = {str(memory).lower()}"))
    monkeypatch.setattr(bench.metrics, "speedup_for_models", injected)
    monkeypatch.setattr(os, "getloadavg", lambda: (1.25, 1.0, 0.5))
    torch.manual_seed(0)
    model = MODELS["gan"](image_shape=(1, 16, 16), latent_dim=4).eval()
    return latency_rows(parse_config(text), "abc", CompressedModel(model=model), model)


def test_a_steady_row_is_measured_once(monkeypatch):
    injected = Injected((STEADY, (0.010,) * 5))
    rows, samples = _rows(monkeypatch, injected)
    (row,) = rows
    assert injected.calls == [("cpu", 2)]
    assert row["status"] == "ok" and row["attempts"] == 1 and row["error"] == ""
    assert row["latency_p50_ms"] == pytest.approx(10.0) and row["latency_rel_iqr"] == 0.0
    assert row["speedup"] == pytest.approx(0.4) and row["load_avg_1m"] == 1.25
    assert [s["seconds_per_call"] for s in samples] == [0.010] * 5


def test_an_unsteady_row_is_re_measured_then_marked_unstable(monkeypatch):
    injected = Injected(*[(STEADY, UNSTEADY)] * 3, (STEADY, STEADY))
    rows, samples = _rows(monkeypatch, injected, "max_rel_iqr = 0.1\nmax_attempts = 3")
    (row,) = rows
    assert len(injected.calls) == row["attempts"] == 3 and row["status"] == "unstable"
    # Figures kept (only the status says they are not to be trusted for a speedup claim).
    assert row["latency_rel_iqr"] == pytest.approx(1 / 3)
    assert row["latency_p50_ms"] == pytest.approx(12.0) and row["speedup"] == pytest.approx(4 / 12)
    assert "relative IQR 0.333 > max_rel_iqr 0.1 after 3 measurements" in row["error"]
    assert len(samples) == 5


def test_an_unsteady_baseline_side_also_triggers_re_measurement(monkeypatch):
    injected = Injected((UNSTEADY, STEADY), (STEADY, STEADY))
    (row,), _ = _rows(monkeypatch, injected, "max_rel_iqr = 0.1")
    assert len(injected.calls) == row["attempts"] == 2 and row["status"] == "ok"


def test_wait_idle_waits_before_each_measurement_and_notes_its_bound(monkeypatch):
    waits = []

    def busy(max_busy_cores, timeout_s):
        waits.append((max_busy_cores, timeout_s))
        return bench.metrics.idle.IdleWait(timeout_s, 1.5, False)

    monkeypatch.setattr(bench.metrics.idle, "wait_for_idle", busy)
    injected = Injected((STEADY, UNSTEADY), (STEADY, STEADY))
    (row,), _ = _rows(monkeypatch, injected, "max_rel_iqr = 0.1\nwait_idle = true\n"
                                             "wait_idle_timeout_s = 7\nidle_busy_cores = 0.5")
    assert waits == [(0.5, 7.0)] * 2 and row["status"] == "ok"
    assert row["error"] == ("machine not idle after waiting 7 s (other processes used 1.50 "
                            "cores) before 2 of 2 measurements")


def test_a_failed_measurement_is_a_failed_row_and_cuda_is_skipped(monkeypatch):
    def oom(*args, **kwargs):
        raise RuntimeError("out of memory")

    rows, samples = _rows(monkeypatch, oom, devices='["cpu", "cuda"]')
    assert rows[0]["status"] == "failed" and "out of memory" in rows[0]["error"]
    assert samples == []
    if not torch.cuda.is_available():
        assert rows[1]["status"] == "skipped" and "speedup" not in rows[1]


def test_latency_rows_with_peak_memory(monkeypatch):
    injected = Injected((STEADY, STEADY))
    rows, _ = _rows(monkeypatch, injected, memory=True)
    assert rows[0]["status"] == "ok" and rows[0]["peak_mem_bytes"] > 0, rows
