"""Match two results directories row by row and judge each metric with the rule its noise allows:
latency here, quality in bench.compare.judge_quality."""
from __future__ import annotations

import functools
import math

import numpy as np
import pandas as pd

from bench.compare.judge_quality import (
    RUNTIME_KEY,
    common_seed_rows,
    judge_quality,
    key_label,
)
from bench.compare.latency_tests import median_ratio_ci
from bench.compare.report import CompareReport, Comparison
from bench.compare.verdicts import (
    ABS_TOLERANCES,
    DEFAULT_ALPHA,
    DEFAULT_THRESHOLDS,
    IMPROVEMENT,
    MACHINE_METRICS,
    REGRESSION,
    UNCHANGED,
    judge_values,
    relative_change,
    seed_band,
)
from bench.results import schema
from bench.results.annotations import speedup_noise_band
from bench.results.environment import machine_of
from bench.results.labels import cell_label
from bench.results.loading import KEY_COLUMNS, ResultsDir

LATENCY_GROUP = RUNTIME_KEY + ["device", "batch_size"]

# Latency verdicts between two runs of one machine: judged on the interleaved speedup.
#
# Why not on raw milliseconds: two runs of identical code, one after the other on the 2-core
# reference machine (smoke preset, rows stable within 10% IQR inside each run), gave raw p50
# ratios of 1.29x to 2.2x on some rows (rvae prune_magnitude cpu/1: 1.71 -> 3.75 ms, ratio
# interval [1.87, 2.91] from the blocks), while the same rows' interleaved speedups moved from
# 1.00 to 0.96. Blocks within one process share its state (thread placement, frequency, cache
# layout); a second process draws a new state, so the within-run interval says nothing about
# the between-run spread. The speedup times the variant and its baseline in the same process, in
# interleaved blocks, so that state cancels; its own noise is measured by every run (the
# baseline timed against itself, run.json `speedup_noise`).
#
# So, for a compressed cell: speedup regresses when it falls by more than the threshold AND the
# ratio of the two runs' speedups lies outside both runs' self-timing bands multiplied
# (F = f_baseline * f_current); latency_p50_ms and throughput_sps take that verdict (their raw
# change and block interval are shown, not judged). A baseline cell's raw p50 change is the
# between-run drift of the machine: reported in the notes, never judged from one pair of runs.
MEASURED = (schema.STATUS_OK, schema.STATUS_UNSTABLE)


def judge_speedup(base: float, current: float, band: float | None, threshold: float) -> str:
    """Verdict of a speedup change: |s_c / s_b - 1| > threshold AND s_c / s_b outside
    [1/band, band] (band: the product of both runs' self-timing noise factors; None: the
    threshold alone)."""
    if not (base > 0 and current > 0):
        return UNCHANGED
    ratio = current / base
    if abs(ratio - 1.0) <= threshold:
        return UNCHANGED
    if band is not None and 1.0 / band <= ratio <= band:
        return UNCHANGED
    return IMPROVEMENT if ratio > 1.0 else REGRESSION


def _band(baseline: ResultsDir, current: ResultsDir, family: str, device: str) -> float | None:
    bands = [speedup_noise_band(run, family, device) for run in (baseline, current)]
    return None if None in bands else bands[0].factor * bands[1].factor


def _raw(run: ResultsDir, rows: pd.DataFrame) -> dict[tuple, np.ndarray]:
    """Raw seconds per call pooled over the compared seeds per (KEY..., device, batch_size)."""
    merged = run.samples_all.merge(_cell_keys(rows), on="cell_id")
    return {key: g["seconds_per_call"].to_numpy(float)
            for key, g in merged.groupby(LATENCY_GROUP, sort=False)}


def _append(out: list[Comparison], label: str, device: str, batch: int,
            mean: dict[str, tuple[float, float]], limits: dict[str, float], metric: str,
            verdict: str, rule: str, noise: float | None = None,
            ci: tuple[float, float] | None = None) -> None:
    out.append(Comparison(label, metric, device, batch, *mean[metric],
                          relative_change(*mean[metric]), limits[metric], verdict, rule,
                          noise=noise, ratio_ci=ci))


def _cell_keys(rows: pd.DataFrame) -> pd.DataFrame:
    """KEY_COLUMNS, seed and cell_id of each cell's eager row: what a latency row (keyed by
    cell_id and its own runtime) joins to, once per cell."""
    eager = rows[rows["runtime"] == schema.RUNTIME_EAGER]
    return eager[KEY_COLUMNS + ["seed", "cell_id"]].drop_duplicates("cell_id")


