"""Peak memory of one forward pass, measured in a fresh spawned process so variants are comparable.

What is measured (peak_mem_bytes / peak_mem_reserved_bytes):
  * CPU: peak resident set size (VmHWM, reset to the current RSS through /proc/self/clear_refs just
    before the pass) during a warmed-up forward, minus the RSS of the fresh child *before* the
    model is unpickled: resident weights + input + activations + lazily initialised kernel state.
    glibc's mmap threshold is pinned (mallopt) in the child so freed tensors return to the OS
    and the warm-up pass does not pre-inflate the RSS. No reserved figure on CPU (None).
  * CUDA: torch.cuda.max_memory_allocated / max_memory_reserved after reset_peak_memory_stats, in
    the fresh child: the allocator starts empty, so this is weights + input + activations.
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import gc
import multiprocessing
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from bench.metrics.cost import check_device

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc mallopt parameters
_STATUS = Path("/proc/self/status")


@dataclass(frozen=True)
class PeakMemory:
    """Peak memory of one forward; `method` names what was measured (see the module docstring)."""

    device: str
    batch_size: int
    peak_bytes: int
    reserved_bytes: int | None
    method: str


def _status_bytes(field: str) -> int:
    for line in _STATUS.read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024  # reported in kB
    raise OSError(f"{field} not in {_STATUS}; peak RSS needs Linux /proc")


def _pin_malloc() -> bool:
    # Why: glibc raises its mmap threshold after large frees, so freed activations would stay
    # resident and the measured pass would reuse them; a fixed threshold disables that.
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, 64 * 1024)) and bool(
            libc.mallopt(_M_TRIM_THRESHOLD, 0)
        )
    except (OSError, AttributeError):
        return False


def cuda_peak_memory(fn: Callable[[], object], device: str = "cuda") -> tuple[int, int]:
    """(max_memory_allocated, max_memory_reserved) in bytes over one call of fn() on `device`, after
    reset_peak_memory_stats, synchronised before and after, under inference_mode."""
    dev = check_device(device)
    if dev.type != "cuda":
        raise ValueError(f"cuda_peak_memory needs a CUDA device; got {device!r}")
    torch.cuda.synchronize(dev)
    torch.cuda.reset_peak_memory_stats(dev)
    with torch.inference_mode():
        fn()
    torch.cuda.synchronize(dev)
    return torch.cuda.max_memory_allocated(dev), torch.cuda.max_memory_reserved(dev)


def _child_measure(blob: bytes, device: str, threads: int) -> tuple[int, int | None, str]:
    """Runs in the spawned child: unpickle (module, z), warm up once, measure one forward."""
    torch.set_num_threads(threads)
    dev = torch.device(device)
    if dev.type == "cuda":
        module, z = pickle.loads(blob)
        module, z = module.to(dev).eval(), z.to(dev)
        with torch.inference_mode():
            module(z)  # warm-up: cuBLAS/cuDNN handles and workspaces
        allocated, reserved = cuda_peak_memory(lambda: module(z), device)
        return allocated, reserved, "cuda max_memory_allocated/reserved in a fresh process"
    pinned = _pin_malloc()
    rss_before_model = _status_bytes("VmRSS")
    module, z = pickle.loads(blob)
    module = module.to(dev).eval()
    with torch.inference_mode():
        module(z)  # warm-up: lazy kernel initialisation, thread pool
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    with torch.inference_mode():
        out = module(z)  # noqa: F841  (the output is part of the pass's footprint)
        peak = _status_bytes("VmHWM")
    method = "cpu VmHWM during forward - VmRSS before model load" + (
        "" if pinned else " (malloc not pinned)"
    )
    return peak - rss_before_model, None, method


def peak_memory(
    module: nn.Module, z: torch.Tensor, device: str, threads: int = 1, timeout_s: float = 300.0
) -> PeakMemory:
    """Peak memory of module(z) on `device`, measured in a fresh process (multiprocessing spawn).

    The module travels pickled to our own child (it is our object, not an untrusted file), which
    keeps structurally pruned modules whose shapes init_kwargs would not rebuild.
    """
    check_device(device)
    blob = pickle.dumps((module, z.cpu()))  # moved to `device` in the child, not here
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        peak, reserved, method = pool.submit(_child_measure, blob, device, threads).result(
            timeout=timeout_s
        )
    return PeakMemory(device, int(z.shape[0]), int(peak), reserved, method)


def peak_memory_for_model(
    model: nn.Module,
    batch_size: int,
    device: str,
    threads: int = 1,
    seed: int = 0,
    timeout_s: float = 300.0,
) -> PeakMemory:
    """peak_memory of model(z), z = model.latent(batch_size) from a generator seeded by `seed`."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1; got {batch_size}")
    z = model.latent(batch_size, torch.Generator().manual_seed(seed))
    return peak_memory(model, z, device, threads, timeout_s)
