"""Deterministic, cached training of the reference models (checkpoints keyed by a config hash)."""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm.auto import tqdm

from genmodels.base import GenerativeModel
from genmodels.cache import CorruptCacheError, cache_dir, config_hash, load_tensors, save_tensors
from genmodels.data import Dataset
from genmodels.determinism import deterministic_scope
from genmodels.models import MODELS, build_model

# Bump whenever a change here or in the models alters what a given config trains to.
# v2: deterministic_scope (1 thread, deterministic algorithms); v3: issue 13 recipes (SN-GAN with
# DiffAugment and EMA, KL warm-up / free bits), per-epoch training curves in the metadata.
CODE_VERSION = "train-v3"
TRAININGS_RUN = 0  # real trainings in this process (cache hits excluded); read by grid tests


# A loss this many times larger than the first step's (or NaN/inf) means training diverged:
# e.g. the GAN at lr=1e6 stays finite but reaches losses of 1e22 (measured), which no healthy
# run of these families comes near (GAN losses stay O(10), VAE losses shrink from the start).
DIVERGENCE_FACTOR = 1e6


class TrainingDiverged(RuntimeError):
    """A loss became NaN, infinite, or DIVERGENCE_FACTOR times its first value."""


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation budget and hyper-parameters of one training run (Adam on every family).

    model_kwargs: family-specific constructor kwargs (e.g. {"cell": "lstm"} for rvae), stored as
    sorted (key, value) pairs so the config stays hashable; a dict is accepted."""

    epochs: int
    batch_size: int
    lr: float
    latent_dim: int
    beta1: float = 0.9
    beta2: float = 0.999
    max_steps: int | None = None  # cap on optimiser steps (tiny smoke budgets); None = all epochs
    model_kwargs: tuple[tuple[str, Any], ...] = ()
    # GAN: decay of the generator's weight EMA (0 = keep the last iterate); the EMA is saved.
    ema_decay: float = 0.0
    # VAEs: KL weight beta rises linearly from 0 to 1 over this many epochs (0 = ELBO throughout).
    kl_warmup_epochs: float = 0.0
    # VAEs: free bits, nats per latent dimension below which the KL is not penalised.
    free_bits: float = 0.0

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.latent_dim < 1:
            raise ValueError(
                f"epochs, batch_size and latent_dim must be >= 1, got "
                f"{self.epochs}, {self.batch_size}, {self.latent_dim}"
            )
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be a finite number > 0, got {self.lr}")
        if not (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1):
            raise ValueError(f"beta1 and beta2 must be in [0, 1), got {self.beta1}, {self.beta2}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"max_steps must be >= 1 or None, got {self.max_steps}")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"ema_decay must be in [0, 1) (0 = no EMA), got {self.ema_decay}")
        if not (self.kl_warmup_epochs >= 0 and self.free_bits >= 0):
            raise ValueError(
                f"kl_warmup_epochs and free_bits must be >= 0, got "
                f"{self.kl_warmup_epochs}, {self.free_bits}"
            )
        items = (
            self.model_kwargs.items() if isinstance(self.model_kwargs, dict) else self.model_kwargs
        )
        object.__setattr__(self, "model_kwargs", tuple(sorted((str(k), v) for k, v in items)))


# Measured on the 2-core reference machine, mnist5k, 1 thread, seed 0, FID-proxy of 1,000 samples
# on the shipped feature net (floor ~10, untrained GAN 1,206), test ELBO in nats/image, CPU s of
# training (wall s on the loaded machine is 2-4x that). Re-measure when changing.
# train-v2 (15/12/20 epochs, no recipes): gan 98 s, FID 184; vae 38 s, FID 267, ELBO -115.4;
# rvae 67 s, FID 300, ELBO -92.8, KL 3.6.
# gan: spectral-norm D + DiffAugment + generator EMA (genmodels/models/gan.py). Ablations, FID:
#   20 epochs b64 EMA .995 (1,260 steps): 218 (76 s); 40 epochs b32 EMA .999 (5,000 steps): 126
#   (177 s); same without SN: 152, SN on the convs only: 132 (SN buys ~26); D 64 channels: 125
#   (without cutout 127; 290 s), G 64 channels: 127 (260 s): width does not help, steps do;
#   BN statistics recomputed for the EMA weights: 125 (no gain); 80 epochs b32: 112 (323 s);
#   40 epochs b16 (10,000 steps): 111 (212 s), lr 4e-4: 98, betas (0, 0.9): 106, both: 92;
#   lr 8e-4: 85 (1.6e-3: 85); betas (0, 0.9) with lr 8e-4: 74.5 (every digit 5-15%; EMA .9995:
#   77), lr 1.6e-3: 67.5 (196 s; 50 epochs: 61.6, 256 s), lr 3.2e-3 (kept): 63.0 (206 s; 9 digits
#   at 5-15%, "9" 15.5%; classifier confidence 0.873).
# vae: KL warm-up over 5 epochs and 80 epochs (30: FID 180, ELBO -110.2): 125 s, FID 122,
#   ELBO -107.5, KL 25.0, all 10 digits present (confidence 0.78).
# rvae: free bits 0.7 nats/dim (KL floor 11.2), KL annealing over 10 epochs, row dropout 0.25,
#   45 epochs: 105 s, FID 99, ELBO -89.5, KL 11.4. Row dropout 0.5, free bits 0.75, 20 epochs
#   gave KL 12.2 but ELBO -101.9 and FID 313 (the decoder starved of its previous row).
DEFAULT_TRAIN: dict[str, TrainConfig] = {
    "gan": TrainConfig(
        epochs=40, batch_size=16, lr=3.2e-3, latent_dim=32, beta1=0.0, beta2=0.9,
        ema_decay=0.999,
    ),
    "vae": TrainConfig(epochs=80, batch_size=64, lr=1e-3, latent_dim=16, kl_warmup_epochs=5),
    "rvae": TrainConfig(
        epochs=45, batch_size=64, lr=2e-3, latent_dim=16, kl_warmup_epochs=10, free_bits=0.7,
        model_kwargs={"row_dropout": 0.25},
    ),
}
# Smoke: the recipes' EMA (horizon ~50 of the GAN's 126 steps), warm-up and free bits on a few
# epochs, with train-v2's optimiser settings (the pipeline is under test, not the quality).
SMOKE_TRAIN: dict[str, TrainConfig] = {
    "gan": TrainConfig(
        epochs=2, batch_size=64, lr=2e-4, latent_dim=32, beta1=0.5, ema_decay=0.98
    ),
    "vae": TrainConfig(epochs=3, batch_size=64, lr=1e-3, latent_dim=16, kl_warmup_epochs=1),
    "rvae": TrainConfig(
        epochs=2, batch_size=64, lr=2e-3, latent_dim=16, kl_warmup_epochs=1, free_bits=0.7,
        model_kwargs={"row_dropout": 0.25},
    ),
}


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
            "config": asdict(config),
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
) -> TrainedModel:
    """Train `MODELS[family]` on dataset.train_x, or load its cached checkpoint."""
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
                },
            )
        except (CorruptCacheError, RuntimeError, KeyError):
            pass  # corrupt, foreign or stale file: retrain and overwrite it below
    model.to(device)
    # Seeded global RNG for any use in training (row dropout), a fixed thread count (the
    # checkpoint must not depend on the process that trained it); grads on even if the caller
    # runs under torch.no_grad().
    with deterministic_scope(seed, device), torch.enable_grad():
        final_loss, curve = _fit(model, dataset.train_x, config, seed, device, progress)
    seconds = time.perf_counter() - start
    global TRAININGS_RUN
    TRAININGS_RUN += 1
    save_tensors(
        path,
        model.state_dict(),
        {"family": family, "final_loss": final_loss, "seconds": seconds, "key": key,
         "curve": curve},
    )
    return TrainedModel(
        model.eval(),
        {
            "seconds": seconds,
            "cached": False,
            "checkpoint": str(path),
            "final_loss": final_loss,
            "key": key,
            "curve": curve,
        },
    )


def _fit(
    model: GenerativeModel,
    train_x: torch.Tensor,
    config: TrainConfig,
    seed: int,
    device: str,
    progress: bool,
) -> tuple[float, list[dict[str, float]]]:
    """Adam on the family's objective; returns the mean loss of the last epoch (GAN: G loss) and
    the training curve: per epoch, the mean loss (GAN: also d_loss; VAEs: recon, kl, beta)."""
    gen = torch.Generator().manual_seed(seed)  # data order and every z / eps / augmentation draw
    is_gan = model.family == "gan"
    betas = (config.beta1, config.beta2)
    ema = None
    if is_gan:
        opt_g = torch.optim.Adam(model.generator.parameters(), lr=config.lr, betas=betas)
        opt_d = torch.optim.Adam(model.discriminator.parameters(), lr=config.lr, betas=betas)
        if config.ema_decay > 0:  # BatchNorm statistics are averaged with the weights
            ema = AveragedModel(
                model.generator, multi_avg_fn=get_ema_multi_avg_fn(config.ema_decay),
                use_buffers=True,
            )
    else:
        opt_g = torch.optim.Adam(model.parameters(), lr=config.lr, betas=betas)
    n = train_x.shape[0]
    steps_per_epoch = math.ceil(n / config.batch_size)
    total = steps_per_epoch * config.epochs
    total = min(total, config.max_steps) if config.max_steps else total
    warmup_steps = config.kl_warmup_epochs * steps_per_epoch
    model.train()
    step, first, curve = 0, {}, []
    with tqdm(total=total, disable=not progress, desc=f"train {model.family}", leave=False) as bar:
        for epoch in range(config.epochs):
            if step >= total:
                break
            order, sums, count = torch.randperm(n, generator=gen), {}, 0
            for i in range(steps_per_epoch):
                if step >= total:
                    break
                x = train_x[order[i * config.batch_size : (i + 1) * config.batch_size]].to(device)
                stats: dict[str, float] = {}
                if is_gan:
                    opt_d.zero_grad(set_to_none=True)
                    d_loss = model.discriminator_loss(x, gen)
                    _check_loss(d_loss, epoch, step, "discriminator", first)
                    d_loss.backward()
                    opt_d.step()
                    stats["d_loss"] = d_loss.item()
                opt_g.zero_grad(set_to_none=True)
                if model.is_vae:
                    beta = min(1.0, (step + 1) / warmup_steps) if warmup_steps > 0 else 1.0
                    loss, parts = model.training_loss(x, gen, beta, config.free_bits)
                    stats.update(parts, beta=beta)
                else:
                    loss = model.finetune_loss(x, gen)
                _check_loss(loss, epoch, step, "generator" if is_gan else "negative ELBO", first)
                loss.backward()
                opt_g.step()
                if ema is not None:
                    ema.update_parameters(model.generator)
                stats["loss"] = loss.item()
                for name, value in stats.items():
                    sums[name] = sums.get(name, 0.0) + value
                count += 1
                step += 1
                bar.update(1)
                bar.set_postfix(epoch=epoch, loss=f"{stats['loss']:.3f}")
            curve.append({"epoch": epoch, **{k: v / count for k, v in sorted(sums.items())}})
    if ema is not None:
        model.generator.load_state_dict(ema.module.state_dict())
    return (curve[-1]["loss"] if curve else 0.0), curve


def _check_loss(
    loss: torch.Tensor, epoch: int, step: int, what: str, first: dict[str, float]
) -> None:
    value = loss.item()
    scale = max(1.0, abs(first.setdefault(what, value))) if math.isfinite(value) else 1.0
    if not math.isfinite(value) or abs(value) > DIVERGENCE_FACTOR * scale:
        raise TrainingDiverged(
            f"{what} loss became {value:.4g} at epoch {epoch}, step {step}; lower the learning rate"
        )
