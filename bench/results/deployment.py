"""Deployment rows of a run: every (cell, runtime, device, batch) with its speedups against eager
fp32 and against the best fp32 runtime of its family's baseline (for deployment.md and its plot).

A run with runtimes (`runtimes = [...]` in the sweep) has latency rows per runtime, each timed
interleaved against the eager fp32 baseline of the same (family, seed) (`speedup`); a runtime
that changes outputs by design (int8) also has a results row of its own, with its quality
measured on the same latents. Files of older code have no `runtime` column: they ran eager.
"""
from __future__ import annotations

import dataclasses
import json
from typing import Any

import numpy as np
import pandas as pd

from bench.results import schema
from bench.results.annotations import NoiseBand, speedup_noise_band
from bench.results.labels import compact_setting_labels
from bench.results.loading import ResultsDir

RUNTIME = "runtime"  # the column of latency.csv and results.csv (bench.results.schema)
EAGER = schema.RUNTIME_EAGER
BASELINE = "baseline"
# A figure needs every seed's row ok; otherwise the row shows the first of these it has.
_STATUS_ORDER = (schema.STATUS_FAILED, schema.STATUS_SKIPPED, schema.STATUS_UNSTABLE)
QUALITY = "fid_proxy"  # the change shown: FID-proxy is measured for every family and runtime


def runtime_of(frame: pd.DataFrame) -> pd.Series:
    """Each row's runtime; rows written before the runtime axis (no column, or empty) ran eager."""
    if RUNTIME not in frame.columns:
        return pd.Series(EAGER, index=frame.index, dtype=object)
    return frame[RUNTIME].fillna("").astype(str).str.strip().replace("", EAGER)


def has_runtimes(run: ResultsDir) -> bool:
    """True when the run measured some runtime besides eager (then deployment.md is written)."""
    return bool((runtime_of(run.latency_all) != EAGER).any())


def family_models(run: ResultsDir) -> dict[str, tuple[str, float]]:
    """{family: (model, width)} from run.json's config: a `[families.X]` table may name its
    `model` (default X) and `width` (default 1)."""
    config = run.run.get("config")
    families = config.get("families") if isinstance(config, dict) else None
    out = {}
    for family in run.results["family"].unique():
        table = families.get(family) if isinstance(families, dict) else None
        table = table if isinstance(table, dict) else {}
        out[str(family)] = (str(table.get("model") or family), float(table.get("width") or 1.0))
    return out


def eager_band(run: ResultsDir, family: str, device: str) -> NoiseBand | None:
    """The family's speedup noise band on `device`: its eager baseline timed against itself."""
    entries = [e for e in run.run.get("speedup_noise") or [] if isinstance(e, dict)
               and str(e.get(RUNTIME) or EAGER) == EAGER]
    return speedup_noise_band(dataclasses.replace(run, run={**run.run, "speedup_noise": entries}),
                              family, device)


def _status(statuses: list[str]) -> str:
    for status in _STATUS_ORDER:
        if status in statuses:
            return status
    return schema.STATUS_OK if statuses and set(statuses) == {schema.STATUS_OK} else "missing"


def _cells(run: ResultsDir) -> pd.DataFrame:
    """The eager result rows (one per cell and seed) with a `setting` label and their key."""
    results = run.results_all.assign(**{RUNTIME: runtime_of(run.results_all)})
    eager = results[results[RUNTIME] == EAGER].copy()
    eager["setting"] = compact_setting_labels(eager) if len(eager) else []
    eager["key"] = eager["family"].astype(str) + "\0" + eager["pipeline_json"].astype(str)
    return eager


def _runtime_rows(run: ResultsDir) -> pd.DataFrame:
    """Results rows of output-changing runtimes (int8): their own quality, size, int8 MACs."""
    results = run.results_all.assign(**{RUNTIME: runtime_of(run.results_all)})
    return results[(results[RUNTIME] != EAGER) & (results["status"] == schema.STATUS_OK)]


def deployment_rows(run: ResultsDir) -> pd.DataFrame:
    """One row per (family, cell key, runtime, device, batch), seeds folded: status (ok only when
    every seed's latency row is ok), p50_ms and speedup (against eager fp32, means over seeds;
    the eager baseline's is 1 by definition), changes_outputs, size_file_bytes, int8_mac_fraction,
    the FID-proxy change and its 95% interval, macs, and where these figures come from."""
    cells = _cells(run)
    ok_cells = cells[cells["status"] == schema.STATUS_OK]
    latency = run.latency_all.assign(**{RUNTIME: runtime_of(run.latency_all)})
    latency = latency.merge(cells[["cell_id", "key"]], on="cell_id", how="inner")
    changed = _runtime_rows(run).merge(cells[["cell_id", "key"]], on="cell_id", how="inner")
    rows: list[dict[str, Any]] = []
    for (key, runtime, device, batch), group in latency.groupby(
            ["key", RUNTIME, "device", "batch_size"], sort=False):
        first = ok_cells[ok_cells["key"] == key]
        if first.empty:
            continue  # the cell itself failed: nothing of it is a deployment figure
        cell = first.iloc[0]
        status = _status(list(group["status"]))
        own = changed[(changed["key"] == key) & (changed[RUNTIME] == runtime)]
        source = own if runtime != EAGER else first
        baseline = cell["method"] == BASELINE
        speedup = (1.0 if baseline and runtime == EAGER
                   else float(pd.to_numeric(group["speedup"]).mean()))
        ok = status == schema.STATUS_OK
        reasons = sorted({str(e) for e in group["error"].fillna("") if str(e)})
        rows.append({
            "family": cell["family"], "key": key, "method": cell["method"],
            "setting": cell["setting"], RUNTIME: runtime, "device": device,
            "batch_size": int(batch), "is_baseline": baseline, "status": status,
            "reason": "; ".join(reasons), "execution": str(group["execution"].fillna("").iloc[0]),
            "threads": sorted({int(t) for t in pd.to_numeric(group["threads"]).dropna()}),
            "p50_ms": float(pd.to_numeric(group["latency_p50_ms"]).mean()) if ok else np.nan,
            "speedup": speedup if ok else np.nan,
            "changes_outputs": runtime != EAGER and not own.empty,
            "seeds": int(group["cell_id"].nunique()), "macs": _mean(first, "macs"),
            "export_max_abs_err": _max(group, own), "fp32_ops": _fp32_ops(own),
            "size_file_bytes": _mean(source, "size_file_bytes") if len(source) else np.nan,
            "int8_mac_fraction": _mean(source, "int8_mac_fraction") if len(source) else np.nan,
            **_quality(source if runtime == EAGER or not own.empty else None),
        })
    return pd.DataFrame(rows)


