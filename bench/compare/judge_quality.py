"""Judge the quality metrics of two results directories, cell by cell over their common seeds."""
from __future__ import annotations

import math

import pandas as pd

from bench.compare.report import CompareReport, Comparison
from bench.compare.verdicts import (
    RESULT_METRICS,
    floor_noise,
    judge_intervals,
    judge_values,
    relative_change,
    seed_band,
)
from bench.results import schema
from bench.results.labels import cell_label
from bench.results.loading import KEY_COLUMNS, ResultsDir, seed_summary

# A row's identity in a comparison: the cell key and the runtime that ran it (results of code
# before runtimes load as "eager", so they match the eager rows of newer runs).
RUNTIME_KEY = KEY_COLUMNS + ["runtime"]


def key_label(key: tuple) -> str:
    return cell_label(dict(zip(RUNTIME_KEY, key, strict=True)))


def shown(seeds: set) -> str:
    """'[0, 1, 10]': seeds are text in results.csv; numbers sort by length, then digits."""
    return "[" + ", ".join(sorted(map(str, seeds), key=lambda s: (len(s), s))) + "]"


def common_seed_rows(baseline: ResultsDir, current: ResultsDir,
                      report: CompareReport) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Ok rows (every runtime's) of the seeds both runs have (all seeds when they share none),
    noted."""
    base, cur = (run.results_all[run.results_all["status"] == schema.STATUS_OK]
                 for run in (baseline, current))
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
    return known.groupby([rows[k] for k in RUNTIME_KEY], sort=False).all()


def judge_quality(base_rows: pd.DataFrame, cur_rows: pd.DataFrame, limits: dict[str, float],
             tols: dict[str, float], spreads: dict[str, float]) -> list[Comparison]:
    """Results metrics per cell key over seeds: intervals, else seed noise, else the floor's
    spread, else threshold alone (see Comparison.rule)."""
    base = seed_summary(base_rows, RESULT_METRICS, RUNTIME_KEY).set_index(RUNTIME_KEY)
    cur = seed_summary(cur_rows, RESULT_METRICS, RUNTIME_KEY).set_index(RUNTIME_KEY)
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
            out.append(Comparison(key_label(key), m, "", 0, mean_b, mean_c,
                                  relative_change(mean_b, mean_c), limits[m], verdict, rule,
                                  **fields))
    return out
