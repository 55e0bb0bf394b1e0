"""Columns added to schema 2 this session (bpd bounds, class statistics) are optional on read."""
from __future__ import annotations

import json

import pandas as pd

from bench.results import schema
from bench.results.loading import load_results_dir
from bench.results.store import ResultStore


def _run_dir(path, rows: list[dict]):
    store = ResultStore(path)
    for row in rows:
        store.put({"cell_id": row["cell_id"], "result": row, "latency": [],
                   "latency_samples": []})
    store.regenerate([row["cell_id"] for row in rows])
    store.write_run({"schema_version": schema.SCHEMA_VERSION, "config": {}})
    return path


def _row(cell_id: str, **values) -> dict:
    return {"cell_id": cell_id, "dataset": "d", "family": "gan", "method": "quant", "seed": 0,
            "status": "ok", "fid_proxy": 1.0, **values}


def test_results_written_before_the_added_columns_still_load(tmp_path) -> None:
    path = _run_dir(tmp_path, [_row("a")])
    frame = pd.read_csv(path / schema.RESULTS_FILE)
    old = frame.drop(columns=schema.ADDED_RESULTS_COLUMNS)  # as older code wrote it
    old.to_csv(path / schema.RESULTS_FILE, index=False)
    results = load_results_dir(path).results
    text = ("class_fractions", "runtime", "fp32_ops")
    numeric = [c for c in schema.ADDED_RESULTS_COLUMNS if c not in text]
    assert results[numeric].isna().all().all()
    assert results["class_fractions"].tolist() == [""]  # empty text, like every text column
    assert results["fp32_ops"].tolist() == [""]
    assert results["runtime"].tolist() == ["eager"]  # what code before runtimes measured
    assert results["fid_proxy"].tolist() == [1.0]


def test_class_columns_round_trip_with_the_histogram_as_text(tmp_path) -> None:
    fractions = json.dumps([0.5, 0.25, 0.25] + [0.0] * 7)
    row = _row("a", classes_present=3, class_entropy_norm=0.45, mean_confidence=0.875,
               class_fractions=fractions, elbo_bpd=1.25)
    results = load_results_dir(_run_dir(tmp_path, [row])).results
    assert results["classes_present"].tolist() == [3]
    assert results["mean_confidence"].tolist() == [0.875] and results["elbo_bpd"].tolist() == [1.25]
    assert json.loads(results["class_fractions"].iloc[0]) == json.loads(fractions)
