"""Synthetic results directories (2 families x 3 methods x 3 seeds) from the schema, and a CLI
harness for the reporting subcommands (imported by name: conftest modules collide)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench import schema

FAMILIES = {"gan": {"fid": 20.0, "elbo": None}, "vae": {"fid": 30.0, "elbo": -100.0}}
# (method, settings, fid factor, ratio, latency factor): known trade-offs.
VARIANTS = [
    ("baseline", {}, 1.0, 1.0, 1.0),
    ("prune_magnitude", {"sparsity_target": 0.5, "scope": "global"}, 1.05, 1.8, 1.0),
    ("prune_magnitude", {"sparsity_target": 0.9, "scope": "global"}, 1.6, 6.0, 0.95),
    ("quant", {"bits": 8, "granularity": "channel", "rounding": "naive"}, 1.02, 3.9, 0.8),
    ("quant", {"bits": 4, "granularity": "channel", "rounding": "naive"}, 1.3, 7.5, 0.7),
]
SEEDS = [0, 1, 2]
BATCHES = [1, 64]
N_SAMPLES = 40
FLOORS = {"fid_proxy": 0.5, "kid_proxy": 0.0005, "precision": 0.98, "recall": 0.98,
          "density": 1.0, "coverage": 0.97}


def cell_id(family: str, index: int, seed: int) -> str:
    return f"{family}{index}s{seed}"


def write_results_dir(path: Path, seeds: list[int] = SEEDS, seed_noise: float = 0.01,
                      failed: bool = True, cuda: bool = False) -> Path:
    """Write results.csv, latency.csv, latency_samples.csv, run.json, samples/*.npz into path."""
    rng = np.random.default_rng(1234)
    path.mkdir(parents=True, exist_ok=True)
    (path / "samples").mkdir(exist_ok=True)
    results, latency, samples = [], [], []
    for family, spec in FAMILIES.items():
        for seed in seeds:
            base_ms = 2.0 * (1 + 0.1 * seed)
            for index, (method, settings, fid_factor, ratio, lat_factor) in enumerate(VARIANTS):
                cid = cell_id(family, index, seed)
                jitter = 1 + seed_noise * (seed - 1)
                row = {c: "" for c in schema.RESULTS_COLUMNS}
                row.update(cell_id=cid, dataset="mnist5k", family=family, method=method,
                           seed=seed, status=schema.STATUS_OK, execution="fp32", **settings)
                row.update(fid_proxy=spec["fid"] * fid_factor * jitter,
                           kid_proxy=0.01 * fid_factor * jitter, kid_proxy_std=0.001,
                           precision=0.9 / fid_factor, recall=0.8 / fid_factor,
                           params=100_000, size_file_bytes=400_000 / ratio,
                           compression_ratio=ratio, macs=1_000_000)
                if spec["elbo"] is not None:
                    row["elbo_nats"] = spec["elbo"] * fid_factor * jitter
                if failed and family == "vae" and index == 4 and seed == seeds[-1]:
                    row.update({c: "" for c in schema.QUALITY_COLUMNS + schema.SIZE_COLUMNS})
                    row.update(status=schema.STATUS_FAILED, error="FloatingPointError: NaN")
                    results.append(row)
                    continue
                results.append(row)
                for batch in BATCHES:
                    ms = base_ms * lat_factor * batch ** 0.5
                    draws = rng.normal(ms, 0.02 * ms, N_SAMPLES) / 1000.0
                    samples += [{"cell_id": cid, "device": "cpu", "batch_size": batch,
                                 "block": b, "seconds_per_call": s} for b, s in enumerate(draws)]
                    latency.append(_latency_row(cid, "cpu", batch, ms, 1 / lat_factor))
                    if cuda:
                        latency.append(_latency_row(cid, "cuda", batch, ms / 10, 1 / lat_factor))
                images = np.clip(rng.random((16, 1, 8, 8)) * fid_factor, 0, 1).astype(np.float32)
                np.savez(path / "samples" / f"{cid}.npz", images=images)
    pd.DataFrame(results, columns=schema.RESULTS_COLUMNS).to_csv(path / schema.RESULTS_FILE,
                                                                 index=False)
    pd.DataFrame(latency, columns=schema.LATENCY_COLUMNS).to_csv(path / schema.LATENCY_FILE,
                                                                 index=False)
    pd.DataFrame(samples, columns=schema.LATENCY_SAMPLE_COLUMNS).to_csv(
        path / schema.LATENCY_SAMPLES_FILE, index=False)
    run = {"schema_version": schema.SCHEMA_VERSION, "genbench_version": "0.1.0",
           "git_commit": "abc1234", "git_dirty": False, "config": {"name": "synthetic"},
           "environment": {"python": "3.11", "torch": "2.14.1", "threads": 1},
           "floors": FLOORS, "feature_net": {"id": "lenet", "test_accuracy": 0.99,
                                             "feature_dim": 64},
           "started_at": "2025-01-01T00:00:00Z", "finished_at": "2025-01-01T00:10:00Z",
           "preset": "synthetic"}
    (path / schema.RUN_FILE).write_text(json.dumps(run, indent=1))
    return path


def _latency_row(cid: str, device: str, batch: int, ms: float, speedup: float) -> dict:
    return {"cell_id": cid, "device": device, "batch_size": batch, "threads": 1,
            "execution": "fp32", "latency_p50_ms": ms, "latency_p90_ms": ms * 1.05,
            "latency_iqr_ms": ms * 0.02, "speedup": speedup, "throughput_sps": batch / ms * 1e3,
            "peak_mem_bytes": 1_000_000, "peak_mem_reserved_bytes": "", "status": "ok",
            "error": ""}


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """The reporting subcommands behind a parser wired as bench.cli wires them (exit 2 on
    InputError/ValueError with one line), so these tests do not depend on the runner's CLI."""
    import argparse

    from bench import compare, history, plots, report, tables

    parser = argparse.ArgumentParser(prog="genbench")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in (plots, tables, compare, history, report):
        module.register_cli(sub)
    args = parser.parse_args(argv)
    try:
        code = args.func(args)
    except ValueError as exc:
        print(f"genbench: error: {exc}", file=__import__("sys").stderr)
        code = 2
    captured = capsys.readouterr()
    return code, captured.out, captured.err
