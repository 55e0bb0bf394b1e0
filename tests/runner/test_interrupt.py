"""Ctrl-C on a real `genbench run` (workers included), and what spawned workers print."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import genbench_stall  # noqa: F401 - registers the "stall" method here too
import pytest
from conftest import REPO, TINY_TOML, cli_env

from bench.config.sweep import parse_config
from bench.run.grid import expand

ONE_FAMILY = TINY_TOML.replace("[families.gan]\nepochs = 1\nmax_steps = 2\nlatent_dim = 4\n", "")
# Two cells that stand for long ones (genbench_stall blocks 120 s) beside the quick baseline.
STALLING = ONE_FAMILY.split("[[sweep]]")[0] + '[[sweep]]\nmethod = "stall"\nseconds = [120, 121]\n'
MESSAGE = re.compile(r"genbench: interrupted: (\d+) of (\d+) cells saved; "
                     r"rerun the same command to resume")


def _as_from_a_terminal() -> None:
    """In the child before exec: SIGINT with its default disposition and unblocked, as a shell
    starts a foreground command. A disposition or mask inherited from this test process (after
    the slow quality tests the in-process case hung, SIGINT not acted on) is not what a user
    pressing Ctrl-C has."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def _env(tmp_path) -> dict[str, str]:
    """The child's environment, with a checkpoint cache of its own: run after the slow quality
    tests, which fill the session's cache, the in-process Ctrl-C test hung (SIGINT not acted on
    within 60 s; twice, cause not found: see the closing note of this change), while it passes
    alone and after the other runner tests. A test must not depend on what ran before it."""
    env = cli_env()
    env["GENBENCH_CACHE"] = str(tmp_path / "cache")
    env["GENBENCH_PLUGINS"] = "genbench_tiny,genbench_stall"
    return env


def _group_gone(pgid: int, within_s: float) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)  # polling for the workers' exit
    return False


@pytest.mark.slow  # a child process importing torch, and its workers: ~15-30 s each
@pytest.mark.parametrize("options", [[], ["--workers", "2"], ["--executor", "dask",
                                                                "--workers", "2"]],
                         ids=["in-process", "pool", "dask"])
def test_ctrl_c_says_what_was_saved_and_exits_130_quickly(tmp_path, options):
    if "dask" in options:
        pytest.importorskip("distributed")
    config, out = tmp_path / "stall.toml", tmp_path / "out"
    config.write_text(STALLING)
    grid = {cell.cell_id for cell in expand(parse_config(STALLING))}
    # A session of its own, signalled as a terminal does on Ctrl-C: the whole process group,
    # workers included.
    child = subprocess.Popen([sys.executable, "-m", "bench", "run", "--config", str(config),
                              "--out", str(out), "--quiet", *options],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=_env(tmp_path), cwd=REPO, start_new_session=True,
                             preexec_fn=_as_from_a_terminal)
    try:
        deadline = time.monotonic() + 240
        while not any((out / "cells").glob("*.json")):  # the baseline cell is saved
            assert child.poll() is None and time.monotonic() < deadline, child.stderr.read()
            time.sleep(0.05)
        os.killpg(child.pid, signal.SIGINT)
        interrupted = time.monotonic()
        _, stderr = child.communicate(timeout=60)
        exit_s = time.monotonic() - interrupted
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
    assert child.returncode == 130, stderr[-3000:]
    assert exit_s < 5, stderr[-3000:]  # a bound on hanging (was 10-30 s), not a speed claim
    saved = {p.stem for p in (out / "cells").glob("*.json")} & grid
    (match,) = MESSAGE.findall(stderr)
    assert match == (str(len(saved)), str(len(grid))) and 1 <= len(saved) < len(grid)
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr[-3000:]
    assert _group_gone(child.pid, within_s=15), "a worker outlived the run"
    (invocation,) = json.loads((out / "run.json").read_text())["invocations"]
    assert invocation["status"] == "interrupted" and invocation["finished_at"]
    assert invocation["cells_run"] == len(saved)


