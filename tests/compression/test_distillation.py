"""Distillation: a narrower student of the same family moves toward its teacher's outputs."""

from __future__ import annotations

import pytest
import torch

from compression.accounting import count_params
from compression.api import EXECUTION_SHRUNK, compress
from compression.distillation import DistillConfig, make_student, output_drift

OUTPUT_LAYER = {
    "gan": lambda m: m.generator.up2,
    "vae": lambda m: m.dec2,
    "rvae": lambda m: m.dec_out,
}


def _drift(student, teacher) -> float:
    z = teacher.latent(32, torch.Generator().manual_seed(5))  # probes unseen during training
    return output_drift(student.eval(), teacher.eval(), z)


def test_student_drift_decreases_and_beats_fresh_student(family: str, make_model, ctx) -> None:
    if family == "ddpm":  # it matches noise predictions, not samples: its own test is
        pytest.skip("tests/compression/test_ddpm_pruning.py covers ddpm distillation")
    teacher = make_model(family, width=0.5)
    # An untrained teacher outputs ~0.5 everywhere, as does any fresh student: shift its output
    # logits so that there is something to learn (drift of a fresh student ~0.1 instead of ~0.002).
    with torch.no_grad():
        OUTPUT_LAYER[family](teacher).bias.add_(2.0)
    cm = compress(teacher, DistillConfig(width=0.25, steps=20, lr=3e-3), ctx)
    assert len(cm.notes["distill_losses"]) == 20
    history = cm.notes["output_drift_history"]  # on fixed probes, before and every 2 steps
    assert len(history) == 11
    assert history[0] > history[5] > history[-1]  # decreases along training
    # On unseen z: below the same student before training and below another fresh student.
    final = _drift(cm.model, teacher)
    assert final < _drift(make_student(teacher, 0.25, seed=ctx.seed), teacher)
    assert final < _drift(make_student(teacher, 0.25, seed=123), teacher)


def test_student_is_smaller_same_family(family: str, make_model, ctx) -> None:
    teacher = make_model(family, width=0.5)
    cm = compress(teacher, DistillConfig(width=0.25, steps=1), ctx)
    # width is a fraction of the teacher's (0.5 here): the student is built at 0.125
    assert type(cm.model) is type(teacher) and cm.model.width == teacher.width * 0.25
    assert cm.execution == EXECUTION_SHRUNK
    assert count_params(cm.model) < count_params(teacher)
    if family == "gan":  # adversarial loss against the teacher's frozen discriminator
        for a, b in zip(
            teacher.discriminator.parameters(), cm.model.discriminator.parameters(), strict=True
        ):
            assert torch.equal(a, b) and not b.requires_grad


def test_student_init_is_seeded(make_model) -> None:
    teacher = make_model("vae")
    a, b = make_student(teacher, 0.5, seed=3), make_student(teacher, 0.5, seed=3)
    assert all(
        torch.equal(x, y)
        for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(width=0.0),
        dict(width=1.5),
        dict(width=0.5, steps=-1),
        dict(width=0.5, lr=0.0),
        dict(width=0.5, alpha_task=-1.0),
    ],
)
def test_invalid_config(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        DistillConfig(**kwargs)
