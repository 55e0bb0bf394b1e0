"""SIGKILL at chosen points of a real `genbench run`, then resume: nothing lost or doubled."""
from __future__ import annotations

import json
import signal
import subprocess
import sys

import pandas as pd
import pytest
from conftest import REPO, TINY_TOML, cli_env

from bench.cli import main
from bench.config.sweep import parse_config
from bench.run.grid import expand

# One family, three cells: enough for "before", "during" and "after" the kill.
ONE_FAMILY = TINY_TOML.replace("[families.gan]\nepochs = 1\nmax_steps = 2\nlatent_dim = 4\n", "")

# Each kill point patches one storage function of the child so that it SIGKILLs itself there:
# deterministic crash points instead of racing a timer.
KILLERS = {
    # after the 2nd cell record is on disk, before the CSVs are regenerated from it
    "after-record": """
import bench.results.store as s
orig = s.ResultStore.put
calls = []
def put(self, record, samples=None):
    orig(self, record, samples)
    calls.append(1)
    if len(calls) == 2:
        os.kill(os.getpid(), signal.SIGKILL)
s.ResultStore.put = put
""",
    # half-way through writing results.csv the 2nd time: a torn temp file, never renamed
    "mid-csv": """
import bench.results.store as s
orig = s.atomic_write_bytes
calls = []
def write(path, data):
    if path.name == "results.csv":
        calls.append(1)
        if len(calls) == 2:
            with open(path.parent / ".results.csv.torn.tmp", "wb") as handle:
                handle.write(data[: len(data) // 2])
            os.kill(os.getpid(), signal.SIGKILL)
    orig(path, data)
s.atomic_write_bytes = write
""",
    # after a cell's samples were written but before its record: the cell is not done
    "mid-cell": """
import bench.results.store as s
orig = s.write_json
def write(path, payload):
    if path.parent.name == "cells":
        os.kill(os.getpid(), signal.SIGKILL)
    orig(path, payload)
s.write_json = write
""",
}


def _killed_run(config, out, killer: str) -> subprocess.CompletedProcess:
    script = (f"import os, signal\n{killer}\nfrom bench.cli import main\n"
              f"raise SystemExit(main(['run', '--config', {str(config)!r}, '--out', {str(out)!r},"
              " '--quiet']))\n")
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=cli_env(), cwd=REPO, timeout=300)


@pytest.mark.slow  # a child process importing torch: ~10-20 s each on 2 shared cores
@pytest.mark.parametrize("point", sorted(KILLERS))
def test_sigkill_then_resume_ends_with_the_uninterrupted_cell_set(point, tmp_path, capsys):
    config = tmp_path / "one.toml"
    config.write_text(ONE_FAMILY)
    expected = {c.cell_id for c in expand(parse_config(ONE_FAMILY))}
    assert len(expected) == 3
    out = tmp_path / "out"
    killed = _killed_run(config, out, KILLERS[point])
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    # Every CSV readable at the moment of the crash, each cell at most once.
    for name in ("results.csv", "latency.csv", "latency_samples.csv"):
        if (out / name).exists():
            frame = pd.read_csv(out / name)
            assert set(frame["cell_id"]) <= expected
    if (out / "results.csv").exists():
        done = pd.read_csv(out / "results.csv")["cell_id"]
        assert done.is_unique
    # The resume itself runs in this process (the child's torch import is the slow part).
    assert main(["run", "--config", str(config), "--out", str(out), "--quiet"]) == 0
    results = pd.read_csv(out / "results.csv")
    assert set(results["cell_id"]) == expected and results["cell_id"].is_unique
    assert set(results["status"]) == {"ok"}
    assert len(pd.read_csv(out / "latency.csv")) == 2 * len(expected)  # cpu + cuda rows
    assert not (out / ".genbench.lock").exists()  # the stale lock was taken over and released
    capsys.readouterr()
    assert main(["run", "--config", str(config), "--out", str(out), "--quiet"]) == 0
    assert ", 3 already done, 0 run" in capsys.readouterr().out
    # run.json kept all three invocations; the killed one is known to be dead.
    log = json.loads((out / "run.json").read_text())["invocations"]
    assert [i["status"] for i in log] == ["killed", "completed", "completed"]
    assert log[0]["finished_at"] is None and log[2]["cells_run"] == 0
