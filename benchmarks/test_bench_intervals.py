"""Cost the intervals add to one cell at default sizes (1000 samples, 1000 test images, 128-d).

Run: .venv/bin/python -m pytest benchmarks/test_bench_intervals.py --benchmark-only -s
Target (issue 11): at most ~1.5 s per cell on the 2-core reference machine.
"""

from __future__ import annotations

import numpy as np
import torch

from bench.metrics.evaluate import EvalSettings
from bench.metrics.paired import Outputs, intervals, paired
from bench.metrics.quality import sample_metrics
from bench.metrics.replicates import ReplicateMetrics, half_samples

N, D = 1000, 128


def _features(rng: np.random.Generator, shift: float) -> np.ndarray:
    # ReLU features of a low-rank Gaussian, like a classifier's penultimate layer; real and
    # generated sets overlap (the costly case: many points inside each other's k-NN balls).
    projection = np.random.default_rng(0).normal(size=(24, D)) / 5.0  # shared by every set
    return np.maximum(rng.normal(size=(N, 24)) @ projection + shift, 0.0)


def test_bench_interval_cost_per_cell(benchmark) -> None:
    settings = EvalSettings()
    real = _features(np.random.default_rng(1), 0.0)
    reps = ReplicateMetrics(real, half_samples(N, settings.bootstrap, [0, 0]))  # once per run
    masks = half_samples(N, settings.bootstrap, [0, 1])
    base_fake = _features(np.random.default_rng(2), 0.05)
    fake = _features(np.random.default_rng(3), 0.1)
    elbo = np.random.default_rng(0).normal(-100.0, 10.0, 500)  # per image, n_recon = 500
    images = torch.rand(N, 1, 28, 28)
    base_metrics = {**sample_metrics(real, base_fake), "elbo_nats": float(elbo.mean())}
    base = Outputs(images, base_fake, base_metrics, reps.replicates(base_fake, masks),
                   {"elbo_nats": elbo})  # cached per baseline by the evaluator
    metrics = {**sample_metrics(real, fake), "elbo_nats": float(elbo.mean()) + 0.5}

    def added() -> dict[str, object]:  # what a cell pays on top of its point metrics
        out = Outputs(images + 0.01, fake, metrics, reps.replicates(fake, masks),
                      {"elbo_nats": elbo + 0.5})
        return {**intervals(out, settings.bootstrap, 0), **paired(out, base, settings.bootstrap, 0)}

    columns = benchmark.pedantic(added, rounds=3, iterations=1)
    # CIs of 6 sample metrics, the ELBO and drift; 7 deltas (4 columns each); drift itself
    assert len(columns) == 2 * 8 + 4 * 7 + 1
