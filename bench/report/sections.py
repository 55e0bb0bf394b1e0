"""HTML sections of the report besides the findings: cell notes, the comparison against a
baseline run, and the run's context (summary, floors, feature net, environment) in plain words."""
from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any

from bench.results import schema
from bench.results.annotations import (
    cell_remarks,
    floor_summary,
    n_samples,
    speedup_noise_band,
    unstable_latency_rows,
)
from bench.results.families import ordered_families
from bench.results.labels import cell_label
from bench.results.loading import ResultsDir

PLUS_MINUS = "±"
_BYTES_KEYS = ("_bytes", "memory")


def readable(value: Any, key: str = "") -> str:
    """A run.json value as a person writes it: lists joined with commas, no None/null ('none'),
    yes/no for booleans, 4 significant digits for floats, bytes in GiB/MiB."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int) and key.endswith(_BYTES_KEYS) and value >= 1024 ** 2:
        giga = value / 1024 ** 3
        return f"{giga:.1f} GiB" if giga >= 1 else f"{value / 1024 ** 2:.1f} MiB"
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else "not a number"
    if isinstance(value, list | tuple):
        return ", ".join(readable(v) for v in value) or "none"
    if isinstance(value, dict):
        return "; ".join(f"{k}: {readable(v, str(k))}" for k, v in value.items()) or "none"
    return str(value)


def definition_table(items: dict[str, Any], caption: str, plain_keys: bool = True) -> str:
    """A two-column table of key and readable value; plain_keys: 'cpu_flags' shown as 'cpu
    flags' (False keeps names people search for, such as metric columns)."""
    rows = "".join(
        f"<tr><th scope='row'>{html.escape(str(k).replace('_', ' ') if plain_keys else str(k))}"
        f"</th><td>{html.escape(readable(v, str(k)))}</td></tr>" for k, v in items.items())
    return (f"<div class='scroll'><table class='definitions'><caption>{html.escape(caption)}"
            f"</caption>{rows}</table></div>")


def run_name(run: ResultsDir) -> str:
    """The run's name: run.json `name` (or `preset`), and the directory when it differs."""
    name = run.run.get("name") or run.run.get("preset")
    folder = run.path.resolve().name
    return folder if not name or name == folder else f"{name} ({folder})"


def _counts(values: Any) -> str:
    return ", ".join(f"{count} {name}" for name, count in values.value_counts().items()) or "none"


def run_summary(run: ResultsDir) -> dict[str, Any]:
    """The Run table: provenance, what ran, and the run's measurement noise."""
    info = run.run
    commit = info.get("git_commit") or "unknown"
    summary: dict[str, Any] = {
        "preset": info.get("preset") or "custom sweep", "directory": str(run.path),
        "git commit": f"{commit}{' (uncommitted changes)' if info.get('git_dirty') else ''}",
        "genbench version": info.get("genbench_version") or "unknown",
        "started": str(info.get("started_at") or "unknown").replace("T", " "),
        "finished": str(info.get("finished_at") or "not finished").replace("T", " "),
        "invocations": len(info.get("invocations") or []),
        "cells": _counts(run.results["status"]), "latency rows": _counts(run.latency["status"]),
        "unstable latency rows": (
            f"{unstable_latency_rows(run)} (relative IQR above the threshold after every "
            "re-measurement: kept in latency.csv, no p50 or speedup taken from them)")}
    n = n_samples(run)
    if n:
        summary["samples per quality metric"] = n
    for family in ordered_families(run.results["family"]):
        band = speedup_noise_band(run, family)
        if band is not None:
            batches = ", ".join(str(b) for b in band.batches)
            summary[f"speedup noise, {family}"] = (
                f"{band.low:.3f} to {band.high:.3f} (baseline timed against itself on the CPU "
                f"at batch {batches}: {', '.join(f'{s:.3f}' for s in band.measured)})")
    return summary


def context_html(run: ResultsDir) -> str:
    """The last section: run summary, real-vs-real floors, feature net, environment, config."""
    floors = {metric: f"{mean:.4g} {PLUS_MINUS} {spread:.2g}" if math.isfinite(spread)
              else f"{mean:.4g}" for metric, (mean, spread) in floor_summary(run).items()}
    n = n_samples(run)
    at = f" at n={n}" if n else ""
    parts = [definition_table(run_summary(run), "Run"),
             definition_table(floors, f"Real-vs-real floors{at} (what real data scores; mean "
                                      f"{PLUS_MINUS} std over resamples)", plain_keys=False),
             definition_table(run.run.get("feature_net") or {}, "Feature net (FID-proxy)"),
             definition_table(run.run.get("environment") or {}, "Environment"),
             "<details><summary>Resolved configuration (JSON)</summary><pre>"
             + html.escape(json.dumps(run.run.get("config"), indent=1)) + "</pre></details>"]
    return "\n".join(parts)


