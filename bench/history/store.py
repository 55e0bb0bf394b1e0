"""History store of runs: one tidy CSV whose rows keep runs of different machines, presets, run
names, devices and batch sizes apart (who appends, who reads the last run, the CLI)."""
from __future__ import annotations

import argparse
import datetime as dt
import io
from pathlib import Path

import numpy as np
import pandas as pd

from bench.errors import InputError
from bench.results import schema
from bench.results.environment import machine_of
from bench.results.loading import KEY_COLUMNS, ResultsDir, load_results_dir
from genmodels.cache import atomic_write_bytes

# One run in the store: appending the same run again replaces its block (idempotent).
RUN_COLUMNS = ["run_date", "commit", "run_name", "preset", "machine_id"]
# A series: the same measurement of the same run kind on the same machine over time.
SERIES_COLUMNS = ["run_name", "preset", "machine_id", *KEY_COLUMNS, "device", "batch_size"]
HISTORY_COLUMNS = [*RUN_COLUMNS, *KEY_COLUMNS, "seed", "device", "batch_size", "metric", "value",
                   "ci_low", "ci_high", "status"]
_TEXT_COLUMNS = [*RUN_COLUMNS, *KEY_COLUMNS, "device", "metric", "status"]
# A store written before runs were keyed (genbench <= schema 2 without machine ids).
_OLD_COLUMNS = ["run_date", "commit", *KEY_COLUMNS, "seed", "metric", "value"]
# Quality and size come from results.csv (device "", batch_size 0); latency metrics from every
# measured latency.csv row (each device and batch size).
RESULT_METRICS = [m for m in schema.DIRECTIONS if m in schema.RESULTS_COLUMNS]
LATENCY_METRICS = ["latency_p50_ms", "speedup", "throughput_sps", "peak_mem_bytes"]
HISTORY_METRICS = RESULT_METRICS + LATENCY_METRICS
# What `history plot` draws: quality, size and the two latency views people watch.
TREND_METRICS = ["fid_proxy", "elbo_nats", "latency_p50_ms", "speedup", "size_file_bytes"]


def _utc(date: str, what: str) -> str:
    """ISO 8601 in UTC with an explicit offset, so that dates sort as text (no offset: UTC)."""
    try:
        stamp = dt.datetime.fromisoformat(str(date).replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"{what} {date!r}: not an ISO 8601 date (e.g. 2025-01-31T02:00:00Z)") \
            from None
    stamp = stamp.replace(tzinfo=dt.UTC) if stamp.tzinfo is None else stamp.astimezone(dt.UTC)
    return stamp.isoformat(timespec="seconds")


def _quality_rows(results: pd.DataFrame) -> pd.DataFrame:
    """(KEY..., seed, metric, value, ci_low, ci_high) of ok cells, one row per metric present."""
    parts = []
    for metric in RESULT_METRICS:
        rows = results[results[metric].notna()]
        low, high = (rows[metric + s] if metric + s in rows else np.nan for s in schema.CI_SUFFIXES)
        parts.append(rows[KEY_COLUMNS + ["seed"]].assign(metric=metric, value=rows[metric],
                                                         ci_low=low, ci_high=high))
    out = pd.concat(parts, ignore_index=True)
    return out.assign(device="", batch_size=0, status=schema.STATUS_OK)


def _latency_rows(run: ResultsDir, results: pd.DataFrame) -> pd.DataFrame:
    """Every measured (ok or unstable) latency row, p50 with its order-statistic 95% interval
    over the row's timing blocks (throughput's follows from it), speedup with the family's
    self-timing noise band of this run (bench.results.annotations.speedup_noise_band)."""
    from bench.compare.latency_tests import median_ci
    from bench.results.annotations import speedup_noise_band

    keys = results.set_index("cell_id")[KEY_COLUMNS + ["seed"]]
    latency = run.latency[run.latency["status"].isin([schema.STATUS_OK, schema.STATUS_UNSTABLE])
                          & run.latency["cell_id"].isin(keys.index)]
    blocks = {key: group["seconds_per_call"].to_numpy(float) for key, group in
              run.samples.groupby(["cell_id", "device", "batch_size"], sort=False)}
    parts = []
    for row in latency.to_dict("records"):
        seconds = blocks.get((row["cell_id"], row["device"], row["batch_size"]))
        low, high = (np.nan, np.nan) if seconds is None or len(seconds) == 0 else (
            1e3 * bound for bound in median_ci(seconds))
        batch = int(row["batch_size"])
        family = keys.loc[row["cell_id"]]["family"]
        band = speedup_noise_band(run, family, row["device"])
        speedup_ci = ((row["speedup"] / band.factor, row["speedup"] * band.factor)
                      if band is not None and pd.notna(row["speedup"]) else (np.nan, np.nan))
        # The speedup's interval is the run's own self-timing band (baseline against itself):
        # two runs' speedups differ beyond noise when these intervals are disjoint.
        intervals = {"latency_p50_ms": (low, high), "speedup": speedup_ci,
                     # batch / p50; an unbounded p50 interval (<= 5 blocks) gives [0, inf).
                     "throughput_sps": (1e3 * batch / high,
                                        np.inf if low <= 0 else 1e3 * batch / low),
                     "peak_mem_bytes": (np.nan, np.nan)}
        for metric, (ci_low, ci_high) in intervals.items():
            if pd.notna(row[metric]):
                parts.append({**keys.loc[row["cell_id"]].to_dict(), "device": row["device"],
                              "batch_size": batch, "metric": metric, "value": row[metric],
                              "ci_low": ci_low, "ci_high": ci_high, "status": row["status"]})
    return pd.DataFrame(parts, columns=KEY_COLUMNS + ["seed", "device", "batch_size", "metric",
                                                      "value", "ci_low", "ci_high", "status"])


