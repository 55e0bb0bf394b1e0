"""Students of wide teachers: `width` is a fraction of the teacher's width, not an absolute one."""
from __future__ import annotations

import pytest

from compression.distillation import make_student
from genmodels.models import build_model


@pytest.mark.parametrize(("teacher_width", "fraction"), [(1.0, 0.5), (2.0, 0.5), (4.0, 0.25)])
def test_student_width_is_a_fraction_of_the_teachers(teacher_width: float,
                                                     fraction: float) -> None:
    teacher = build_model("vae", image_shape=(1, 28, 28), width=teacher_width)
    student = make_student(teacher, fraction, seed=0)
    assert student.width == teacher_width * fraction
    same = build_model("vae", image_shape=(1, 28, 28), width=teacher_width * fraction)
    assert [p.shape for p in student.parameters()] == [p.shape for p in same.parameters()]
