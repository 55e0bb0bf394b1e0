"""The optimisation loop of every family: Adam on its objective, per-epoch curve, divergence."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm.auto import tqdm

from genmodels.base import GenerativeModel
from genmodels.curve_fid import SampleFn, eval_sampler
from genmodels.train_config import TrainConfig

# A loss this many times larger than the first step's (or NaN/inf) means training diverged:
# e.g. the GAN at lr=1e6 stays finite but reaches losses of 1e22 (measured), which no healthy
# run of these families comes near (GAN losses stay O(10), VAE losses shrink from the start).
DIVERGENCE_FACTOR = 1e6
EpochHook = Callable[[int, SampleFn], dict[str, float]]


class TrainingDiverged(RuntimeError):
    """A loss became NaN, infinite, or DIVERGENCE_FACTOR times its first value."""


def fit(
    model: GenerativeModel,
    train_x: torch.Tensor,
    config: TrainConfig,
    seed: int,
    device: str,
    progress: bool,
    curve_metrics: Callable[[int], EpochHook | None] | None = None,
) -> tuple[float, list[dict[str, float]]]:
    """Adam on the family's objective; returns the mean loss of the last epoch (GAN: G loss) and
    the training curve: per epoch, the mean loss (GAN: also d_loss; VAEs: recon, kl, beta).

    curve_metrics(epochs run) -> hook or None; the hook, called after each epoch with (epoch,
    sampler) where sampler(n, generator) draws n images from the model as it would be kept
    (the GAN's EMA generator), returns entries added to that epoch's point (e.g. fid_proxy).
    A hook must leave the training RNG and the weights alone (genmodels.curve_fid does)."""
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
        if config.ema_decay > 0:  # ddpm: the EMA of the deployed UNet is what is kept
            ema = AveragedModel(
                model.deployable(), multi_avg_fn=get_ema_multi_avg_fn(config.ema_decay),
                use_buffers=True,
            )
    n = train_x.shape[0]
    steps_per_epoch = math.ceil(n / config.batch_size)
    total = steps_per_epoch * config.epochs
    total = min(total, config.max_steps) if config.max_steps else total
    warmup_steps = config.kl_warmup_epochs * steps_per_epoch
    schedules = [
        torch.optim.lr_scheduler.LambdaLR(opt, _linear_decay(total, config.lr_decay_start))
        for opt in ((opt_g, opt_d) if is_gan else (opt_g,))
    ]
    ema_from = math.floor(config.ema_start * total)
    hook = curve_metrics(math.ceil(total / steps_per_epoch)) if curve_metrics else None
    sampler = _sampler(model, ema)
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
                if ema is not None and step >= ema_from:
                    ema.update_parameters(model.generator if is_gan else model.deployable())
                for schedule in schedules:
                    schedule.step()
                stats["loss"] = loss.item()
                for name, value in stats.items():
                    sums[name] = sums.get(name, 0.0) + value
                count += 1
                step += 1
                bar.update(1)
                bar.set_postfix(epoch=epoch, loss=f"{stats['loss']:.3f}")
            curve.append({"epoch": epoch, **{k: v / count for k, v in sorted(sums.items())}})
            if hook is not None:
                curve[-1].update(hook(epoch, sampler))
    if ema is not None:
        (model.generator if is_gan else model.deployable()).load_state_dict(ema.module.state_dict())
    return (curve[-1]["loss"] if curve else 0.0), curve


def _sampler(model: GenerativeModel, ema: AveragedModel | None) -> SampleFn:
    """Images from the model as it will be kept (the EMA generator when there is one), drawn
    in eval mode; an EMA that has not started yet (ema_start) scores the live generator."""
    if ema is None:
        return _at_curve_steps(model, eval_sampler(model, model.sample))

    def ema_sample(n: int, generator: torch.Generator) -> torch.Tensor:
        live = int(ema.n_averaged) == 0
        if model.family != "gan":  # ddpm: the whole sampler, with the EMA weights in the UNet
            return model.sample(n, generator) if live else _with_weights(model, ema.module, n,
                                                                           generator)
        return (model.generator if live else ema.module)(model.latent(n, generator))

    return _at_curve_steps(model, eval_sampler(model, eval_sampler(ema, ema_sample)))


def _at_curve_steps(model: GenerativeModel, sample: SampleFn) -> SampleFn:
    """`sample` at the model's `curve_steps` sampling steps when its class sets them (the ddpm:
    a curve point at its 50 DDIM steps costs ~30 CPU-s, at 10 about 6), else unchanged."""
    steps = getattr(model, "curve_steps", None)
    if steps is None:
        return sample

    def run(n: int, generator: torch.Generator) -> torch.Tensor:
        kept, model.steps = model.steps, steps
        try:
            return sample(n, generator)
        finally:
            model.steps = kept

    return run


def _with_weights(
    model: GenerativeModel, kept: torch.nn.Module, n: int, generator: torch.Generator
) -> torch.Tensor:
    """model.sample(n, generator) with deployable()'s tensors replaced by `kept`'s."""
    prefix = next(name for name, m in model.named_modules() if m is model.deployable())
    tensors = {f"{prefix}.{k}": v for k, v in kept.state_dict().items()}
    z = model.latent(n, generator)
    return torch.func.functional_call(model, tensors, (z,), strict=False)


def _linear_decay(total: int, start: float):
    """lr factor at step t: 1 until start * total, then linear to 0 at total (the last step
    trains at 1 / (decay steps) of the lr)."""
    begin = math.floor(start * total)
    span = max(1, total - begin)

    def factor(step: int) -> float:
        return min(1.0, (total - step) / span)

    return factor


def _check_loss(
    loss: torch.Tensor, epoch: int, step: int, what: str, first: dict[str, float]
) -> None:
    value = loss.item()
    scale = max(1.0, abs(first.setdefault(what, value))) if math.isfinite(value) else 1.0
    if not math.isfinite(value) or abs(value) > DIVERGENCE_FACTOR * scale:
        raise TrainingDiverged(
            f"{what} loss became {value:.4g} at epoch {epoch}, step {step}; lower the learning rate"
        )
