"""A synthetic results directory with runtime rows and known speedups (imported by name by the
deployment tests): family gan (baseline + one structured-pruning cell) and gan_w2 (gan at width
2, baseline only), runtimes eager, compiled, onnxruntime and onnxruntime_int8, batches 1 and 64.

Known answers built in (speedups against the eager baseline, timed interleaved):
- gan baseline: compiled 1.25 / 1.5 (batch 1 / 64), onnxruntime 2.0 / UNSTABLE 9.0 (must never
  become the reference), int8 3.0 / 2.4 (changes outputs: never a reference). Best fp32: batch 1
  onnxruntime (2.0), batch 64 compiled (1.5).
- gan pruned: eager 1.6 / 1.8, compiled 2.0 / 2.7, onnxruntime UNSTABLE / skipped, int8 4.0 /
  failed.
- int8 rows (results rows of their own): FID-proxy change +2 [-1, +5] (baseline: within noise)
  and +30 [+20, +40] (pruned); files 100 kB and 50 kB against the 400 kB fp32 baseline file.
- speedup noise of the gan eager baseline: 1.01 (batch 1), 0.99 (batch 64): f = 1 / 0.99.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from bench.results import schema

RUNTIMES = ("eager", "compiled", "onnxruntime", "onnxruntime_int8")
UNSTABLE_SPEEDUP = 9.0
# (family, cell index) -> runtime -> batch -> (speedup or None for a failed/skipped row, status)
SPEEDUPS = {
    ("gan", 0): {"eager": {1: (1.01, "ok"), 64: (0.99, "ok")},
                 "compiled": {1: (1.25, "ok"), 64: (1.5, "ok")},
                 "onnxruntime": {1: (2.0, "ok"), 64: (UNSTABLE_SPEEDUP, "unstable")},
                 "onnxruntime_int8": {1: (3.0, "ok"), 64: (2.4, "ok")}},
    ("gan", 1): {"eager": {1: (1.6, "ok"), 64: (1.8, "ok")},
                 "compiled": {1: (2.0, "ok"), 64: (2.7, "ok")},
                 "onnxruntime": {1: (3.2, "unstable"), 64: (None, "skipped")},
                 "onnxruntime_int8": {1: (4.0, "ok"), 64: (None, "failed")}},
    ("gan_w2", 0): {"eager": {1: (1.0, "ok"), 64: (1.0, "ok")},
                    "onnxruntime": {1: (1.5, "ok"), 64: (1.1, "ok")}},
}
EAGER_P50 = {("gan", 1): 2.0, ("gan", 64): 40.0, ("gan_w2", 1): 5.0, ("gan_w2", 64): 150.0}
MACS = {("gan", 0): 1_000_000, ("gan", 1): 300_000, ("gan_w2", 0): 4_000_000}
SKIP_REASON = "onnxruntime: variant not expressible"
INT8 = {("gan", 0): (2.0, -1.0, 5.0, 100_000), ("gan", 1): (30.0, 20.0, 40.0, 50_000)}
FAMILIES = {"gan": {}, "gan_w2": {"model": "gan", "width": 2.0}}
FP32_OPS = {0: ["ConvTranspose x1"], 1: ["ConvTranspose x1", "Tanh x1"]}  # per cell index


def cell_id(family: str, index: int) -> str:
    return f"{family}-{index}"


def _result(family: str, index: int, runtime: str) -> dict:
    row = {c: "" for c in schema.RESULTS_COLUMNS}
    method = "baseline" if index == 0 else "prune_structured"
    steps = [] if index == 0 else [{"method": method, "sparsity": 0.5}]
    row.update(cell_id=cell_id(family, index), dataset="mnist5k", family=family, method=method,
               seed=0, status="ok", execution="dense" if index == 0 else "shrunk",
               pipeline_json=json.dumps(steps), runtime=runtime, fid_proxy=50.0 + 10 * index,
               macs=MACS[(family, index)], size_file_bytes=400_000 // (1 + index))
    if index:
        row.update(sparsity_target=0.5, fid_proxy_delta=10.0, fid_proxy_delta_ci_low=6.0,
                   fid_proxy_delta_ci_high=14.0)
    if runtime == "onnxruntime_int8":
        delta, low, high, size = INT8[(family, index)]
        row.update(fid_proxy_delta=delta, fid_proxy_delta_ci_low=low,
                   fid_proxy_delta_ci_high=high, size_file_bytes=size, int8_mac_fraction=0.96,
                   execution="ort-int8-qdq", fp32_ops=json.dumps(FP32_OPS[index]))
    return row


def write_synthetic_run(path: Path) -> Path:
    """Write results.csv, latency.csv, latency_samples.csv and run.json into `path`."""
    path.mkdir(parents=True, exist_ok=True)
    results, latency, noise = [], [], []
    for (family, index), runtimes in SPEEDUPS.items():
        results.append(_result(family, index, "eager"))
        if "onnxruntime_int8" in runtimes:
            results.append(_result(family, index, "onnxruntime_int8"))
        for runtime, batches in runtimes.items():
            for batch, (speedup, status) in batches.items():
                row = {c: "" for c in schema.LATENCY_COLUMNS}
                row.update(cell_id=cell_id(family, index), device="cpu", batch_size=batch,
                           threads=2, execution=runtime, status=status, runtime=runtime)
                if speedup is not None:
                    row.update(speedup=speedup, latency_p50_ms=EAGER_P50[(family, batch)]
                               / speedup, latency_rel_iqr=0.3 if status == "unstable" else 0.02)
                if status == "skipped":
                    row["error"] = SKIP_REASON
                latency.append(row)
                if index == 0 and runtime == "eager":
                    noise.append({"family": family, "seed": 0, "device": "cpu",
                                  "batch_size": batch, "speedup": speedup, "status": "ok"})
    columns = list(dict.fromkeys(schema.RESULTS_COLUMNS + ["runtime"]))
    pd.DataFrame(results, columns=columns).to_csv(path / schema.RESULTS_FILE, index=False)
    columns = list(dict.fromkeys(schema.LATENCY_COLUMNS + ["runtime"]))
    pd.DataFrame(latency, columns=columns).to_csv(path / schema.LATENCY_FILE, index=False)
    pd.DataFrame([], columns=schema.LATENCY_SAMPLE_COLUMNS).to_csv(
        path / schema.LATENCY_SAMPLES_FILE, index=False)
    run = {"schema_version": schema.SCHEMA_VERSION, "preset": "synthetic-deployment",
           "config": {"name": "deploy", "eval": {"n_samples": 500}, "families": FAMILIES},
           "speedup_noise": noise, "floors": {}, "feature_net": {"id": "lenet"}}
    (path / schema.RUN_FILE).write_text(json.dumps(run, indent=1))
    return path
