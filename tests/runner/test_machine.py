"""Machine fingerprint: an id of the hardware only, the same from a new run.json's `machine` block
and from an old run.json's `environment` block, written by every run."""
from __future__ import annotations

import json
import re
from pathlib import Path

from conftest import TINY_TOML

import bench.run.sweep as sweep
from bench.config.sweep import parse_config
from bench.results.environment import (
    MACHINE_KEYS,
    code_state,
    environment,
    machine_fingerprint,
    machine_id,
    machine_of,
)
from bench.results.schema import RUN_FILE
from bench.run.executors import failed_outcome

REFERENCE = Path(__file__).resolve().parents[2] / "results" / "reference"
AVX2 = ["avx", "avx2", "fma", "sse4_1", "sse4_2"]
OLD_ENVIRONMENT = {"cpu_model": "AMD EPYC", "cpu_flags": AVX2, "cpu_count": 16, "gpu": None,
                   "threads": 8, "torch": "2.14.1", "cuda": None}


def test_fingerprint_is_stable_and_complete():
    first, second = machine_fingerprint(), machine_fingerprint()
    assert first == second and list(first) == list(MACHINE_KEYS)
    assert re.fullmatch(r"[0-9a-f]{12}", first["id"])
    assert first["code_fingerprint"] == code_state()["code_fingerprint"]
    first["cpu_flags"].append("changed")  # a copy: the next caller gets the real block
    assert "changed" not in machine_fingerprint()["cpu_flags"]


def test_id_hashes_hardware_only():
    base = machine_of({"environment": OLD_ENVIRONMENT, "code_fingerprint": "a" * 64})["id"]
    software = {**OLD_ENVIRONMENT, "torch": "2.15.0", "threads": 1, "cuda": "13.0"}
    assert machine_of({"environment": software, "code_fingerprint": "b" * 64})["id"] == base
    # Flag order does not matter; flags, cores and GPU do.
    shuffled = {**OLD_ENVIRONMENT, "cpu_flags": AVX2[::-1]}
    assert machine_of({"environment": shuffled})["id"] == base
    avx512 = {**OLD_ENVIRONMENT, "cpu_flags": AVX2 + ["avx512f"]}
    gpu = {**OLD_ENVIRONMENT, "gpu": "NVIDIA H100"}
    cores = {**OLD_ENVIRONMENT, "cpu_count": 2}
    ids = {machine_of({"environment": env})["id"] for env in (avx512, gpu, cores)}
    assert len(ids) == 3 and base not in ids
    assert base == machine_id("AMD EPYC", AVX2, 16, None)


def test_old_run_json_gives_the_id_of_a_new_one_on_the_same_machine():
    new = {"machine": machine_fingerprint(), "environment": environment()}
    old = {"environment": environment(), "code_fingerprint": code_state()["code_fingerprint"]}
    assert machine_of(old)["id"] == machine_of(new)["id"] == machine_fingerprint()["id"]
    computed = machine_of(old)
    assert list(computed) == list(MACHINE_KEYS) and computed["gpu_driver"] is None
    assert machine_of(new) == new["machine"]  # a present block is returned as it is


def test_committed_references_have_an_id():
    for run_json in sorted(REFERENCE.glob("*/" + RUN_FILE)):
        run = json.loads(run_json.read_text())
        env = run["environment"]
        assert machine_of(run)["id"] == machine_id(env["cpu_model"], env["cpu_flags"],
                                                   env["cpu_count"], env["gpu"])


def test_every_run_writes_the_machine_block(tmp_path, monkeypatch):
    def fail_every_cell(config, todo, on_result, **kwargs):
        for cell in todo:
            on_result(failed_outcome(cell, "not measured in this test"))

    monkeypatch.setattr(sweep, "execute", fail_every_cell)
    sweep.run_sweep(parse_config(TINY_TOML), tmp_path, progress=False, argv=["genbench"])
    assert json.loads((tmp_path / RUN_FILE).read_text())["machine"] == machine_fingerprint()
