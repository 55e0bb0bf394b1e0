"""Synthetic results directories (2 families x 5 variants x 3 seeds) with every schema-2 column,
and a CLI harness for the reporting subcommands (imported by name: conftest modules collide).

Known answers built in: every quality metric has a 95% interval of +/-2% (CI_REL); the paired
delta against the same-seed baseline has a half-width of 4% of the baseline (DELTA_REL), so the
8-bit quant cells (2% worse) are within noise and every other variant is not; the gan 90% pruned
cell is collapsed; with unstable=True the gan 4-bit cell of the last seed has an unstable CPU row
at batch 64 whose wild speedup (UNSTABLE_SPEEDUP) must never be used."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.results import schema

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
EVAL_N_SAMPLES = 1000
FLOORS = {"fid_proxy": 0.5, "kid_proxy": 0.0005, "precision": 0.98, "recall": 0.98,
          "density": 1.0, "coverage": 0.97}
FLOORS_SPREAD = {"fid_proxy": 0.05, "kid_proxy": 0.0002, "precision": 0.004, "recall": 0.004,
                 "density": 0.02, "coverage": 0.005}
CI_REL, DELTA_REL = 0.02, 0.04
COLLAPSED = ("gan", 2)  # (family, variant index)
UNSTABLE = ("gan", 4, 64)  # (family, variant index, batch) of the last seed
UNSTABLE_SPEEDUP = 0.3
BASELINE_NOISE = 0.01  # the baseline's speedup against itself: 1 + 0.01 (seed - 1)


def cell_id(family: str, index: int, seed: int) -> str:
    return f"{family}{index}s{seed}"


def _quality(spec: dict, fid_factor: float, jitter: float) -> dict[str, float]:
    values = {"fid_proxy": spec["fid"] * fid_factor * jitter,
              "kid_proxy": 0.01 * fid_factor * jitter, "precision": 0.9 / fid_factor,
              "recall": 0.8 / fid_factor, "density": 1.0 / fid_factor,
              "coverage": 0.95 / fid_factor, "output_drift_mse": 0.01 * (fid_factor - 1)}
    if spec["elbo"] is not None:
        values.update(elbo_nats=spec["elbo"] * fid_factor * jitter,
                      nll_iwae_nats=-spec["elbo"] * fid_factor * jitter - 2.0,
                      recon_bce_nats=-0.8 * spec["elbo"] * fid_factor * jitter)
    return values


def _intervals(values: dict[str, float], base: dict[str, float] | None) -> dict[str, object]:
    """ci_low/ci_high of every metric; delta columns against the same-seed baseline's values."""
    out: dict[str, object] = {}
    for metric, value in values.items():
        out[metric + "_ci_low"] = value - CI_REL * abs(value)
        out[metric + "_ci_high"] = value + CI_REL * abs(value)
        if base is None or metric not in schema.DELTA_METRICS:
            continue
        delta, half = value - base[metric], DELTA_REL * abs(base[metric])
        out.update({metric + "_delta": delta, metric + "_delta_ci_low": delta - half,
                    metric + "_delta_ci_high": delta + half,
                    metric + "_delta_significant": not delta - half <= 0 <= delta + half})
    return out