def notes_html(run: ResultsDir) -> str:
    """The cells with something to say (collapsed output, simulated layers, layers pruned to
    100%, ...), one line each; empty when no cell has notes."""
    ok = run.results[run.results["status"] == schema.STATUS_OK]
    items = [(cell_label(r), r["seed"], cell_remarks(r)) for _, r in ok.iterrows()]
    rows = "".join(f"<tr><td>{html.escape(label)}</td><td>{html.escape(str(seed))}</td>"
                   f"<td>{html.escape(text)}</td></tr>" for label, seed, text in items if text)
    if not rows:
        return ""
    head = "<thead><tr><th>cell</th><th>seed</th><th>notes</th></tr></thead>"
    return f"<div class='scroll'><table class='notes'>{head}<tbody>{rows}</tbody></table></div>"


def _cell(value: Any, percent: bool = False, signed: bool = True) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        if percent:
            return f"{value:+.1%}" if signed else f"{value:.1%}"
        return f"{value:.4g}"
    return "-" if value in (None, "", []) else html.escape(readable(value))


def severity_order(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Regressions before improvements; within each, the larger severity (compare's, or |change|
    where compare gives none) first."""
    def key(row: dict[str, Any]) -> tuple[int, float]:
        level = row.get("severity")
        size = level if isinstance(level, int | float) else abs(row.get("change") or 0.0)
        return (0 if row.get("verdict") == "regression" else 1, -float(size))
    return sorted(rows, key=key)


def _with_interval(value: Any, interval: Any) -> str:
    text = _cell(value)
    if isinstance(interval, list | tuple) and len(interval) == 2 and None not in interval:
        text += f" [{_cell(interval[0])}, {_cell(interval[1])}]"
    return text


def comparison_html(payload: dict[str, Any], baseline: Path) -> str:
    """compare's JSON output (bench.compare.cli.to_json) as a table sorted by severity, with the
    noise, intervals and evidence compare gives (p where it gives one), then status changes and
    one-sided cells."""
    verdict = payload.get("verdict") or ("REGRESSION" if payload.get("exit_code") else "clean")
    rows = (payload.get("regressions") or []) + (payload.get("improvements") or [])
    if not rows:  # older output: every comparison in one list
        rows = [c for c in payload.get("comparisons") or [] if c.get("verdict") != "unchanged"]
    parts = [f"<p>Against <code>{html.escape(str(baseline))}</code>: "
             f"<b>{html.escape(str(verdict))}</b>.</p>"]
    if rows:
        with_p = any(c.get("p_value") is not None for c in rows)
        head = ["cell", "metric", "device/batch", "baseline [95%]", "current [95%]", "change",
                "threshold", "noise"] + (["p"] if with_p else []) + ["evidence", "verdict"]
        body = []
        for c in severity_order(rows):
            cells = [html.escape(str(c.get("cell"))), html.escape(str(c.get("metric"))),
                     f"{c.get('device') or '-'}/{c.get('batch_size') or '-'}",
                     _with_interval(c.get("baseline"), c.get("baseline_ci")),
                     _with_interval(c.get("current"), c.get("current_ci")),
                     _cell(c.get("change"), True), _cell(c.get("threshold"), True, signed=False),
                     _cell(c.get("noise"))] + ([_cell(c.get("p_value"))] if with_p else [])
            evidence = str(c.get("rule") or "-")
            ratio = c.get("ratio_ci")
            if isinstance(ratio, list | tuple) and len(ratio) == 2 and None not in ratio:
                evidence += f", ratio [{_cell(ratio[0])}, {_cell(ratio[1])}]"
            cells += [html.escape(evidence), html.escape(str(c.get("verdict")))]
            body.append(f"<tr class='{html.escape(str(c.get('verdict')))}'>"
                        + "".join(f"<td>{v}</td>" for v in cells) + "</tr>")
        parts.append("<div class='scroll'><table><thead><tr>"
                     + "".join(f"<th>{h}</th>" for h in head)
                     + f"</tr></thead><tbody>{''.join(body)}</tbody></table></div>")
    else:
        parts.append("<p>No metric changed beyond its threshold and noise.</p>")
    within = payload.get("within_noise")
    if isinstance(within, dict) and within:
        parts.append("<p>Within noise or threshold: " + html.escape(", ".join(
            f"{count} {metric}" for metric, count in within.items())) + ".</p>")
    lists = (("Status changes", [f"{s.get('cell')} seed {s.get('seed')}: {s.get('baseline')} -> "
                                 f"{s.get('current')}" for s in payload.get("status_changes")
                                 or []]),
             ("Only in baseline", payload.get("only_baseline") or []),
             ("Only in current", payload.get("only_current") or []))
    for title, items in lists:
        if items:
            parts.append(f"<h3>{title}</h3><ul>"
                         + "".join(f"<li>{html.escape(str(i))}</li>" for i in items) + "</ul>")
    return "\n".join(parts)
