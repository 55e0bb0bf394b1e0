"""Activation calibration data of a diffusion UNet, recorded along DDIM sampling trajectories."""
from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from compression.quantization.core import mse_clip_ratio

CALIBRATIONS = ("minmax", "single_t", "timestep_aware")
# Values kept per layer input (per concatenated part) per UNet call: a uniform random subsample
# plus the exact min and max. 50 steps x 64 samples x a 64-channel 28x28 map would be 160M values
# per layer; 4096 a call keeps the pooled MSE search at ~200k values a layer.
VALUES_PER_CALL = 4096
# Clip ratios of the activation range searched by MSE (core.MSE_RATIOS stops at 0.5, enough for
# weights; pooled activations have rare large values, and 1.0 stays in the grid).
ACT_MSE_RATIOS = torch.linspace(0.1, 1.0, 91)


def calibration_steps(calibration: str, n_steps: int, generator: torch.Generator) -> list[int]:
    """Indices (0 = first, noisiest DDIM step) of the UNet calls whose inputs calibrate.

    minmax: one step drawn uniformly (the naive recipe: one batch at one random timestep);
    single_t: the middle step; timestep_aware: every step (Q-Diffusion's time-step-aware
    calibration, Li et al. arXiv:2302.04304, with calibration data uniform over the trajectory).
    """
    if calibration not in CALIBRATIONS:
        raise ValueError(f"calibration must be one of {CALIBRATIONS}; got {calibration!r}")
    if calibration == "minmax":
        return [int(torch.randint(n_steps, (1,), generator=generator))]
    if calibration == "single_t":
        return [n_steps // 2]
    return list(range(n_steps))


def subsample(x: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """k values of x drawn uniformly with replacement, plus its exact min and max (so the pooled
    range is the true range): (k + 2,) on CPU, or all of x flattened when it has <= k values."""
    flat = x.detach().reshape(-1).float().cpu()
    if flat.numel() <= k:
        return flat
    idx = torch.randint(flat.numel(), (k,), generator=generator)
    return torch.cat([flat[idx], flat.min()[None], flat.max()[None]])


def range_minmax(values: torch.Tensor) -> tuple[float, float]:
    return float(values.min()), float(values.max())


def range_mse(values: torch.Tensor, bits: int, ratios: torch.Tensor = ACT_MSE_RATIOS
              ) -> tuple[float, float]:
    """[r lo, r hi] with r = argmin_r sum_i (x_i - Q_r(x_i))^2 over the pooled values x (affine
    per-tensor grid of 2^bits levels on the clipped range; Banner et al. arXiv:1810.05723 by
    search). Pooling all timesteps weights each step equally (arXiv:2302.04304, Sec. 4.2)."""
    ratio = float(mse_clip_ratio(values.reshape(-1), bits, "affine", None, None, ratios))
    lo, hi = range_minmax(values)
    return lo * ratio, hi * ratio


def choose_range(values: torch.Tensor, calibration: str, bits: int) -> tuple[float, float]:
    """minmax keeps the observed range; single_t and timestep_aware search it by MSE."""
    return range_minmax(values) if calibration == "minmax" else range_mse(values, bits)


class _Recorder:
    """Forward pre-hook of one layer: while `on[0]` is set, keep a subsample of each part of the
    input (split at `sizes` along channels when given) in `store[name]` (one list per part)."""

    def __init__(self, name: str, sizes: tuple[int, ...] | None, store: dict, on: list,
                 generator: torch.Generator, k: int) -> None:
        self.name, self.sizes, self.store, self.on, self.gen, self.k = (
            name, sizes, store, on, generator, k)

    def __call__(self, module: nn.Module, args: tuple) -> None:
        if not self.on[0] or not args or not isinstance(args[0], torch.Tensor):
            return
        parts = args[0].split(list(self.sizes), dim=1) if self.sizes else (args[0],)
        lists = self.store.setdefault(self.name, [[] for _ in parts])
        for kept, part in zip(lists, parts, strict=True):
            kept.append(subsample(part, self.k, self.gen))


class _StepCounter:
    """Forward pre-hook of the UNet: counts its calls, records each call's timestep and switches
    the layer recorders on for the chosen step indices only."""

    def __init__(self, record_at: Iterable[int], on: list) -> None:
        self.record_at, self.on = set(record_at), on
        self.calls = 0
        self.timesteps: list[int] = []
        self.recorded: list[int] = []

    def __call__(self, module: nn.Module, args: tuple) -> None:
        t = args[1] if len(args) > 1 else None
        self.on[0] = self.calls in self.record_at
        if isinstance(t, torch.Tensor):
            self.timesteps.append(int(t.reshape(-1)[0]))
            if self.on[0]:
                self.recorded.append(self.timesteps[-1])
        self.calls += 1


@torch.no_grad()
def record_trajectory_inputs(
    model: nn.Module,
    layers: dict[str, nn.Module],
    splits: dict[str, tuple[int, ...]],
    record_at: list[int],
    n_samples: int,
    generator: torch.Generator,
    k: int = VALUES_PER_CALL,
) -> tuple[dict[str, list[torch.Tensor]], _StepCounter]:
    """Run model(z) (a DDIM trajectory of model.steps UNet calls) on n_samples latents and return
    {layer: [pooled values of each input part]} over the calls in `record_at`, and the counter
    (its `timesteps` lists every call's t, `recorded` the t of the calls that were recorded)."""
    on = [False]
    store: dict[str, list[list[torch.Tensor]]] = {}
    counter = _StepCounter(record_at, on)
    handles = [model.unet.register_forward_pre_hook(counter)]
    handles += [m.register_forward_pre_hook(_Recorder(n, splits.get(n), store, on, generator, k))
                for n, m in layers.items()]
    was_training = model.training
    model.eval()
    try:
        model(model.latent(n_samples, generator))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return {n: [torch.cat(kept) for kept in lists] for n, lists in store.items()}, counter