def _fp32_ops(results: pd.DataFrame) -> str:
    """The op types a runtime left in fp32 (results.csv `fp32_ops`, a JSON list), joined."""
    if "fp32_ops" not in results.columns:
        return ""
    found: list[str] = []
    for text in results["fp32_ops"].fillna("").astype(str):
        try:
            ops = json.loads(text) if text.strip() else []
        except json.JSONDecodeError:
            ops = [text]
        found += [str(op) for op in ops if str(op) not in found] if isinstance(ops, list) else []
    return ", ".join(found)


def _max(latency: pd.DataFrame, results: pd.DataFrame) -> float:
    """The largest export error recorded for the deployment (latency rows, or its results row)."""
    column = "export_max_abs_err"
    values = [pd.to_numeric(f[column], errors="coerce") for f in (latency, results)
              if column in f.columns]
    found = pd.concat(values).dropna() if values else pd.Series(dtype=float)
    return float(found.max()) if len(found) else np.nan


def _mean(frame: pd.DataFrame, column: str) -> float:
    if column not in frame.columns:
        return np.nan
    values = pd.to_numeric(frame[column], errors="coerce").dropna()
    return float(values.mean()) if len(values) else np.nan


def _quality(source: pd.DataFrame | None) -> dict[str, float]:
    """The FID-proxy change against the same-seed eager baseline and its 95% interval, mean over
    seeds (one seed: its paired interval; several: the mean of the bounds, a simple summary).
    None: the runtime's outputs equal eager's, so its quality is the eager cell's."""
    names = [f"{QUALITY}_delta", f"{QUALITY}_delta_ci_low", f"{QUALITY}_delta_ci_high"]
    if source is None:
        return {"quality_delta": np.nan, "quality_low": np.nan, "quality_high": np.nan,
                "quality_as_eager": True}
    values = [_mean(source, name) for name in names]
    return {"quality_delta": values[0], "quality_low": values[1], "quality_high": values[2],
            "quality_as_eager": False}


@dataclasses.dataclass(frozen=True)
class Reference:
    """The best fp32 runtime of a family's baseline at one (device, batch): the highest ok
    speedup against eager fp32 among the baseline's runtimes that do not change outputs (eager,
    whose speedup is 1 by definition, included)."""

    runtime: str
    speedup: float
    p50_ms: float


def best_fp32(rows: pd.DataFrame, family: str, device: str, batch: int) -> Reference | None:
    """The Reference of `family` at (device, batch), or None when its baseline has no eager row
    there. Eager is always a candidate, at speedup 1 by definition (even when its self-timing
    row is unstable: that row only measures noise); another runtime only with an ok row. Ties
    go to eager, then to the runtime named first alphabetically."""
    mine = rows[(rows["family"] == family) & (rows["device"] == device)
                & (rows["batch_size"] == batch) & rows["is_baseline"]
                & ~rows["changes_outputs"]]
    eager = mine[RUNTIME] == EAGER
    if not eager.any():
        return None
    mine = mine[eager | (mine["status"] == schema.STATUS_OK)]
    mine = mine.assign(speedup=mine["speedup"].where(mine[RUNTIME] != EAGER, 1.0),
                       not_eager=mine[RUNTIME] != EAGER)
    best = mine.sort_values(["speedup", "not_eager", RUNTIME], ascending=[False, True, True],
                            kind="stable").iloc[0]
    return Reference(str(best[RUNTIME]), float(best["speedup"]), float(best["p50_ms"]))


def with_references(rows: pd.DataFrame) -> pd.DataFrame:
    """`rows` plus reference_runtime, reference_speedup and speedup_vs_best (= speedup /
    reference_speedup: both are measured against the same eager baseline, so their ratio is
    the speedup against the best fp32 runtime)."""
    out = rows.copy()
    refs = {k: best_fp32(rows, *k) for k in
            rows[["family", "device", "batch_size"]].drop_duplicates().itertuples(index=False)}
    found = [refs[(f, d, b)] for f, d, b in zip(out["family"], out["device"], out["batch_size"],
                                                 strict=True)]
    out["reference_runtime"] = [r.runtime if r else "" for r in found]
    out["reference_speedup"] = [r.speedup if r else np.nan for r in found]
    out["speedup_vs_best"] = out["speedup"] / out["reference_speedup"]
    return out
