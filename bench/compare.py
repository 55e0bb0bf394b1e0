"""Regression comparison of two results directories: asv's rule (factor AND beyond noise)."""
from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import mannwhitneyu

from bench import schema
from bench.errors import InputError
from bench.loading import KEY_COLUMNS, ResultsDir, cell_label, load_results_dir

LATENCY_METRICS = ["latency_p50_ms", "speedup", "throughput_sps", "peak_mem_bytes"]
RESULT_METRICS = [m for m in schema.DIRECTIONS if m in schema.RESULTS_COLUMNS]
SIZE_METRICS = [m for m in RESULT_METRICS if m in schema.SIZE_COLUMNS]
# Relative thresholds: quality 10% (asv's factor 1.1), size 5% (deterministic, so any real
# change counts), latency 20% (TorchBench's noise notes: 5-9% run to run, more on shared CPUs).
DEFAULT_THRESHOLDS = {m: 0.10 for m in schema.DIRECTIONS}
DEFAULT_THRESHOLDS.update({m: 0.05 for m in SIZE_METRICS})
DEFAULT_THRESHOLDS.update({m: 0.20 for m in LATENCY_METRICS})
# asv's significance level for Mann-Whitney U on raw samples.
DEFAULT_ALPHA = 0.002
# Distance metrics whose real-vs-real value measures the estimator's own noise (ideal is 0).
FLOOR_NOISE_METRICS = ["fid_proxy", "kid_proxy"]


def relative_change(base: float, current: float) -> float:
    """(current - base) / |base|; +-inf when base is 0 and current differs."""
    if base == 0:
        return 0.0 if current == 0 else math.copysign(math.inf, current)
    return (current - base) / abs(base)


def seed_noise(base: np.ndarray, current: np.ndarray, floor: float | None) -> float | None:
    """Noise scale of a difference of means across seeds.

    With >= 2 seeds on both sides: 2 x pooled std, 2*sqrt((s_a^2 + s_b^2)/2) (a two-sigma band).
    With one seed: the real-vs-real floor of the metric when it is a distance (FID, KID: the
    value two independent real samples already reach), otherwise None (threshold alone).
    """
    if len(base) >= 2 and len(current) >= 2:
        return 2.0 * math.sqrt((np.var(base, ddof=1) + np.var(current, ddof=1)) / 2.0)
    return floor


def mann_whitney_p(base: np.ndarray, current: np.ndarray) -> float:
    """Two-sided Mann-Whitney U p-value (exact for small samples, normal approximation above)."""
    return float(mannwhitneyu(base, current, alternative="two-sided").pvalue)


@dataclass(frozen=True)
class Comparison:
    """One metric of one cell key (and device/batch size for latency) on both sides."""

    cell: str
    metric: str
    device: str
    batch_size: int
    baseline: float
    current: float
    change: float
    threshold: float
    noise: float | None
    p_value: float | None
    verdict: str  # regression | improvement | unchanged


def judge(metric: str, base: np.ndarray, current: np.ndarray, threshold: float, *,
          floor: float | None = None, raw: tuple[np.ndarray, np.ndarray] | None = None,
          alpha: float = DEFAULT_ALPHA) -> tuple[str, float, float | None, float | None]:
    """Verdict, relative change, noise scale, p-value for one metric.

    A change counts only when |relative change| > threshold AND it is beyond noise: with raw
    latency samples, Mann-Whitney p < alpha on them (and the change is of their medians);
    otherwise |difference of seed means| > seed_noise(...) (None: threshold alone).
    """
    p_value = noise = None
    if raw is not None and len(raw[0]) and len(raw[1]):
        change = relative_change(float(np.median(raw[0])), float(np.median(raw[1])))
        p_value = mann_whitney_p(*raw)
        beyond = p_value < alpha
    else:
        base_mean, current_mean = float(np.mean(base)), float(np.mean(current))
        change = relative_change(base_mean, current_mean)
        noise = seed_noise(base, current, floor)
        beyond = noise is None or abs(current_mean - base_mean) > noise
        beyond = beyond and current_mean != base_mean
    if abs(change) <= threshold or not beyond:
        return "unchanged", change, noise, p_value
    worse = schema.DIRECTIONS[metric] * change < 0
    return ("regression" if worse else "improvement"), change, noise, p_value


