"""Whose sweep an output directory holds: `run` refuses to write one sweep over another's.

"The same sweep" is the same config `name` (a preset's name, or `name = ...` in a TOML file),
read from DIR/run.json. Resuming it, rerunning failed cells or extending its grid with new
settings write into DIR silently. A directory whose run.json names another sweep, or that holds
genbench outputs without a readable run.json, is refused unless `--force`, which deletes the
other sweep's outputs first (results, cells, plots, tables, report), so none is left stale.
Files that genbench does not write are never touched.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from bench.errors import InputError
from bench.results.schema import LATENCY_FILE, LATENCY_SAMPLES_FILE, RESULTS_FILE, RUN_FILE
from bench.results.store import CELLS_DIR, SAMPLES_DIR

# Everything genbench writes into a sweep's directory: the run's files, then those of `plot`,
# `table`, `report` and the training curves. A new kind of output is added here, or --force
# would leave it stale beside another sweep's results.
SWEEP_OUTPUTS = (RUN_FILE, RESULTS_FILE, LATENCY_FILE, LATENCY_SAMPLES_FILE, CELLS_DIR,
                 SAMPLES_DIR, "plots", "tables", "report.html", "report.png", "training")


class TakeoverError(InputError):
    """The output directory holds another sweep's results (exit 2, nothing written)."""


def present_outputs(out: str | Path) -> list[str]:
    """The genbench outputs present in `out`, in SWEEP_OUTPUTS order."""
    root = Path(out)
    return [name for name in SWEEP_OUTPUTS if (root / name).exists()]


def owner_name(out: str | Path) -> str | None:
    """The config name in out/run.json; None when it is absent or unreadable."""
    try:
        run = json.loads((Path(out) / RUN_FILE).read_text())
        name = run["config"]["name"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return name if isinstance(name, str) else None


def foreign_outputs(out: str | Path, name: str) -> tuple[str | None, list[str]]:
    """(the other sweep's name or None when unknown, its outputs) when `out` holds genbench
    outputs of a sweep not named `name`; (name, []) when it is this sweep's or holds none."""
    present = present_outputs(out)
    if not present:
        return name, []
    owner = owner_name(out)
    return (name, []) if owner == name else (owner, present)


def check_takeover(out: str | Path, name: str, force: bool) -> None:
    """Raise TakeoverError when `out` holds another sweep's outputs and `force` is off."""
    owner, present = foreign_outputs(out, name)
    if not present or force:
        return
    held = (f"the results of sweep {owner!r}" if owner is not None else
            f"genbench outputs ({', '.join(present[:3])}) without a readable {RUN_FILE}")
    raise TakeoverError(
        f"--out {out} holds {held}, not of sweep {name!r}; choose another --out, or pass "
        "--force to delete its outputs and run this sweep there")


def claim_directory(out: str | Path, name: str, force: bool) -> list[str]:
    """Make `out` this sweep's (call it holding the run lock): refuse another sweep's directory
    (TakeoverError), or with `force` delete that sweep's outputs. Returns what was deleted."""
    check_takeover(out, name, force)
    _, present = foreign_outputs(out, name)
    root = Path(out)
    for entry in present:
        path = root / entry
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    return present