def write_results_dir(path: Path, seeds: list[int] = SEEDS, seed_noise: float = 0.01,
                      failed: bool = True, cuda: bool = False, unstable: bool = False) -> Path:
    """Write results.csv, latency.csv, latency_samples.csv, run.json, samples/*.npz into path."""
    rng = np.random.default_rng(1234)
    path.mkdir(parents=True, exist_ok=True)
    (path / "samples").mkdir(exist_ok=True)
    results, latency, samples, noise = [], [], [], []
    for family, spec in FAMILIES.items():
        for seed in seeds:
            base_ms = 2.0 * (1 + 0.1 * seed)
            jitter = 1 + seed_noise * (seed - 1)
            base_values = _quality(spec, 1.0, jitter)
            for index, (method, settings, fid_factor, ratio, lat_factor) in enumerate(VARIANTS):
                cid = cell_id(family, index, seed)
                row = {c: "" for c in schema.RESULTS_COLUMNS}
                row.update(cell_id=cid, dataset="mnist5k", family=family, method=method,
                           seed=seed, status=schema.STATUS_OK, execution="fp32", **settings)
                row["pipeline_json"] = json.dumps([{"method": method, **settings}])
                values = _quality(spec, fid_factor, jitter)
                row.update(values, kid_proxy_std=0.001)
                row.update(_intervals(values, None if method == "baseline" else base_values))
                collapsed = (family, index) == COLLAPSED
                row.update(collapsed=collapsed, latent_std=3e-8 if collapsed else 0.2)
                notes = {}
                if collapsed:
                    notes = {"collapsed": True, "fully_pruned_tensors": ["deconv2.weight"]}
                elif method == "quant":
                    notes = {"simulated_layers": ["fc", "deconv1", "deconv2"]}
                row["notes"] = json.dumps(notes) if notes else ""
                sparsity = settings.get("sparsity_target", 0.0)
                row.update(params=100_000, nonzero_params=int(100_000 * (1 - sparsity)),
                           sparsity=sparsity, sparsity_model=0.98 * sparsity,
                           bits_per_weight=settings.get("bits", 32),
                           size_packed_bytes=390_000 / ratio, size_file_bytes=400_000 / ratio,
                           compression_ratio=ratio, macs=1_000_000,
                           macs_effective=1_000_000 * (1 - sparsity), compress_seconds=1.5,
                           eval_seconds=4.0)
                if failed and family == "vae" and index == 4 and seed == seeds[-1]:
                    row.update({c: "" for c in schema.QUALITY_COLUMNS + schema.INTERVAL_COLUMNS
                                + schema.COLLAPSE_COLUMNS + schema.SIZE_COLUMNS})
                    row.update(status=schema.STATUS_FAILED, error="FloatingPointError: NaN")
                    results.append(row)
                    continue
                results.append(row)
                for batch in BATCHES:
                    ms = base_ms * lat_factor * batch ** 0.5
                    draws = rng.normal(ms, 0.02 * ms, N_SAMPLES) / 1000.0
                    samples += [{"cell_id": cid, "device": "cpu", "batch_size": batch,
                                 "block": b, "seconds_per_call": s} for b, s in enumerate(draws)]
                    shaky = unstable and (family, index, batch) == UNSTABLE and seed == seeds[-1]
                    # The baseline is timed against itself: its speedup is the noise.
                    speedup = 1 / lat_factor if index else 1 + BASELINE_NOISE * (seed - 1)
                    latency.append(_latency_row(cid, "cpu", batch, ms, speedup, shaky))
                    if not index:
                        noise.append({"family": family, "seed": seed, "device": "cpu",
                                      "batch_size": batch, "speedup": speedup,
                                      "rel_iqr": 0.02, "status": schema.STATUS_OK})
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
           "git_commit": "abc1234", "git_dirty": False,
           "config": {"name": "synthetic", "eval": {"n_samples": EVAL_N_SAMPLES}},
           "environment": {"python": "3.11", "torch": "2.14.1", "threads": 1},
           "floors": FLOORS, "floors_spread": FLOORS_SPREAD, "speedup_noise": noise,
           "feature_net": {"id": "lenet", "test_accuracy": 0.99, "feature_dim": 64},
           "started_at": "2025-01-01T00:00:00Z", "finished_at": "2025-01-01T00:10:00Z",
           "preset": "synthetic"}
    (path / schema.RUN_FILE).write_text(json.dumps(run, indent=1))
    return path


def _latency_row(cid: str, device: str, batch: int, ms: float, speedup: float,
                 unstable: bool = False) -> dict:
    row = {"cell_id": cid, "device": device, "batch_size": batch, "threads": 1,
           "execution": "fp32", "latency_p50_ms": ms, "latency_p90_ms": ms * 1.05,
           "latency_iqr_ms": ms * 0.02, "latency_rel_iqr": 0.02, "attempts": 1,
           "load_avg_1m": 0.5, "speedup": speedup, "throughput_sps": batch / ms * 1e3,
           "peak_mem_bytes": 1_000_000, "peak_mem_reserved_bytes": "", "status": "ok",
           "error": ""}
    if unstable:  # re-measured twice, still noisy: figures kept, never used
        row.update(latency_p50_ms=3 * ms, latency_iqr_ms=ms, latency_rel_iqr=0.35, attempts=3,
                   load_avg_1m=3.2, speedup=UNSTABLE_SPEEDUP, status=schema.STATUS_UNSTABLE,
                   error="relative IQR 0.35 > 0.1 after 3 attempts")
    return row


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """The reporting subcommands behind a parser wired as bench.cli wires them (exit 2 on
    InputError/ValueError with one line), so these tests do not depend on the runner's CLI."""
    import argparse

    from bench import plots
    from bench.compare import cli as compare
    from bench.history import store as history
    from bench.report import html as report
    from bench.tables import build as tables

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