def _long_metrics(run: ResultsDir) -> pd.DataFrame:
    """Tidy (KEY..., seed, device, batch_size, metric, value) of ok cells, results + latency."""
    ok = run.ok()
    rows = ok.melt(id_vars=KEY_COLUMNS + ["seed"], value_vars=RESULT_METRICS, var_name="metric")
    rows["device"], rows["batch_size"] = "", 0
    latency = run.latency[run.latency["status"] == schema.STATUS_OK]
    latency = latency.drop(columns=["status", "error", "execution"]).merge(
        ok[KEY_COLUMNS + ["seed", "cell_id"]], on="cell_id")
    lat_rows = latency.melt(id_vars=KEY_COLUMNS + ["seed", "device", "batch_size"],
                            value_vars=LATENCY_METRICS, var_name="metric")
    return pd.concat([rows, lat_rows], ignore_index=True).dropna(subset=["value"])


def _raw_samples(run: ResultsDir) -> dict[tuple, np.ndarray]:
    """Raw seconds per call pooled over seeds per (KEY..., device, batch_size)."""
    merged = run.samples.merge(run.ok()[KEY_COLUMNS + ["cell_id"]], on="cell_id")
    groups = merged.groupby(KEY_COLUMNS + ["device", "batch_size"], sort=False)
    return {key: group["seconds_per_call"].to_numpy(float) for key, group in groups}


@dataclass
class CompareReport:
    """Everything compare found; `regressions` decides the exit code."""

    comparisons: list[Comparison] = field(default_factory=list)
    only_baseline: list[str] = field(default_factory=list)
    only_current: list[str] = field(default_factory=list)
    status_changes: list[dict[str, str]] = field(default_factory=list)

    @property
    def regressions(self) -> list[Comparison]:
        return [c for c in self.comparisons if c.verdict == "regression"]

    @property
    def newly_failing(self) -> list[dict[str, str]]:
        return [s for s in self.status_changes if s["baseline"] == schema.STATUS_OK]

    @property
    def exit_code(self) -> int:
        return 1 if self.regressions or self.newly_failing else 0


def _label(key: tuple) -> str:
    return cell_label(dict(zip(KEY_COLUMNS, key, strict=True)))


def compare_runs(baseline: ResultsDir, current: ResultsDir,
                 thresholds: dict[str, float] | None = None,
                 alpha: float = DEFAULT_ALPHA) -> CompareReport:
    """Match cells by KEY_COLUMNS across seeds and judge every metric in DIRECTIONS."""
    limits = {**DEFAULT_THRESHOLDS, **(thresholds or {})}
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
    group_by = KEY_COLUMNS + ["device", "batch_size", "metric"]
    current_groups = dict(iter(_long_metrics(current).groupby(group_by, sort=False)))
    raw_base, raw_cur = _raw_samples(baseline), _raw_samples(current)
    for key, base_group in _long_metrics(baseline).groupby(group_by, sort=False):
        if key not in current_groups:
            continue
        *cell_key, device, batch_size, metric = key
        raw = None
        if metric == "latency_p50_ms":
            sample_key = (*cell_key, device, batch_size)
            if sample_key in raw_base and sample_key in raw_cur:
                raw = (raw_base[sample_key], raw_cur[sample_key])
        floor = baseline.floors.get(metric) if metric in FLOOR_NOISE_METRICS else None
        base_values = base_group["value"].to_numpy(float)
        cur_values = current_groups[key]["value"].to_numpy(float)
        verdict, change, noise, p_value = judge(metric, base_values, cur_values, limits[metric],
                                                floor=floor, raw=raw, alpha=alpha)
        report.comparisons.append(Comparison(
            _label(tuple(cell_key)), metric, device, int(batch_size), float(base_values.mean()),
            float(cur_values.mean()), change, limits[metric], noise, p_value, verdict))
    return report


def _fmt(value: float | None) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.4g}"


