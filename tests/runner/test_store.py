"""Output directory primitives: the run lock, atomic CSVs from records, paths that cannot escape."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pandas as pd
import pytest

from bench.results.schema import LATENCY_COLUMNS, RESULTS_COLUMNS, RESULTS_FILE
from bench.results.store import LOCK_FILE, LockedError, ResultStore, RunLock, safe_join


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid  # reaped: no process has this pid (until it is reused, long after)


def _write_lock(tmp_path, pid: int, host: str | None = None) -> None:
    owner = {"pid": pid, "host": host or socket.gethostname()}
    (tmp_path / LOCK_FILE).write_text(json.dumps(owner))


def test_lock_is_exclusive_and_released(tmp_path):
    with RunLock(tmp_path) as lock:
        assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == os.getpid()
        with pytest.raises(LockedError, match=f"pid {os.getpid()}"):
            RunLock(tmp_path).acquire()
        assert lock.held
    assert not (tmp_path / LOCK_FILE).exists()


def test_live_lock_of_another_process_is_refused(tmp_path):
    _write_lock(tmp_path, os.getppid())  # our parent: alive for the whole test
    with pytest.raises(LockedError, match="--wait"):
        RunLock(tmp_path).acquire()
    assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == os.getppid()


def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path):
    _write_lock(tmp_path, _dead_pid())
    with RunLock(tmp_path):
        assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] == os.getpid()


def test_lock_of_another_host_is_never_presumed_dead(tmp_path):
    _write_lock(tmp_path, _dead_pid(), host="some-other-host.invalid")
    with pytest.raises(LockedError, match="some-other-host"):
        RunLock(tmp_path).acquire()


def test_second_cli_run_into_a_locked_dir_exits_2(tmp_path, capsys, write_config, tiny_toml):
    from bench.cli import main

    out = tmp_path / "out"
    out.mkdir()
    _write_lock(out, os.getppid())
    config = write_config(tiny_toml)
    assert main(["run", "--config", str(config), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "in use by genbench pid" in err
    assert sorted(p.name for p in out.iterdir()) == [LOCK_FILE]  # nothing else written


@pytest.mark.parametrize("relative", ["../x", "a/../../x", "/etc/passwd", "cells/../../x"])
def test_safe_join_refuses_escapes(tmp_path, relative):
    with pytest.raises(ValueError, match="escapes the output directory"):
        safe_join(tmp_path, relative)


def test_safe_join_allows_inside(tmp_path):
    assert safe_join(tmp_path, "cells/abc.json") == (tmp_path / "cells" / "abc.json").resolve()


def _record(cell_id: str, status: str = "ok", fid: float | None = 1.5) -> dict:
    return {"cell_id": cell_id,
            "result": {"cell_id": cell_id, "family": "gan", "method": "baseline", "seed": 0,
                       "status": status, "fid_proxy": fid},
            "latency": [{"cell_id": cell_id, "device": "cpu", "batch_size": 1, "status": "ok"}],
            "latency_samples": []}


def test_csvs_are_regenerated_from_records_in_grid_order(tmp_path):
    store = ResultStore(tmp_path)
    for cid in ("b", "a", "c"):
        store.put(_record(cid))
    store.put(_record("z-other-grid"))
    store.regenerate(["c", "a", "b"])
    results = pd.read_csv(tmp_path / RESULTS_FILE)
    assert list(results.columns) == RESULTS_COLUMNS
    assert list(results["cell_id"]) == ["c", "a", "b"]  # only this grid's cells, its order
    assert list(pd.read_csv(tmp_path / "latency.csv").columns) == LATENCY_COLUMNS


def test_missing_and_nan_values_are_empty_not_zero(tmp_path):
    store = ResultStore(tmp_path)
    store.put(_record("a", status="failed", fid=float("nan")))
    store.regenerate(["a"])
    row = pd.read_csv(tmp_path / RESULTS_FILE).iloc[0]
    assert row["status"] == "failed" and pd.isna(row["fid_proxy"]) and pd.isna(row["recall"])


def test_torn_record_is_ignored_so_its_cell_is_redone(tmp_path):
    store = ResultStore(tmp_path)
    store.put(_record("a"))
    (tmp_path / "cells" / "b.json").write_text('{"cell_id": "b", "resu')  # truncated
    (tmp_path / "cells" / "c.json").write_text(json.dumps(_record("not-c")))  # misnamed
    assert set(store.records()) == {"a"}
