"""Latency with torch.utils.benchmark: explicit threads, inference mode, synced CUDA, raw blocks."""

from __future__ import annotations

import copy
import math
import timeit
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

if TYPE_CHECKING:
    from torch.utils.benchmark import Timer

MIN_ROUNDS = 5  # blocks per side at least: a median and an IQR need a handful
MIN_BLOCK_S = 0.01  # shortest block: averages scheduler preemption on shared CPUs (see below)


@dataclass(frozen=True)
class LatencyResult:
    """Raw per-block times (seconds per call, each block the mean of `number_per_block` calls)
    of one callable on one device, batch size and thread count; statistics are derived."""

    device: str
    threads: int
    batch_size: int
    block_seconds: tuple[float, ...]
    number_per_block: int

    def __post_init__(self) -> None:
        if not self.block_seconds:
            raise ValueError("a LatencyResult needs at least one timed block")

    def _quantile_ms(self, q: float) -> float:
        return float(np.quantile(np.asarray(self.block_seconds), q) * 1e3)

    @property
    def p50_ms(self) -> float:
        return self._quantile_ms(0.5)

    @property
    def p90_ms(self) -> float:
        return self._quantile_ms(0.9)

    @property
    def iqr_ms(self) -> float:
        return self._quantile_ms(0.75) - self._quantile_ms(0.25)

    @property
    def rel_iqr(self) -> float:
        """IQR / median of the blocks: the spread torch.utils.benchmark warns about above 0.1."""
        return self.iqr_ms / self.p50_ms

    @property
    def throughput_sps(self) -> float:
        """Samples per second at the median: batch_size / p50."""
        return self.batch_size / (self.p50_ms / 1e3)

    def row(self) -> dict[str, float | int | str]:
        """Values for bench.results.schema.LATENCY_COLUMNS."""
        return {
            "device": self.device,
            "batch_size": self.batch_size,
            "threads": self.threads,
            "latency_p50_ms": self.p50_ms,
            "latency_p90_ms": self.p90_ms,
            "latency_iqr_ms": self.iqr_ms,
            "throughput_sps": self.throughput_sps,
        }


def check_device(device: str) -> torch.device:
    """Parse a device string; CUDA without a GPU is a ValueError naming what is allowed."""
    dev = torch.device(device)
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda[:i]'; got {device!r}")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available; use 'cpu'")
    return dev


def device_timer(device: str) -> Callable[[], float]:
    """Clock for Timer: on CUDA it synchronises that device before reading the clock, so queued
    kernels are inside the block (we do not rely on Timer's default, which syncs the *current*
    accelerator); on CPU it is timeit.default_timer."""
    dev = check_device(device)
    if dev.type == "cpu":
        return timeit.default_timer

    def cuda_timer() -> float:
        torch.cuda.synchronize(dev)
        return timeit.default_timer()

    return cuda_timer


def _timer(fn: Callable[[], object], device: str, threads: int) -> Timer:
    if threads < 1:
        raise ValueError(f"threads must be >= 1; got {threads}")
    # Imported here: importing torch.utils.benchmark loads cpp_extension, which logs a CUDA
    # warning on CPU-only machines at every `import bench.metrics`.
    from torch.utils.benchmark import Timer

    return Timer(stmt="fn()", globals={"fn": fn}, timer=device_timer(device), num_threads=threads)


def _interleaved_blocks(
    timers: list[Timer], threads: int, min_run_time: float, min_block_s: float
) -> list[tuple[list[float], int]]:
    """Per timer: (seconds per call of each block, calls per block), blocks taken in turn A B A B.

    Block size: Timer.blocked_autorange's own choice (grown until timer overhead is <= 1e-4 of a
    block; that run is also the warm-up), raised so a block lasts >= min_block_s. Why the floor:
    on a shared CPU the scheduler preempts us for whole time slices (several ms); a block of one
    2 ms call is then either clean or 3x slower, and the median flips between the two, whereas
    10 ms blocks average the preemption evenly over every block.
    """
    numbers = []
    for timer in timers:
        warm = timer.blocked_autorange(min_run_time=min(min_run_time, 0.05))
        numbers.append(max(warm.number_per_run, math.ceil(min_block_s / max(warm.median, 1e-9))))
    blocks: list[list[float]] = [[] for _ in timers]
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        while (
            len(blocks[0]) < MIN_ROUNDS
            or min(sum(b) * n for b, n in zip(blocks, numbers, strict=True)) < min_run_time
        ):
            for timer, number, side in zip(timers, numbers, blocks, strict=True):
                # Timer._timeit(n): one timed block of n calls. The public timeit(n) would add
                # max(n // 100, 2) untimed warm-up calls per block, tripling the cost of blocks
                # of one slow call; the warm-up was done once by blocked_autorange above.
                side.append(timer._timeit(number) / number)
    finally:
        torch.set_num_threads(previous_threads)
    return list(zip(blocks, numbers, strict=True))


