"""Match two results directories row by row and judge each metric with the rule its noise allows."""
from __future__ import annotations

import math

import pandas as pd

from bench import schema
from bench.compare_latency import judge_latency
from bench.compare_report import CompareReport, Comparison
from bench.environment import machine_of
from bench.loading import KEY_COLUMNS, ResultsDir, cell_label, seed_summary
from bench.verdicts import (
    ABS_TOLERANCES,
    DEFAULT_ALPHA,
    DEFAULT_THRESHOLDS,
    MACHINE_METRICS,
    RESULT_METRICS,
    floor_noise,
    judge_intervals,
    judge_values,
    relative_change,
    seed_band,
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
                noise = seed_band(int(b[f"{m}_n"]), int(c[f"{m}_n"]), b[f"{m}_std"], c[f"{m}_std"])
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
        report.comparisons += judge_latency(baseline, current, base_rows, cur_rows, limits,
                                            alpha, report)
    else:
        report.not_compared.append(
            f"{', '.join(MACHINE_METRICS)}: different machines (baseline {base_id}, current "
            f"{cur_id}); timings are comparable only on one machine")
    return report