@pytest.mark.slow
def test_pool_workers_print_no_torch_warnings_and_lines_name_the_setting(tmp_path):
    config = tmp_path / "one.toml"
    config.write_text(ONE_FAMILY)
    done = subprocess.run([sys.executable, "-m", "bench", "run", "--config", str(config),
                           "--out", str(tmp_path / "out"), "--quiet", "--workers", "2"],
                          capture_output=True, text=True, env=_env(tmp_path), cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "No CUDA runtime" not in done.stderr
    # torch's glog-style lines ("W1124 07:40:10.27 ... cpp_extension.py:183] ...")
    assert not re.search(r"^[WE]\d{4} \d\d:\d\d", done.stderr, re.MULTILINE), done.stderr
    lines = done.stderr.splitlines()
    assert any(re.match(r"ok +vae +quant 8-bit, tensor, naive +seed=0 ", ln) for ln in lines)
    assert any(re.match(r"ok +vae +prune_magnitude global, sparsity 0.5 +seed=0", ln)
               for ln in lines), lines


def test_only_the_resource_sharer_eof_is_kept_quiet_after_workers_are_stopped(monkeypatch):
    import threading

    from bench.run.executors import _ignore_resource_sharer_eof

    reported: list[str] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: reported.append(args.thread.name))
    _ignore_resource_sharer_eof()

    def fail(exc: BaseException) -> None:
        raise exc

    for name, exc in [("Thread-2 (_serve)", EOFError()), ("Thread-3 (work)", EOFError("x")),
                      ("Thread-4 (_serve)", ValueError("y"))]:
        thread = threading.Thread(target=fail, args=(exc,), name=name)
        thread.start()
        thread.join()
    assert reported == ["Thread-3 (work)", "Thread-4 (_serve)"]


# (thread name, exception): only the sharer's (`_serve`) EOF and connection errors are dropped.
SHARER_CASES = [("Thread-2 (_serve)", ConnectionResetError(104, "reset")),
                ("Thread-3 (_serve)", EOFError()), ("Thread-4 (work)", EOFError("x")),
                ("Thread-5 (_serve)", ValueError("y"))]


def _raise_in_threads(target) -> None:
    """Run target(exc) in a thread of each SHARER_CASES name, inside the sweep's filter."""
    import threading

    from bench.run.sweep import resource_sharer_eof_ignored

    with resource_sharer_eof_ignored():
        for name, exc in SHARER_CASES:
            thread = threading.Thread(target=target, args=(exc,), name=name)
            thread.start()
            thread.join()


def test_the_sweep_keeps_only_the_sharer_eof_quiet_and_restores_the_hook(monkeypatch):
    import threading

    reported: list[str] = []
    original = lambda args: reported.append(args.thread.name)  # noqa: E731
    monkeypatch.setattr(threading, "excepthook", original)

    def fail(exc: BaseException) -> None:
        raise exc

    _raise_in_threads(fail)
    assert reported == ["Thread-4 (work)", "Thread-5 (_serve)"]
    assert threading.excepthook is original


def test_sharer_errors_handed_to_sys_excepthook_are_dropped_too(monkeypatch) -> None:
    """multiprocessing's resource sharer catches its handshake errors itself and calls
    sys.excepthook from its `_serve` thread: that path is filtered as well, nothing else."""
    import sys
    import threading

    reported: list[str] = []
    original = lambda t, e, tb: reported.append(threading.current_thread().name)  # noqa: E731
    monkeypatch.setattr(sys, "excepthook", original)

    def serve_like(exc: BaseException) -> None:  # resource_sharer._serve's except clause
        try:
            raise exc
        except BaseException:  # noqa: BLE001
            sys.excepthook(*sys.exc_info())

    _raise_in_threads(serve_like)
    assert reported == ["Thread-4 (work)", "Thread-5 (_serve)"]
    assert sys.excepthook is original
