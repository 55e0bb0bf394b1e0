"""Resume with more runtimes: which runtimes a stored cell lacks, and merging their rows into it.

A cell's id leaves its runtimes out, so listing one more runtime keeps every stored cell; resume
measures only the missing runtimes (a cell with `eager=False`: compressed again, deterministic
per seed, deployed and timed; no eager quality or latency) and the client merges the rows into
the stored record. A runtime counts as measured once it is in the record's `runtimes`.
"""
from __future__ import annotations

from typing import Any

from bench.results.schema import RUNTIME_EAGER, STATUS_FAILED


def stored_runtimes(record: dict[str, Any]) -> list[str]:
    """Runtimes a record measured; a record written before runtimes existed measured eager."""
    return list(record.get("runtimes") or [RUNTIME_EAGER])


def missing_runtimes(wanted: tuple[str, ...], record: dict[str, Any],
                     rerun_failed: bool = False) -> tuple[str, ...]:
    """Runtimes of `wanted` the record lacks; with rerun_failed also those whose every latency
    row failed (a failed deployment)."""
    have = set(stored_runtimes(record))
    if rerun_failed:
        for name in list(have - {RUNTIME_EAGER}):
            rows = [r for r in record.get("latency", []) if r.get("runtime") == name]
            if rows and all(r.get("status") == STATUS_FAILED for r in rows):
                have.discard(name)
    return tuple(name for name in wanted if name not in have)


def merge_runtime_record(stored: dict[str, Any], extension: dict[str, Any]) -> dict[str, Any]:
    """`stored` with the rows of `extension` (a record of the same cell that measured only the
    runtimes extension["runtimes"]) in place of any earlier rows of those runtimes. An extension
    that failed as a whole (compression, timeout, a crashed worker) adds nothing but its error
    under `runtime_errors`, and its runtimes stay missing (tried again on the next resume)."""
    merged = dict(stored)
    names = [n for n in extension.get("runtimes", []) if n != RUNTIME_EAGER]
    result = extension.get("result") or {}
    if result.get("status") == STATUS_FAILED:
        errors = dict(stored.get("runtime_errors") or {})
        errors.update({name: result.get("error", "") for name in names})
        merged["runtime_errors"] = errors
        return merged

    def others(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [r for r in rows if r.get("runtime", RUNTIME_EAGER) not in names]

    for key in ("latency", "latency_samples", "runtime_results"):
        merged[key] = others(stored.get(key) or []) + list(extension.get(key) or [])
    merged["runtimes"] = list(dict.fromkeys(stored_runtimes(stored) + names))
    merged["deployments"] = {**(stored.get("deployments") or {}),
                             **(extension.get("deployments") or {})}
    errors = {k: v for k, v in (stored.get("runtime_errors") or {}).items() if k not in names}
    if errors:
        merged["runtime_errors"] = errors
    else:
        merged.pop("runtime_errors", None)
    merged["seconds"] = float(stored.get("seconds") or 0.0) + float(extension.get("seconds") or 0)
    return merged
