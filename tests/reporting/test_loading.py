"""Reading a results directory: canonical settings, latency joins, validation messages."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from bench.errors import InputError
from bench.results import schema
from bench.results.loading import canonical_number, load_results_dir, seed_summary, with_latency


@pytest.mark.parametrize(("text", "canonical"), [
    ("4", "4"), ("4.0", "4"), ("0.50", "0.5"), ("1e-3", "0.001"), ("global", "global"),
    ("", ""), ("nan", "nan"),
])
def test_canonical_number(text: str, canonical: str) -> None:
    assert canonical_number(text) == canonical


def test_settings_written_as_floats_match_ints(results_dir: Path) -> None:
    # A writer that stores bits as 8.0 (pandas with NaN in the column) reads like one with 8.
    frame = pd.read_csv(results_dir / schema.RESULTS_FILE)
    assert frame["bits"].dropna().iloc[0] == 8.0
    run = load_results_dir(results_dir)
    assert set(run.results["bits"]) == {"", "8", "4"}


def test_latency_join_takes_cpu_at_the_largest_batch(make_results_dir) -> None:
    run = load_results_dir(make_results_dir(cuda=True))
    joined = with_latency(run, run.ok())
    rows = run.latency[(run.latency["device"] == "cpu") & (run.latency["batch_size"] == 64)]
    expected = joined["cell_id"].map(rows.set_index("cell_id")["latency_p50_ms"])
    assert joined["latency_p50_ms"].tolist() == expected.tolist()
    assert (joined["latency_p50_ms_cuda"] * 10).tolist() == pytest.approx(
        joined["latency_p50_ms"].tolist())


def test_seed_summary_mean_std_count(results_dir: Path) -> None:
    run = load_results_dir(results_dir)
    summary = seed_summary(run.ok(), ["fid_proxy"]).set_index("family")
    gan_base = summary[summary["method"] == "baseline"].loc["gan"]
    assert gan_base["fid_proxy_mean"] == pytest.approx(20.0)
    assert gan_base["fid_proxy_std"] == pytest.approx(0.2)  # 20 * 0.01 * std([-1, 0, 1])
    assert gan_base["fid_proxy_n"] == 3
    assert len(summary) == 10  # 2 families x 5 variants, seeds folded


def test_floors_tolerate_null_and_nested(results_dir: Path) -> None:
    path = results_dir / schema.RUN_FILE
    run = json.loads(path.read_text())
    path.write_text(json.dumps({**run, "floors": None}))
    assert load_results_dir(results_dir).floors == {}
    path.write_text(json.dumps({**run, "floors": {"fid_proxy": 1.5, "other": {"x": 1}}}))
    assert load_results_dir(results_dir).floors == {"fid_proxy": 1.5}


def test_unreadable_run_json(results_dir: Path) -> None:
    (results_dir / schema.RUN_FILE).write_text("{not json")
    with pytest.raises(InputError, match="run.json: not valid JSON"):
        load_results_dir(results_dir)


def test_referenced_columns_exist_in_the_schema() -> None:
    # Readers name metrics in a few tables of their own; each must be a schema column.
    from bench.compare.cli import LATENCY_METRICS, RESULT_METRICS
    from bench.history.store import HISTORY_METRICS, TREND_METRICS
    from bench.plots.tradeoff import QUALITY_PANELS, X_AXES
    from bench.results.loading import KEY_COLUMNS
    from bench.tables.build import COLUMNS

    known = set(schema.RESULTS_COLUMNS) | set(schema.LATENCY_COLUMNS)
    assert set(KEY_COLUMNS) <= set(schema.RESULTS_COLUMNS)
    assert set(LATENCY_METRICS) <= set(schema.LATENCY_COLUMNS) & set(schema.DIRECTIONS)
    assert set(RESULT_METRICS) | set(HISTORY_METRICS) | set(TREND_METRICS) <= known
    assert set(QUALITY_PANELS) | set(X_AXES) <= set(schema.DIRECTIONS)
    for column in COLUMNS:
        assert column.source.removesuffix("_cuda") in known and column.direction_of in \
            schema.DIRECTIONS
    # compare judges every metric in DIRECTIONS.
    assert set(RESULT_METRICS) | set(LATENCY_METRICS) == set(schema.DIRECTIONS)
