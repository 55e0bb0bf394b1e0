"""compare --history: the current run against the last earlier run of its own machine."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from synthetic_results import run_cli

from bench.compare.against_history import compare_blocks
from bench.history.store import append_run, run_block
from bench.results import schema

MACHINE_A, MACHINE_B = "aaaaaaaaaaaa", "bbbbbbbbbbbb"
GAN_8BIT = "gan/quant [8-bit, channel, naive] (mnist5k)"


def _retag(directory: Path, machine: str, date: str) -> Path:
    path = directory / schema.RUN_FILE
    run = json.loads(path.read_text())
    run.update(machine={"id": machine}, preset="nightly", finished_at=date, git_commit=date[:10])
    path.write_text(json.dumps(run))
    return directory


def _scale(directory: Path, metric: str, factor: float, prefix: str) -> None:
    results = pd.read_csv(directory / schema.RESULTS_FILE)
    rows = results["cell_id"].str.startswith(prefix)
    for column in (metric, metric + "_ci_low", metric + "_ci_high"):
        results.loc[rows, column] *= factor
    results.to_csv(directory / schema.RESULTS_FILE, index=False)


def test_history_picks_the_same_machines_last_run(make_results_dir, tmp_path: Path,
                                                  capsys) -> None:
    store = tmp_path / "history.csv"
    old_a = _retag(make_results_dir("a1"), MACHINE_A, "2025-01-01T00:00:00Z")
    newer_b = _retag(make_results_dir("b1"), MACHINE_B, "2025-01-03T00:00:00Z")
    _scale(newer_b, "fid_proxy", 1.5, "gan3")  # machine B's run differs: must not be used
    for run in (old_a, newer_b):
        append_run(run, store)
    current = _retag(make_results_dir("a2"), MACHINE_A, "2025-01-04T00:00:00Z")
    append_run(current, store)  # already in the store: compared with the run before it
    js = tmp_path / "h.json"
    code, out, _ = run_cli(["compare", "--history", str(store), str(current), "--json",
                            str(js)], capsys)
    assert code == 0, out
    payload = json.loads(js.read_text())
    assert payload["notes"][0].startswith(f"against {store}: run of 2025-01-01T00:00:00+00:00")
    assert payload["regressions"] == [] and payload["improvements"] == []
    assert "latency_p50_ms" in payload["within_noise"]
    _scale(current, "fid_proxy", 1.5, "gan3")
    code, out, _ = run_cli(["compare", "--history", str(store), str(current), "--json",
                            str(js)], capsys)
    assert code == 1
    regressions = json.loads(js.read_text())["regressions"]
    assert [(r["cell"], r["metric"]) for r in regressions] == [(GAN_8BIT, "fid_proxy")]


def test_history_without_a_matching_run_says_so(make_results_dir, tmp_path: Path,
                                                capsys) -> None:
    store = tmp_path / "history.csv"
    append_run(_retag(make_results_dir("b"), MACHINE_B, "2025-01-01T00:00:00Z"), store)
    current = _retag(make_results_dir("a"), MACHINE_A, "2025-01-02T00:00:00Z")
    code, out, _ = run_cli(["compare", "--history", str(store), str(current)], capsys)
    assert code == 0 and f"no earlier run of machine {MACHINE_A}" in out


def test_blocks_list_unstable_rows_and_derive_throughput(make_results_dir) -> None:
    base = run_block(_retag(make_results_dir("b", unstable=True), MACHINE_A,
                            "2025-01-01T00:00:00Z"))
    cur = base.copy()
    # Raw timings alone halved (a slower process: between-run drift): latency and throughput
    # follow the cell's unchanged speedup; the baselines' raw timings are not judged at all.
    doctored = cur["metric"].isin(["throughput_sps", "latency_p50_ms"]) & (cur["batch_size"] == 1)
    cur.loc[doctored, "value"] *= 0.5
    report = compare_blocks(base, cur)
    assert report.regressions == []
    assert [u["cell"] for u in report.unstable] == ["gan/quant [4-bit, channel, naive] (mnist5k)"]
    followers = [c for c in report.comparisons
                 if c.metric in ("throughput_sps", "latency_p50_ms")]
    assert followers and {c.rule for c in followers} == {"derived"}
    assert not any(c.cell.split(" ")[0].endswith("/baseline") for c in followers)
