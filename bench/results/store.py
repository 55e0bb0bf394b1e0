"""The output directory: per-cell records, atomically rewritten CSVs, run.json, the run lock."""
from __future__ import annotations

import csv
import io
import json
import math
import os
import socket
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from bench.results.schema import (
    LATENCY_COLUMNS,
    LATENCY_FILE,
    LATENCY_SAMPLE_COLUMNS,
    LATENCY_SAMPLES_FILE,
    RESULTS_COLUMNS,
    RESULTS_FILE,
    RUN_FILE,
)
from genmodels.cache import atomic_write_bytes

LOCK_FILE = ".genbench.lock"
CELLS_DIR = "cells"
SAMPLES_DIR = "samples"


class LockedError(ValueError):
    """Another live genbench run owns the output directory."""


def safe_join(root: Path, relative: str) -> Path:
    """`root / relative`, refusing anything that would land outside `root` (../, absolute)."""
    root = Path(root).resolve()
    path = (root / relative).resolve()
    if path != root and root not in path.parents:
        raise ValueError(f"path {relative!r} escapes the output directory {root}; "
                         "allowed: relative paths inside it")
    return path


def _cell(value: Any) -> Any:
    # Empty, not a placeholder, for values that do not apply or were not measured.
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return value


def csv_bytes(rows: Iterable[dict[str, Any]], columns: list[str]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({c: _cell(row.get(c)) for c in columns})
    return buffer.getvalue().encode()


def write_json(path: Path, payload: dict[str, Any]) -> None:
    text = json.dumps(payload, indent=1, sort_keys=True, allow_nan=False, default=str)
    atomic_write_bytes(path, text.encode())


class ResultStore:
    """DIR/cells/<id>.json are the state; the CSVs are a pure function of them, rewritten
    (temp file + rename) after every cell, so a reader or a SIGKILL never sees a torn CSV."""

    def __init__(self, out_dir: str | Path) -> None:
        self.root = Path(out_dir)

    def record_path(self, cell_id: str) -> Path:
        return safe_join(self.root, f"{CELLS_DIR}/{cell_id}.json")

    def records(self) -> dict[str, dict[str, Any]]:
        """Every readable record; a torn or foreign file is ignored (its cell is redone)."""
        out: dict[str, dict[str, Any]] = {}
        for path in sorted((self.root / CELLS_DIR).glob("*.json")):
            try:
                record = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            if isinstance(record, dict) and record.get("cell_id") == path.stem:
                out[path.stem] = record
        return out

    def status_counts(self, cell_ids: Iterable[str]) -> dict[str, int]:
        """{status: number of records} among `cell_ids` (cells without a record not counted)."""
        records = self.records()
        statuses = [records[i]["result"].get("status", "") for i in cell_ids if i in records]
        return {status: statuses.count(status) for status in dict.fromkeys(statuses)}

    def put(self, record: dict[str, Any], samples: np.ndarray | None = None) -> None:
        """Samples first, record last: a record on disk means the cell is complete."""
        cell_id = record["cell_id"]
        if samples is not None:
            buffer = io.BytesIO()
            np.savez_compressed(buffer, images=np.asarray(samples, dtype=np.float32))
            atomic_write_bytes(safe_join(self.root, f"{SAMPLES_DIR}/{cell_id}.npz"),
                               buffer.getvalue())
        write_json(self.record_path(cell_id), _json_safe(record))
        from bench.cell.training_curves import write_training_curve

        write_training_curve(self.root, record)  # DIR/training/<family>-seed<seed>.json

    def regenerate(self, cell_ids: list[str]) -> None:
        """Rewrite results.csv, latency.csv and latency_samples.csv from the records of
        `cell_ids` (the current grid, in grid order; records of other grids are left alone)."""
        records = self.records()
        ids = [i for i in cell_ids if i in records]
        # The cell's eager row, then one row per runtime that changed its outputs.
        rows = [row for i in ids
                for row in [records[i]["result"], *records[i].get("runtime_results", [])]]
        latency = [row for i in ids for row in records[i].get("latency", [])]
        samples = [row for i in ids for row in records[i].get("latency_samples", [])]
        atomic_write_bytes(self.root / RESULTS_FILE, csv_bytes(rows, RESULTS_COLUMNS))
        atomic_write_bytes(self.root / LATENCY_FILE, csv_bytes(latency, LATENCY_COLUMNS))
        atomic_write_bytes(self.root / LATENCY_SAMPLES_FILE,
                           csv_bytes(samples, LATENCY_SAMPLE_COLUMNS))

    def write_run(self, payload: dict[str, Any]) -> None:
        write_json(self.root / RUN_FILE, _json_safe(payload))

    def read_run(self) -> dict[str, Any]:
        """run.json as written by an earlier invocation; {} when absent or unreadable."""
        try:
            run = json.loads((self.root / RUN_FILE).read_text())
        except (OSError, ValueError):
            return {}
        return run if isinstance(run, dict) else {}


def _json_safe(value: Any) -> Any:
    """NaN/inf are not JSON: a non-finite number becomes null (the status says why)."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class RunLock:
    """DIR/.genbench.lock holding {pid, host}: created with O_EXCL so exactly one run wins.

    A lock whose owner is a dead process on this host is stale and taken over; a live owner
    makes `acquire` refuse (LockedError) or, with `wait`, poll until it is released.
    """

    def __init__(self, out_dir: str | Path, wait: bool = False, poll_s: float = 1.0) -> None:
        self.path = Path(out_dir) / LOCK_FILE
        self.wait = wait
        self.poll_s = poll_s
        self.held = False

    def owner(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None

    def _age_s(self) -> float:
        try:
            return time.time() - self.path.stat().st_mtime
        except OSError:
            return 0.0

    def _try_create(self) -> bool:
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as handle:
            json.dump({"pid": os.getpid(), "host": socket.gethostname(),
                       "since": time.time()}, handle)
        return True

    def acquire(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while not self._try_create():
            owner = self.owner()
            if owner is None and self._age_s() < 5.0:
                time.sleep(0.05)  # just created by a contender that has not written it yet
                continue
            stale = owner is None or (owner.get("host") == socket.gethostname()
                                      and not _pid_alive(int(owner.get("pid", -1))))
            if stale:
                # os.replace-free takeover: unlink then retry O_EXCL, so two contenders still
                # cannot both win.
                self.path.unlink(missing_ok=True)
                continue
            if not self.wait:
                raise LockedError(
                    f"{self.path.parent} is in use by genbench pid {owner.get('pid')} on "
                    f"{owner.get('host')}; wait for it to finish, pass --wait, "
                    "or use another --out")
            time.sleep(self.poll_s)
        self.held = True
        return self

    def release(self) -> None:
        if self.held:
            owner = self.owner()
            if owner and owner.get("pid") == os.getpid():
                self.path.unlink(missing_ok=True)
            self.held = False

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
