"""Class statistics of samples: histogram, entropy, classes present, confidence, known logits."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bench.metrics.classes import class_statistics


def _one_hot_logits(labels: list[int], k: int = 10, a: float = 3.0) -> np.ndarray:
    logits = np.zeros((len(labels), k))
    logits[np.arange(len(labels)), labels] = a
    return logits


def test_known_histogram_entropy_and_confidence() -> None:
    # Labels 0, 0, 1, 2: p = (1/2, 1/4, 1/4), H = 1.5 log 2; softmax max = e^a / (e^a + 9).
    stats = class_statistics(_one_hot_logits([0, 0, 1, 2], a=3.0))
    assert stats["class_fractions"] == [0.5, 0.25, 0.25] + [0.0] * 7
    assert stats["class_entropy_nats"] == pytest.approx(1.5 * math.log(2), abs=1e-12)
    assert stats["class_entropy_norm"] == pytest.approx(1.5 * math.log(2) / math.log(10))
    assert stats["classes_present"] == 3
    assert stats["mean_confidence"] == pytest.approx(math.exp(3) / (math.exp(3) + 9), abs=1e-12)


def test_uniform_histogram_has_entropy_log_k_and_every_class_present() -> None:
    stats = class_statistics(_one_hot_logits(list(range(10)) * 7, a=50.0))
    assert stats["class_fractions"] == pytest.approx([0.1] * 10)
    assert stats["class_entropy_nats"] == pytest.approx(math.log(10))
    assert stats["class_entropy_norm"] == pytest.approx(1.0)
    assert stats["classes_present"] == 10
    assert stats["mean_confidence"] == pytest.approx(1.0, abs=1e-12)


def test_tied_logits_go_to_the_first_class_with_confidence_one_over_k() -> None:
    stats = class_statistics(np.zeros((5, 4)))
    assert stats["class_fractions"] == [1.0, 0.0, 0.0, 0.0]
    assert stats["class_entropy_nats"] == 0.0 and stats["classes_present"] == 1
    assert stats["mean_confidence"] == pytest.approx(0.25)


def test_present_threshold_is_inclusive_at_five_percent() -> None:
    # 50 of 1,000 samples is exactly 5%: present; 49 is not.
    labels = [1] * 50 + [2] * 49 + [0] * 901
    stats = class_statistics(_one_hot_logits(labels))
    assert stats["classes_present"] == 2
    assert class_statistics(_one_hot_logits(labels), present_fraction=0.9)["classes_present"] == 1


def test_agrees_with_torch_and_is_invariant_to_row_shifts_and_order() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=3.0, size=(500, 10))
    stats = class_statistics(logits)
    probs = torch.softmax(torch.from_numpy(logits), dim=1)
    assert stats["mean_confidence"] == pytest.approx(probs.max(1).values.mean().item(), rel=1e-12)
    counts = torch.bincount(probs.argmax(1), minlength=10).double() / 500
    nz = counts[counts > 0]
    assert stats["class_entropy_nats"] == pytest.approx(-(nz * nz.log()).sum().item(), rel=1e-12)
    shifted = logits[rng.permutation(500)] + rng.normal(size=(500, 1)) * 1e3  # softmax-invariant
    other = class_statistics(shifted)
    assert other["class_fractions"] == pytest.approx(stats["class_fractions"])
    assert other["mean_confidence"] == pytest.approx(stats["mean_confidence"], rel=1e-9)


@pytest.mark.parametrize(
    "logits,match",
    [
        (np.zeros(10), "must be \\(N, K\\)"),
        (np.zeros((0, 10)), "must be \\(N, K\\)"),
        (np.zeros((3, 1)), "must be \\(N, K\\)"),
        (np.array([[0.0, np.nan]]), "NaN or inf"),
    ],
)
def test_bad_logits_raise_one_line_value_error(logits, match) -> None:
    with pytest.raises(ValueError, match=match):
        class_statistics(logits)
