"""`compare --history`: a run against the last run of the same machine, preset and run name."""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from bench.compare.report import CompareReport, Comparison
from bench.compare.verdicts import (
    ABS_TOLERANCES,
    DEFAULT_THRESHOLDS,
    UNCHANGED,
    judge_intervals,
    relative_change,
)
from bench.results import schema
from bench.results.labels import cell_label
from bench.results.loading import KEY_COLUMNS

GROUP = KEY_COLUMNS + ["device", "batch_size", "metric"]
# Raw milliseconds drift between processes far beyond their within-run intervals (see
# bench/compare_latency.py): a compressed cell's latency and throughput follow its speedup,
# measured against the baseline in the same process and stored with its self-timing band. A
# baseline's raw latency is the machine's between-run drift: not judged.
FOLLOWS = {"throughput_sps": "speedup", "latency_p50_ms": "speedup"}


def _summary(block: pd.DataFrame) -> pd.DataFrame:
    """Per (KEY..., device, batch_size, metric) over seeds: mean value and mean interval
    bounds (one seed: its own interval), and whether any seed's row was unstable."""
    work = block.assign(unstable=block["status"] == schema.STATUS_UNSTABLE)
    for column in ("value", "ci_low", "ci_high"):
        work[column] = pd.to_numeric(work[column], errors="coerce")
    return work.groupby(GROUP, sort=False, dropna=False).agg(
        value=("value", "mean"), ci_low=("ci_low", "mean"), ci_high=("ci_high", "mean"),
        unstable=("unstable", "any"))


def compare_blocks(base: pd.DataFrame, cur: pd.DataFrame,
                   thresholds: dict[str, float] | None = None,
                   abs_tols: dict[str, float] | None = None) -> CompareReport:
    """Judge two history blocks (bench.history.store.HISTORY_COLUMNS) of the same machine with
    judge_intervals over their common seeds; unstable rows are listed, not judged; a compressed
    cell's latency and throughput take its speedup's verdict (FOLLOWS); baselines' raw timings
    are not judged."""
    limits = {**DEFAULT_THRESHOLDS, **(thresholds or {})}
    tols = {**ABS_TOLERANCES, **(abs_tols or {})}
    report = CompareReport()
    common = set(base["seed"]) & set(cur["seed"])
    if common and common != set(base["seed"]) | set(cur["seed"]):
        report.notes.append(f"compared the common seeds {sorted(common)} only")
        base, cur = base[base["seed"].isin(common)], cur[cur["seed"].isin(common)]
    labels = {}
    for frame in (base, cur):
        for row in frame.drop_duplicates(KEY_COLUMNS).to_dict("records"):
            labels[tuple(row[k] for k in KEY_COLUMNS)] = cell_label(row)
    base_keys = set(base[KEY_COLUMNS].itertuples(index=False, name=None))
    cur_keys = set(cur[KEY_COLUMNS].itertuples(index=False, name=None))
    report.only_baseline = sorted(labels[k] for k in base_keys - cur_keys)
    report.only_current = sorted(labels[k] for k in cur_keys - base_keys)
    base_sum, cur_sum = _summary(base), _summary(cur)
    verdicts: dict[tuple, str] = {}
    shaky: set[tuple] = set()
    # Sources before what derives from them, so throughput can take its latency verdict.
    order = sorted(base_sum.index.intersection(cur_sum.index, sort=False),
                   key=lambda k: k[-1] in FOLLOWS)
    for index in order:
        *key, device, batch, metric = index
        key = tuple(key)
        b, c = base_sum.loc[index], cur_sum.loc[index]
        if metric not in schema.DIRECTIONS or math.isnan(b["value"]) or math.isnan(c["value"]):
            continue
        if b["unstable"] or c["unstable"]:
            if (key, device, batch) not in shaky:
                shaky.add((key, device, batch))
                side = " and ".join(s for s, x in (("baseline", b), ("current", c))
                                    if x["unstable"])
                report.unstable.append({"cell": labels[key], "device": device,
                                        "batch_size": int(batch), "side": side})
            continue
        base_ci, cur_ci = (float(b["ci_low"]), float(b["ci_high"])), (float(c["ci_low"]),
                                                                      float(c["ci_high"]))
        if metric in FOLLOWS and key[2] == "baseline":  # method: the speedups' reference
            continue
        if metric in FOLLOWS:
            verdict = verdicts.get((key, device, batch, FOLLOWS[metric]), UNCHANGED)
            rule = "derived"
        else:
            verdict = judge_intervals(metric, float(b["value"]), base_ci, float(c["value"]),
                                      cur_ci, limits[metric], tols.get(metric, 0.0))
            known = all(math.isfinite(x) for x in base_ci + cur_ci)
            rule = "intervals" if known else "threshold"
        verdicts[(key, device, batch, metric)] = verdict
        report.comparisons.append(Comparison(
            labels[key], metric, device, int(batch), float(b["value"]), float(c["value"]),
            relative_change(float(b["value"]), float(c["value"])), limits[metric], verdict,
            rule, baseline_ci=base_ci, current_ci=cur_ci))
    return report


def compare_with_history(store: str | Path, current_dir: str | Path,
                         thresholds: dict[str, float] | None = None,
                         abs_tols: dict[str, float] | None = None) -> CompareReport:
    """CURRENT against the most recent earlier run in STORE of its machine id, preset and run
    name; a report with a note and no comparisons when the store has none."""
    from bench.history.store import last_run, run_block  # history draws plots: import on use

    current = run_block(current_dir)
    first = current.iloc[0] if len(current) else None
    if first is None:
        report = CompareReport()
        report.notes.append(f"{current_dir}: no ok rows to compare")
        return report
    identity = {k: str(first[k]) for k in ("machine_id", "preset", "run_name")}
    previous = last_run(store, **identity, before=str(first["run_date"]))
    if previous is None:
        report = CompareReport()
        report.notes.append(f"{store}: no earlier run of machine {identity['machine_id']}, "
                            f"preset {identity['preset']!r}, run {identity['run_name']!r}; "
                            f"nothing compared")
        return report
    report = compare_blocks(previous, current, thresholds, abs_tols)
    report.notes.insert(0, f"against {store}: run of {previous['run_date'].iloc[0]} (commit "
                           f"{previous['commit'].iloc[0]}) on machine {identity['machine_id']}")
    return report
