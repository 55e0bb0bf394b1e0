"""Match two results directories row by row and judge each metric with the rule its noise allows."""
from __future__ import annotations

import functools
import math

import numpy as np
import pandas as pd

from bench import schema
from bench.compare_report import CompareReport, Comparison
from bench.environment import machine_of
from bench.latency_tests import median_ratio_ci, speedup_ratio_ci
from bench.loading import KEY_COLUMNS, ResultsDir, cell_label, seed_summary
from bench.verdicts import (
    ABS_TOLERANCES,
    DEFAULT_ALPHA,
    DEFAULT_THRESHOLDS,
    MACHINE_METRICS,
    RESULT_METRICS,
    floor_noise,
    judge_intervals,
    judge_ratio,
    judge_values,
    relative_change,
)

LATENCY_GROUP = KEY_COLUMNS + ["device", "batch_size"]


def _label(key: tuple) -> str:
    return cell_label(dict(zip(KEY_COLUMNS, key, strict=True)))


def shown(seeds: set) -> str:
    """'[0, 1, 10]': seeds are text in results.csv; numbers sort by length, then digits."""
    return "[" + ", ".join(sorted(map(str, seeds), key=lambda s: (len(s), s))) + "]"


def _common_seed_rows(baseline: ResultsDir, current: ResultsDir,
                      report: CompareReport) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Ok rows of the seeds both runs have (all seeds when they share none), noted."""
    base, cur = baseline.ok(), current.ok()
    base_seeds, cur_seeds = set(base["seed"]), set(cur["seed"])
    common = base_seeds & cur_seeds
    if base_seeds != cur_seeds:
        if common:
            report.notes.append(f"seeds differ (baseline {shown(base_seeds)}, current "
                                f"{shown(cur_seeds)}): compared seeds {shown(common)} only")
            base, cur = base[base["seed"].isin(common)], cur[cur["seed"].isin(common)]
        else:
            report.notes.append(f"no common seed (baseline {shown(base_seeds)}, current "
                                f"{shown(cur_seeds)}): compared means over different seeds")
    return base, cur


def _ci_known(rows: pd.DataFrame) -> pd.DataFrame:
    """Per cell key and interval metric: every seed has a finite `<metric>_ci_low`."""
    columns = [m + "_ci_low" for m in RESULT_METRICS if m in schema.INTERVAL_METRICS]
    known = rows[columns].apply(pd.to_numeric, errors="coerce").notna()
    return known.groupby([rows[k] for k in KEY_COLUMNS], sort=False).all()


def _quality(base_rows: pd.DataFrame, cur_rows: pd.DataFrame, limits: dict[str, float],
             tols: dict[str, float], spreads: dict[str, float]) -> list[Comparison]:
    """Results metrics per cell key over seeds: intervals, else seed noise, else the floor's
    spread, else threshold alone (see Comparison.rule)."""
    base = seed_summary(base_rows, RESULT_METRICS).set_index(KEY_COLUMNS)
    cur = seed_summary(cur_rows, RESULT_METRICS).set_index(KEY_COLUMNS)
    # Plain dicts: label lookups in a loop over every key and metric are slow in pandas.
    base_ci, cur_ci = _ci_known(base_rows).to_dict("index"), _ci_known(cur_rows).to_dict("index")
    keys = base.index.intersection(cur.index, sort=False)
    base, cur = base.to_dict("index"), cur.to_dict("index")
    out = []
    for key in keys:
        b, c = base[key], cur[key]
        for m in RESULT_METRICS:
            mean_b, mean_c = float(b[f"{m}_mean"]), float(c[f"{m}_mean"])
            if math.isnan(mean_b) or math.isnan(mean_c):
                continue  # not measured for this family (e.g. ELBO of a GAN)
            column = m + "_ci_low"
            fields = {"noise": None, "baseline_ci": None, "current_ci": None}
            if base_ci[key].get(column) and cur_ci[key].get(column):
                fields.update(baseline_ci=(float(b[f"{m}_low"]), float(b[f"{m}_high"])),
                              current_ci=(float(c[f"{m}_low"]), float(c[f"{m}_high"])))
                rule = "intervals"
                verdict = judge_intervals(m, mean_b, fields["baseline_ci"], mean_c,
                                          fields["current_ci"], limits[m], tols.get(m, 0.0))
            else:
                noise = _noise(int(b[f"{m}_n"]), int(c[f"{m}_n"]), b[f"{m}_std"], c[f"{m}_std"])
                if noise is not None:  # >= 2 seeds per side: their spread
                    rule = "seeds"
                else:
                    noise = floor_noise(spreads.get(m))
                    rule = "threshold" if noise is None else "floor"
                fields["noise"] = noise
                verdict = judge_values(m, mean_b, mean_c, noise, limits[m], tols.get(m, 0.0))
            out.append(Comparison(_label(key), m, "", 0, mean_b, mean_c,
                                  relative_change(mean_b, mean_c), limits[m], verdict, rule,
                                  **fields))
    return out


def _keyed(run: ResultsDir, rows: pd.DataFrame, frame: pd.DataFrame) -> pd.DataFrame:
    return frame.merge(rows[KEY_COLUMNS + ["seed", "cell_id"]], on="cell_id")


def _raw(run: ResultsDir, rows: pd.DataFrame) -> dict[tuple, np.ndarray]:
    """Raw seconds per call pooled over the compared seeds per (KEY..., device, batch_size)."""
    merged = _keyed(run, rows, run.samples)
    return {key: g["seconds_per_call"].to_numpy(float)
            for key, g in merged.groupby(LATENCY_GROUP, sort=False)}


def _references(rows: pd.DataFrame) -> dict[tuple, tuple]:
    """(dataset, family) -> the cell key of its uncompressed baseline (speedup's reference)."""
    base = rows[rows["method"] == "baseline"].drop_duplicates(KEY_COLUMNS)
    return {(r["dataset"], r["family"]): tuple(r[KEY_COLUMNS]) for _, r in base.iterrows()}


def _latency(baseline: ResultsDir, current: ResultsDir, base_rows: pd.DataFrame,
             cur_rows: pd.DataFrame, limits: dict[str, float], alpha: float,
             report: CompareReport) -> list[Comparison]:
    """Latency rows of one machine: unstable rows listed, p50 and speedup by bootstrap ratio
    intervals of the raw blocks, throughput with its p50's verdict, memory by seed noise."""
    measured = [schema.STATUS_OK, schema.STATUS_UNSTABLE]
    sides = [_keyed(run, rows, run.latency[run.latency["status"].isin(measured)])
             for run, rows in ((baseline, base_rows), (current, cur_rows))]
    raw_b, raw_c = _raw(baseline, base_rows), _raw(current, cur_rows)
    refs = _references(base_rows)
    current_groups = dict(iter(sides[1].groupby(LATENCY_GROUP, sort=False)))
    out = []
    for group_key, gb in sides[0].groupby(LATENCY_GROUP, sort=False):
        if group_key not in current_groups:
            continue
        gc = current_groups[group_key]
        *key, device, batch = group_key
        key, batch = tuple(key), int(batch)
        shaky = [side for side, g in (("baseline", gb), ("current", gc))
                 if (g["status"] == schema.STATUS_UNSTABLE).any()]
        if shaky:
            report.unstable.append({"cell": _label(key), "device": device, "batch_size": batch,
                                    "side": " and ".join(shaky)})
            continue
        add = functools.partial(_append, out, _label(key), device, batch, limits)

        means = {m: (float(gb[m].mean()), float(gc[m].mean())) for m in MACHINE_METRICS}
        n_b, n_c = gb[MACHINE_METRICS].std(ddof=1), gc[MACHINE_METRICS].std(ddof=1)
        if group_key in raw_b and group_key in raw_c:
            ratio, low, high = median_ratio_ci(raw_b[group_key], raw_c[group_key], 1 - alpha)
            lat_verdict = judge_ratio("latency_p50_ms", ratio, low, high,
                                      limits["latency_p50_ms"])
            add("latency_p50_ms", lat_verdict, ratio - 1, "ratio",
                float(np.median(raw_b[group_key])) * 1e3,
                float(np.median(raw_c[group_key])) * 1e3, ratio_ci=(low, high))
            lat_change = 1 / ratio - 1  # throughput = batch / latency
        else:
            base_value, cur_value = means["latency_p50_ms"]
            noise = _noise(len(gb), len(gc), n_b["latency_p50_ms"], n_c["latency_p50_ms"])
            lat_verdict = judge_values("latency_p50_ms", base_value, cur_value, noise,
                                       limits["latency_p50_ms"])
            add("latency_p50_ms", lat_verdict, relative_change(base_value, cur_value),
                "seeds" if noise is not None else "threshold", base_value, cur_value,
                noise=noise)
            lat_change = relative_change(*means["throughput_sps"])
        # Throughput is batch / latency from the same blocks: it takes latency's verdict.
        add("throughput_sps", lat_verdict, lat_change, "derived", *means["throughput_sps"])
        ref = (*refs.get((key[0], key[1]), ()), device, batch)
        by_seeds = ["peak_mem_bytes"]
        if all(k in raw for raw in (raw_b, raw_c) for k in (ref, group_key)):
            ratio, low, high = speedup_ratio_ci(raw_b[ref], raw_b[group_key], raw_c[ref],
                                                raw_c[group_key], 1 - alpha)
            add("speedup", judge_ratio("speedup", ratio, low, high, limits["speedup"]),
                ratio - 1, "ratio", *means["speedup"], ratio_ci=(low, high))
        else:
            by_seeds.insert(0, "speedup")
        for metric in by_seeds:
            base_value, cur_value = means[metric]
            if math.isnan(base_value) or math.isnan(cur_value):
                continue
            noise = _noise(len(gb), len(gc), n_b[metric], n_c[metric])
            add(metric, judge_values(metric, base_value, cur_value, noise, limits[metric]),
                relative_change(base_value, cur_value),
                "seeds" if noise is not None else "threshold", base_value, cur_value,
                noise=noise)
    return out


def _append(out: list[Comparison], cell: str, device: str, batch: int,
            limits: dict[str, float], metric: str, verdict: str, change: float, rule: str,
            base_value: float, cur_value: float, **fields: object) -> None:
    out.append(Comparison(cell, metric, device, batch, base_value, cur_value, change,
                          limits[metric], verdict, rule, **fields))


def _noise(n_base: int, n_cur: int, std_base: float, std_cur: float) -> float | None:
    if n_base >= 2 and n_cur >= 2:
        return 2.0 * math.sqrt((std_base ** 2 + std_cur ** 2) / 2.0)
    return None


def compare_runs(baseline: ResultsDir, current: ResultsDir,
                 thresholds: dict[str, float] | None = None, alpha: float = DEFAULT_ALPHA,
                 abs_tols: dict[str, float] | None = None) -> CompareReport:
    """Match cells by KEY_COLUMNS over the common seeds and judge every metric in DIRECTIONS;
    machine-bound metrics only when both runs have the same machine id."""
    limits = {**DEFAULT_THRESHOLDS, **(thresholds or {})}
    tols = {**ABS_TOLERANCES, **(abs_tols or {})}
    report = CompareReport()
    base_keys = set(baseline.results[KEY_COLUMNS].itertuples(index=False, name=None))
    cur_keys = set(current.results[KEY_COLUMNS].itertuples(index=False, name=None))
    report.only_baseline = sorted(_label(k) for k in base_keys - cur_keys)
    report.only_current = sorted(_label(k) for k in cur_keys - base_keys)
    status = baseline.results.merge(current.results, on=KEY_COLUMNS + ["seed"],
                                    suffixes=("_base", "_cur"))
    for _, row in status[status["status_base"] != status["status_cur"]].iterrows():
        report.status_changes.append({
            "cell": cell_label(row), "seed": str(row["seed"]), "baseline": row["status_base"],
            "current": row["status_cur"], "error": row["error_cur"] or row["error_base"]})
    base_rows, cur_rows = _common_seed_rows(baseline, current, report)
    spreads = {k: float(v) for k, v in (baseline.run.get("floors_spread") or {}).items()
               if isinstance(v, int | float)}
    report.comparisons = _quality(base_rows, cur_rows, limits, tols, spreads)
    base_id, cur_id = machine_of(baseline.run)["id"], machine_of(current.run)["id"]
    if base_id == cur_id:
        report.comparisons += _latency(baseline, current, base_rows, cur_rows, limits, alpha,
                                       report)
    else:
        report.not_compared.append(
            f"{', '.join(MACHINE_METRICS)}: different machines (baseline {base_id}, current "
            f"{cur_id}); timings are comparable only on one machine")
    return report
