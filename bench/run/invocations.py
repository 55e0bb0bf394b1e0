"""run.json's invocation log: one entry per `genbench run` into a directory, kept across resumes.

A results directory is often filled by several invocations (a killed run resumed, failed cells
rerun, a grid extended), possibly by different code or machines. run.json's top-level keys
describe the latest invocation that ran cells (what readers have always used); `invocations`
lists all of them, including those that found nothing to do (cells_run 0):

    {started_at, finished_at, argv, preset, git_commit, git_dirty, code_fingerprint,
     environment, cells_run, status}

status is `running` while it runs, then `completed` or `interrupted` (an exception, Ctrl-C);
an entry still `running` when the next invocation starts was killed (SIGKILL, power loss): the
run lock guarantees that no earlier invocation is alive, so it becomes `killed`. Each cell
record carries its own provenance (bench.results.environment.provenance) beside this log.
"""
from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from bench.results.environment import code_state, environment, utc_now

RUNNING = "running"
COMPLETED = "completed"
INTERRUPTED = "interrupted"
KILLED = "killed"
# Keys of an invocation written by genbench before the log existed (schema 1 run.json).
_LEGACY_KEYS = ("started_at", "finished_at", "preset", "git_commit", "git_dirty", "environment")


def start_invocation(preset: str | None = None,
                     argv: Sequence[str] | None = None) -> dict[str, Any]:
    """A new `running` entry for this process (argv: the command line, default sys.argv)."""
    return {"started_at": utc_now(), "finished_at": None,
            "argv": list(sys.argv if argv is None else argv), "preset": preset, **code_state(),
            "environment": environment(), "cells_run": 0, "status": RUNNING}


def finish_invocation(invocation: dict[str, Any], finished_at: str | None = None) -> None:
    """Stamp the end; an entry not marked completed by then was interrupted."""
    invocation["finished_at"] = finished_at or utc_now()
    if invocation["status"] == RUNNING:
        invocation["status"] = INTERRUPTED


def past_invocations(previous: dict[str, Any]) -> list[dict[str, Any]]:
    """The log of an earlier run.json (`{}`: none), `running` entries turned `killed`.

    A run.json from before the log (no `invocations`) contributes its one invocation, read
    from its top-level keys, with status `unknown`.
    """
    if not previous:
        return []
    entries = previous.get("invocations")
    if not isinstance(entries, list):
        if not previous.get("started_at"):
            return []
        legacy = {key: previous.get(key) for key in _LEGACY_KEYS}
        return [{**legacy, "schema_version": previous.get("schema_version"), "status": "unknown"}]
    past = [dict(entry) for entry in entries if isinstance(entry, dict)]
    for entry in past:
        if entry.get("status") == RUNNING:
            entry["status"] = KILLED
    return past


def append_noop_invocation(previous: dict[str, Any], preset: str | None = None,
                           argv: Sequence[str] | None = None) -> dict[str, Any]:
    """run.json after an invocation that found every cell done: the same, one entry longer."""
    invocation = start_invocation(preset, argv)
    invocation["status"] = COMPLETED
    finish_invocation(invocation)
    return {**previous, "invocations": past_invocations(previous) + [invocation]}
