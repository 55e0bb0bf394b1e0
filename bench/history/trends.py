"""Trends in the history store: per series and run, the seed mean with its interval; regressions
between consecutive runs of a run name, preset and machine, found by compare itself."""
from __future__ import annotations

import pandas as pd

from bench.history.store import RUN_COLUMNS, SERIES_COLUMNS
from bench.results import schema
from bench.results.labels import cell_label
from bench.results.loading import KEY_COLUMNS

# What a trend point is: one run of one series (device and batch size belong to the series).
POINT_COLUMNS = [*SERIES_COLUMNS, "run_date", "commit"]
SUMMARY_COLUMNS = [*POINT_COLUMNS, "mean", "low", "high", "n", "unstable"]
# Runs that compare may judge against each other: the same kind of run on the same machine.
LINEAGE_COLUMNS = ["run_name", "preset", "machine_id"]


def run_means(history: pd.DataFrame, metric: str) -> pd.DataFrame:
    """One row per (series, run) of `metric`, summarised over seeds as `compare --history`
    does (bench.compare.against_history): mean value, mean of the seeds' 95% interval bounds (low,
    high; NaN where the metric has none), n seeds, and `unstable`: a seed's latency row was
    unstable, so compare lists the point and never judges it. Date order."""
    rows = history[history["metric"] == metric].assign(
        unstable=lambda f: f["status"] == schema.STATUS_UNSTABLE)
    if rows.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    out = rows.groupby(POINT_COLUMNS, sort=False, dropna=False).agg(
        mean=("value", "mean"), low=("ci_low", "mean"), high=("ci_high", "mean"),
        n=("seed", "nunique"), unstable=("unstable", "any")).reset_index()
    return out[SUMMARY_COLUMNS].sort_values("run_date", kind="stable").reset_index(drop=True)


def consecutive_runs(history: pd.DataFrame) -> list[tuple[pd.DataFrame, pd.DataFrame]]:
    """(earlier block, later block) for each pair of consecutive runs of one lineage (run
    name, preset, machine): the pairs `compare --history` would have judged."""
    pairs = []
    for _, lineage in history.groupby(LINEAGE_COLUMNS, sort=False):
        runs = lineage[RUN_COLUMNS].drop_duplicates().sort_values("run_date", kind="stable")
        blocks = [lineage[(lineage["run_date"] == r.run_date) & (lineage["commit"] == r.commit)]
                  for r in runs.itertuples()]
        pairs += list(zip(blocks, blocks[1:], strict=False))
    return pairs


def detect_regressions(history: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Regressions of `metric` between consecutive runs of each lineage, as compare's verdict
    (bench.compare.against_history.compare_blocks) finds them: one row per regressed point."""
    from bench.compare.against_history import FOLLOWS, compare_blocks  # compare's own rule

    found = []
    # With its sources: a compressed cell's latency follows its speedup (compare_history).
    sources = {metric, *(["speedup"] if metric in FOLLOWS else [])}
    rows = history[history["metric"].isin(sources)]
    for before, after in consecutive_runs(rows):
        report = compare_blocks(before, after)
        report.comparisons = [c for c in report.comparisons if c.metric == metric]
        labels = {cell_label(r): r for r in after.drop_duplicates(KEY_COLUMNS).to_dict("records")}
        for comparison in report.regressions:
            point = labels[comparison.cell]
            found.append({"cell": comparison.cell, **{c: point[c] for c in SERIES_COLUMNS},
                          "device": comparison.device, "batch_size": comparison.batch_size,
                          "run_date": point["run_date"], "commit": point["commit"],
                          "change": comparison.change})
    return pd.DataFrame(found, columns=["cell", *POINT_COLUMNS, "change"])
