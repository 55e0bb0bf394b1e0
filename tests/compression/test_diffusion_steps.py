"""Method "steps": fewer DDIM steps on a copy; MACs scale by the exact ratio of steps."""
from __future__ import annotations

import json

import pytest
import torch
from diffusion_standin import standin

from compression.accounting import count_macs
from compression.api import (
    EXECUTION_DENSE,
    MethodNotApplicable,
    apply_pipeline,
    compress,
    config_from_dict,
)
from compression.diffusion import QuantWAConfig, StepsConfig


def _ddpm(steps: int = 10):
    from genmodels.models.diffusion import DDPM

    torch.manual_seed(0)
    return DDPM(width=0.25, steps=steps).eval()


@pytest.mark.parametrize("make", [_ddpm, lambda: standin(steps=10)])
@pytest.mark.parametrize("steps", [5, 2, 1])
def test_macs_scale_by_the_exact_ratio_of_steps(make, steps: int) -> None:
    model = make()
    z = model.latent(1, torch.Generator().manual_seed(0))
    cm = compress(model, StepsConfig(steps=steps))
    dense, effective = count_macs(cm.model, z)
    base_dense, base_effective = count_macs(model, z)
    assert dense * 10 == base_dense * steps and effective * 10 == base_effective * steps
    assert model.steps == 10 and cm.model.steps == steps  # the input is a copy, not changed
    assert cm.execution == EXECUTION_DENSE and cm.notes["sampling_steps"] == {
        "before": 10, "after": steps}


def test_same_steps_reproduces_the_model_and_fewer_steps_change_it() -> None:
    model = _ddpm(steps=4)
    z = model.latent(3, torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = model(z)
        same = compress(model, StepsConfig(steps=4)).model(z)
        fewer = compress(model, StepsConfig(steps=2)).model(z)
        again = compress(model, StepsConfig(steps=2)).model(z)
    assert torch.equal(ref, same) and torch.equal(fewer, again)
    assert not torch.equal(ref, fewer)
    assert torch.equal(fewer, model.ddim_sample(z, 2))


def test_steps_then_quant_wa_calibrates_on_the_new_trajectory() -> None:
    cm = apply_pipeline(standin(steps=10), [StepsConfig(steps=4),
                                            QuantWAConfig(calibration_samples=2)])
    assert cm.method == "steps+quant_wa"
    assert cm.notes["calibration_timesteps"] == standin().ddim_timesteps(4)


def test_steps_beyond_the_schedule_are_refused() -> None:
    with pytest.raises(ValueError, match="steps must be in"):
        compress(_ddpm(), StepsConfig(steps=1001))


@pytest.mark.parametrize("steps", [0, -3, 2.5, True])
def test_bad_steps_are_refused(steps) -> None:
    with pytest.raises(ValueError, match="steps must be an integer >= 1"):
        config_from_dict({"method": "steps", "steps": steps})


@pytest.mark.parametrize("family", ["gan", "vae", "rvae"])
def test_refused_for_families_without_a_sampler(family: str, make_model) -> None:
    with pytest.raises(MethodNotApplicable, match=f"'steps' applies only.*'{family}'"):
        compress(make_model(family), StepsConfig(steps=10))


def test_a_pipeline_label_calls_them_sampling_steps() -> None:
    # bench's labels read a step's `steps` as fine-tuning steps ("ft N") for qat/distill.
    from bench.results.labels import setting_label

    steps = [{"method": "steps", "steps": 20}, {"method": "qat", "bits": 4, "steps": 200}]
    row = {"method": "steps+qat", "pipeline_json": json.dumps(steps)}
    assert setting_label(row, extra_keys=()) == "steps 20 DDIM steps -> qat 4-bit, ft 200"
