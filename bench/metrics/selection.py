"""A held-out FID-proxy for methods that choose among candidate models (CompressionContext.score).

quant_mixed builds a few bit allocations and keeps one; choosing by output drift keeps the model
close to fp32, which is not the same as keeping its samples good (issue 16: on the VAE at 4 bits
the least-drift allocation scored worse than uniform 4-bit). This score decides by the quantity
the benchmark reports, without touching what the benchmark reports it on: its latents come from
their own seed (SELECTION_SEED, not the evaluation's) and its real side is the training split,
never the test images. The candidates share the latents (common random numbers), so their
differences are far less noisy than each score. Selecting on it and then evaluating the winner
on the evaluation's latents and test images gives an unbiased figure for the chosen model.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from bench.metrics.quality import features_to_statistics, frechet_distance

SELECTION_SEED = 16_016  # any fixed seed distinct from the evaluation's (EvalSettings.seed)
SELECTION_BATCH = 500


class SelectionScore:
    """model -> FID-proxy of n samples from fixed latents against fixed real images' features.

    Callable with any GenerativeModel of one latent size; the real statistics are computed once."""

    def __init__(self, feature_fn: Callable[[torch.Tensor], np.ndarray], real_x: torch.Tensor,
                 n: int, seed: int = SELECTION_SEED) -> None:
        if n < 2 or real_x.shape[0] < 2:
            raise ValueError(f"need n >= 2 samples and >= 2 real images; got {n}, "
                             f"{real_x.shape[0]}")
        self.feature_fn = feature_fn
        self.n = n
        self.seed = seed
        real = np.asarray(feature_fn(real_x), dtype=np.float64)
        self.real_stats = features_to_statistics(real)

    @torch.no_grad()
    def __call__(self, model: nn.Module) -> float:
        was_training = model.training
        model.eval()
        try:
            z = model.latent(self.n, torch.Generator().manual_seed(self.seed))
            images = torch.cat([model(chunk).cpu() for chunk in torch.split(z, SELECTION_BATCH)])
        finally:
            model.train(was_training)
        fake = np.asarray(self.feature_fn(images), dtype=np.float64)
        if not np.isfinite(fake).all():
            return float("inf")  # a candidate that produces NaN/inf is never chosen
        return frechet_distance(*features_to_statistics(fake), *self.real_stats)
