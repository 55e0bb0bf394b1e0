"""History store of nightly runs (tidy CSV keyed by run date and commit) and its trend plots."""
from __future__ import annotations

import argparse
import io
from datetime import datetime
from pathlib import Path

import pandas as pd

from bench.compare import DEFAULT_THRESHOLDS, RESULT_METRICS, judge
from bench.errors import InputError
from bench.loading import KEY_COLUMNS, cell_label, load_results_dir, with_latency
from genmodels.cache import atomic_write_bytes

RUN_COLUMNS = ["run_date", "commit"]
HISTORY_COLUMNS = RUN_COLUMNS + KEY_COLUMNS + ["seed", "metric", "value"]
# Latency metrics come from latency.csv: CPU at the largest batch size (as in the tables).
HISTORY_METRICS = RESULT_METRICS + ["latency_p50_ms", "speedup"]
TREND_METRICS = ["fid_proxy", "elbo_nats", "speedup", "size_file_bytes"]


def run_block(directory: str | Path, date: str | None = None,
              commit: str | None = None) -> pd.DataFrame:
    """One run's tidy rows: (run_date, commit, KEY..., seed, metric, value) of its ok cells."""
    run = load_results_dir(directory)
    date = date or run.run.get("finished_at") or run.run.get("started_at")
    commit = commit or run.run.get("git_commit")
    if not date or not commit:
        raise InputError(f"{directory}: run.json lacks finished_at/git_commit; pass --date and "
                         f"--commit")
    try:
        datetime.fromisoformat(str(date).replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"--date {date!r}: not an ISO 8601 date (e.g. 2025-01-31T02:00:00Z)") \
            from None
    rows = with_latency(run, run.ok())
    block = rows.melt(id_vars=KEY_COLUMNS + ["seed"], value_vars=HISTORY_METRICS,
                      var_name="metric").dropna(subset=["value"])
    block.insert(0, "commit", str(commit))
    block.insert(0, "run_date", str(date))
    return block[HISTORY_COLUMNS]


def read_store(store: str | Path) -> pd.DataFrame:
    """The store as a DataFrame (empty when the file does not exist yet)."""
    store = Path(store)
    if not store.exists():
        return pd.DataFrame(columns=HISTORY_COLUMNS)
    text_columns = RUN_COLUMNS + KEY_COLUMNS + ["metric"]
    try:
        frame = pd.read_csv(store, dtype={c: str for c in text_columns})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"{store}: not a readable history CSV ({exc.__class__.__name__})") \
            from None
    if list(frame.columns) != HISTORY_COLUMNS:
        raise InputError(f"{store}: columns {list(frame.columns)}; expected {HISTORY_COLUMNS}")
    frame[text_columns] = frame[text_columns].fillna("")
    return frame


def append_run(directory: str | Path, store: str | Path, date: str | None = None,
               commit: str | None = None) -> int:
    """Append (or replace: idempotent per (date, commit)) a run's block; returns its row count.

    The whole store is rewritten through temp + rename, so a reader never sees half a block.
    """
    block = run_block(directory, date, commit)
    if block.empty:  # no ok cell: nothing to record, and an empty block would erase nothing
        return 0
    old = read_store(store)
    run_date, run_commit = block["run_date"].iloc[0], block["commit"].iloc[0]
    keep = old[(old["run_date"] != run_date) | (old["commit"] != run_commit)]
    merged = pd.concat([keep, block], ignore_index=True) if not keep.empty else block
    merged = merged.sort_values("run_date", kind="stable")
    buffer = io.StringIO()
    merged.to_csv(buffer, index=False)
    atomic_write_bytes(Path(store), buffer.getvalue().encode())
    return len(block)


def run_means(history: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Per (KEY, run): mean over seeds plus the seed values, runs in date order."""
    rows = history[history["metric"] == metric]
    grouped = rows.groupby(KEY_COLUMNS + RUN_COLUMNS, sort=False)["value"]
    out = grouped.agg(["mean", "std", list]).reset_index()
    return out.sort_values("run_date", kind="stable")


def detect_regressions(history: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Regressions between consecutive runs of each series, by compare's rule (judge)."""
    found = []
    for key, series in run_means(history, metric).groupby(KEY_COLUMNS, sort=False):
        records = series.to_dict("records")
        for before, after in zip(records, records[1:], strict=False):
            verdict, change, _, _ = judge(metric, pd.Series(before["list"]).to_numpy(float),
                                          pd.Series(after["list"]).to_numpy(float),
                                          DEFAULT_THRESHOLDS[metric])
            if verdict == "regression":
                found.append({"cell": cell_label(dict(zip(KEY_COLUMNS, key, strict=True))),
                              "run_date": after["run_date"], "commit": after["commit"],
                              "change": change, **dict(zip(KEY_COLUMNS, key, strict=True))})
    return pd.DataFrame(found, columns=["cell", "run_date", "commit", "change"] + KEY_COLUMNS)


def plot_history(store: str | Path, out: str | Path) -> list[Path]:
    """history_<metric>.png: a panel per family, a line per cell key, regressions marked."""
    from bench.plots.history import plot_metric_history  # matplotlib only when plotting

    history = read_store(store)
    if history.empty:
        raise InputError(f"{store}: no history yet; run `genbench history append` first")
    written = []
    for metric in TREND_METRICS:
        if (history["metric"] == metric).any():
            written += plot_metric_history(run_means(history, metric),
                                           detect_regressions(history, metric), metric, Path(out))
    return written


def _append_cli(args: argparse.Namespace) -> int:
    rows = append_run(args.dir, args.store, args.date, args.commit)
    print(f"{args.store}: {rows} rows for this run")
    return 0


def _plot_cli(args: argparse.Namespace) -> int:
    for path in plot_history(args.store, args.out):
        print(path)
    return 0


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("history", help="history store of runs and its trend plots")
    commands = parser.add_subparsers(dest="history_command", required=True)
    append = commands.add_parser("append", help="append a results directory to the store")
    append.add_argument("dir", help="results directory written by `genbench run`")
    append.add_argument("--store", required=True, help="history CSV (created if missing)")
    append.add_argument("--date", help="run date, ISO 8601 (default: run.json finished_at)")
    append.add_argument("--commit", help="commit SHA (default: run.json git_commit)")
    append.set_defaults(func=_append_cli)
    plot = commands.add_parser("plot", help="trend plots per key metric with regressions marked")
    plot.add_argument("--store", required=True, help="history CSV")
    plot.add_argument("--out", required=True, help="directory for history_<metric>.png")
    plot.set_defaults(func=_plot_cli)
