"""Run a sweep into an output directory: lock, resume, execute, store, progress, run.json."""
from __future__ import annotations

import contextlib
import dataclasses
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.cell.extend import merge_runtime_record, missing_runtimes
from bench.config.sweep import SweepConfig
from bench.results.environment import machine_fingerprint, utc_now
from bench.results.schema import (
    RUNTIME_EAGER,
    SCHEMA_VERSION,
    STATUS_FAILED,
    STATUS_OK,
    STATUS_UNSTABLE,
)
from bench.results.store import ResultStore, RunLock
from bench.run.executors import _ignore_resource_sharer_eof, execute
from bench.run.grid import BASELINE, Cell, expand
from bench.run.invocations import (
    COMPLETED,
    append_noop_invocation,
    finish_invocation,
    past_invocations,
    start_invocation,
)
from bench.run.progress import cell_line
from bench.run.runner import CellOutcome
from bench.run.takeover import claim_directory

MEASURED = (STATUS_OK, STATUS_UNSTABLE)  # latency rows with figures (not failed or skipped)


@dataclass
class SweepSummary:
    cells: int
    reused: int
    ran: int
    ok: int
    failed: int
    seconds: float
    latency_rows: int = 0  # measured latency rows (ok or unstable) of the whole grid
    unstable: int = 0  # of which still unsteady after every re-measurement


def cells_to_run(cells: list[Cell], records: dict[str, dict], rerun_failed: bool = False,
                 force: bool = False) -> list[Cell]:
    """Resume rule: skip cells with a record (ok, or failed unless `rerun_failed`); a cell
    whose record lacks some of its runtimes runs for those alone (eager=False)."""
    def done(cell: Cell) -> bool:
        record = records.get(cell.cell_id)
        if force or record is None:
            return False
        return not (rerun_failed and record["result"].get("status") == STATUS_FAILED)

    todo = []
    for cell in cells:
        if not done(cell):
            todo.append(cell)
            continue
        missing = missing_runtimes(cell.runtimes, records[cell.cell_id], rerun_failed)
        if missing:
            todo.append(dataclasses.replace(cell, runtimes=missing, eager=False))
    return todo


def speedup_noise(record: dict[str, Any]) -> list[dict[str, Any]]:
    """A baseline cell's latency rows time the baseline against a copy of itself, so their
    speedup (ideally 1) is the run's measured speedup noise: one entry per measured row."""
    result = record["result"]
    if result.get("method") != BASELINE:
        return []
    # Only eager rows: another runtime's baseline row is that runtime against eager.
    return [{"family": result["family"], "seed": result["seed"], "device": row["device"],
             "batch_size": row["batch_size"], "speedup": row.get("speedup"),
             "rel_iqr": row.get("latency_rel_iqr"), "status": row["status"]}
            for row in record.get("latency", []) if row["status"] in MEASURED
            and row.get("runtime", RUNTIME_EAGER) == RUNTIME_EAGER]


def unstable_counts(records: list[dict[str, Any]]) -> tuple[int, int]:
    """(measured latency rows, unstable latency rows) over `records`."""
    statuses = [row["status"] for record in records for row in record.get("latency", [])]
    return (sum(s in MEASURED for s in statuses), statuses.count(STATUS_UNSTABLE))


