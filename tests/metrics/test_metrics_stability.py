"""Re-measuring unsteady latency (injected block sequences) and waiting for an idle machine."""
from __future__ import annotations

import math
from pathlib import Path

import pytest

from bench.metrics.cost import LatencyResult
from bench.metrics.idle import (
    CpuSample,
    IdleWait,
    others_busy_cores,
    read_cpu_sample,
    wait_for_idle,
)
from bench.metrics.stability import measure_until_stable

STEADY = (0.010, 0.010, 0.010, 0.010, 0.010)  # rel IQR 0
# Quartiles 10 and 14 ms, median 12 ms: rel IQR = 4 / 12 = 1/3.
UNSTEADY = (0.010, 0.010, 0.012, 0.014, 0.014)


def _result(blocks: tuple[float, ...]) -> LatencyResult:
    return LatencyResult("cpu", 1, 1, blocks, 1)


class Sequence:
    """An injected measurement: returns the given (base blocks, variant blocks) in turn."""

    def __init__(self, *pairs: tuple[tuple[float, ...], tuple[float, ...]]) -> None:
        self.pairs, self.calls = list(pairs), 0

    def __call__(self) -> tuple[LatencyResult, LatencyResult, float]:
        base, variant = (_result(b) for b in self.pairs[self.calls])
        self.calls += 1
        return base, variant, base.p50_ms / variant.p50_ms


def _measure(sequence: Sequence, **kwargs):
    kwargs = {"max_rel_iqr": 0.1, "max_attempts": 3, **kwargs}
    loads = iter([0.5, 1.5, 2.5, 3.5])
    return measure_until_stable(sequence, load_avg=lambda: next(loads), **kwargs)


def test_rel_iqr_of_known_blocks() -> None:
    assert _result(UNSTEADY).rel_iqr == pytest.approx(1 / 3)
    assert _result(STEADY).rel_iqr == 0.0


def test_a_stable_measurement_is_taken_once() -> None:
    sequence = Sequence((STEADY, STEADY))
    measured = _measure(sequence)
    assert sequence.calls == measured.attempts == 1 and measured.stable
    assert measured.kept.speedup == pytest.approx(1.0) and measured.kept.load_avg_1m == 0.5


def test_an_unstable_measurement_is_taken_three_times_then_marked() -> None:
    # The second attempt is the steadiest (1/3 < 2/5): its figures are the ones kept.
    wider = (0.010, 0.010, 0.010, 0.014, 0.020)  # quartiles 10, 14; median 10: rel IQR 0.4
    sequence = Sequence((UNSTEADY, wider), (STEADY, UNSTEADY), (wider, STEADY), (STEADY, STEADY))
    measured = _measure(sequence)
    assert sequence.calls == measured.attempts == 3 and not measured.stable
    assert measured.kept.rel_iqr == pytest.approx(1 / 3) and measured.kept.load_avg_1m == 1.5
    assert measured.kept.speedup == pytest.approx(10 / 12)


def test_the_baseline_side_counts_and_a_later_steady_attempt_passes() -> None:
    # The variant is steady but the baseline is not: the speedup uses both, so re-measure.
    sequence = Sequence((UNSTEADY, STEADY), (STEADY, STEADY))
    measured = _measure(sequence)
    assert sequence.calls == measured.attempts == 2 and measured.stable
    assert measured.kept.load_avg_1m == 1.5


@pytest.mark.parametrize("threshold,attempts,stable", [(0.34, 1, True), (0.33, 3, False)])
def test_the_threshold_separates_1_3(threshold: float, attempts: int, stable: bool) -> None:
    sequence = Sequence(*[(UNSTEADY, UNSTEADY)] * 3)
    measured = _measure(sequence, max_rel_iqr=threshold)
    assert (measured.attempts, measured.stable) == (attempts, stable)


def test_one_attempt_allowed_means_no_re_measurement() -> None:
    sequence = Sequence((UNSTEADY, UNSTEADY), (STEADY, STEADY))
    measured = _measure(sequence, max_attempts=1)
    assert sequence.calls == measured.attempts == 1 and not measured.stable


@pytest.mark.parametrize("kwargs,match", [({"max_attempts": 0}, "max_attempts"),
                                          ({"max_rel_iqr": 0.0}, "max_rel_iqr")])
def test_bad_gate_settings_are_clear_errors(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        _measure(Sequence(), **kwargs)


def _sample(busy: int, total: int, own: int, cpus: int = 2) -> CpuSample:
    return CpuSample(busy_ticks=busy, total_ticks=total, own_ticks=own, cpus=cpus)


def test_others_busy_cores_excludes_our_own_cpu_time() -> None:
    # 200 ticks over 2 CPUs (1 s at 100 Hz): 150 busy, 100 of them ours -> others: 0.5 cores.
    assert others_busy_cores(_sample(0, 0, 0), _sample(150, 200, 100)) == pytest.approx(0.5)
    # Only our own threads spinning: the machine is idle for the others.
    assert others_busy_cores(_sample(10, 10, 5), _sample(210, 210, 205)) == 0.0
    assert others_busy_cores(_sample(5, 7, 0), _sample(5, 7, 0)) == 0.0  # no time passed


def test_read_cpu_sample_parses_proc(tmp_path: Path) -> None:
    (tmp_path / "self").mkdir()
    (tmp_path / "stat").write_text(
        "cpu  100 20 30 400 50 6 7 8 90 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n"
        "cpu1 1 2 3 4 5 6 7 8 0 0\nintr 1 2 3\nctxt 4\n")
    # A command name with spaces and a ')' must not shift the fields.
    fields = " ".join(str(i) for i in range(3, 20)).replace("3", "S", 1)
    (tmp_path / "self" / "stat").write_text(f"1234 (a b) c) {fields}\n")
    sample = read_cpu_sample(tmp_path)
    # busy = user + nice + system + irq + softirq + steal = 100+20+30+6+7+8; guest excluded.
    assert sample == CpuSample(busy_ticks=171, total_ticks=621, own_ticks=14 + 15, cpus=2)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _looks(clock: FakeClock, values: list[float]):
    """A sampler that takes 0.5 s of fake time per look and sees `values` in turn."""
    seen = iter(values)

    def sample() -> float:
        clock.now += 0.5
        return next(seen)

    return sample


def test_wait_for_idle_returns_at_the_first_idle_look() -> None:
    clock = FakeClock()
    wait = wait_for_idle(0.25, 60, sample=_looks(clock, [1.0, 0.9, 0.2, 0.0]), clock=clock)
    assert wait == IdleWait(waited_s=1.5, busy_cores=0.2, idle=True) and wait.note() == ""


def test_wait_for_idle_gives_up_at_its_bound_and_says_so() -> None:
    clock = FakeClock()
    wait = wait_for_idle(0.25, 2.0, sample=_looks(clock, [1.0] * 10), clock=clock)
    assert wait == IdleWait(waited_s=2.0, busy_cores=1.0, idle=False)
    assert wait.note() == "machine not idle after waiting 2 s (other processes used 1.00 cores)"


def test_wait_for_idle_without_proc_does_not_wait() -> None:
    def missing() -> float:
        raise FileNotFoundError("/proc/stat")

    wait = wait_for_idle(0.25, 60, sample=missing, clock=FakeClock())
    assert not wait.idle and math.isnan(wait.busy_cores) and "could not check" in wait.note()