def measure_latency(
    fn: Callable[[], object],
    *,
    device: str,
    threads: int,
    batch_size: int = 1,
    min_run_time: float = 0.2,
    min_block_s: float = MIN_BLOCK_S,
) -> LatencyResult:
    """Time fn() in blocks (see _interleaved_blocks) for >= min_run_time and >= MIN_ROUNDS blocks,
    under torch.inference_mode, with `threads` intra-op threads set by Timer (and restored after),
    on a clock that synchronises CUDA (device_timer)."""
    with torch.inference_mode():
        ((blocks, number),) = _interleaved_blocks(
            [_timer(fn, device, threads)], threads, min_run_time, min_block_s
        )
    return LatencyResult(device, threads, batch_size, tuple(blocks), number)


def measure_speedup(
    fn_base: Callable[[], object],
    fn_variant: Callable[[], object],
    *,
    device: str,
    threads: int,
    batch_size: int = 1,
    min_run_time: float = 0.2,
    min_block_s: float = MIN_BLOCK_S,
) -> tuple[LatencyResult, LatencyResult, float]:
    """Baseline and variant timed in interleaved blocks A B A B ... in one process, so slow drift of
    the machine (clock, thermal, neighbours) hits both alike.

    speedup = median_base / median_variant.
    """
    timers = [_timer(fn_base, device, threads), _timer(fn_variant, device, threads)]
    with torch.inference_mode():
        measured = _interleaved_blocks(timers, threads, min_run_time, min_block_s)
    base, variant = (LatencyResult(device, threads, batch_size, tuple(b), n) for b, n in measured)
    return base, variant, base.p50_ms / variant.p50_ms


def _on_device(model: nn.Module, device: str) -> nn.Module:
    # nn.Module.to moves in place: copy instead of moving the caller's model behind its back.
    dev = check_device(device)
    first = next(model.parameters(), None)
    if first is None:  # a runtime's session wrapper (ORT): it runs where it was deployed
        return model.eval()
    current = first.device
    same = current.type == dev.type and (dev.index is None or current.index == dev.index)
    return (model if same else copy.deepcopy(model).to(dev)).eval()


def model_call(
    model: nn.Module, batch_size: int, device: str, seed: int = 0
) -> Callable[[], object]:
    """A zero-argument forward of `model` on a fixed, seeded z (model.latent) on `device`."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1; got {batch_size}")
    model = _on_device(model, device)
    z = model.latent(batch_size, torch.Generator().manual_seed(seed))
    return lambda: model(z)


def latency_for_model(
    model: nn.Module, batch_size: int, device: str, threads: int, min_run_time: float = 0.2
) -> LatencyResult:
    """Latency of model(z), z of `batch_size` built on `device` (the deployed sampling path)."""
    return measure_latency(
        model_call(model, batch_size, device),
        device=device,
        threads=threads,
        batch_size=batch_size,
        min_run_time=min_run_time,
    )


def speedup_for_models(
    baseline: nn.Module,
    variant: nn.Module,
    batch_size: int,
    device: str,
    threads: int,
    min_run_time: float = 0.2,
) -> tuple[LatencyResult, LatencyResult, float]:
    """measure_speedup of baseline(z) vs variant(z) on the same z."""
    return measure_speedup(
        model_call(baseline, batch_size, device),
        model_call(variant, batch_size, device),
        device=device,
        threads=threads,
        batch_size=batch_size,
        min_run_time=min_run_time,
    )
