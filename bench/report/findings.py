"""The report's findings, per family: the cells on the quality-size and quality-speed Pareto
fronts with their intervals, the changes within noise, the unstable latency rows."""
from __future__ import annotations

import html
import math
from dataclasses import dataclass, field

import pandas as pd

from bench.plots.pareto import front_mask
from bench.plots.tradeoff import QUALITY_PANELS, speed_noise, tradeoff_points
from bench.results import schema
from bench.results.families import ordered_families
from bench.results.loading import ResultsDir

NAMES = {"fid_proxy": "FID-proxy", "elbo_nats": "ELBO (nats)"}


@dataclass
class FamilyFindings:
    """What a reader should take from one family's cells. Fronts: (cell, x text, quality texts)
    per cell on the front, sorted along x; the other lists: one text per cell."""

    family: str
    seeds: int
    metrics: list[str] = field(default_factory=list)
    size_front: list[tuple[str, str, list[str]]] = field(default_factory=list)
    speed_front: list[tuple[str, str, list[str]]] = field(default_factory=list)
    within_noise: list[str] = field(default_factory=list)  # variants no quality metric moved
    speed_within_noise: list[str] = field(default_factory=list)
    speed_band: tuple[float, float] = (1.0, 1.0)
    unstable_rows: int = 0
    failed: int = 0


def _number(value: float) -> str:
    return "-" if not math.isfinite(value) else f"{value:.3g}"


def quality_text(point: pd.Series, metric: str) -> str:
    """'67.2 [58.7, 74.7], -0.6% [-2.2, +0.9] within noise': value and change against the
    baseline, each with its 95% interval (a change whose interval holds 0 is within noise)."""
    low, high = point[f"{metric}_low"], point[f"{metric}_high"]
    text = f"{_number(point[f'{metric}_mean'])} [{_number(low)}, {_number(high)}]"
    if point["method"] == "baseline":
        return text + ", baseline"
    rel, rel_low, rel_high = (point[f"{metric}_rel{s}"] for s in ("", "_low", "_high"))
    if not math.isfinite(rel):
        return text
    text += f", {rel:+.1f}%"
    if math.isfinite(rel_low) and math.isfinite(rel_high):
        text += f" [{rel_low:+.1f}, {rel_high:+.1f}]"
        if rel_low <= 0 <= rel_high:
            text += " within noise"
    return text


def _name(point: pd.Series) -> str:
    return f"{point['method']} [{point['setting']}]"


def _front(points: pd.DataFrame, x: str, metrics: list[str],
           noise: tuple[float, float] = (1.0, 1.0)) -> list[tuple[str, str, list[str]]]:
    """The cells on the front of the first metric against x, sorted along x; an x inside
    `noise` (the speedup noise band) is marked as such."""
    front = points[front_mask(points, x, metrics[0])].sort_values(f"{x}_mean")
    out = []
    for _, point in front.iterrows():
        where = f"{point[f'{x}_mean']:.3g}x"
        if noise[0] <= point[f"{x}_mean"] <= noise[1] and noise[1] > noise[0]:
            where += " (within noise)"
        out.append((_name(point), where, [quality_text(point, m) for m in metrics]))
    return out


def _within(points: pd.DataFrame, metrics: list[str]) -> pd.Series:
    """Variants whose every quality change has a 95% interval that holds 0."""
    inside = pd.Series(True, index=points.index)
    for metric in metrics:
        low, high = points[f"{metric}_rel_low"], points[f"{metric}_rel_high"]
        inside &= (low <= 0) & (high >= 0)
    return inside & (points["method"] != "baseline")


def family_findings(run: ResultsDir, family: str) -> FamilyFindings:
    """The findings of one family (fronts as the trade-off plots draw them)."""
    points = tradeoff_points(run, family)
    rows = run.results[run.results["family"] == family]
    found = FamilyFindings(family, int(rows.loc[rows["status"] == schema.STATUS_OK,
                                                  "seed"].nunique()))
    found.failed = int((rows["status"] != schema.STATUS_OK).sum())
    found.unstable_rows = int((run.latency["cell_id"].isin(rows["cell_id"])
                               & (run.latency["status"] == schema.STATUS_UNSTABLE)).sum())
    found.metrics = [m for m in QUALITY_PANELS if points[f"{m}_rel"].notna().any()]
    if not found.metrics:
        return found
    found.size_front = _front(points, "compression_ratio", found.metrics)
    found.speed_band = low, high = speed_noise(run, family, points)
    if points["speedup_mean"].notna().any():
        found.speed_front = _front(points, "speedup", found.metrics, (low, high))
    found.within_noise = [_name(p) for _, p in points[_within(points, found.metrics)].iterrows()]
    variants = points[(points["method"] != "baseline") & points["speedup_mean"].notna()]
    inside = variants["speedup_mean"].between(low, high) & (high > low)
    found.speed_within_noise = [f"{_name(p)} ({p['speedup_mean']:.2f}x)"
                                for _, p in variants[inside.to_numpy(bool)].iterrows()]
    return found


def _front_table(found: FamilyFindings) -> str:
    head = ["front", "cell", "ratio / speedup"] + [
        f"{NAMES[m]}: value [95%], change vs baseline [95%]" for m in found.metrics]
    rows = []
    for label, front in (("quality-size", found.size_front),
                         ("quality-speed", found.speed_front)):
        for cell, where, quality in front:
            rows.append("<tr>" + "".join(f"<td>{html.escape(v)}</td>"
                                         for v in [label, cell, where, *quality]) + "</tr>")
    if not rows:
        return "<p class='note'>No cell with both a quality metric and a size or speedup.</p>"
    return ("<div class='scroll'><table class='findings'><thead><tr>"
            + "".join(f"<th>{html.escape(h)}</th>" for h in head)
            + f"</tr></thead><tbody>{''.join(rows)}</tbody></table></div>")


def _inline(title: str, items: list[str], empty: str) -> str:
    text = "; ".join(items) if items else empty
    return f"<p><b>{html.escape(title)}</b> {html.escape(text)}</p>"


def findings_html(run: ResultsDir) -> str:
    """The findings section: per family, fronts, what is within noise, unstable latency rows."""
    parts = ["<p class='note'>Changes are relative to the family's uncompressed baseline, with "
             "95% intervals (paired with the same-seed baseline where the run has them); a "
             "change whose interval holds 0 is within noise. A Pareto front holds the cells no "
             "other cell beats on both axes; on speed only variants not slower than the "
             "baseline count. Collapsed cells are never on a front.</p>"]
    for family in ordered_families(run.results["family"]):
        f = family_findings(run, family)
        seeds = f"{f.seeds} seed" if f.seeds == 1 else f"{f.seeds} seeds"
        parts.append(f"<h3>{html.escape(family)} ({seeds})</h3>")
        if f.metrics:
            parts.append(_front_table(f))
            parts.append(_inline("Quality within noise (every quality change's interval holds "
                                 "0):", f.within_noise, "none: every variant changed quality"))
        if f.speed_band[1] > f.speed_band[0]:
            band = f"{f.speed_band[0]:.3f} to {f.speed_band[1]:.3f}"
            parts.append(_inline(f"Speedup within noise ({band}, the baseline timed against "
                                 "itself):", f.speed_within_noise, "none"))
        parts.append(f"<p>{f.unstable_rows} unstable latency row(s), no speedup taken from "
                     f"them; {f.failed} failed or skipped cell(s).</p>")
    return "\n".join(parts)