def run_sweep(config: SweepConfig, out_dir: str | Path, *, executor: str = "local",
              workers: int = 1, scheduler: str | None = None, rerun_failed: bool = False,
              force: bool = False, wait: bool = False, progress: bool = True,
              preset: str | None = None, client: Any = None,
              argv: list[str] | None = None) -> SweepSummary:
    """Run the cells of `config` not yet done in `out_dir`; every invocation is logged in
    run.json's `invocations` (argv: the command line to log, default sys.argv)."""
    started = time.time()
    cells = expand(config)
    order = [cell.cell_id for cell in cells]
    out = Path(out_dir)
    with RunLock(out, wait=wait):
        claim_directory(out, config.name, force)  # another sweep's DIR: refused, or --force
        store = ResultStore(out)
        records = store.records()
        todo = cells_to_run(cells, records, rerun_failed, force)
        redo = {cell.cell_id for cell in todo}
        if not todo:  # a completed sweep: no work, only make sure the CSVs are there
            store.regenerate(order)
            previous = store.read_run()
            if previous:  # still an invocation: the log says it found nothing to do
                store.write_run(append_noop_invocation(previous, preset, argv))
            return SweepSummary(len(cells), len(cells), 0, 0, 0, time.time() - started,
                                *unstable_counts([records[i] for i in order if i in records]))
        # Top-level keys describe this invocation; `invocations` keeps every earlier one too.
        invocation = start_invocation(preset, argv)
        run: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "genbench_version": invocation["environment"]["genbench"],
            "git_commit": invocation["git_commit"], "git_dirty": invocation["git_dirty"],
            "code_fingerprint": invocation["code_fingerprint"], "config": config.to_dict(),
            "environment": invocation["environment"],
            "machine": machine_fingerprint(), "floors": None, "feature_net": None,
            "floors_spread": None, "floor_method": None,
            "started_at": invocation["started_at"], "finished_at": None, "preset": preset,
            "cells": len(cells),
            "invocations": past_invocations(store.read_run()) + [invocation],
            # Cells reused from earlier invocations keep their baseline-vs-itself figures.
            "speedup_noise": [entry for i in order if i in records and i not in redo
                              for entry in speedup_noise(records[i])],
        }
        store.write_run(run)
        counts = {STATUS_OK: 0, STATUS_FAILED: 0}
        bar = _progress(len(todo), progress)
        unstable_so_far = [0]  # latency rows of this invocation (a list: on_result adds to it)

        def on_result(outcome: CellOutcome) -> None:
            record = outcome.record
            if record.get("extends") and record["cell_id"] in records:  # runtimes added
                record = merge_runtime_record(records[record["cell_id"]], record)
            store.put(record, outcome.samples)
            store.regenerate(order)
            result = outcome.record["result"]  # an extension: its own status (the runtimes')
            status = result.get("status", STATUS_FAILED)
            counts[status] = counts.get(status, 0) + 1
            measured, unstable = unstable_counts([outcome.record])  # this invocation's
            unstable_so_far[0] += unstable
            run["speedup_noise"] += speedup_noise(record)  # written with the run below
            if run["floors"] is None and record.get("floors"):
                run["floors"], run["feature_net"] = record["floors"], record.get("feature_net")
                # floors stays {metric: mean} (readers use it); the spread and method beside it
                run["floors_spread"] = record.get("floors_spread") or {}
                run["floor_method"] = record.get("floor_method")
                store.write_run(run)
            invocation["cells_run"] += 1
            store.write_run(run)  # so that a killed invocation still says what it ran
            _log(bar, cell_line(outcome.record, measured, unstable))
            if bar is not None:
                bar.set_postfix(ok=counts[STATUS_OK], failed=counts[STATUS_FAILED],
                                unstable_latency=unstable_so_far[0], refresh=False)
                bar.update(1)

        try:
            with resource_sharer_eof_ignored():
                execute(config, todo, on_result, executor=executor, workers=workers,
                        scheduler=scheduler, client=client)
            invocation["status"] = COMPLETED
        finally:
            if bar is not None:
                bar.close()
            run["finished_at"] = utc_now()
            finish_invocation(invocation, run["finished_at"])
            store.write_run(run)
        final = store.records()
        return SweepSummary(len(cells), len(cells) - len(todo), len(todo), counts[STATUS_OK],
                            counts[STATUS_FAILED], time.time() - started,
                            *unstable_counts([final[i] for i in order if i in final]))


def _progress(total: int, enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="cell", file=sys.stderr, dynamic_ncols=True)


def _log(bar: Any, line: str) -> None:
    """One line per finished cell, above the bar (tqdm.write) so the bar is not torn."""
    if bar is not None:
        bar.write(line, file=sys.stderr)
    else:
        print(line, file=sys.stderr, flush=True)


@contextlib.contextmanager
def resource_sharer_eof_ignored() -> Iterator[None]:
    """The executor's filter for multiprocessing's resource-sharer thread
    (`bench.run.executors._ignore_resource_sharer_eof`: its EOFError / ConnectionError, left
    when a pool worker ends mid-handshake, prints no traceback) held for the whole block, and
    threading.excepthook restored after it.

    The executor installs that filter only once it stops the pool; the sharer thread can fail
    earlier, while the interrupt is still on its way there (seen once, a ConnectionResetError
    in tests/runner/test_interrupt.py under load), so the whole execution runs under this. Any
    other thread exception is reported as before; a failing worker still surfaces through its
    future (BrokenProcessPool). Here, not in bench.run.executors: this module only orchestrates
    (NOT_MEASURING), so the fix changes no cell id.

    sys.excepthook is filtered the same way for the same thread: the sharer's `_serve` loop
    catches its own errors and hands them to sys.excepthook (multiprocessing/resource_sharer.py),
    so a ConnectionResetError in its handshake never reaches threading.excepthook (seen in a
    clean-clone CI run of test_interrupt.py). Both hooks are restored after the block."""
    previous, previous_sys = threading.excepthook, sys.excepthook

    def sys_hook(exc_type: type[BaseException], exc: BaseException, tb: Any) -> None:
        if not (issubclass(exc_type, EOFError | ConnectionError)
                and "_serve" in threading.current_thread().name):
            previous_sys(exc_type, exc, tb)

    _ignore_resource_sharer_eof()
    sys.excepthook = sys_hook
    try:
        yield
    finally:
        threading.excepthook, sys.excepthook = previous, previous_sys
