"""Peak memory of one forward, in-process: resident weight bytes + allocator-level activation peak.

peak_bytes = resident_weight_bytes(model) + input bytes + activation peak, where
  * resident weights: bench.metrics.resident (parameters, buffers, torchao subclasses by their
    inner tensors, torch.ao packed int8 weights measured by re-packing);
  * CPU activation peak: the torch profiler's memory events (profile_memory=True) over one warmed-up
    forward. Every allocation and free of c10's CPU allocator is an event with its byte count, so
    the running sum of the events is exactly the bytes torch holds above the level at the start,
    and its maximum is the peak: outputs of every op, the output of the pass, and the scratch that
    kernels take from c10 (oneDNN weight reorders and scratchpads, torchao's per-call dequantized
    weights, fbgemm outputs). Not counted: buffers that kernels malloc themselves (fbgemm's packed
    activations, MKL's internal GEMM buffers, thread stacks) and the interpreter. A
    TorchDispatchMode that tracks op outputs costs as little but misses all in-kernel scratch and
    cannot see inside tensor subclasses; a spawned process's RSS (the old method) is mostly the
    interpreter and took ~8 s.
  * CUDA activation peak: torch.cuda.max_memory_allocated - memory_allocated just before one
    warmed-up forward, after reset_peak_memory_stats (the caching allocator's exact count).
    reserved_bytes: the process's max_memory_reserved over that forward, after empty_cache (it
    includes any other live CUDA tensors of the process). No reserved figure on CPU (None).
"""

from __future__ import annotations

import contextlib
import copy
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import nn

from bench.metrics.cost import check_device
from bench.metrics.resident import resident_weight_bytes

CPU_METHOD = ("cpu: resident weight bytes + input + peak of torch's CPU allocator during one "
              "warmed-up forward (torch.profiler memory events; kernels' own mallocs not seen)")
CUDA_METHOD = ("cuda: resident weight bytes + input + max_memory_allocated - memory_allocated "
               "over one warmed-up forward; reserved = process max_memory_reserved")


@dataclass(frozen=True)
class PeakMemory:
    """Peak memory of one forward (see the module docstring); `method` names how, in a sentence.

    peak_bytes = weight_bytes + activation_bytes; activation_bytes includes input and output."""

    device: str
    batch_size: int
    peak_bytes: int
    reserved_bytes: int | None
    method: str
    weight_bytes: int
    activation_bytes: int


@contextlib.contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """Send file descriptor 2 to /dev/null: kineto prints `profiler_start/stop` and, without a
    GPU, `gpuGetDeviceCount failed` from C++ on every profiler start (KINETO_LOG_LEVEL does not
    silence them), which would bury the run's progress lines. The profiled forward already ran
    once un-silenced (the warm-up), so a real error message is not hidden."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def cpu_allocator_peak(fn: Callable[[], object]) -> int:
    """Peak over one call of fn() of the bytes c10's CPU allocator holds above its level at the
    start: max over time of the running sum of torch.profiler's CPU memory events."""
    # torch.autograd.profiler.profile rather than torch.profiler.profile: same events, but the
    # latter's first use in a process costs ~2.5 s of device probing on a CPU-only machine.
    from torch.autograd import DeviceType
    from torch.autograd.profiler import profile

    with _native_stderr_silenced(), profile(profile_memory=True) as prof:
        result = fn()
    del result  # held until the profiler stopped: the output is part of the pass
    events = [e for e in prof.kineto_results.events()
              if e.name() == "[memory]" and e.device_type() == DeviceType.CPU]
    running = peak = 0
    for event in sorted(events, key=lambda e: e.start_ns()):  # stable: ties keep record order
        running += event.nbytes()
        peak = max(peak, running)
    return peak


def cuda_peak_memory(fn: Callable[[], object], device: str = "cuda") -> tuple[int, int]:
    """(max_memory_allocated - memory_allocated before, max_memory_reserved) in bytes over one
    call of fn() on `device`, after empty_cache and reset_peak_memory_stats, synchronised."""
    dev = check_device(device)
    if dev.type != "cuda":
        raise ValueError(f"cuda_peak_memory needs a CUDA device; got {device!r}")
    torch.cuda.synchronize(dev)
    torch.cuda.empty_cache()  # reserved then holds live tensors only, not the latency runs' cache
    torch.cuda.reset_peak_memory_stats(dev)
    before = torch.cuda.memory_allocated(dev)
    result = fn()
    torch.cuda.synchronize(dev)
    del result
    return torch.cuda.max_memory_allocated(dev) - before, torch.cuda.max_memory_reserved(dev)


def _on_device(module: nn.Module, dev: torch.device) -> nn.Module:
    # A copy, not .to(): nn.Module.to moves the caller's model in place.
    tensor = next(module.parameters(), None)
    here = torch.device("cpu") if tensor is None else tensor.device
    same = here.type == dev.type and (dev.index is None or here.index == dev.index)
    return module if same else copy.deepcopy(module).to(dev)


def peak_memory(module: nn.Module, z: torch.Tensor, device: str, threads: int = 1) -> PeakMemory:
    """Peak memory of module(z) on `device`, in this process (see the module docstring), with
    `threads` intra-op threads; under inference_mode, in eval mode (the caller's mode restored)."""
    dev = check_device(device)
    if threads < 1:
        raise ValueError(f"threads must be >= 1; got {threads}")
    module, z = _on_device(module, dev), z.to(dev)
    previous_threads = torch.get_num_threads()
    modes = [(m, m.training) for m in module.modules()]  # per module: some may be frozen in eval
    torch.set_num_threads(threads)
    module.eval()
    try:
        with torch.inference_mode():
            module(z)  # warm-up: lazy kernel state, oneDNN primitive caches, cuBLAS handles
            if dev.type == "cuda":
                forward_bytes, reserved = cuda_peak_memory(lambda: module(z), device)
            else:
                forward_bytes, reserved = cpu_allocator_peak(lambda: module(z)), None
    finally:
        torch.set_num_threads(previous_threads)
        for submodule, training in modes:
            submodule.training = training
    weights = resident_weight_bytes(module)
    activations = z.untyped_storage().nbytes() + forward_bytes
    method = CUDA_METHOD if dev.type == "cuda" else CPU_METHOD
    return PeakMemory(device, int(z.shape[0]), weights + activations, reserved, method, weights,
                      activations)


def peak_memory_for_model(
    model: nn.Module, batch_size: int, device: str, threads: int = 1, seed: int = 0
) -> PeakMemory:
    """peak_memory of model(z), z = model.latent(batch_size) from a generator seeded by `seed`."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1; got {batch_size}")
    z = model.latent(batch_size, torch.Generator().manual_seed(seed))
    return peak_memory(model, z, device, threads)
