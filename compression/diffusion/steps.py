"""Sampling steps as a compression axis (method "steps"): fewer DDIM steps, same weights."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from compression.api import (
    CompressedModel,
    CompressionContext,
    MethodConfig,
    MethodNotApplicable,
    register_method,
)
from genmodels.base import GenerativeModel


def require_ddim(model: GenerativeModel, method: str) -> None:
    """Raise MethodNotApplicable unless `model` samples with DDIM through a separate UNet
    (`ddim_sample`, `unet`, an integer `steps`): the diffusion-only methods need all three."""
    missing = [a for a in ("ddim_sample", "unet", "steps") if not hasattr(model, a)]
    if missing:
        raise MethodNotApplicable(
            f"method {method!r} applies only to diffusion families (a DDIM sampler); "
            f"family {model.family!r} has no {', '.join(missing)}: list only diffusion families "
            'in its [[sweep]], e.g. families = ["ddpm"]')


@dataclass(frozen=True)
class StepsConfig(MethodConfig):
    """Fewer DDIM sampling steps (eta = 0) on a copy of a diffusion model, weights unchanged.

    Song et al. arXiv:2010.02502. The UNet is called `steps` times per sample, so the MACs of
    forward are steps x the MACs of one UNet call (counted by the accounting's hooks, which see
    every call). Execution stays dense fp32.
    """

    method: ClassVar[str] = "steps"
    steps: int = 20  # DDIM sampling steps (eta = 0); diffusion families only

    def __post_init__(self) -> None:
        if not isinstance(self.steps, int) or isinstance(self.steps, bool) or self.steps < 1:
            raise ValueError(f"steps must be an integer >= 1; got {self.steps!r}")

    @classmethod
    def example(cls) -> StepsConfig:
        return cls(steps=2)

    def settings(self) -> dict[str, Any]:
        return {"steps": self.steps}

    def check_applicable(self, model: GenerativeModel) -> None:
        require_ddim(model, self.method)


@register_method(StepsConfig)
def set_sampling_steps(cm: CompressedModel, config: StepsConfig, ctx: CompressionContext
                       ) -> CompressedModel:
    model = cm.model
    # ddim_timesteps raises on a count the schedule cannot give (e.g. more than T): fail here,
    # at compression time, rather than at the first sample.
    timesteps = model.ddim_timesteps(config.steps)
    if len(timesteps) != config.steps:
        raise ValueError(f"the model's schedule gives {len(timesteps)} DDIM timesteps for "
                         f"steps={config.steps}: choose a count it supports")
    cm.notes["sampling_steps"] = {"before": int(model.steps), "after": config.steps}
    model.steps = config.steps  # cm.execution is kept: a previous step may have set it
    return cm
