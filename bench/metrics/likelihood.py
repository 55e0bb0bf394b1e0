"""VAE likelihood metrics (reconstruction BCE, ELBO, IWAE bound) and output drift of a variant."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

DEFAULT_BATCH = 256  # images per forward: bounds memory, and fixes how the generator is consumed


def _batches(x: torch.Tensor, batch_size: int) -> list[torch.Tensor]:
    if x.ndim < 2 or x.shape[0] < 1:
        raise ValueError(f"x must be a non-empty batch (B, ...); got shape {tuple(x.shape)}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1; got {batch_size}")
    return list(torch.split(x, batch_size))


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def elbo_per_image(
    model: nn.Module, x: torch.Tensor, generator: torch.Generator, batch_size: int = DEFAULT_BATCH
) -> torch.Tensor:
    """model.elbo(x, generator) of every image, (N,) float64 on the CPU, in nats:
    E_q[log p(x|z)] - KL(q(z|x) || p(z)). The same generator state gives the same posterior
    draws, so two models' per-image values are paired (common random numbers)."""
    device = _device(model)
    return torch.cat(
        [model.elbo(xb.to(device), generator).double().cpu() for xb in _batches(x, batch_size)]
    )


def elbo_nats(
    model: nn.Module, x: torch.Tensor, generator: torch.Generator, batch_size: int = DEFAULT_BATCH
) -> float:
    """Mean over images of `elbo_per_image`, in nats/image."""
    return float(elbo_per_image(model, x, generator, batch_size).mean())


@torch.no_grad()
def recon_bce_per_image(
    model: nn.Module, x: torch.Tensor, batch_size: int = DEFAULT_BATCH
) -> torch.Tensor:
    """model.recon_bce(x) of every image, (N,) float64 on the CPU: BCE summed over pixels at
    z = mean of q(z|x), in nats. On non-binarized [0, 1] images this is not a normalised
    likelihood (continuous Bernoulli)."""
    return torch.cat(
        [model.recon_bce(xb.to(_device(model))).double().cpu() for xb in _batches(x, batch_size)]
    )


def recon_bce_nats(model: nn.Module, x: torch.Tensor, batch_size: int = DEFAULT_BATCH) -> float:
    """Mean over images of `recon_bce_per_image`, in nats/image."""
    return float(recon_bce_per_image(model, x, batch_size).mean())


@torch.no_grad()
def iwae_per_image(
    model: nn.Module,
    x: torch.Tensor,
    k: int,
    generator: torch.Generator,
    batch_size: int = DEFAULT_BATCH,
) -> torch.Tensor:
    """Importance-weighted bound (Burda et al. 2015, arXiv:1509.00519) of every image, (N,)
    float64 on the CPU:

    L_k(x) = logsumexp_i log w_i - log k,  log w_i = log p(x, z_i) - log q(z_i | x),
    z_i ~ q(z|x), i = 1..k, from model.log_weights(x, k, generator) -> (k, B). L_1 is the
    single-sample ELBO; E[L_k] is non-decreasing in k and <= log p(x). Images are processed in
    batches of max(1, batch_size // k) so that k * B stays bounded (k = 1 batches like the ELBO).
    """
    if k < 1:
        raise ValueError(f"k must be >= 1; got {k}")
    parts = []
    for xb in _batches(x, max(1, batch_size // k)):
        log_w = model.log_weights(xb.to(_device(model)), k, generator).double()  # (k, B)
        if log_w.shape != (k, xb.shape[0]):
            raise ValueError(
                f"log_weights must return (k, B) = {(k, xb.shape[0])}; got {tuple(log_w.shape)}"
            )
        parts.append((torch.logsumexp(log_w, dim=0) - math.log(k)).cpu())
    return torch.cat(parts)


def iwae_bound(
    model: nn.Module,
    x: torch.Tensor,
    k: int,
    generator: torch.Generator,
    batch_size: int = DEFAULT_BATCH,
) -> float:
    """Mean over images of `iwae_per_image`: the IWAE bound L_k in nats/image."""
    return float(iwae_per_image(model, x, k, generator, batch_size).mean())


def nll_iwae_nats(
    model: nn.Module,
    x: torch.Tensor,
    k: int,
    generator: torch.Generator,
    batch_size: int = DEFAULT_BATCH,
) -> float:
    """Negative log-likelihood estimate -L_k in nats/image (an upper bound on the true NLL)."""
    return -iwae_bound(model, x, k, generator, batch_size)


def reconstruct(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """VAE reconstruction at the posterior mean: sigmoid(decode(mu)), mu from encode(x)."""
    if not (hasattr(model, "encode") and hasattr(model, "decode")):
        raise ValueError(f"{type(model).__name__} has no encode/decode: reconstructions need a VAE")
    mu, _ = model.encode(x)
    return torch.sigmoid(model.decode(mu))


def drift_per_sample(outputs: torch.Tensor, reference: torch.Tensor) -> np.ndarray:
    """Mean squared difference of each output from its reference, (N,) float64: the per-sample
    terms of `output_drift` (equal sizes, so their mean is the drift)."""
    if outputs.shape != reference.shape:
        raise ValueError(
            f"outputs and reference differ in shape: {tuple(outputs.shape)} vs "
            f"{tuple(reference.shape)}"
        )
    diff = outputs.double().cpu() - reference.double().cpu()
    return diff.pow(2).flatten(1).mean(1).numpy()


@torch.no_grad()
def output_drift(
    model: nn.Module,
    baseline: nn.Module,
    z: torch.Tensor | None = None,
    x: torch.Tensor | None = None,
    batch_size: int = DEFAULT_BATCH,
) -> float:
    """Mean squared difference between the compressed and the uncompressed model's outputs on the
    same inputs (common random numbers): samples model(z) vs baseline(z) when z is given, VAE
    reconstructions `reconstruct(model, x)` vs `reconstruct(baseline, x)` when x is given."""
    if (z is None) == (x is None):
        raise ValueError("give exactly one of z (samples) or x (reconstructions)")
    inputs = z if z is not None else x
    total, count = 0.0, 0
    for chunk in _batches(inputs, batch_size):
        if z is not None:
            out, ref = model(chunk.to(_device(model))), baseline(chunk.to(_device(baseline)))
        else:
            out = reconstruct(model, chunk.to(_device(model)))
            ref = reconstruct(baseline, chunk.to(_device(baseline)))
        if out.shape != ref.shape:
            raise ValueError(
                "model and baseline outputs differ in shape: "
                f"{tuple(out.shape)} vs {tuple(ref.shape)}"
            )
        total += (out.double() - ref.to(out.device).double()).pow(2).sum().item()
        count += out.numel()
    return total / count
