"""What compare found, and its verdict-first Markdown and JSON renderings."""
from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import asdict, dataclass, field

from bench.compare.verdicts import IMPROVEMENT, REGRESSION, UNCHANGED
from bench.results import schema

# Lines of one-sided cells / unstable rows shown before "... and N more" (the JSON has all).
LIST_LIMIT = 30


@dataclass(frozen=True)
class Comparison:
    """One metric of one cell key (and device/batch size for latency) on both sides.

    rule: what decided "beyond noise": intervals (disjoint 95% intervals), seeds (two-sigma
    band of seed means), floor (two-sigma band from the real-vs-real spread), ratio (bootstrap
    interval of a median ratio excludes 1), derived (the verdict of its source metric),
    threshold (no noise known: threshold and tolerance alone).
    """

    cell: str
    metric: str
    device: str
    batch_size: int
    baseline: float
    current: float
    change: float
    threshold: float
    verdict: str
    rule: str
    noise: float | None = None
    baseline_ci: tuple[float, float] | None = None
    current_ci: tuple[float, float] | None = None
    ratio_ci: tuple[float, float] | None = None

    @property
    def severity(self) -> float:
        """|change| in units of the threshold: how far past the line a change went."""
        return abs(self.change) / self.threshold if self.threshold else math.inf


@dataclass
class CompareReport:
    """Everything compare found; regressions and newly failing cells decide the exit code."""

    comparisons: list[Comparison] = field(default_factory=list)
    only_baseline: list[str] = field(default_factory=list)
    only_current: list[str] = field(default_factory=list)
    status_changes: list[dict[str, str]] = field(default_factory=list)
    unstable: list[dict[str, object]] = field(default_factory=list)
    not_compared: list[str] = field(default_factory=list)  # what was skipped, and why
    settings_differences: list[str] = field(default_factory=list)  # allowed mismatches
    notes: list[str] = field(default_factory=list)  # e.g. which seeds were compared

    def with_verdict(self, verdict: str) -> list[Comparison]:
        found = [c for c in self.comparisons if c.verdict == verdict]
        return sorted(found, key=lambda c: -c.severity)

    @property
    def regressions(self) -> list[Comparison]:
        return self.with_verdict(REGRESSION)

    @property
    def newly_failing(self) -> list[dict[str, str]]:
        return [s for s in self.status_changes if s["baseline"] == schema.STATUS_OK]

    @property
    def exit_code(self) -> int:
        return 1 if self.regressions or self.newly_failing else 0

    def verdict_line(self) -> str:
        regressions = self.regressions
        cells = len({c.cell for c in regressions})
        if self.exit_code:
            worst = (f"; worst: {regressions[0].cell} {regressions[0].metric} "
                     f"{regressions[0].change:+.1%}" if regressions else "")
            return (f"REGRESSION: {len(regressions)} regression(s) in {cells} cell(s), "
                    f"{len(self.newly_failing)} newly failing cell(s){worst}")
        shaky = f", {len(self.unstable)} unstable latency row(s) not judged" if self.unstable \
            else ""
        return (f"CLEAN: 0 regressions in {len(self.comparisons)} comparisons "
                f"({len(self.with_verdict(IMPROVEMENT))} improvement(s){shaky})")


def _fmt(value: float | None) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.4g}"


def _evidence(c: Comparison) -> str:
    if c.rule == "intervals" and c.baseline_ci and c.current_ci:
        return (f"[{_fmt(c.baseline_ci[0])}, {_fmt(c.baseline_ci[1])}] vs "
                f"[{_fmt(c.current_ci[0])}, {_fmt(c.current_ci[1])}]")
    if c.rule == "ratio" and c.ratio_ci:
        return f"ratio [{_fmt(c.ratio_ci[0])}, {_fmt(c.ratio_ci[1])}]"
    if c.rule in ("seeds", "floor"):
        return f"+-{_fmt(c.noise)}"
    return "-"


