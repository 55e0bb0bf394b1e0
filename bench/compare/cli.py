"""`genbench compare`: regressions of a run against a baseline run or the same machine's history."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.compare.against_history import compare_with_history
from bench.compare.judge import compare_runs
from bench.compare.report import CompareReport, Comparison, to_json, to_markdown
from bench.compare.settings import settings_differences
from bench.compare.verdicts import (
    ABS_TOLERANCES,
    DEFAULT_ALPHA,
    DEFAULT_THRESHOLDS,
    MACHINE_METRICS,
    RESULT_METRICS,
)
from bench.errors import InputError
from bench.results import schema
from bench.results.loading import load_results_dir

# Names other modules and older code import from here.
LATENCY_METRICS = MACHINE_METRICS
__all__ = ["ABS_TOLERANCES", "DEFAULT_ALPHA", "DEFAULT_THRESHOLDS", "LATENCY_METRICS",
           "RESULT_METRICS", "CompareReport", "Comparison", "compare_runs", "parse_thresholds",
           "register_cli", "to_json", "to_markdown"]


def parse_thresholds(items: list[str], flag: str = "--threshold",
                     allowed: list[str] | None = None) -> dict[str, float]:
    """['fid_proxy=0.05', ...] -> {'fid_proxy': 0.05}; metrics must be in `allowed`
    (default: DIRECTIONS) and values > 0."""
    allowed = list(schema.DIRECTIONS) if allowed is None else allowed
    out = {}
    for item in items:
        metric, _, value = item.partition("=")
        if metric not in allowed:
            raise InputError(f"{flag} {item!r}: unknown metric {metric!r}; allowed: "
                             f"{', '.join(allowed)}")
        try:
            out[metric] = float(value)
        except ValueError:
            raise InputError(f"{flag} {item!r}: expected metric=value (e.g. "
                             f"{allowed[0]}=0.1)") from None
        if not out[metric] > 0:
            raise InputError(f"{flag} {item!r}: the value must be > 0")
    return out


def _write(report: CompareReport, args: argparse.Namespace) -> int:
    markdown = to_markdown(report)
    if args.markdown:
        Path(args.markdown).write_text(markdown)
    if args.json:
        Path(args.json).write_text(to_json(report))
    sys.stdout.write(markdown)
    return report.exit_code


def _run_cli(args: argparse.Namespace) -> int:
    if not 0 < args.alpha < 1:
        raise InputError(f"--alpha {args.alpha}: must be in (0, 1)")
    thresholds = parse_thresholds(args.threshold)
    abs_tols = parse_thresholds(args.abs_tol, "--abs-tol", list(ABS_TOLERANCES))
    if args.history:
        if args.current is not None:
            raise InputError("--history STORE takes one results directory (the current run), "
                             f"got two: {args.baseline} {args.current}")
        report = compare_with_history(args.history, args.baseline, thresholds, abs_tols)
        return _write(report, args)
    if args.current is None:
        raise InputError("compare needs BASELINE and CURRENT directories (or --history STORE "
                         "CURRENT)")
    baseline, current = load_results_dir(args.baseline), load_results_dir(args.current)
    differences = settings_differences(baseline.run, current.run)
    if differences and not args.allow_settings_mismatch:
        raise InputError(f"{args.current}: settings differ from {args.baseline}: "
                         f"{'; '.join(differences)}; compare runs of the same settings, or "
                         f"pass --allow-settings-mismatch")
    report = compare_runs(baseline, current, thresholds, args.alpha, abs_tols)
    report.settings_differences = differences
    return _write(report, args)


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "compare", help="flag regressions of CURRENT against BASELINE (exit 0 clean, 1 "
                        "regression, 2 bad input or different settings)")
    parser.add_argument("baseline", help="reference results directory (with --history: the "
                                         "current run)")
    parser.add_argument("current", nargs="?", help="results directory to check")
    parser.add_argument("--history", metavar="STORE",
                        help="compare the one directory given with the last run in this history "
                             "store of the same machine id, preset and run name")
    parser.add_argument("--allow-settings-mismatch", action="store_true",
                        help="compare even when eval settings, dataset, training or feature "
                             "network differ (the report names the differences at its top)")
    parser.add_argument("--markdown", help="write the Markdown summary to this file")
    parser.add_argument("--json", help="write the verdict and every comparison as JSON here")
    parser.add_argument("--threshold", action="append", default=[], metavar="METRIC=REL",
                        help="relative threshold per metric (repeatable), e.g. fid_proxy=0.05")
    parser.add_argument("--abs-tol", action="append", default=[], metavar="METRIC=ABS",
                        help="absolute tolerance of a bounded metric (repeatable), e.g. "
                             "recall=0.01; defaults: "
                             + ", ".join(f"{k}={v}" for k, v in ABS_TOLERANCES.items()))
    parser.add_argument("--alpha", type=float, default=DEFAULT_ALPHA,
                        help="significance of latency and speedup ratio tests (default "
                             f"{DEFAULT_ALPHA})")
    parser.set_defaults(func=_run_cli)
