"""Deterministic, cached training of the reference models (checkpoints keyed by a config hash)."""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from genmodels.base import GenerativeModel
from genmodels.cache import CorruptCacheError, cache_dir, config_hash, load_tensors, save_tensors
from genmodels.curve_fid import CURVE_FID_POINTS, CURVE_FID_SAMPLES, epoch_fid_for
from genmodels.data import Dataset
from genmodels.determinism import deterministic_scope
from genmodels.fit import DIVERGENCE_FACTOR, TrainingDiverged, fit  # noqa: F401 - public here
from genmodels.models import MODELS, build_model
from genmodels.recipes import DEFAULT_TRAIN, SMOKE_TRAIN  # noqa: F401 - public here
from genmodels.train_config import TrainConfig, key_fields

# Bump whenever a change here or in the models alters what a given config trains to.
# v2: deterministic_scope (1 thread, deterministic algorithms); v3: issue 13 recipes (SN-GAN with
# DiffAugment and EMA, KL warm-up / free bits), per-epoch training curves in the metadata.
CODE_VERSION = "train-v3"
TRAININGS_RUN = 0  # real trainings in this process (cache hits excluded); read by grid tests


@dataclass
class TrainedModel:
    """A trained model (eval mode) and how it was obtained: seconds, cached, checkpoint,
    final_loss, key."""

    model: GenerativeModel
    info: dict[str, Any] = field(default_factory=dict)


def checkpoint_key(
    family: str, dataset: Dataset, config: TrainConfig, seed: int, width: float
) -> str:
    """Hash of everything that determines the trained weights (the dataset's content included)."""
    return config_hash(
        {
            "family": family,
            "width": float(width),
            "dataset": dataset.name,
            "data": dataset.fingerprint,
            "config": key_fields(config),
            "seed": int(seed),
            "code": CODE_VERSION,
        }
    )


def checkpoint_path(family: str, key: str) -> Path:
    path = cache_dir() / "checkpoints" / f"{family}-{key}.safetensors"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def train_model(
    family: str,
    dataset: Dataset,
    config: TrainConfig,
    seed: int,
    width: float = 1.0,
    device: str = "cpu",
    progress: bool = True,
    curve_fid: bool = True,
) -> TrainedModel:
    """Train `MODELS[family]` on dataset.train_x, or load its cached checkpoint. curve_fid: score
    the FID-proxy into the training curve (genmodels.curve_fid; needs a shipped feature net,
    leaves the weights unchanged)."""
    if family not in MODELS:
        raise ValueError(f"unknown model family {family!r}; allowed: {', '.join(sorted(MODELS))}")
    key = checkpoint_key(family, dataset, config, seed, width)
    path = checkpoint_path(family, key)
    with torch.random.fork_rng(devices=[]):  # seeded init without touching the caller's RNG
        torch.manual_seed(seed)
        model = build_model(
            family,
            image_shape=dataset.image_shape,
            latent_dim=config.latent_dim,
            width=width,
            **dict(config.model_kwargs),
        )
    start = time.perf_counter()
    if path.exists():
        try:
            tensors, meta = load_tensors(path)
            model.load_state_dict(tensors)
            model.to(device).eval()
            return TrainedModel(
                model,
                {
                    "seconds": time.perf_counter() - start,
                    "cached": True,
                    "checkpoint": str(path),
                    "final_loss": meta.get("final_loss"),
                    "key": key,
                    "train_seconds": meta.get("seconds"),
                    "curve": meta.get("curve", []),
                    **_fid_samples(meta.get("curve", [])),
                },
            )
        except (CorruptCacheError, RuntimeError, KeyError):
            pass  # corrupt, foreign or stale file: retrain and overwrite it below
    model.to(device)
    # Seeded global RNG for any use in training (row dropout), a fixed thread count (the
    # checkpoint must not depend on the process that trained it); grads on even if the caller
    # runs under torch.no_grad().
    with deterministic_scope(seed, device), torch.enable_grad():
        points = getattr(model, "curve_fid_points", CURVE_FID_POINTS)  # a class attribute
        hooks = functools.partial(epoch_fid_for, dataset, points=points) if curve_fid else None
        final_loss, curve = fit(model, dataset.train_x, config, seed, device, progress, hooks)
    seconds = time.perf_counter() - start
    global TRAININGS_RUN
    TRAININGS_RUN += 1
    save_tensors(
        path,
        model.state_dict(),
        {"family": family, "final_loss": final_loss, "seconds": seconds, "key": key,
         "curve": curve},
    )
    extra = _fid_samples(curve)
    return TrainedModel(
        model.eval(),
        {
            "seconds": seconds,
            "cached": False,
            "checkpoint": str(path),
            "final_loss": final_loss,
            "key": key,
            "curve": curve,
            **extra,
        },
    )


def _fid_samples(curve: list[dict[str, float]]) -> dict[str, int]:
    """{"curve_fid_samples": n} when the curve holds a FID-proxy (n samples per point), else {}."""
    return {"curve_fid_samples": CURVE_FID_SAMPLES} if any("fid_proxy" in p for p in curve) else {}
