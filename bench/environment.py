"""Provenance metadata: versions, hardware, threads, the git state and fingerprint of the code."""
from __future__ import annotations

import datetime as dt
import functools
import importlib.metadata
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import bench


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def git_state(repo: str | Path | None = None) -> tuple[str | None, bool | None]:
    """(commit, dirty) of the genbench checkout; (None, None) outside git or without git.

    Only a checkout whose top level holds the `bench` package counts: an installed copy in a
    virtualenv that happens to live inside some repository is not that repository's code.
    dirty: tracked files differ from the commit (untracked files, such as an output directory,
    do not count; new source files are caught by the code fingerprint).
    """
    where = Path(repo) if repo else Path(bench.__file__).resolve().parent.parent

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=where, capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()

    try:
        if Path(git("rev-parse", "--show-toplevel")).resolve() != where.resolve():
            return None, None
        commit = git("rev-parse", "HEAD")
        status = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return None, None
    return commit or None, bool(status)


@functools.cache
def code_state() -> dict[str, Any]:
    """{git_commit, git_dirty, code_fingerprint} of the code this process runs (once per
    process, like the fingerprint: the code a process runs is what it imported)."""
    from bench.grid import code_fingerprint

    commit, dirty = git_state()
    return {"git_commit": commit, "git_dirty": dirty, "code_fingerprint": code_fingerprint()}


def _cpu_info() -> tuple[str, list[str]]:
    model, flags = platform.processor() or platform.machine(), []
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and model in ("", platform.machine()):
                model = value.strip()
            elif key.strip() in ("flags", "Features") and not flags:
                flags = value.split()
    except OSError:
        pass
    return model, flags


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _memory_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def cell_environment() -> dict[str, Any]:
    """The compact environment stored in every cell record: what a cell's numbers depend on
    (versions, CPU model and kernel-relevant flags, threads, GPU), no hostname or user."""
    import torch

    model, flags = _cpu_info()
    cuda = torch.cuda.is_available()
    return {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "torchao": _version("torchao"),
        "cuda": torch.version.cuda if cuda else None,
        "cpu_model": model,
        "cpu_count": os.cpu_count(),
        # The flags that decide which int8/fp32 kernels run; the full list is long and noisy.
        "cpu_flags": sorted(f for f in flags if f.startswith(("avx", "fma", "sse4", "amx", "vnni",
                                                              "asimd", "neon", "sve"))),
        "memory_bytes": _memory_bytes(),
        "gpu": torch.cuda.get_device_name(0) if cuda else None,
        "threads": torch.get_num_threads(),
        "platform": platform.platform(),
    }


def environment() -> dict[str, Any]:
    """Versions and hardware of this process (the `environment` block of run.json)."""
    import torch
    import torchvision

    cuda = torch.cuda.is_available()
    return {
        **cell_environment(),
        "torch_git": getattr(torch.version, "git_version", None),
        "torchvision": torchvision.__version__,
        "cudnn": torch.backends.cudnn.version() if cuda else None,
        "genbench": bench.__version__,
    }


def provenance() -> dict[str, Any]:
    """Who measured a cell: commit, dirty flag, code fingerprint, compact environment, when."""
    return {**code_state(), "environment": cell_environment(), "measured_at": utc_now()}
