"""The optimisation loop of every family: Adam on its objective, per-epoch curve, divergence."""

from __future__ import annotations

import math

import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm.auto import tqdm

from genmodels.base import GenerativeModel
from genmodels.train_config import TrainConfig

# A loss this many times larger than the first step's (or NaN/inf) means training diverged:
# e.g. the GAN at lr=1e6 stays finite but reaches losses of 1e22 (measured), which no healthy
# run of these families comes near (GAN losses stay O(10), VAE losses shrink from the start).
DIVERGENCE_FACTOR = 1e6


class TrainingDiverged(RuntimeError):
    """A loss became NaN, infinite, or DIVERGENCE_FACTOR times its first value."""


def fit(
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
