"""Distillation: a narrower student of the same family moves toward its teacher's outputs."""
from __future__ import annotations

import pytest
import torch

from compression.accounting import count_params
from compression.api import EXECUTION_SHRUNK, compress
from compression.distillation import DistillConfig, make_student, output_drift


def _drift(student, teacher) -> float:
    z = teacher.latent(32, torch.Generator().manual_seed(5))  # probes unseen during training
    return output_drift(student.eval(), teacher.eval(), z)


def test_student_drift_decreases_and_beats_fresh_student(family: str, make_model, ctx) -> None:
    teacher = make_model(family, width=0.5)
    config = dict(width=0.25, lr=3e-3)
    drifts = [_drift(compress(teacher, DistillConfig(steps=n, **config), ctx).model, teacher)
              for n in (0, 10, 30)]
    assert drifts[0] > drifts[1] > drifts[2]  # decreases along training
    fresh = make_student(teacher, 0.25, seed=123)  # another fresh student of the same width
    assert drifts[2] < _drift(fresh, teacher)
    cm = compress(teacher, DistillConfig(steps=30, **config), ctx)
    history = cm.notes["output_drift_history"]
    assert len(history) == 11 and history[-1] < history[0]
    assert len(cm.notes["distill_losses"]) == 30


def test_student_is_smaller_same_family(family: str, make_model, ctx) -> None:
    teacher = make_model(family, width=0.5)
    cm = compress(teacher, DistillConfig(width=0.25, steps=1), ctx)
    assert type(cm.model) is type(teacher) and cm.model.width == 0.25
    assert cm.execution == EXECUTION_SHRUNK
    assert count_params(cm.model) < count_params(teacher)
    if family == "gan":  # adversarial loss against the teacher's frozen discriminator
        for a, b in zip(teacher.discriminator.parameters(), cm.model.discriminator.parameters()):
            assert torch.equal(a, b) and not b.requires_grad


def test_student_init_is_seeded(make_model) -> None:
    teacher = make_model("vae")
    a, b = make_student(teacher, 0.5, seed=3), make_student(teacher, 0.5, seed=3)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


@pytest.mark.parametrize("kwargs", [dict(width=0.0), dict(width=1.5), dict(width=0.5, steps=-1),
                                    dict(width=0.5, lr=0.0), dict(width=0.5, alpha_task=-1.0)])
def test_invalid_config(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        DistillConfig(**kwargs)
