"""Human labels of a results row: compact settings, pipeline steps, a cell's name."""
from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import pandas as pd

from bench.results import schema

# Short names for the compact setting label; values print as they are.
_SETTING_LABELS = {
    "threshold": "thr {}",
    "sparsity_target": "sparsity {}",
    "bits": "{}-bit",
    "width": "width {}",
    "finetune_steps": "ft {}",
}
# A step of pipeline_json holds its config's fields: these always show (in this order, named as
# the setting columns are; `sparsity` and QAT's `steps` are sparsity_target and finetune_steps),
# the other fields as key=value.
_STEP_LABELS = {**_SETTING_LABELS, "sparsity": "sparsity {}", "steps": "ft {}"}
_STEP_HEADLINE = ["threshold", "sparsity", "scope", "bits", "granularity", "rounding", "width",
                  "finetune_steps", "steps"]


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


def pipeline_steps(row: pd.Series | dict[str, Any]) -> list[dict[str, Any]]:
    """pipeline_json as a list of step dicts ({method, **fields}); [] when absent or unreadable."""
    text = str(row.get("pipeline_json", "") or "")
    try:
        parsed = json.loads(text) if text else []
    except json.JSONDecodeError:
        return []
    return [step for step in parsed if isinstance(step, dict)] if isinstance(parsed, list) else []


def _step_extras(steps: list[dict[str, Any]]) -> dict[str, Any]:
    """The non-headline fields of a multi-step pipeline as '<step index>:<field>' -> value."""
    return {f"{i}:{key}": value for i, step in enumerate(steps) for key, value in step.items()
            if key not in _STEP_HEADLINE and key != "method" and value is not None}


def _step_label(index: int, step: dict[str, Any], extra_keys: set[str] | None) -> str:
    """'prune_magnitude sparsity 0.5, global, ft 100, lr=0.001': headline fields always, the
    others when extra_keys (qualified '<index>:<field>'; None: all) names them."""
    # The "steps" method's `steps` are DDIM sampling steps, not fine-tuning steps.
    labels = {**_STEP_LABELS, "steps": "{} DDIM steps"} if step.get("method") == "steps" else (
        _STEP_LABELS)
    parts = [labels.get(key, "{}").format(step[key]) for key in _STEP_HEADLINE
             if step.get(key) is not None and str(step[key]) != ""]
    extra = {k.partition(":")[2]: v for k, v in _step_extras([step]).items()}
    keys = sorted(extra) if extra_keys is None else sorted(
        k for k in extra if f"{index}:{k}" in extra_keys)
    parts += [f"{k}={extra[k]}" for k in keys]
    return " ".join([str(step.get("method", "?"))] + ([", ".join(parts)] if parts else []))


def setting_label(row: pd.Series | dict[str, Any], extra_keys: Iterable[str] | None = None) -> str:
    """Compact human string of a cell's settings, e.g. '4-bit, channel, stochastic'.

    extra_keys: which settings_json keys to show (None: all of them). A pipeline of several
    steps shows each step from pipeline_json, 'prune_magnitude sparsity 0.5, ... -> qat 4-bit,
    ...'; extra_keys then names step fields as '<step index>:<field>' (0-based).
    """
    steps = pipeline_steps(row)
    if len(steps) > 1:
        wanted = None if extra_keys is None else set(extra_keys)
        return " -> ".join(_step_label(i, step, wanted) for i, step in enumerate(steps))
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
    """setting_label per row, showing only the settings_json keys (step fields, for a pipeline
    of several steps) whose value varies among the rows of the same (family, method): constant
    defaults would only lengthen every label."""
    extras = []
    for _, row in frame.iterrows():
        steps = pipeline_steps(row)
        extras.append(_step_extras(steps) if len(steps) > 1 else _extra_settings(row))
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
    """'gan/quant [4-bit, channel] (mnist5k)': how compare and history name a cell; a row of
    another runtime than eager ends ' on <runtime>'."""
    label = f"{row['family']}/{row['method']} [{setting_label(row)}] ({row['dataset']})"
    runtime = str(row.get("runtime", "") or "")
    return label if runtime in ("", schema.RUNTIME_EAGER) else f"{label} on {runtime}"
