"""The training budget and hyper-parameters of one run (a frozen, hashable dataclass)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

# Fields added after train-v3: left out of the checkpoint key while at their default, so the
# keys (and cached checkpoints) of configs that do not use them stay as they were.
KEY_OPTIONAL_FIELDS = ("lr_decay_start", "ema_start")


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
    # Fraction of the steps after which every learning rate decays linearly to 0 at the last
    # step (1.0 = constant lr).
    lr_decay_start: float = 1.0
    # GAN: fraction of the steps before the generator's EMA starts (it starts as a copy then).
    ema_start: float = 0.0

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
        if not (0 <= self.lr_decay_start <= 1 and 0 <= self.ema_start < 1):
            raise ValueError(
                f"lr_decay_start must be in [0, 1] and ema_start in [0, 1) (fractions of the "
                f"steps), got {self.lr_decay_start}, {self.ema_start}"
            )
        if not (self.kl_warmup_epochs >= 0 and self.free_bits >= 0):
            raise ValueError(
                f"kl_warmup_epochs and free_bits must be >= 0, got "
                f"{self.kl_warmup_epochs}, {self.free_bits}"
            )
        items = (
            self.model_kwargs.items() if isinstance(self.model_kwargs, dict) else self.model_kwargs
        )
        object.__setattr__(self, "model_kwargs", tuple(sorted((str(k), v) for k, v in items)))


def key_fields(config: TrainConfig) -> dict[str, Any]:
    """The config as it enters the checkpoint key: asdict, minus KEY_OPTIONAL_FIELDS at default."""
    defaults = {f.name: f.default for f in fields(TrainConfig)}
    return {
        k: v for k, v in asdict(config).items()
        if not (k in KEY_OPTIONAL_FIELDS and v == defaults[k])
    }
