"""Environment metadata for run.json: versions, hardware, threads and the git state of the code."""
from __future__ import annotations

import datetime as dt
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
    """(commit, dirty) of the genbench checkout; (None, None) outside git or without git."""
    where = Path(repo) if repo else Path(bench.__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain"], cwd=where,
                                capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None, None
    return commit or None, bool(status.strip())


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


def environment() -> dict[str, Any]:
    """Versions and hardware of this process (the `environment` block of run.json)."""
    import torch
    import torchvision

    model, flags = _cpu_info()
    cuda = torch.cuda.is_available()
    return {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "torch_git": getattr(torch.version, "git_version", None),
        "torchvision": torchvision.__version__,
        "cuda": torch.version.cuda if cuda else None,
        "cudnn": torch.backends.cudnn.version() if cuda else None,
        "cpu_model": model,
        "cpu_count": os.cpu_count(),
        # The flags that decide which int8/fp32 kernels run; the full list is long and noisy.
        "cpu_flags": sorted(f for f in flags if f.startswith(("avx", "fma", "sse4", "amx", "vnni",
                                                              "asimd", "neon", "sve"))),
        "gpu": torch.cuda.get_device_name(0) if cuda else None,
        "threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "genbench": bench.__version__,
    }
