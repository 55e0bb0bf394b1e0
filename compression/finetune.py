"""The one fine-tuning loop every method uses: Adam on the family's own loss, deterministic."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence

import torch
from torch import nn

from compression.api import CompressedModel, CompressionContext, MethodConfig
from genmodels.base import GenerativeModel
from genmodels.determinism import derived_seed, deterministic_scope, seeded_generator

ExtraLoss = Callable[[GenerativeModel, torch.Tensor, torch.Generator], torch.Tensor]


def _batches(n: int, batch_size: int, gen: torch.Generator) -> Iterator[torch.Tensor]:
    """Endless stream of index batches: a fresh permutation of range(n) per epoch."""
    while True:
        order = torch.randperm(n, generator=gen)
        for start in range(0, n - batch_size + 1, batch_size):
            yield order[start : start + batch_size]


def step_key(cm: CompressedModel, config: MethodConfig) -> tuple[int, str]:
    """(position in the pipeline, method): names a step's random streams. Settings are left out
    on purpose: variants of one step (sparsity 0.5 vs 0.9) see the same batches and z (common
    random numbers), while two steps of one pipeline never replay each other's."""
    return len(cm.steps), config.method


def finetune(
    model: GenerativeModel,
    ctx: CompressionContext,
    steps: int,
    lr: float,
    batch_size: int = 64,
    extra_loss: ExtraLoss | None = None,
    after_step: Callable[[GenerativeModel], None] | None = None,
    params: Iterable[nn.Parameter] | None = None,
    task_weight: float = 1.0,
    key: Sequence[object] = (),
) -> list[float]:
    """Minimise model.finetune_loss(x, g) (+ extra_loss(model, x, g)) with Adam for `steps` steps
    on batches of ctx.train_x; returns the loss per step.

    Deterministic: the batch order, the generator g of the losses (z, eps) and the global RNG
    (dropout) are seeded from derived_seed(ctx.seed, *key, stream), so a loop depends on nothing
    but its arguments, not on what ran before it in the process; the loop runs inside
    `deterministic_scope` (deterministic algorithms, a fixed thread count). `key` tells loops on
    the same ctx apart (`step_key(cm, config)`, plus the iteration for repeated loops).

    Only `params` are optimised (default: deployable() parameters that require grad). The
    deployable part is in train mode during the loop and everything outside it (the GAN's frozen
    discriminator) stays in eval mode; the whole model is in eval mode afterwards.
    `after_step(model)` runs after every optimizer step (pruning re-applies its masks there).
    `task_weight` scales the family's own loss (0 skips it; distillation uses it).
    A non-finite loss raises FloatingPointError naming the step.
    """
    if steps < 0 or lr <= 0 or batch_size < 1:
        raise ValueError(
            f"need steps >= 0, lr > 0, batch_size >= 1; got {steps}, {lr}, {batch_size}"
        )
    if steps == 0:
        return []
    if ctx.train_x is None or len(ctx.train_x) == 0:
        raise ValueError("fine-tuning needs training images: pass CompressionContext(train_x=...)")
    params = [
        p
        for p in (params if params is not None else model.deployable().parameters())
        if p.requires_grad
    ]
    if not params:
        raise ValueError("fine-tuning got no trainable parameters")
    device = next(model.parameters()).device
    data_gen = seeded_generator(ctx.seed, *key, "data")
    loss_gen = seeded_generator(ctx.seed, *key, "loss")  # z / eps draws inside the losses
    batch_size = min(batch_size, len(ctx.train_x))
    batches = _batches(len(ctx.train_x), batch_size, data_gen)
    optimizer = torch.optim.Adam(params, lr=lr)
    history: list[float] = []
    model.eval()
    model.deployable().train()
    scope = deterministic_scope(derived_seed(ctx.seed, *key, "global"), device)
    try:
        with scope, torch.enable_grad():  # grads on even under a caller's torch.no_grad()
            for step in range(steps):
                x = ctx.train_x[next(batches)].to(device)
                loss = torch.zeros((), device=device)
                if task_weight != 0:
                    loss = task_weight * model.finetune_loss(x, loss_gen)
                if extra_loss is not None:
                    loss = loss + extra_loss(model, x, loss_gen)
                value = float(loss.detach())
                if not math.isfinite(value):
                    raise FloatingPointError(f"non-finite fine-tuning loss {value} at step {step}")
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if after_step is not None:
                    with torch.no_grad():
                        after_step(model)
                history.append(value)
    finally:
        model.eval()
    return history