def to_markdown(report: CompareReport) -> str:
    """A CI-comment summary: regressions, improvements, status changes, one-sided cells."""
    lines = [f"## genbench compare: {'REGRESSION' if report.exit_code else 'clean'}", "",
             f"{len(report.comparisons)} metric comparisons, {len(report.regressions)} "
             f"regression(s), {len(report.newly_failing)} newly failing cell(s).", ""]
    for verdict in ("regression", "improvement"):
        found = [c for c in report.comparisons if c.verdict == verdict]
        if not found:
            continue
        lines += [f"### {verdict.capitalize()}s", "",
                  "| cell | metric | device/batch | baseline | current | change | threshold "
                  "| noise | p |", "|---|---|---|---:|---:|---:|---:|---:|---:|"]
        lines += [f"| {c.cell} | {c.metric} | {c.device or '-'}/{c.batch_size or '-'} | "
                  f"{_fmt(c.baseline)} | {_fmt(c.current)} | {c.change:+.1%} | "
                  f"{c.threshold:.0%} | {_fmt(c.noise)} | {_fmt(c.p_value)} |" for c in found]
        lines.append("")
    if report.status_changes:
        lines += ["### Status changes", ""]
        lines += [f"- {s['cell']} seed {s['seed']}: {s['baseline']} -> {s['current']}"
                  + (f" ({s['error']})" if s["error"] else "") for s in report.status_changes]
        lines.append("")
    for title, cells in (("Only in baseline", report.only_baseline),
                         ("Only in current", report.only_current)):
        if cells:
            lines += [f"### {title}", ""] + [f"- {c}" for c in cells] + [""]
    return "\n".join(lines)


def to_json(report: CompareReport) -> str:
    def clean(value: object) -> object:  # JSON has no inf/NaN
        return None if isinstance(value, float) and not math.isfinite(value) else value

    payload = {"exit_code": report.exit_code,
               "comparisons": [{k: clean(v) for k, v in asdict(c).items()}
                               for c in report.comparisons],
               "only_baseline": report.only_baseline, "only_current": report.only_current,
               "status_changes": report.status_changes}
    return json.dumps(payload, indent=1)


def parse_thresholds(items: list[str]) -> dict[str, float]:
    """['fid_proxy=0.05', ...] -> {'fid_proxy': 0.05}; metrics must be in DIRECTIONS."""
    out = {}
    for item in items:
        metric, _, value = item.partition("=")
        if metric not in schema.DIRECTIONS:
            raise InputError(f"--threshold {item!r}: unknown metric {metric!r}; allowed: "
                             f"{', '.join(schema.DIRECTIONS)}")
        try:
            out[metric] = float(value)
        except ValueError:
            raise InputError(f"--threshold {item!r}: expected metric=relative (e.g. "
                             f"fid_proxy=0.1)") from None
        if not out[metric] > 0:
            raise InputError(f"--threshold {item!r}: the relative threshold must be > 0")
    return out


def _run_cli(args: argparse.Namespace) -> int:
    if not 0 < args.alpha < 1:
        raise InputError(f"--alpha {args.alpha}: must be in (0, 1)")
    thresholds = parse_thresholds(args.threshold)
    report = compare_runs(load_results_dir(args.baseline), load_results_dir(args.current),
                          thresholds, args.alpha)
    markdown = to_markdown(report)
    if args.markdown:
        Path(args.markdown).write_text(markdown)
    if args.json:
        Path(args.json).write_text(to_json(report))
    sys.stdout.write(markdown)
    return report.exit_code


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "compare", help="flag regressions of CURRENT against BASELINE (exit 0 clean, 1 "
                        "regression, 2 bad input)")
    parser.add_argument("baseline", help="reference results directory")
    parser.add_argument("current", help="results directory to check")
    parser.add_argument("--markdown", help="write the Markdown summary to this file")
    parser.add_argument("--json", help="write every comparison as JSON to this file")
    parser.add_argument("--threshold", action="append", default=[], metavar="METRIC=REL",
                        help="relative threshold per metric (repeatable), e.g. fid_proxy=0.05")
    parser.add_argument("--alpha", type=float, default=DEFAULT_ALPHA,
                        help=f"Mann-Whitney significance for latency (default {DEFAULT_ALPHA})")
    parser.set_defaults(func=_run_cli)
