"""Read and validate a results directory (output_layout.md) for plots, tables, compare, report."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.stats

from bench.errors import InputError
from bench.results import schema

# A cell's identity across seeds and across runs: what compare matches and tables group by.
# pipeline_json holds every step's settings (the merged setting columns let a later step
# overwrite an earlier one's, so two pipelines could share them). Not `execution`: it is an
# outcome of the method (and empty when a cell failed early).
KEY_COLUMNS = (["dataset", "family", "method"] + schema.SETTING_COLUMNS
               + ["settings_json", "pipeline_json"])
_TEXT_COLUMNS = (
    schema.ID_COLUMNS + schema.SETTING_COLUMNS + schema.EXTRA_SETTING_COLUMNS
    + ["class_fractions", "runtime", "fp32_ops"]
)
# Columns a file of older code may lack (filled empty on read; an empty runtime is eager).
_ADDED_COLUMNS = (schema.ADDED_RESULTS_COLUMNS + schema.ADDED_LATENCY_COLUMNS
                  + schema.ADDED_LATENCY_SAMPLE_COLUMNS)
# True/False columns: read as pandas' nullable boolean (empty where a cell has none).
_BOOL_COLUMNS = ["collapsed"] + [m + "_delta_significant" for m in schema.DELTA_METRICS]
_BOOL_TEXT = {"true": True, "false": False, "1": True, "0": False, "1.0": True, "0.0": False}

@dataclass(frozen=True)
class ResultsDir:
    """One run's tables: results (one row per cell), latency, raw latency samples, run.json.

    `results`, `latency` and `samples` hold the eager rows (runtime "eager": what PyTorch runs
    as is), one results row per cell: what tables, plots, history and the report show.
    `results_all`, `latency_all` and `samples_all` hold every runtime's rows, for runtime-aware
    readers (compare, the deployment table); None given: the eager frames.
    """

    path: Path
    results: pd.DataFrame
    latency: pd.DataFrame
    samples: pd.DataFrame
    run: dict[str, Any]
    results_all: pd.DataFrame | None = None
    latency_all: pd.DataFrame | None = None
    samples_all: pd.DataFrame | None = None

    def __post_init__(self) -> None:
        for name in ("results", "latency", "samples"):
            if getattr(self, f"{name}_all") is None:
                object.__setattr__(self, f"{name}_all", getattr(self, name))

    @property
    def floors(self) -> dict[str, float]:
        """Real-vs-real value per metric ({} until the runner has measured them)."""
        floors = self.run.get("floors") or {}
        return {k: float(v) for k, v in floors.items() if isinstance(v, int | float)}

    def ok(self) -> pd.DataFrame:
        return self.results[self.results["status"] == schema.STATUS_OK]


def canonical_number(text: str) -> str:
    """'4.0' -> '4', '0.50' -> '0.5': settings written by different writers still match."""
    try:
        value = float(text)
    except ValueError:
        return text
    if not math.isfinite(value):
        return text
    return str(int(value)) if value.is_integer() else repr(value)


def _read_csv(path: Path, columns: list[str], text_columns: list[str]) -> pd.DataFrame:
    if not path.is_file():
        raise InputError(f"{path}: missing; a results directory holds {schema.RESULTS_FILE}, "
                         f"{schema.LATENCY_FILE}, {schema.LATENCY_SAMPLES_FILE}, {schema.RUN_FILE}")
    flags = [c for c in _BOOL_COLUMNS if c in columns]
    try:
        frame = pd.read_csv(path, dtype={c: str for c in text_columns + flags if c in columns})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a readable CSV ({exc.__class__.__name__})") from None
    for column in _ADDED_COLUMNS:  # absent from results of older code
        if column in columns and column not in frame.columns:
            frame[column] = None
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(f"{path}: missing columns {missing}; expected {columns}")
    for column in text_columns:
        if column in frame.columns:
            frame[column] = frame[column].fillna("").astype(str).map(canonical_number)
    if "runtime" in columns:  # rows of code before runtimes ran eager
        frame["runtime"] = frame["runtime"].replace("", schema.RUNTIME_EAGER)
    for column in flags:
        text = frame[column].fillna("").str.strip().str.lower()
        unknown = sorted(set(text) - set(_BOOL_TEXT) - {""})
        if unknown:
            raise InputError(f"{path}: column {column} holds {unknown[0]!r}; expected True, "
                             "False or empty")
        frame[column] = text.map(_BOOL_TEXT).astype("boolean")
    numeric = [c for c in columns if c not in text_columns and c not in flags]
    frame[numeric] = frame[numeric].apply(pd.to_numeric, errors="coerce")
    return frame


def load_results_dir(path: str | Path) -> ResultsDir:
    """Load DIR's CSVs and run.json, raising InputError naming the first problem found."""
    path = Path(path)
    if not path.is_dir():
        raise InputError(f"{path}: not a directory (expected a genbench results directory)")
    run_path = path / schema.RUN_FILE
    if not run_path.is_file():
        raise InputError(f"{run_path}: missing; every results directory has a run.json")
    try:
        run = json.loads(run_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{run_path}: not valid JSON ({exc})") from None
    if not isinstance(run, dict) or run.get("schema_version") != schema.SCHEMA_VERSION:
        found = run.get("schema_version") if isinstance(run, dict) else None
        raise InputError(f"{run_path}: schema_version {found!r}; this genbench reads "
                         f"{schema.SCHEMA_VERSION}")
    results = _read_csv(path / schema.RESULTS_FILE, schema.RESULTS_COLUMNS, _TEXT_COLUMNS)
    latency = _read_csv(path / schema.LATENCY_FILE, schema.LATENCY_COLUMNS,
                        ["cell_id", "runtime", "device", "execution", "status", "error"])
    samples = _read_csv(path / schema.LATENCY_SAMPLES_FILE, schema.LATENCY_SAMPLE_COLUMNS,
                        ["cell_id", "runtime", "device"])
    return ResultsDir(path, eager_rows(results), eager_rows(latency), eager_rows(samples), run,
                      results_all=results, latency_all=latency, samples_all=samples)


def eager_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of runtime "eager" (all rows of a frame without the column), index 0..n-1."""
    if "runtime" not in frame.columns:
        return frame
    return frame[frame["runtime"] == schema.RUNTIME_EAGER].reset_index(drop=True)


def latency_at_largest_batch(run: ResultsDir, device: str) -> pd.DataFrame:
    """Ok latency rows of `device` at the largest batch size measured there; one row per cell."""
    rows = run.latency[(run.latency["device"] == device)
                       & (run.latency["status"] == schema.STATUS_OK)]
    if rows.empty:
        return rows
    return rows[rows["batch_size"] == rows["batch_size"].max()].drop_duplicates("cell_id")


def with_latency(run: ResultsDir, frame: pd.DataFrame) -> pd.DataFrame:
    """Join p50 CPU/CUDA and CPU speedup (largest batch) onto result rows by cell_id.

    Figures come only from rows with status ok: an unstable row (its relative IQR stayed above
    the threshold) gives none. `latency_status` / `latency_status_cuda` say what the cell's row
    at that batch was (ok, unstable; empty when it has none), so readers can say why a figure
    is missing.
    """
    out = frame.copy()
    for device, columns in (("cpu", ["latency_p50_ms", "speedup", "throughput_sps"]),
                            ("cuda", ["latency_p50_ms"])):
        suffix = "" if device == "cpu" else f"_{device}"
        measured = measured_latency_rows(run, device).set_index("cell_id")
        ok = measured[measured["status"] == schema.STATUS_OK]
        for column in columns:
            out[column + suffix] = out["cell_id"].map(ok[column]) if not ok.empty else np.nan
        statuses = measured["status"].to_dict()
        out["latency_status" + suffix] = [statuses.get(c, "") for c in out["cell_id"]]
    return out


def seed_summary(frame: pd.DataFrame, metrics: list[str],
                 keys: list[str] | None = None) -> pd.DataFrame:
    """Per cell key (first-seen order), over its seeds: mean, std (ddof=1), count and a 95%
    interval of the mean, as `<m>_mean, <m>_std, <m>_n, <m>_hw, <m>_low, <m>_high`.

    A seed's own interval is `<m>_ci_low/_ci_high` (bootstrap over samples; absent for sizes and
    latency), its half-width h_i = (ci_high - ci_low) / 2. With one seed the interval is that
    seed's interval and hw = h_1. With n > 1 seeds of values x_i (std s):

        hw = sqrt(mean(h_i^2) / n + t_{n-1}^2 s^2 / n),   low, high = mean -/+ hw,

    keys: the columns that name a cell (default KEY_COLUMNS; compare adds `runtime`).

    t_{n-1} the Student t quantile at 0.975: the sampling noise of the mean plus the t-interval
    over seeds. s already holds some sampling noise, so the sum counts it twice; that is on
    purpose: with 2-3 seeds s is itself uncertain, and seeds that agree by chance must not give
    an interval narrower than the samples allow. Without seed intervals (h_i unknown) hw is the
    t-interval alone. Works for deltas too: `<m>_delta` has `<m>_delta_ci_low/_ci_high`.
    """
    # One integer key per cell key (first-seen order): grouping on the 14 text key columns
    # for every statistic is what made this slow.
    columns = KEY_COLUMNS if keys is None else keys
    codes = frame.groupby(columns, sort=False, dropna=False).ngroup().to_numpy()
    work = {}
    for metric in metrics:
        value = pd.to_numeric(frame[metric], errors="coerce")
        bounds = [f"{metric}{s}" for s in schema.CI_SUFFIXES]
        low, high = (pd.to_numeric(frame[b], errors="coerce").where(value.notna())
                     if b in frame else pd.Series(np.nan, index=frame.index) for b in bounds)
        work.update({(metric, "value"): value, (metric, "low"): low, (metric, "high"): high,
                     (metric, "h2"): ((high - low) / 2) ** 2})
    grouped = pd.DataFrame(work, index=frame.index).groupby(codes, sort=True)
    mean, std, n = grouped.mean(), grouped.std(ddof=1), grouped.count()
    lowest, highest = grouped.min(), grouped.max()
    keys = frame[columns].loc[~pd.Series(codes).duplicated().to_numpy()].reset_index(drop=True)
    out = {}  # columns gathered, then joined once (inserting them one by one fragments a frame)
    for metric in metrics:
        count = n[(metric, "value")].to_numpy()
        center, spread = mean[(metric, "value")].to_numpy(), std[(metric, "value")].to_numpy()
        mean_h2 = np.nan_to_num(mean[(metric, "h2")].to_numpy())
        t = scipy.stats.t.ppf(0.975, np.maximum(count - 1, 1))
        with np.errstate(invalid="ignore", divide="ignore"):
            pooled = np.sqrt(mean_h2 / count + (t * spread) ** 2 / count)
        one_low, one_high = lowest[(metric, "low")].to_numpy(), highest[(metric, "high")].to_numpy()
        several = count > 1
        out[f"{metric}_mean"], out[f"{metric}_std"], out[f"{metric}_n"] = center, spread, count
        out[f"{metric}_hw"] = np.where(several, pooled, (one_high - one_low) / 2)
        out[f"{metric}_low"] = np.where(several, center - pooled, one_low)
        out[f"{metric}_high"] = np.where(several, center + pooled, one_high)
    return pd.concat([keys, pd.DataFrame(out, index=keys.index)], axis=1)


def measured_latency_rows(run: ResultsDir, device: str) -> pd.DataFrame:
    """Latency rows of `device` that measured something (ok or unstable) at the largest batch
    measured there, one per cell (an ok row first where a cell has both)."""
    measured = (run.latency["device"] == device) & run.latency["status"].isin(
        [schema.STATUS_OK, schema.STATUS_UNSTABLE])
    rows = run.latency[measured]
    if rows.empty:
        return rows
    rows = rows[rows["batch_size"] == rows["batch_size"].max()]
    first_ok = np.argsort((rows["status"] != schema.STATUS_OK).to_numpy(), kind="stable")
    return rows.iloc[first_ok].drop_duplicates("cell_id")
