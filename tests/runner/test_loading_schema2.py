"""load_results_dir on what the writer of schema 2 produces: flags stay flags, text stays text."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from bench.errors import InputError
from bench.results import schema
from bench.results.loading import load_results_dir
from bench.results.store import ResultStore

FLAG = "fid_proxy_delta_significant"


def _write(path, rows: list[dict], version: int = schema.SCHEMA_VERSION):
    store = ResultStore(path)
    for row in rows:
        store.put({"cell_id": row["cell_id"], "result": row, "latency": [],
                   "latency_samples": []})
    store.regenerate([row["cell_id"] for row in rows])
    store.write_run({"schema_version": version, "config": {}})
    return path


def _row(cell_id: str, **values) -> dict:
    return {"cell_id": cell_id, "dataset": "d", "family": "gan", "method": "quant", "seed": 0,
            "status": "ok", "fid_proxy": 1.0, **values}


def test_flags_are_read_as_booleans_with_empty_as_missing(tmp_path):
    rows = [_row("a", collapsed=True, **{FLAG: False}), _row("b", collapsed=False, **{FLAG: True}),
            _row("c", status="failed", fid_proxy=None)]
    run = load_results_dir(_write(tmp_path, rows))
    assert str(run.results["collapsed"].dtype) == "boolean"
    assert run.results["collapsed"].tolist() == [True, False, pd.NA]
    assert run.results[FLAG].tolist() == [False, True, pd.NA]
    assert run.results["fid_proxy"].tolist()[:2] == [1.0, 1.0]


def test_text_columns_of_schema_2_are_kept_verbatim(tmp_path):
    notes = json.dumps({"simulated_layers": ["fc"]}, separators=(",", ":"))
    pipeline = json.dumps([{"bits": 4, "method": "quant"}])
    run = load_results_dir(_write(tmp_path, [_row("a", notes=notes, pipeline_json=pipeline)]))
    assert run.results["notes"].iloc[0] == notes
    assert run.results["pipeline_json"].iloc[0] == pipeline


def test_a_flag_that_is_not_a_flag_is_an_input_error(tmp_path):
    _write(tmp_path, [_row("a", collapsed="maybe")])
    with pytest.raises(InputError, match="column collapsed holds 'maybe'"):
        load_results_dir(tmp_path)


def test_schema_1_is_refused_by_name(tmp_path):
    _write(tmp_path, [_row("a")], version=1)
    with pytest.raises(InputError, match="schema_version 1; this genbench reads 2"):
        load_results_dir(tmp_path)
