"""Provenance: each cell record says which code and machine measured it, and run.json keeps every
invocation that wrote into the directory (resumed, interrupted or killed)."""
from __future__ import annotations

import dataclasses
import json
import platform
import socket

import pytest
import torch
from conftest import TINY_TOML

import bench.run.sweep as sweep
from bench.config.sweep import parse_config
from bench.results.environment import git_state
from bench.results.schema import RUN_FILE, SCHEMA_VERSION
from bench.results.store import ResultStore
from bench.run.executors import failed_outcome
from bench.run.grid import code_fingerprint, expand
from bench.run.invocations import past_invocations
from bench.run.runner import FeatureOutcome, TrainOutcome, run_cell

CONFIG = parse_config(TINY_TOML)


def _run_cell(cell):
    # Failing inputs keep it fast: provenance is recorded whatever the cell's fate.
    return run_cell(CONFIG, cell, TrainOutcome(cell.train_key, error="skipped"),
                    FeatureOutcome(error="skipped")).record


def _values(value):
    if isinstance(value, dict):
        for item in value.values():
            yield from _values(item)
    elif isinstance(value, list):
        for item in value:
            yield from _values(item)
    else:
        yield value


def test_a_record_carries_commit_fingerprint_and_environment():
    record = _run_cell(expand(CONFIG)[0])
    provenance = record["provenance"]
    assert (provenance["git_commit"], provenance["git_dirty"]) == git_state()
    assert provenance["code_fingerprint"] == code_fingerprint() == expand(CONFIG)[0].code
    assert len(provenance["code_fingerprint"]) == 64
    environment = provenance["environment"]
    assert environment["torch"] == torch.__version__
    assert environment["threads"] == torch.get_num_threads() and environment["cpu_model"]
    hosts = {socket.gethostname(), platform.node()} - {""}
    assert not hosts & set(map(str, _values(record)))  # hostname-free
    json.dumps(record, allow_nan=False)  # stored as it is


def test_a_worker_with_other_code_fails_the_cell():
    cell = dataclasses.replace(expand(CONFIG)[0], code="0" * 64)
    result = _run_cell(cell)["result"]
    assert result["status"] == "failed"
    assert "differs from the code that made the cell id (000000000000)" in result["error"]


def _fake_execute(config, todo, on_result, **kwargs):
    for cell in todo:
        on_result(failed_outcome(cell, "not measured in this test"))


def _interrupting_execute(config, todo, on_result, **kwargs):
    on_result(failed_outcome(todo[0], "not measured in this test"))
    raise KeyboardInterrupt


def _invocations(out):
    return json.loads((out / RUN_FILE).read_text())["invocations"]


def test_every_invocation_is_kept(tmp_path, monkeypatch):
    monkeypatch.setattr(sweep, "execute", _fake_execute)
    run = lambda **kw: sweep.run_sweep(CONFIG, tmp_path, progress=False, **kw)  # noqa: E731
    run(argv=["genbench", "run", "first"])
    run(argv=["genbench", "run", "nothing-to-do"])
    run(force=True, preset="tiny", argv=["genbench", "run", "again"])
    log = _invocations(tmp_path)
    assert [i["argv"][-1] for i in log] == ["first", "nothing-to-do", "again"]
    assert [i["cells_run"] for i in log] == [6, 0, 6]
    assert [i["status"] for i in log] == ["completed"] * 3
    for invocation in log:
        assert invocation["code_fingerprint"] == code_fingerprint()
        assert (invocation["git_commit"], invocation["git_dirty"]) == git_state()
        assert invocation["environment"]["torch"] == torch.__version__
        assert invocation["finished_at"] >= invocation["started_at"]
    run_json = json.loads((tmp_path / RUN_FILE).read_text())
    # The top-level keys readers use stay, describing the latest invocation that ran cells.
    assert run_json["schema_version"] == SCHEMA_VERSION and run_json["preset"] == "tiny"
    assert run_json["started_at"] == log[-1]["started_at"] and run_json["cells"] == 6
    for key in ("config", "environment", "floors", "feature_net", "git_commit", "git_dirty",
                "finished_at", "code_fingerprint"):
        assert key in run_json


def test_interrupted_and_killed_invocations_say_so(tmp_path, monkeypatch):
    monkeypatch.setattr(sweep, "execute", _interrupting_execute)
    with pytest.raises(KeyboardInterrupt):
        sweep.run_sweep(CONFIG, tmp_path, progress=False)
    (interrupted,) = _invocations(tmp_path)
    assert interrupted["status"] == "interrupted" and interrupted["cells_run"] == 1
    assert interrupted["finished_at"] is not None
    # A SIGKILLed invocation leaves its entry `running`; the next one (holding the lock)
    # knows it is dead.
    store = ResultStore(tmp_path)
    run_json = store.read_run()
    run_json["invocations"].append({**interrupted, "status": "running", "finished_at": None})
    store.write_run(run_json)
    monkeypatch.setattr(sweep, "execute", _fake_execute)
    sweep.run_sweep(CONFIG, tmp_path, progress=False)
    assert [i["status"] for i in _invocations(tmp_path)] == ["interrupted", "killed", "completed"]
    assert _invocations(tmp_path)[-1]["cells_run"] == 5  # the one interrupted cell was kept


def test_a_run_json_from_before_the_log_keeps_its_invocation():
    legacy = {"schema_version": 1, "started_at": "2025-01-01T00:00:00+00:00",
              "finished_at": "2025-01-01T01:00:00+00:00", "git_commit": "abc", "preset": "smoke"}
    (entry,) = past_invocations(legacy)
    assert entry["status"] == "unknown" and entry["git_commit"] == "abc"
    assert entry["started_at"] == legacy["started_at"] and entry["schema_version"] == 1
    assert past_invocations({}) == []


def test_read_run_tolerates_absent_and_torn_files(tmp_path):
    store = ResultStore(tmp_path)
    assert store.read_run() == {}
    (tmp_path / RUN_FILE).write_text('{"schema_version": 2, "invoc')
    assert store.read_run() == {}
    store.write_run({"schema_version": 2})
    assert store.read_run() == {"schema_version": 2}
