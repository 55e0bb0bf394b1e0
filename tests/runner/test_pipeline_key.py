"""One key per pipeline: step settings are never merged away, so tables and compare do not mix
two pipelines that differ only in an earlier step's settings."""
from __future__ import annotations

import json

import pandas as pd
import pytest
from conftest import TINY_TOML

from bench.compare.cli import compare_runs
from bench.config.sweep import parse_config
from bench.results import schema
from bench.results.labels import compact_setting_labels, setting_label
from bench.results.loading import KEY_COLUMNS, load_results_dir, seed_summary
from bench.results.store import ResultStore
from bench.run.grid import Cell, expand
from bench.run.runner import _method_configs
from bench.tables.build import family_table
from compression.api import config_from_dict

# The example: the two pipelines differ only in the pruning step's lr, which the QAT
# step's lr overwrites in the merged columns.
PRUNE_THEN_QAT = {
    "a": ({"method": "prune_magnitude", "sparsity": 0.5, "lr": 1e-3}, {"method": "qat", "bits": 4}),
    "b": ({"method": "prune_magnitude", "sparsity": 0.5, "lr": 1e-4}, {"method": "qat", "bits": 4}),
}


def _row(name: str, steps: tuple[dict, ...], fid: float, seed: int = 0) -> dict:
    cell = Cell(f"{name}{seed}", "tiny16", "gan", seed, steps)
    row = {"cell_id": cell.cell_id, "dataset": cell.dataset, "family": cell.family,
           "method": cell.method, "seed": seed, "status": schema.STATUS_OK, "error": "",
           "fid_proxy": fid}
    _method_configs(cell, row)
    return row


def _rows(fids: dict[str, float]) -> list[dict]:
    return [_row("base", (), 10.0)] + [_row(n, PRUNE_THEN_QAT[n], f) for n, f in fids.items()]


def _results_dir(path, rows: list[dict]):
    store = ResultStore(path)
    for row in rows:
        store.put({"cell_id": row["cell_id"], "result": row, "latency": [],
                   "latency_samples": []})
    store.regenerate([row["cell_id"] for row in rows])
    store.write_run({"schema_version": schema.SCHEMA_VERSION, "config": {}, "floors": {}})
    return load_results_dir(path)


def test_merged_columns_collide_but_pipeline_json_does_not():
    a, b = (_row(n, PRUNE_THEN_QAT[n], 1.0) for n in "ab")
    merged = schema.SETTING_COLUMNS + ["settings_json"]
    assert {k: a.get(k) for k in merged} == {k: b.get(k) for k in merged}  # the old key
    assert a["pipeline_json"] != b["pipeline_json"]
    steps = json.loads(a["pipeline_json"])
    assert [s["method"] for s in steps] == ["prune_magnitude", "qat"]
    assert steps[0]["lr"] == 1e-3 and steps[1]["lr"] != 1e-3
    assert a["pipeline_json"] == json.dumps(steps, sort_keys=True)  # sorted keys


def test_pipeline_json_replays_the_exact_configs():
    row = _row("a", PRUNE_THEN_QAT["a"], 1.0)
    replayed = [config_from_dict(step) for step in json.loads(row["pipeline_json"])]
    assert replayed == [config_from_dict(dict(step)) for step in PRUNE_THEN_QAT["a"]]
    assert _row("base", (), 1.0)["pipeline_json"] == "[]"


def test_two_pipelines_are_two_keys_that_tables_do_not_average(tmp_path):
    run = _results_dir(tmp_path, _rows({"a": 20.0, "b": 40.0}))
    assert "pipeline_json" in KEY_COLUMNS
    assert len(run.results[KEY_COLUMNS].drop_duplicates()) == 3
    summary = seed_summary(run.ok(), ["fid_proxy"])
    assert sorted(summary["fid_proxy_mean"]) == [10.0, 20.0, 40.0]
    assert list(summary["fid_proxy_n"]) == [1, 1, 1]
    table = family_table(run, "gan")
    assert len(table.rows) == 3
    labels = [" ".join(row) for row in table.rows]
    assert sum("lr=0.001" in label for label in labels) == 1
    assert sum("lr=0.0001 ->" in label for label in labels) == 1


def test_compare_judges_each_pipeline_on_its_own(tmp_path):
    # a gets 50% worse and b 50% better: merged, the two changes would cancel out.
    base = _results_dir(tmp_path / "base", _rows({"a": 20.0, "b": 20.0}))
    current = _results_dir(tmp_path / "cur", _rows({"a": 30.0, "b": 10.0}))
    fid = [c for c in compare_runs(base, current).comparisons if c.metric == "fid_proxy"]
    assert sorted(c.verdict for c in fid) == ["improvement", "regression", "unchanged"]
    regression = next(c for c in fid if c.verdict == "regression")
    assert "lr=0.001," in regression.cell.split(" -> ")[0]  # the pruning step of pipeline a


def test_multi_step_label_shows_each_step():
    rows = pd.DataFrame(_rows({"a": 1.0, "b": 1.0}))
    full = setting_label(rows.iloc[1])
    first, second = full.split(" -> ")
    assert first.startswith("prune_magnitude sparsity 0.5, global") and "lr=0.001" in first
    assert second.startswith("qat 4-bit, channel") and "batch_size=64" in second
    # Compact: only what varies among the rows of the same method (the pruning lr) is added.
    assert compact_setting_labels(rows)[1:] == [
        "prune_magnitude sparsity 0.5, global, ft 0, lr=0.001 -> qat 4-bit, channel, ft 200",
        "prune_magnitude sparsity 0.5, global, ft 0, lr=0.0001 -> qat 4-bit, channel, ft 200",
    ]


@pytest.mark.parametrize("cell", expand(parse_config(TINY_TOML)), ids=lambda c: c.method)
def test_single_step_label_is_unchanged(cell):
    row = {"cell_id": cell.cell_id, "dataset": cell.dataset, "family": cell.family,
           "method": cell.method, "seed": cell.seed}
    _method_configs(cell, row)
    without = {k: v for k, v in row.items() if k != "pipeline_json"}
    assert setting_label(row) == setting_label(without)
    expected = {"baseline": "fp32", "quant": "8-bit, tensor, naive",
                "prune_magnitude": "global, sparsity 0.5"}[cell.method]
    assert setting_label(row, extra_keys=()) == expected
