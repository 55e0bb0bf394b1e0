"""Latency harness on a virtual clock (exact answers); threads, inference mode, CUDA sync.

Timing on the real clock is asserted only in benchmarks/test_bench_latency.py."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from bench.metrics import cost
from bench.metrics.cost import (
    LatencyResult,
    check_device,
    device_timer,
    latency_for_model,
    measure_latency,
    measure_speedup,
    model_call,
    speedup_for_models,
)
from genmodels.base import GenerativeModel

# Same marker as tests/conftest.py, defined here: conftest modules are not importable as such.
requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

WIDTH, BATCH = 512, 32  # one layer: 32 * 512 * 512 = 8.4M MACs, about 1 ms on one core


class DeepMLP(GenerativeModel):
    """`depth` square layers: MACs exactly proportional to depth (half the depth, half the MACs)."""

    family = "test-mlp"

    def __init__(self, depth: int) -> None:
        super().__init__((1, 1, WIDTH), WIDTH, 1.0)
        self.body = nn.Sequential(
            *[nn.Sequential(nn.Linear(WIDTH, WIDTH), nn.ReLU()) for _ in range(depth)]
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.body(z).view(-1, *self.image_shape)


def test_statistics_of_known_blocks() -> None:
    result = LatencyResult("cpu", 1, 8, (0.001, 0.002, 0.003, 0.004, 0.005), 10)
    assert result.p50_ms == pytest.approx(3.0)
    assert result.p90_ms == pytest.approx(4.6)  # linear interpolation between 4 and 5 ms
    assert result.iqr_ms == pytest.approx(2.0)
    assert result.throughput_sps == pytest.approx(8 / 0.003)
    assert result.row()["latency_p50_ms"] == pytest.approx(3.0)
    assert result.rel_iqr == pytest.approx(2.0 / 3.0)  # IQR 2 ms / median 3 ms
    with pytest.raises(ValueError, match="at least one"):
        LatencyResult("cpu", 1, 1, (), 1)


def test_threads_are_set_recorded_and_restored_under_inference_mode() -> None:
    seen: list[tuple[int, bool]] = []
    torch.set_num_threads(1)
    result = measure_latency(
        lambda: seen.append((torch.get_num_threads(), torch.is_inference_mode_enabled())),
        device="cpu",
        threads=2,
        min_run_time=0.01,
    )
    assert set(seen) == {(2, True)}
    assert result.threads == 2 and torch.get_num_threads() == 1
    assert len(result.block_seconds) >= 1 and result.number_per_block >= 1
    with pytest.raises(ValueError, match="threads"):
        measure_latency(lambda: None, device="cpu", threads=0)


class VirtualClock:
    """A clock that only moves when a CostlyModel runs: every block then measures exactly."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class CostlyModel(GenerativeModel):
    """A forward that `costs` a known number of virtual seconds on `clock`."""

    family = "test-costly"

    def __init__(self, clock: VirtualClock, seconds: float) -> None:
        super().__init__((1, 1, 2), 2, 1.0)
        self.clock, self.seconds = clock, seconds
        self.layer = nn.Linear(2, 2)
        self.calls = 0

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        self.clock.now += self.seconds
        self.calls += 1
        return self.layer(z).view(-1, *self.image_shape)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> VirtualClock:
    virtual = VirtualClock()
    monkeypatch.setattr(cost, "device_timer", lambda device: virtual)
    return virtual


def test_blocks_time_exactly_the_calls(clock: VirtualClock) -> None:
    model = CostlyModel(clock, seconds=0.004)
    result = latency_for_model(model, 3, "cpu", threads=1, min_run_time=0.2)
    assert result.block_seconds == pytest.approx([0.004] * len(result.block_seconds), rel=1e-9)
    assert result.p50_ms == pytest.approx(4.0) and result.iqr_ms == pytest.approx(0.0, abs=1e-9)
    assert result.rel_iqr == pytest.approx(0.0, abs=1e-9)
    assert result.throughput_sps == pytest.approx(3 / 0.004)
    # Blocks last >= MIN_BLOCK_S (10 ms: 3 calls of 4 ms) and together >= min_run_time.
    assert result.number_per_block == 3
    timed = len(result.block_seconds) * result.number_per_block * 0.004
    assert len(result.block_seconds) >= cost.MIN_ROUNDS and timed >= 0.2 - 1e-9


