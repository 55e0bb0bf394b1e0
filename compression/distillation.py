"""Knowledge distillation of a trained generative model into a narrower student of its family."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from compression.api import (
    EXECUTION_SHRUNK,
    CompressedModel,
    CompressionContext,
    MethodConfig,
    register_method,
)
from compression.finetune import finetune, step_key
from genmodels.base import GenerativeModel
from genmodels.determinism import derived_seed, seeded_generator

DRIFT_PROBES = 32  # fixed z on which the student's output drift is tracked during training


def summed_squared_error(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """sum_j (a_ij - b_ij)^2 averaged over the batch i: per-image squared error, so that output
    matching is on the same per-image scale as the ELBO (nats per image)."""
    return (a - b).pow(2).flatten(1).sum(1).mean()


def distillation_loss(
    student: GenerativeModel,
    teacher: GenerativeModel,
    z: torch.Tensor,
    x: torch.Tensor,
    alpha_output: float,
    alpha_latent: float,
) -> torch.Tensor:
    """alpha_output * ||S(z) - T(z)||^2 on shared z (GAN Compression, arXiv:2003.08936)
    + for VAEs alpha_latent * (||mu_S(x) - mu_T(x)||^2 + ||logvar_S(x) - logvar_T(x)||^2).
    S(z), T(z) are the models' `matching_output(z, x)`: forward(z), except for ddpm, where it is
    the noise prediction at a noise level drawn from z (output-level KD as in BK-SDM,
    arXiv:2305.15798), since backpropagating through every DDIM step costs 50 forwards."""
    with torch.no_grad():
        target = teacher.matching_output(z, x)
    loss = alpha_output * summed_squared_error(student.matching_output(z, x), target)
    if student.is_vae and alpha_latent != 0:
        with torch.no_grad():
            mu_t, logvar_t = teacher.encode(x)
        mu_s, logvar_s = student.encode(x)
        loss = loss + alpha_latent * (
            summed_squared_error(mu_s, mu_t) + summed_squared_error(logvar_s, logvar_t)
        )
    return loss


@torch.no_grad()
def output_drift(student: nn.Module, teacher: nn.Module, z: torch.Tensor) -> float:
    """Mean squared difference of the outputs on fixed z (per pixel), both in eval mode."""
    return float((student(z) - teacher(z)).pow(2).mean())


@dataclass(frozen=True)
class DistillConfig(MethodConfig):
    """Train a student type(teacher)(width=teacher.width*width) for `steps` Adam steps on
    alpha_output*output matching + alpha_latent*posterior matching + alpha_task*own loss
    (GAN: adversarial loss against the teacher's frozen discriminator; VAE/RVAE: -ELBO)."""

    method: ClassVar[str] = "distill"
    width: float
    steps: int = 500
    lr: float = 2e-4
    alpha_output: float = 1.0
    alpha_latent: float = 1.0
    alpha_task: float = 1.0

    def __post_init__(self) -> None:
        if not 0 < self.width <= 1:
            raise ValueError(f"width must be in (0, 1], got {self.width}")
        if self.steps < 0 or not self.lr > 0:
            raise ValueError(f"need steps >= 0 and lr > 0, got steps={self.steps}, lr={self.lr}")
        for name in ("alpha_output", "alpha_latent", "alpha_task"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")

    @classmethod
    def example(cls) -> DistillConfig:
        return cls(width=0.5, steps=2)


def make_student(teacher: GenerativeModel, width: float, seed: int) -> GenerativeModel:
    """Same family and constructor arguments at `width` times the teacher's width (a student
    0.5 of a width-2 teacher is built at width 1), initialised from `seed` on a forked RNG (the
    caller's global RNG is neither read nor advanced). A GAN student gets a frozen copy of the
    teacher's discriminator (its adversarial loss is against it)."""
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)  # the CPU RNG only: init runs on the CPU
        student = type(teacher)(**{**teacher.init_kwargs(), "width": teacher.width * width})
    student = student.to(teacher.device)
    if isinstance(getattr(teacher, "discriminator", None), nn.Module):
        student.discriminator = copy.deepcopy(teacher.discriminator).eval()
        student.discriminator.requires_grad_(False)
    return student.eval()


@register_method(DistillConfig)
def distill(cm: CompressedModel, cfg: DistillConfig, ctx: CompressionContext) -> CompressedModel:
    teacher = cm.model.eval()
    teacher.requires_grad_(False)
    key = step_key(cm, cfg)
    student = make_student(teacher, cfg.width, derived_seed(ctx.seed, *key, "init"))
    probes = student.latent(DRIFT_PROBES, seeded_generator(ctx.seed, *key, "probes"))
    drift = [output_drift(student, teacher, probes)]
    every = max(1, cfg.steps // 10)
    calls = [0]

    def extra_loss(model: GenerativeModel, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        z = model.latent(x.shape[0], gen)  # shared z: the teacher sees the student's z
        return distillation_loss(model, teacher, z, x, cfg.alpha_output, cfg.alpha_latent)

    def track_drift(model: GenerativeModel) -> None:
        calls[0] += 1
        if calls[0] % every == 0:
            model.eval()
            drift.append(output_drift(model, teacher, probes))
            model.deployable().train()

    losses = finetune(
        student,
        ctx,
        cfg.steps,
        cfg.lr,
        extra_loss=extra_loss,
        after_step=track_drift,
        params=student.deployable().parameters(),
        task_weight=cfg.alpha_task,
        key=key,
    )
    notes: dict[str, Any] = {
        "distill_losses": losses,
        "output_drift_history": drift,
        "drift_every_steps": every,
    }
    return CompressedModel(
        model=student, steps=cm.steps, execution=EXECUTION_SHRUNK, notes={**cm.notes, **notes}
    )


def teacher_matching(model: nn.Module, weight: float):
    """Extra fine-tuning loss for pruning (self-distillation): weight * distillation_loss to a
    frozen copy of `model` taken now, i.e. before it is pruned or shrunk; None when weight is 0."""
    if weight == 0:
        return None
    teacher = copy.deepcopy(model).eval().requires_grad_(False)

    def extra_loss(student: nn.Module, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        z = student.latent(x.shape[0], gen)
        return weight * distillation_loss(student, teacher, z, x, 1.0, 1.0)

    return extra_loss
