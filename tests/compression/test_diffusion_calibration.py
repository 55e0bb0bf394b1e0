"""Activation ranges, calibration steps and concat detection of compression.diffusion."""
from __future__ import annotations

import pytest
import torch
from diffusion_standin import standin

from compression.diffusion.actquant import act_layers
from compression.diffusion.calibration import (
    calibration_steps,
    range_minmax,
    range_mse,
    record_trajectory_inputs,
    subsample,
)
from compression.diffusion.shortcuts import concat_inputs


def test_minmax_range_is_the_observed_range() -> None:
    x = torch.tensor([-0.25, 0.0, 1.5, 3.0])
    assert range_minmax(x) == (-0.25, 3.0)


def test_mse_range_keeps_values_already_on_the_grid() -> None:
    # k/255, k = 0..255: min-max at 8 bits reproduces every value exactly (zero error), and ties
    # keep the largest ratio, so the search returns the observed range.
    x = torch.arange(256, dtype=torch.float32) / 255
    assert range_mse(x, 8) == pytest.approx((0.0, 1.0))


def test_mse_range_clips_a_lone_outlier() -> None:
    # 0, 100k values in [0, 1] and one at 100: at 4 bits the min-max step (100/15) rounds every
    # bulk value to 0 (total error ~ 100k/3); clipping costs the outlier (100 - hi)^2 but the
    # bulk then sits on a fine grid, so the MSE range clips far below 100.
    gen = torch.Generator().manual_seed(0)
    x = torch.cat([torch.zeros(1), torch.rand(100_000, generator=gen), torch.tensor([100.0])])
    lo, hi = range_mse(x, 4)

    def err(lo: float, hi: float) -> float:
        scale = (hi - lo) / 15
        zp = round(-lo / scale)
        q = (torch.round(x / scale) + zp).clamp(0, 15)
        return float(((q - zp) * scale - x).pow(2).sum())

    assert lo == 0.0 and hi < 20.0
    assert err(lo, hi) < 0.5 * err(0.0, 100.0)


def test_subsample_keeps_exact_extremes() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(3, 100, 100, generator=gen)
    kept = subsample(x, 64, gen)
    assert kept.numel() == 66 and range_minmax(kept) == range_minmax(x)
    assert torch.equal(subsample(x[0, :2, :3], 64, gen), x[0, :2, :3].reshape(-1))


def test_calibration_steps() -> None:
    gen = torch.Generator().manual_seed(0)
    assert calibration_steps("single_t", 50, gen) == [25]
    assert calibration_steps("timestep_aware", 7, gen) == list(range(7))
    draws = {calibration_steps("minmax", 10, gen)[0] for _ in range(200)}
    assert draws == set(range(10))  # one uniform draw from every index
    with pytest.raises(ValueError, match="calibration must be one of"):
        calibration_steps("percentile", 10, gen)


def test_concat_readers_are_found_with_their_part_sizes() -> None:
    model = standin()
    layers = act_layers(model)
    found = concat_inputs(model.unet, layers, torch.zeros(1, 1, 8, 8), torch.tensor([10]))
    # conv_out reads the concat through GroupNorm + SiLU, skip reads it directly.
    assert found == {"unet.conv_out": (2, 2), "unet.skip": (2, 2)}


def test_concat_readers_of_the_ddpm_unet() -> None:
    from genmodels.models.diffusion import DDPM

    torch.manual_seed(0)
    model = DDPM(width=0.5, steps=3).eval()
    layers = act_layers(model)
    found = concat_inputs(model.unet, layers, torch.zeros(1, 1, 28, 28), torch.tensor([999]))
    c0, c1 = model.unet.conv_in.out_channels, model.unet.down1.conv2.out_channels
    assert found == {"unet.up0.conv1": (c0, c0), "unet.up0.skip": (c0, c0),
                     "unet.up1.conv1": (c1, c1), "unet.up1.skip": (c1, c1)}


@pytest.mark.parametrize(("calibration", "expected"), [
    ("timestep_aware", [999, 799, 599, 399, 199]), ("single_t", [599])])
def test_calibration_records_the_chosen_timesteps(calibration: str, expected: list[int]) -> None:
    model = standin(steps=5)
    layers = act_layers(model)
    gen = torch.Generator().manual_seed(0)
    record_at = calibration_steps(calibration, 5, gen)
    pooled, counter = record_trajectory_inputs(model, layers, {"unet.skip": (2, 2)}, record_at,
                                               n_samples=3, generator=gen, k=16)
    assert counter.timesteps == model.ddim_timesteps(5)  # the UNet ran once per step
    assert counter.recorded == expected
    # Every layer recorded once per chosen step: k values + min + max per call (per part).
    assert set(pooled) == set(layers)
    assert [v.numel() for v in pooled["unet.skip"]] == [18 * len(expected)] * 2
    assert [v.numel() for v in pooled["unet.conv_a"]] == [18 * len(expected)]
