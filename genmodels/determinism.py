"""Same seed, same weights: derived seeds per stream, a deterministic scope for training loops."""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterator

import torch

# Training and fine-tuning loops run on this many torch threads whatever the process was given:
# CPU reductions (sum, BatchNorm statistics, conv weight gradients) split their work by thread,
# so 1 and 2 threads give different last bits (measured on torch 2.14.1), and the grid runs
# tasks with 1 (pool workers) or all (sequential) threads. One thread is available everywhere
# and cost no more than two on the reference models (30 Adam steps, batch 64, 2-core machine).
LOOP_THREADS = 1


def derived_seed(seed: int, *key: object) -> int:
    """A 63-bit seed for the stream named by `key` under `seed`: the first 8 bytes of
    sha256(json([seed, *key])). Stable across processes and Python versions (unlike hash()),
    and distinct streams are independent, unlike seed + 1, which collides with the next seed."""
    text = json.dumps([int(seed), *key], default=str, sort_keys=True)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") >> 1


def seeded_generator(seed: int, *key: object) -> torch.Generator:
    """A CPU generator seeded with derived_seed(seed, *key)."""
    return torch.Generator().manual_seed(derived_seed(seed, *key))


@contextlib.contextmanager
def deterministic_scope(seed: int, device: torch.device | str = "cpu") -> Iterator[None]:
    """Run a training loop reproducibly, restoring every global setting afterwards.

    Inside: the global RNG (used by nn.Dropout and the RVAE's row dropout, which take no
    generator) is forked and seeded with `seed`, so the caller's RNG state neither leaks in nor
    is consumed; torch.use_deterministic_algorithms(True); LOOP_THREADS torch threads; on CUDA,
    cuDNN deterministic without benchmarking. On CUDA the deterministic mode only warns (an op
    without a deterministic kernel, or cuBLAS without CUBLAS_WORKSPACE_CONFIG set before CUDA
    started, would otherwise stop the run): bit-reproducibility is promised on CPU.
    """
    device = torch.device(device)
    cuda = device.type == "cuda"
    if cuda:
        index = device.index if device.index is not None else torch.cuda.current_device()
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    was_warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    threads = torch.get_num_threads()
    cudnn = torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic
    with torch.random.fork_rng(devices=[index] if cuda else []):
        # Not torch.manual_seed: it would also reseed every CUDA device, outside the fork.
        torch.default_generator.manual_seed(seed)
        if cuda:
            torch.cuda.default_generators[index].manual_seed(seed)
            torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = False, True
        torch.use_deterministic_algorithms(True, warn_only=cuda)
        torch.set_num_threads(LOOP_THREADS)
        try:
            yield
        finally:
            torch.set_num_threads(threads)
            torch.use_deterministic_algorithms(was_deterministic, warn_only=was_warn_only)
            torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = cudnn
