"""Annotations: boolean columns as written, floors with their spread, readable cell notes."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from bench.results import schema
from bench.results.annotations import (
    as_flag,
    cell_remarks,
    floor_summary,
    n_samples,
    notes_text,
    speedup_noise,
    speedup_noise_band,
    unstable_latency_rows,
)
from bench.results.loading import load_results_dir


def test_as_flag_reads_what_csv_writers_write() -> None:
    values = pd.Series([True, False, "True", "false", 1.0, 0, "", float("nan"), "yes"])
    assert as_flag(values).tolist() == [True, False, True, False, True, False, False, False,
                                        True]


@pytest.mark.parametrize(("notes", "text"), [
    ('{"simulated_layers": ["fc", "deconv1"], "int8_mode": "dynamic"}',
     "simulated layers: fc, deconv1; int8 mode: dynamic"),
    ('{"fully_pruned_tensors": [], "collapsed": true}', "collapsed: True"),  # empties dropped
    ('{"sparsity_per_layer": {"fc": 0.5, "conv": 0.123456}}',
     "sparsity per layer: fc=0.5, conv=0.1235"),
    (json.dumps({"layers": [f"l{i}" for i in range(10)]}),
     "layers: l0, l1, l2, l3, l4, l5, l6, l7 ... (+2 more)"),
    ("", ""),
    ("not json", "not json"),
])
def test_notes_text(notes: str, text: str) -> None:
    assert notes_text(notes) == text


def test_cell_remarks_say_collapse_once() -> None:
    row = {"collapsed": "True", "latent_std": "6e-08",
           "notes": '{"collapsed": true, "simulated_layers": ["fc"]}'}
    assert cell_remarks(row) == ("COLLAPSED: the same output for every latent (per-pixel std "
                                 "over latents 6e-08); simulated layers: fc")
    assert cell_remarks({"collapsed": "False", "latent_std": "0.2", "notes": ""}) == ""


def test_floor_summary_and_sample_size(results_dir: Path) -> None:
    run = load_results_dir(results_dir)
    floors = floor_summary(run)
    assert floors["fid_proxy"] == (0.5, 0.05) and n_samples(run) == 1000
    # A run.json without spreads or config: means alone, no sample size.
    path = results_dir / schema.RUN_FILE
    info = json.loads(path.read_text())
    path.write_text(json.dumps({**info, "floors_spread": None, "config": {}}))
    run = load_results_dir(results_dir)
    mean, spread = floor_summary(run)["fid_proxy"]
    assert mean == 0.5 and math.isnan(spread) and n_samples(run) is None


def test_unstable_rows_counted(make_results_dir) -> None:
    assert unstable_latency_rows(load_results_dir(make_results_dir())) == 0
    assert unstable_latency_rows(load_results_dir(make_results_dir("u", unstable=True))) == 1


def test_speedup_noise_at_the_largest_batch(make_results_dir) -> None:
    run = load_results_dir(make_results_dir())
    batch, speedups = speedup_noise(run, "gan")
    assert batch == 64 and speedups == pytest.approx([0.99, 1.0, 1.01])
    assert speedup_noise(run, "gan", "cuda") == (0, [])
    assert speedup_noise(run, "missing") == (0, [])


def test_speedup_noise_band_is_the_largest_deviation_either_way(results_dir: Path) -> None:
    info = json.loads((results_dir / schema.RUN_FILE).read_text())
    info["speedup_noise"] = [
        {"family": "gan", "device": "cpu", "batch_size": 1, "speedup": 0.94, "status": "ok"},
        {"family": "gan", "device": "cpu", "batch_size": 64, "speedup": 1.02,
         "status": "unstable"},  # a noisy self-timing is evidence of noise too
        {"family": "gan", "device": "cpu", "batch_size": 64, "speedup": 0.5, "status": "failed"},
        {"family": "gan", "device": "cuda", "batch_size": 64, "speedup": 0.5, "status": "ok"},
        {"family": "vae", "device": "cpu", "batch_size": 64, "speedup": 0.5, "status": "ok"},
    ]
    (results_dir / schema.RUN_FILE).write_text(json.dumps(info))
    run = load_results_dir(results_dir)
    band = speedup_noise_band(run, "gan")
    assert band.measured == (0.94, 1.02) and band.batches == (1, 64)
    assert band.factor == pytest.approx(1 / 0.94) and band.low == pytest.approx(0.94)
    assert speedup_noise_band(run, "gan", "cuda").factor == pytest.approx(2.0)
    assert speedup_noise_band(run, "rvae") is None