def judge_latency(baseline: ResultsDir, current: ResultsDir, base_rows: pd.DataFrame,
                  cur_rows: pd.DataFrame, limits: dict[str, float], alpha: float,
                  report: CompareReport) -> list[Comparison]:
    """Latency rows of one machine: unstable rows listed, compressed cells judged on their
    speedup (latency and throughput follow it), baselines' raw drift noted, memory by seeds."""
    sides = [run.latency_all[run.latency_all["status"].isin(MEASURED)].merge(
        _cell_keys(rows), on="cell_id")
        for run, rows in ((baseline, base_rows), (current, cur_rows))]
    raw_b, raw_c = _raw(baseline, base_rows), _raw(current, cur_rows)
    current_groups = dict(iter(sides[1].groupby(LATENCY_GROUP, sort=False)))
    out: list[Comparison] = []
    drift = []
    for group_key, gb in sides[0].groupby(LATENCY_GROUP, sort=False):
        if group_key not in current_groups:
            continue
        gc = current_groups[group_key]
        *key, device, batch = group_key
        label, batch = key_label(tuple(key)), int(batch)
        shaky = [side for side, g in (("baseline", gb), ("current", gc))
                 if (g["status"] == schema.STATUS_UNSTABLE).any()]
        if shaky:
            report.unstable.append({"cell": label, "device": device, "batch_size": batch,
                                    "side": " and ".join(shaky)})
            continue
        mean = {m: (float(gb[m].mean()), float(gc[m].mean()))
                for m in ("latency_p50_ms", "speedup", "throughput_sps", "peak_mem_bytes")}
        ratio_ci = None
        if group_key in raw_b and group_key in raw_c:
            _, low, high = median_ratio_ci(raw_b[group_key], raw_c[group_key], 1 - alpha)
            ratio_ci = (low, high)

        add = functools.partial(_append, out, label, device, batch, mean, limits)

        if key[2] == "baseline" and key[-1] == schema.RUNTIME_EAGER:  # every speedup's ref
            drift.append(mean["latency_p50_ms"][1] / mean["latency_p50_ms"][0])
        elif not any(math.isnan(v) for v in mean["speedup"]):
            band = _band(baseline, current, key[1], device)
            verdict = judge_speedup(*mean["speedup"], band, limits["speedup"])
            add("speedup", verdict, "speedup-noise" if band else "threshold", noise=band)
            add("latency_p50_ms", verdict, "derived", ci=ratio_ci)
            add("throughput_sps", verdict, "derived")
        base_mem, cur_mem = mean["peak_mem_bytes"]
        if not (math.isnan(base_mem) or math.isnan(cur_mem)):
            noise = seed_band(len(gb), len(gc), *(g["peak_mem_bytes"].std(ddof=1)
                                                  for g in (gb, gc)))
            add("peak_mem_bytes", judge_values("peak_mem_bytes", base_mem, cur_mem, noise,
                                               limits["peak_mem_bytes"]),
                "seeds" if noise is not None else "threshold", noise=noise)
    if drift:
        report.notes.append(
            f"raw latency of the uncompressed baselines moved by a factor "
            f"{min(drift):.2f}-{max(drift):.2f} between the runs (stable rows): the machine's "
            f"between-run drift, not judged; compressed cells are judged on their speedup, "
            f"measured against the baseline in the same process")
    return out


def compare_runs(baseline: ResultsDir, current: ResultsDir,
                 thresholds: dict[str, float] | None = None, alpha: float = DEFAULT_ALPHA,
                 abs_tols: dict[str, float] | None = None) -> CompareReport:
    """Match cells by KEY_COLUMNS and runtime over the common seeds and judge every metric in
    DIRECTIONS; machine-bound metrics only when both runs have the same machine id."""
    limits = {**DEFAULT_THRESHOLDS, **(thresholds or {})}
    tols = {**ABS_TOLERANCES, **(abs_tols or {})}
    report = CompareReport()
    base_keys = set(baseline.results_all[RUNTIME_KEY].itertuples(index=False, name=None))
    cur_keys = set(current.results_all[RUNTIME_KEY].itertuples(index=False, name=None))
    report.only_baseline = sorted(key_label(k) for k in base_keys - cur_keys)
    report.only_current = sorted(key_label(k) for k in cur_keys - base_keys)
    status = baseline.results_all.merge(current.results_all, on=RUNTIME_KEY + ["seed"],
                                        suffixes=("_base", "_cur"))
    for _, row in status[status["status_base"] != status["status_cur"]].iterrows():
        report.status_changes.append({
            "cell": cell_label(row), "seed": str(row["seed"]), "baseline": row["status_base"],
            "current": row["status_cur"], "error": row["error_cur"] or row["error_base"]})
    base_rows, cur_rows = common_seed_rows(baseline, current, report)
    spreads = {k: float(v) for k, v in (baseline.run.get("floors_spread") or {}).items()
               if isinstance(v, int | float)}
    report.comparisons = judge_quality(base_rows, cur_rows, limits, tols, spreads)
    base_id, cur_id = machine_of(baseline.run)["id"], machine_of(current.run)["id"]
    if base_id == cur_id:
        report.comparisons += judge_latency(baseline, current, base_rows, cur_rows, limits,
                                            alpha, report)
    else:
        report.not_compared.append(
            f"{', '.join(MACHINE_METRICS)}: different machines (baseline {base_id}, current "
            f"{cur_id}); timings are comparable only on one machine")
    return report