def _table(found: list[Comparison]) -> list[str]:
    lines = ["| cell | metric | device/batch | baseline | current | change | threshold | "
             "noise / interval | rule |", "|---|---|---|---:|---:|---:|---:|---|---|"]
    lines += [f"| {c.cell} | {c.metric} | {c.device or '-'}/{c.batch_size or '-'} | "
              f"{_fmt(c.baseline)} | {_fmt(c.current)} | {c.change:+.1%} | {c.threshold:.0%} | "
              f"{_evidence(c)} | {c.rule} |" for c in found]
    return lines + [""]


def _bullets(items: list[str]) -> list[str]:
    shown = [f"- {item}" for item in items[:LIST_LIMIT]]
    if len(items) > LIST_LIMIT:
        shown.append(f"- ... and {len(items) - LIST_LIMIT} more (see the JSON)")
    return shown + [""]


def to_markdown(report: CompareReport) -> str:
    """Verdict line; what differs and what was not compared; regressions (worst first);
    improvements; within-noise counts per metric; unstable rows; status changes; one-sided."""
    lines = [f"## genbench compare: {report.verdict_line()}", ""]
    lines += [f"- settings differ: {d}" for d in report.settings_differences]
    lines += [f"- not compared: {n}" for n in report.not_compared]
    lines += [f"- {n}" for n in report.notes]
    if report.settings_differences or report.not_compared or report.notes:
        lines.append("")
    for verdict, title in ((REGRESSION, "Regressions"), (IMPROVEMENT, "Improvements")):
        found = report.with_verdict(verdict)
        if found:
            lines += [f"### {title} ({len(found)})", ""] + _table(found)
    unchanged = Counter(c.metric for c in report.comparisons if c.verdict == UNCHANGED)
    if unchanged:
        lines += ["### Within noise", "", "| metric | comparisons |", "|---|---:|"]
        lines += [f"| {m} | {n} |" for m, n in sorted(unchanged.items())] + [""]
    if report.unstable:
        lines += [f"### Unstable latency rows, not judged ({len(report.unstable)})", ""]
        lines += _bullets([f"{u['cell']} {u['device']}/{u['batch_size']}: unstable in "
                           f"{u['side']}" for u in report.unstable])
    if report.status_changes:
        lines += ["### Status changes", ""]
        lines += _bullets([f"{s['cell']} seed {s['seed']}: {s['baseline']} -> {s['current']}"
                           + (f" ({s['error']})" if s["error"] else "")
                           for s in report.status_changes])
    for title, cells in (("Only in baseline", report.only_baseline),
                         ("Only in current", report.only_current)):
        if cells:
            lines += [f"### {title} ({len(cells)})", ""] + _bullets(cells)
    return "\n".join(lines)


def _clean(value: object) -> object:
    """JSON has no inf/NaN: None instead."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, tuple | list):
        return [_clean(v) for v in value]
    return value


def to_json(report: CompareReport) -> str:
    """The same report as JSON, verdict first; every comparison with its evidence."""
    def rows(found: list[Comparison]) -> list[dict[str, object]]:
        return [{k: _clean(v) for k, v in {**asdict(c), "severity": c.severity}.items()}
                for c in found]

    unchanged = Counter(c.metric for c in report.comparisons if c.verdict == UNCHANGED)
    payload = {"verdict": report.verdict_line(), "exit_code": report.exit_code,
               "settings_differences": report.settings_differences,
               "not_compared": report.not_compared, "notes": report.notes,
               "regressions": rows(report.regressions),
               "improvements": rows(report.with_verdict(IMPROVEMENT)),
               "within_noise": dict(sorted(unchanged.items())),
               "unstable": report.unstable, "status_changes": report.status_changes,
               "only_baseline": report.only_baseline, "only_current": report.only_current,
               "comparisons": rows(report.comparisons)}
    return json.dumps(payload, indent=1)
