"""Speed of the grid runner: the smoke preset's wall time and the runner's overhead per cell.

Run: .venv/bin/python -m pytest benchmarks/test_bench_grid.py --benchmark-only -s
"""
from __future__ import annotations

import json
import os
import time

import pytest

from bench.config.sweep import load_preset
from bench.results.store import ResultStore
from bench.run.grid import expand
from bench.run.sweep import run_sweep


def _cell_seconds(out) -> float:
    return sum(json.loads(p.read_text())["seconds"] for p in (out / "cells").glob("*.json"))


@pytest.mark.parametrize("preset", [
    "smoke",  # the budget: 5 min on 2 cores (measured 1 min 55 s cold)
    pytest.param("default", marks=pytest.mark.skipif(  # budget 30 min (measured 17 min 50 s)
        not os.environ.get("GENBENCH_BENCH_DEFAULT"), reason="set GENBENCH_BENCH_DEFAULT=1")),
])
def test_preset_wall_time(benchmark, tmp_path, monkeypatch, preset):
    """Cold run: an empty cache, so training, the feature net and every cell are timed."""
    monkeypatch.setenv("GENBENCH_CACHE", str(tmp_path / "cache"))
    config = load_preset(preset)
    summary = benchmark.pedantic(run_sweep, args=(config, tmp_path / preset),
                                 kwargs={"progress": False}, rounds=1, iterations=1)
    assert summary.failed == 0
    benchmark.extra_info.update(cells=summary.cells, wall_s=summary.seconds)


def test_overhead_per_cell(benchmark, tmp_path):
    """Warm caches (trained baselines, feature net), then --force: wall minus the cells' own
    measured seconds (compress + eval + latency + memory) is the runner's overhead (records,
    CSV regeneration, scheduling, evaluator set-up), divided by the number of cells."""
    config = load_preset("smoke")
    out = tmp_path / "smoke"
    run_sweep(config, out, progress=False)

    def forced() -> float:
        start = time.perf_counter()
        run_sweep(config, out, progress=False, force=True)
        return time.perf_counter() - start

    wall = benchmark.pedantic(forced, rounds=1, iterations=1)
    n = len(expand(config))
    overhead = (wall - _cell_seconds(out)) / n
    benchmark.extra_info.update(cells=n, wall_s=wall, overhead_per_cell_s=overhead)
    print(f"\nsmoke --force: {wall:.1f} s wall, {n} cells, overhead {overhead * 1e3:.0f} ms/cell")
    assert overhead < 2.0


@pytest.mark.parametrize("n_cells", [100, 1000])
def test_csv_regeneration(benchmark, tmp_path, n_cells):
    """Regenerating the three CSVs after each cell is O(cells): this is its cost at scale."""
    store = ResultStore(tmp_path)
    for i in range(n_cells):
        cid = f"{i:012x}"
        store.put({"cell_id": cid, "result": {"cell_id": cid, "status": "ok", "fid_proxy": 1.0},
                   "latency": [{"cell_id": cid, "device": "cpu", "batch_size": b} for b in (1, 64)],
                   "latency_samples": [{"cell_id": cid, "block": k, "seconds_per_call": 1e-3}
                                       for k in range(20)]})
    ids = [f"{i:012x}" for i in range(n_cells)]
    benchmark(store.regenerate, ids)


def test_expand_nightly(benchmark):
    config = load_preset("nightly")
    cells = benchmark(expand, config)
    assert len(cells) > 100
