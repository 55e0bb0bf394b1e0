"""Run a sweep into an output directory: lock, resume, execute, store, progress, run.json."""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.config import SweepConfig
from bench.environment import environment, git_state, utc_now
from bench.executors import execute
from bench.grid import Cell, expand
from bench.runner import CellOutcome
from bench.schema import SCHEMA_VERSION, STATUS_FAILED, STATUS_OK
from bench.store import ResultStore, RunLock


@dataclass
class SweepSummary:
    cells: int
    reused: int
    ran: int
    ok: int
    failed: int
    seconds: float


def cells_to_run(cells: list[Cell], records: dict[str, dict], rerun_failed: bool = False,
                 force: bool = False) -> list[Cell]:
    """Resume rule: skip cells with a record (ok, or failed unless `rerun_failed`)."""
    def done(cell: Cell) -> bool:
        record = records.get(cell.cell_id)
        if force or record is None:
            return False
        return not (rerun_failed and record["result"].get("status") == STATUS_FAILED)

    return [cell for cell in cells if not done(cell)]


def run_sweep(config: SweepConfig, out_dir: str | Path, *, executor: str = "local",
              workers: int = 1, scheduler: str | None = None, rerun_failed: bool = False,
              force: bool = False, wait: bool = False, progress: bool = True,
              preset: str | None = None, client: Any = None) -> SweepSummary:
    started = time.time()
    cells = expand(config)
    order = [cell.cell_id for cell in cells]
    out = Path(out_dir)
    with RunLock(out, wait=wait):
        store = ResultStore(out)
        todo = cells_to_run(cells, store.records(), rerun_failed, force)
        if not todo:  # a completed sweep: no work, only make sure the CSVs are there
            store.regenerate(order)
            return SweepSummary(len(cells), len(cells), 0, 0, 0, time.time() - started)
        commit, dirty = git_state()
        run: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION, "genbench_version": environment()["genbench"],
            "git_commit": commit, "git_dirty": dirty, "config": config.to_dict(),
            "environment": environment(), "floors": None, "feature_net": None,
            "started_at": utc_now(), "finished_at": None, "preset": preset,
            "cells": len(cells),
        }
        store.write_run(run)
        counts = {STATUS_OK: 0, STATUS_FAILED: 0}
        bar = _progress(len(todo), progress)

        def on_result(outcome: CellOutcome) -> None:
            record = outcome.record
            store.put(record, outcome.samples)
            store.regenerate(order)
            result = record["result"]
            status = result.get("status", STATUS_FAILED)
            counts[status] = counts.get(status, 0) + 1
            if run["floors"] is None and record.get("floors"):
                run["floors"], run["feature_net"] = record["floors"], record.get("feature_net")
                store.write_run(run)
            line = (f"{status:6s} {result['family']:5s} {result['method']:28s} "
                    f"seed={result['seed']} {record.get('seconds', 0.0):6.1f}s "
                    f"{record['cell_id']} {result.get('error') or ''}")
            _log(bar, line)
            if bar is not None:
                bar.set_postfix(ok=counts[STATUS_OK], failed=counts[STATUS_FAILED], refresh=False)
                bar.update(1)

        try:
            execute(config, todo, on_result, executor=executor, workers=workers,
                    scheduler=scheduler, client=client)
        finally:
            if bar is not None:
                bar.close()
            run["finished_at"] = utc_now()
            store.write_run(run)
        return SweepSummary(len(cells), len(cells) - len(todo), len(todo), counts[STATUS_OK],
                            counts[STATUS_FAILED], time.time() - started)


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