def test_twice_the_cost_is_a_speedup_of_exactly_two(clock: VirtualClock) -> None:
    # Replaces "half the MACs measures faster" (a real-clock assertion that failed under load):
    # the harness's arithmetic, interleaving and block sizes, with a known answer.
    slow, fast = CostlyModel(clock, 0.002), CostlyModel(clock, 0.001)
    base, variant, speedup = speedup_for_models(slow, fast, 4, "cpu", threads=1,
                                                min_run_time=0.1)
    assert speedup == pytest.approx(2.0, rel=1e-9)
    assert base.p50_ms == pytest.approx(2.0) and variant.p50_ms == pytest.approx(1.0)
    assert len(base.block_seconds) == len(variant.block_seconds) >= cost.MIN_ROUNDS
    # Each side ran its blocks (each >= 10 ms) and one warm-up autorange, nothing else.
    assert base.number_per_block == 5 and variant.number_per_block == 10
    assert slow.calls >= 5 * len(base.block_seconds) and fast.calls >= 10 * len(base.block_seconds)


def test_interleaving_shares_a_slow_phase_between_both_sides(clock: VirtualClock) -> None:
    # A neighbour slows the machine 3x for a while: interleaved blocks A B A B see it alike, so
    # the same model against itself still measures a speedup of exactly 1.
    model = CostlyModel(clock, 0.002)
    start = clock.now
    original = model.forward

    def disturbed(z: torch.Tensor) -> torch.Tensor:
        out = original(z)
        if 0.3 < clock.now - start < 0.4:  # after both warm-ups (about 0.05 s each)
            clock.now += 2 * model.seconds  # this call cost 3x
        return out

    model.forward = disturbed  # type: ignore[method-assign]
    base, variant, speedup = measure_speedup(
        model_call(model, 2, "cpu"), model_call(model, 2, "cpu"), device="cpu", threads=1,
        min_run_time=0.3)
    slow_base, slow_variant = (sum(b > 0.0021 for b in side.block_seconds)
                               for side in (base, variant))
    assert slow_base >= 1 and abs(slow_base - slow_variant) <= 1
    assert speedup == pytest.approx(1.0, rel=1e-9)


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")
def test_the_harness_times_an_int8_kernel_model(clock: VirtualClock) -> None:
    # Each call of the deployed int8 model advances the clock 1 ms: the harness times exactly
    # that model's calls (once per call), whatever backend runs it.
    pytest.importorskip("torchao")
    from compression import compress
    from compression.quantization.kernels import Int8KernelConfig
    from genmodels.models import MODELS

    torch.manual_seed(0)
    cm = compress(MODELS["vae"](image_shape=(1, 28, 28), latent_dim=8, width=0.25).eval(),
                  Int8KernelConfig())

    def one_ms(module: nn.Module, args: tuple) -> None:
        clock.now += 1e-3

    cm.model.register_forward_pre_hook(one_ms)
    result = latency_for_model(cm.model, 8, "cpu", threads=1, min_run_time=0.05)
    assert result.p50_ms == pytest.approx(1.0) and result.rel_iqr == pytest.approx(0, abs=1e-9)
    assert result.number_per_block == 10  # 10 ms blocks of 1 ms calls


def test_latency_for_model_does_not_move_the_callers_model() -> None:
    model = DeepMLP(1)
    result = latency_for_model(model, 4, "cpu", threads=1, min_run_time=0.01)
    assert result.batch_size == 4 and result.device == "cpu"
    assert model.device.type == "cpu"
    with pytest.raises(ValueError, match="batch_size"):
        latency_for_model(model, 0, "cpu", threads=1)


def test_cuda_timer_synchronises(monkeypatch: pytest.MonkeyPatch) -> None:
    # Runs without a GPU: the clock built for a CUDA device must call torch.cuda.synchronize.
    calls: list[object] = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: calls.append(device))
    clock = device_timer("cuda:0")
    assert isinstance(clock(), float) and calls == [torch.device("cuda:0")]
    assert device_timer("cpu") is not clock and not calls[1:]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised without CUDA")
def test_cuda_without_gpu_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="CUDA is not available"):
        check_device("cuda")


def test_unknown_device_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="'cpu' or 'cuda"):
        check_device("meta")
