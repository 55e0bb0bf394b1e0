"""Provenance metadata: versions, hardware and its machine id, threads, git state, code hash."""
from __future__ import annotations

import datetime as dt
import functools
import hashlib
import importlib.metadata
import json
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
    from bench.run.grid import code_fingerprint

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


# The CPU flags that decide which int8/fp32 kernels run; the full list is long and noisy.
_KERNEL_FLAG_PREFIXES = ("avx", "fma", "sse4", "amx", "vnni", "asimd", "neon", "sve")


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
        "cpu_flags": sorted(f for f in flags if f.startswith(_KERNEL_FLAG_PREFIXES)),
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


# What identifies a machine for latency: the hardware, not the software on it. A new commit or
# a new torch on the same box keeps its id, so its latency history reads across commits.
MACHINE_ID_KEYS = ("cpu_model", "cpu_flags", "cores", "gpu")
MACHINE_KEYS = ("id", "cpu_model", "cpu_flags", "cores", "threads", "gpu", "gpu_driver", "torch",
                "cuda", "code_fingerprint")


def machine_id(cpu_model: str | None, cpu_flags: list[str] | None, cores: int | None,
               gpu: str | None) -> str:
    """12 hex digits of sha256 over the hardware identity (CPU model, sorted kernel-relevant
    flags, logical core count, GPU model); the same inputs give the same id on any machine."""
    identity = {"cpu_model": cpu_model or "", "cpu_flags": sorted(cpu_flags or []),
                "cores": cores, "gpu": gpu or ""}
    text = json.dumps(identity, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _gpu_driver() -> str | None:
    """The NVIDIA driver version (nvidia-smi), None without one; torch does not report it."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return out.splitlines()[0].strip() if out.strip() else None


def _machine_block(env: dict[str, Any], gpu_driver: str | None,
                   code_fingerprint: str | None) -> dict[str, Any]:
    """The `machine` block from an `environment` block (cell_environment's keys)."""
    flags = sorted(env.get("cpu_flags") or [])
    block = {"cpu_model": env.get("cpu_model"), "cpu_flags": flags, "cores": env.get("cpu_count"),
             "threads": env.get("threads"), "gpu": env.get("gpu"), "gpu_driver": gpu_driver,
             "torch": env.get("torch"), "cuda": env.get("cuda"),
             "code_fingerprint": code_fingerprint}
    block["id"] = machine_id(block["cpu_model"], flags, block["cores"], block["gpu"])
    return {key: block[key] for key in MACHINE_KEYS}


@functools.cache
def _this_machine() -> dict[str, Any]:
    env = cell_environment()
    return _machine_block(env, _gpu_driver() if env["gpu"] else None,
                          code_state()["code_fingerprint"])


def machine_fingerprint() -> dict[str, Any]:
    """This process's `machine` block of run.json: {id, cpu_model, cpu_flags, cores, threads,
    gpu, gpu_driver, torch, cuda, code_fingerprint}; `id` hashes the hardware only (computed
    once per process; a copy, so a caller may change it)."""
    block = _this_machine()
    return {**block, "cpu_flags": list(block["cpu_flags"])}


def machine_of(run_json: dict[str, Any]) -> dict[str, Any]:
    """run.json's `machine` block; for a run.json written before it existed, the same block
    computed from its `environment` (gpu_driver unknown: None), whose id then matches the id
    a new run on that machine writes."""
    block = run_json.get("machine")
    if isinstance(block, dict) and block.get("id"):
        return dict(block)
    return _machine_block(run_json.get("environment") or {}, None,
                          run_json.get("code_fingerprint"))
