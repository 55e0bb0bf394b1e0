"""Which digits a model draws: class histogram, its entropy and confidence, from logits."""

from __future__ import annotations

import json
import math

import numpy as np
from scipy.special import softmax
from scipy.stats import entropy

# A class "holds" its share of the samples at this fraction or more (10 classes: half of uniform).
PRESENT_FRACTION = 0.05


def class_statistics(logits: np.ndarray, present_fraction: float = PRESENT_FRACTION) -> dict:
    """Class statistics of N samples from a classifier's logits (N, K), each sample assigned to
    its argmax class (ties: the lowest index):

    - `class_fractions`: list of K fractions n_k / N (the histogram, sums to 1);
    - `class_entropy_nats`: H = -sum_k p_k log p_k (0 log 0 = 0), 0 for one class, log K uniform;
    - `class_entropy_norm`: H / log K in [0, 1] (log 10 for digits);
    - `classes_present`: number of classes with p_k >= present_fraction;
    - `mean_confidence`: mean over samples of max_k softmax(logits)_k, in [1/K, 1].

    A generator that draws only some digits shows a low entropy and few classes present even
    when its FID-proxy looks fine (mode dropping, Salimans et al. 2016, arXiv:1606.03498)."""
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 2 or logits.shape[0] < 1 or logits.shape[1] < 2:
        raise ValueError(
            f"logits must be (N, K) with N >= 1 samples and K >= 2 classes, got {logits.shape}"
        )
    if not np.isfinite(logits).all():
        raise ValueError("logits contain NaN or inf; check the classifier's input")
    if not 0 < present_fraction <= 1:
        raise ValueError(f"present_fraction must be in (0, 1], got {present_fraction}")
    n, k = logits.shape
    fractions = np.bincount(logits.argmax(axis=1), minlength=k) / n
    probs = softmax(logits, axis=1)  # (N, K), max-subtracted internally: no overflow
    h = float(entropy(fractions))  # natural log; zero fractions contribute 0
    return {
        "class_fractions": fractions.tolist(),
        "class_entropy_nats": h,
        "class_entropy_norm": h / math.log(k),
        "classes_present": int((fractions >= present_fraction).sum()),
        "mean_confidence": float(probs.max(axis=1).mean()),
    }


def class_columns(logits: np.ndarray) -> dict[str, int | float | str]:
    """`class_statistics` as the result columns bench.results.schema.CLASS_COLUMNS: classes_present,
    class_entropy_norm, mean_confidence, and class_fractions as a JSON list (text column)."""
    stats = class_statistics(logits)
    return {
        "classes_present": stats["classes_present"],
        "class_entropy_norm": stats["class_entropy_norm"],
        "mean_confidence": stats["mean_confidence"],
        "class_fractions": json.dumps(stats["class_fractions"]),
    }
