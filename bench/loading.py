"""Read and validate a results directory (output_layout.md) for plots, tables, compare, report."""
from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench import schema
from bench.errors import InputError

# A cell's identity across seeds and across runs: what compare matches and tables group by.
# Not `execution`: it is an outcome of the method (and empty when a cell failed early).
KEY_COLUMNS = ["dataset", "family", "method"] + schema.SETTING_COLUMNS + ["settings_json"]
_TEXT_COLUMNS = schema.ID_COLUMNS + schema.SETTING_COLUMNS + schema.EXTRA_SETTING_COLUMNS
# Short names for the compact setting label; values print as they are.
_SETTING_LABELS = {
    "threshold": "thr {}",
    "sparsity_target": "sparsity {}",
    "bits": "{}-bit",
    "width": "width {}",
    "finetune_steps": "ft {}",
}


@dataclass(frozen=True)
class ResultsDir:
    """One run's tables: results (one row per cell), latency, raw latency samples, run.json."""

    path: Path
    results: pd.DataFrame
    latency: pd.DataFrame
    samples: pd.DataFrame
    run: dict[str, Any]

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
    try:
        frame = pd.read_csv(path, dtype={c: str for c in text_columns if c in columns})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a readable CSV ({exc.__class__.__name__})") from None
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(f"{path}: missing columns {missing}; expected {columns}")
    for column in text_columns:
        if column in frame.columns:
            frame[column] = frame[column].fillna("").astype(str).map(canonical_number)
    numeric = [c for c in columns if c not in text_columns]
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
                        ["cell_id", "device", "execution", "status", "error"])
    samples = _read_csv(path / schema.LATENCY_SAMPLES_FILE, schema.LATENCY_SAMPLE_COLUMNS,
                        ["cell_id", "device"])
    return ResultsDir(path, results, latency, samples, run)


def _extra_settings(row: pd.Series | dict[str, Any]) -> dict[str, Any]:
    """settings_json as a dict without null values (a setting that does not apply)."""
    text = str(row.get("settings_json", "") or "")
    if not text:
        return {}
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError:
        return {"settings": text}
    if not isinstance(parsed, dict):
        return {"settings": parsed}
    return {k: v for k, v in parsed.items() if v is not None}


def setting_label(row: pd.Series | dict[str, Any], extra_keys: Iterable[str] | None = None) -> str:
    """Compact human string of a cell's settings, e.g. '4-bit, channel, stochastic'.

    extra_keys: which settings_json keys to show (None: all of them).
    """
    parts = []
    for column in schema.SETTING_COLUMNS:
        value = str(row.get(column, "") or "")
        if value:
            parts.append(_SETTING_LABELS.get(column, "{}").format(value))
    extra = _extra_settings(row)
    keys = sorted(extra) if extra_keys is None else sorted(set(extra_keys) & set(extra))
    parts.extend(f"{k}={extra[k]}" for k in keys)
    return ", ".join(parts) if parts else ("fp32" if row.get("method") == "baseline" else "-")


def compact_setting_labels(frame: pd.DataFrame) -> list[str]:
    """setting_label per row, showing only the settings_json keys whose value varies among the
    rows of the same (family, method): constant defaults would only lengthen every label."""
    extras = [_extra_settings(row) for _, row in frame.iterrows()]
    varying: dict[tuple[str, str], set[str]] = {}
    for (family, method), index in frame.groupby(["family", "method"], sort=False).indices.items():
        seen: dict[str, set[str]] = {}
        for i in index:
            for key, value in extras[i].items():
                seen.setdefault(key, set()).add(json.dumps(value, sort_keys=True))
        keys = {k for k, values in seen.items()
                if len(values) > 1 or sum(k in extras[i] for i in index) < len(index)}
        varying[(family, method)] = keys
    return [setting_label(row, varying[(row["family"], row["method"])])
            for _, row in frame.iterrows()]


def cell_label(row: pd.Series | dict[str, Any]) -> str:
    """'gan/quant [4-bit, channel] (mnist5k)': how compare and history name a cell."""
    return f"{row['family']}/{row['method']} [{setting_label(row)}] ({row['dataset']})"


def latency_at_largest_batch(run: ResultsDir, device: str) -> pd.DataFrame:
    """Ok latency rows of `device` at the largest batch size measured there; one row per cell."""
    rows = run.latency[(run.latency["device"] == device)
                       & (run.latency["status"] == schema.STATUS_OK)]
    if rows.empty:
        return rows
    return rows[rows["batch_size"] == rows["batch_size"].max()].drop_duplicates("cell_id")


def with_latency(run: ResultsDir, frame: pd.DataFrame) -> pd.DataFrame:
    """Join p50 CPU/CUDA and CPU speedup (largest batch) onto result rows by cell_id."""
    out = frame.copy()
    for device, columns in (("cpu", ["latency_p50_ms", "speedup", "throughput_sps"]),
                            ("cuda", ["latency_p50_ms"])):
        rows = latency_at_largest_batch(run, device).set_index("cell_id")
        for column in columns:
            name = column if device == "cpu" else f"{column}_{device}"
            out[name] = out["cell_id"].map(rows[column]) if not rows.empty else np.nan
    return out


def seed_summary(frame: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """Mean, std (ddof=1; NaN for one seed), count over seeds per cell key, first-seen order."""
    grouped = frame.groupby(KEY_COLUMNS, sort=False, dropna=False)[metrics]
    mean, std, count = grouped.mean(), grouped.std(ddof=1), grouped.count()
    out = mean.add_suffix("_mean").join(std.add_suffix("_std")).join(count.add_suffix("_n"))
    return out.reset_index()