def run_identity(run_json: dict, directory: Path) -> dict[str, str]:
    """run_name (the config's name, else the directory's), preset ('' for a TOML file) and
    machine_id (bench.results.environment.machine_of) of a run."""
    config = run_json.get("config") or {}
    return {"run_name": str(config.get("name") or run_json.get("preset") or directory.name),
            "preset": str(run_json.get("preset") or ""), "machine_id": machine_of(run_json)["id"]}


def run_block(directory: str | Path, *, date: str | None = None, commit: str | None = None,
              run_name: str | None = None) -> pd.DataFrame:
    """One run's tidy rows (HISTORY_COLUMNS): quality rows of its ok cells and its measured
    latency rows. date/commit/run_name default to run.json's finished_at/git_commit/config."""
    directory = Path(directory)
    run = load_results_dir(directory)
    date = date or run.run.get("finished_at") or run.run.get("started_at")
    commit = commit or run.run.get("git_commit")
    if not date or not commit:
        raise InputError(f"{directory}: run.json lacks finished_at/git_commit; pass --date and "
                         f"--commit")
    identity = {**run_identity(run.run, directory), "run_date": _utc(date, "--date"),
                "commit": str(commit)}
    if run_name:
        identity["run_name"] = run_name
    ok = run.ok()
    block = pd.concat([_quality_rows(ok), _latency_rows(run, ok)], ignore_index=True)
    block = block.dropna(subset=["value"]).assign(**identity)
    # As read_store reads them back: a block and the store's copy of it compare equal.
    block[["seed", "batch_size"]] = block[["seed", "batch_size"]].astype(int)
    return block[HISTORY_COLUMNS].reset_index(drop=True)


def read_store(store: str | Path) -> pd.DataFrame:
    """The store as a DataFrame (empty when the file does not exist yet)."""
    store = Path(store)
    if not store.exists():
        return pd.DataFrame(columns=HISTORY_COLUMNS)
    try:
        frame = pd.read_csv(store, dtype={c: str for c in _TEXT_COLUMNS})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"{store}: not a readable history CSV ({exc.__class__.__name__})") \
            from None
    if list(frame.columns) == _OLD_COLUMNS:
        raise InputError(f"{store}: a history store from before runs were keyed by machine, "
                         "preset and run name (its runs cannot be told apart); move it aside and "
                         "rebuild it with `genbench history append DIR --store STORE` per run")
    if list(frame.columns) != HISTORY_COLUMNS:
        raise InputError(f"{store}: columns {list(frame.columns)}; expected {HISTORY_COLUMNS}")
    frame[_TEXT_COLUMNS] = frame[_TEXT_COLUMNS].fillna("")
    return frame


def append_run(directory: str | Path, store: str | Path, *, date: str | None = None,
               commit: str | None = None, run_name: str | None = None) -> int:
    """Append a run's block, replacing any block of the same (run_date, commit, machine_id,
    run_name): appending twice changes nothing. Returns the block's row count.

    The whole store is rewritten through temp + rename, so a reader never sees half a block.
    """
    block = run_block(directory, date=date, commit=commit, run_name=run_name)
    if block.empty:  # no ok cell: nothing to record, and an empty block would erase nothing
        return 0
    old = read_store(store)
    same = ["run_date", "commit", "machine_id", "run_name"]
    this = tuple(block[same].iloc[0])
    keep = old[[tuple(r) != this for r in old[same].itertuples(index=False)]]
    merged = pd.concat([keep, block], ignore_index=True) if not keep.empty else block
    merged = merged.sort_values("run_date", kind="stable")
    buffer = io.StringIO()
    merged.to_csv(buffer, index=False)
    atomic_write_bytes(Path(store), buffer.getvalue().encode())
    return len(block)


def last_run(store: str | Path, *, machine_id: str, preset: str, run_name: str,
             before: str | None = None) -> pd.DataFrame | None:
    """The most recent block in `store` of this machine, preset and run name (only runs dated
    before `before`, when given), None when there is none."""
    history = read_store(store)
    rows = history[(history["machine_id"] == machine_id) & (history["preset"] == (preset or ""))
                   & (history["run_name"] == run_name)]
    if before is not None:
        rows = rows[rows["run_date"] < _utc(before, "before")]
    if rows.empty:
        return None
    latest = rows.sort_values("run_date", kind="stable").iloc[-1]
    same = (rows["run_date"] == latest["run_date"]) & (rows["commit"] == latest["commit"])
    return rows[same].reset_index(drop=True)


def _append_cli(args: argparse.Namespace) -> int:
    rows = append_run(args.dir, args.store, date=args.date, commit=args.commit,
                      run_name=args.run_name)
    print(f"{args.store}: {rows} rows for this run")
    return 0


def _plot_cli(args: argparse.Namespace) -> int:
    from bench.plots.history import plot_history  # matplotlib only when plotting

    for path in plot_history(read_store(args.store), args.out, source=args.store):
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
    append.add_argument("--run-name", help="series name (default: the config's name)")
    append.set_defaults(func=_append_cli)
    plot = commands.add_parser("plot", help="trend plots: a panel per family, a line per machine")
    plot.add_argument("--store", required=True, help="history CSV")
    plot.add_argument("--out", required=True, help="directory for history_<run>_<metric>.png")
    plot.set_defaults(func=_plot_cli)
