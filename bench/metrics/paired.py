"""One model's measurements on the common inputs, and the paired comparison with its baseline."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from bench.metrics.intervals import bootstrap_interval, ci_columns, delta_columns, mean_interval
from bench.metrics.likelihood import drift_per_sample


@dataclass
class Outputs:
    """What the evaluator measured of one model on the fixed z and test images: enough to give
    its intervals and, kept for a baseline, every variant's paired deltas."""

    images: torch.Tensor  # (n_samples, C, H, W) generated from the fixed z, on the CPU
    features: np.ndarray  # (n_samples, d)
    metrics: dict[str, float]  # point estimates, keyed by bench.results.schema QUALITY_COLUMNS
    replicates: dict[str, np.ndarray]  # sample metric -> (B,) values on the half-sample replicates
    per_image: dict[str, np.ndarray]  # VAE metric -> (n_recon,) values whose mean is the metric


def weights_key(model: nn.Module) -> str:
    """sha256 of a module's class and state_dict (names, dtypes, shapes, bytes): the identity of
    a baseline's weights, equal for every copy of it (a pool or Dask task unpickles a new one)."""
    digest = hashlib.sha256(type(model).__qualname__.encode())
    for name, value in model.state_dict().items():
        digest.update(name.encode())
        if not isinstance(value, torch.Tensor):
            digest.update(repr(type(value)).encode())
            continue
        tensor = value.detach().cpu()
        tensor = tensor.int_repr() if tensor.is_quantized else tensor
        digest.update(f"{tensor.dtype}{tuple(tensor.shape)}".encode())
        digest.update(tensor.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def intervals(out: Outputs, n_resamples: int, seed: int) -> dict[str, float]:
    """`<metric>_ci_low/_ci_high` of every metric of `out` with replicates or per-image values."""
    columns: dict[str, float] = {}
    for metric, reps in out.replicates.items():
        columns.update(ci_columns(metric, bootstrap_interval(out.metrics[metric], reps)))
    for metric, values in out.per_image.items():
        columns.update(ci_columns(metric, mean_interval(values, n_resamples, seed)))
    return columns


def paired(out: Outputs, base: Outputs, n_resamples: int, seed: int) -> dict[str, object]:
    """Drift (with its interval) and `<metric>_delta` = variant - baseline with paired intervals:
    sample metrics on the same half-samples (replicate differences), VAE metrics from per-image
    differences on the same images and posterior draws."""
    drift = drift_per_sample(out.images, base.images)  # (n_samples,)
    columns: dict[str, object] = {"output_drift_mse": float(drift.mean())}
    columns.update(ci_columns("output_drift_mse", mean_interval(drift, n_resamples, seed)))
    for metric, reps in out.replicates.items():
        delta = out.metrics[metric] - base.metrics[metric]
        interval = bootstrap_interval(delta, reps - base.replicates[metric])
        columns.update(delta_columns(metric, delta, interval))
    for metric, values in out.per_image.items():
        delta = out.metrics[metric] - base.metrics[metric]
        diff = values - base.per_image[metric]
        columns.update(delta_columns(metric, delta, mean_interval(diff, n_resamples, seed)))
    return columns
