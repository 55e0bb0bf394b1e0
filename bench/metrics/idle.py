"""Wait for an idle machine before timing: the CPU time other processes use, from /proc."""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

SAMPLE_INTERVAL_S = 0.5  # one look at the machine; also the pause between two looks


@dataclass(frozen=True)
class CpuSample:
    """Cumulative CPU time in clock ticks (USER_HZ, the unit of both /proc files read)."""

    busy_ticks: int  # every CPU: user + nice + system + irq + softirq + steal
    total_ticks: int  # every CPU: busy + idle + iowait
    own_ticks: int  # this process, every thread: utime + stime
    cpus: int


def read_cpu_sample(proc: Path = Path("/proc")) -> CpuSample:
    """Read /proc/stat (aggregate `cpu` line, proc(5)) and /proc/self/stat (fields 14-15)."""
    lines = (proc / "stat").read_text().splitlines()
    # user nice system idle iowait irq softirq steal [guest guest_nice]: guest time is already
    # inside user/nice, so only the first eight are summed.
    user, nice, system, idle, iowait, irq, softirq, steal = (int(v) for v in lines[0].split()[1:9])
    cpus = sum(1 for line in lines if line.startswith("cpu") and line[3:4].isdigit())
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    own = (proc / "self" / "stat").read_text().rsplit(")", 1)[1].split()
    utime, stime = int(own[11]), int(own[12])  # fields 14 and 15; own[0] is field 3
    busy = user + nice + system + irq + softirq + steal
    return CpuSample(busy, busy + idle + iowait, utime + stime, max(cpus, 1))


def others_busy_cores(before: CpuSample, after: CpuSample) -> float:
    """Cores kept busy by other processes between two samples:
    (d busy - d own) / d total * cpus, clipped at 0 (the two files are read a moment apart)."""
    total = after.total_ticks - before.total_ticks
    if total <= 0:
        return 0.0
    others = (after.busy_ticks - before.busy_ticks) - (after.own_ticks - before.own_ticks)
    return max(others, 0) / total * after.cpus


def sample_others_busy_cores(interval_s: float = SAMPLE_INTERVAL_S) -> float:
    """others_busy_cores over the next `interval_s` seconds (this call sleeps that long)."""
    before = read_cpu_sample()
    time.sleep(interval_s)
    return others_busy_cores(before, read_cpu_sample())


@dataclass(frozen=True)
class IdleWait:
    """How long we waited, what the last look saw, and whether the machine became idle."""

    waited_s: float
    busy_cores: float  # other processes' CPU use at the last look; NaN: could not look
    idle: bool

    def note(self) -> str:
        """Empty when idle; else a line for the latency row's error text."""
        if self.idle:
            return ""
        if math.isnan(self.busy_cores):
            return "could not check for an idle machine (no /proc/stat here)"
        return (f"machine not idle after waiting {self.waited_s:.0f} s "
                f"(other processes used {self.busy_cores:.2f} cores)")


def wait_for_idle(
    max_busy_cores: float,
    timeout_s: float,
    *,
    sample: Callable[[], float] = sample_others_busy_cores,
    clock: Callable[[], float] = time.monotonic,
) -> IdleWait:
    """Look (each look takes SAMPLE_INTERVAL_S) until other processes use <= max_busy_cores,
    giving up once `timeout_s` have passed. Our own process's CPU time is excluded, so our
    threads still spinning down cannot keep us waiting."""
    start = clock()
    while True:
        try:
            busy = sample()
        except (OSError, ValueError, IndexError):  # not Linux, or an unexpected /proc layout
            return IdleWait(clock() - start, math.nan, False)
        waited = clock() - start
        if busy <= max_busy_cores:
            return IdleWait(waited, busy, True)
        if waited >= timeout_s:
            return IdleWait(waited, busy, False)
