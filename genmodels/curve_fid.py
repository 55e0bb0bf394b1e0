"""FID-proxy during training: a fixed latent batch scored by the shipped feature net, own RNG.

`EpochFid` is the hook `genmodels.fit.fit` calls after every epoch with a sampler
`(n, generator) -> images` (the GAN's EMA generator, a VAE's prior samples, any family's
`sample`). On the scored epochs it draws CURVE_FID_SAMPLES images from a generator seeded with
CURVE_FID_SEED (the same z every time, so the curve moves with the model, not with the draw),
under a forked global RNG and with the sampled module in eval mode: it consumes none of the
training's random numbers and updates no BatchNorm statistics, so the trained weights are the
same with and without it (tests/genmodels/test_gm_curve_fid.py checks bit-identity).

The score is the FID-proxy of bench.metrics.quality against the test split, on fewer samples
than the evaluation's 1,000: FID is biased upwards at small N, so the curve reads as a trend
(it falls while the model improves), not as the cell's FID-proxy. Only a shipped feature net
is used (genmodels.yardstick): training one here would cost more than the run it watches.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from scipy import linalg

from genmodels.data import Dataset
from genmodels.features import FeatureNet, feature_recipe, new_feature_net
from genmodels.yardstick import read_shipped, shipped_files

CURVE_FID_SAMPLES = 500
CURVE_FID_SEED = 20_13  # issue 13; any fixed seed, distinct from the evaluation's
CURVE_FID_POINTS = 20  # at most this many scored epochs per run (every k-th epoch, the last)
SampleFn = Callable[[int, torch.Generator], torch.Tensor]


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray
) -> float:
    """d^2 = ||mu1 - mu2||^2 + Tr S1 + Tr S2 - 2 Tr (S1 S2)^(1/2) (Heusel et al. 2017,
    arXiv:1706.08500), Tr (S1 S2)^(1/2) as the sum of square roots of the eigenvalues of S1 S2
    (real, >= 0 up to round-off). The same formula as bench.metrics.quality.frechet_distance
    (the tests check agreement); restated here because genmodels may not import bench."""
    eigenvalues = linalg.eigvals(sigma1 @ sigma2).astype(np.complex128)
    trace_sqrt = float(np.sqrt(eigenvalues).real.sum())
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * trace_sqrt)


def shipped_net(dataset: Dataset) -> FeatureNet | None:
    """The verified shipped feature net of `dataset` whose recipe matches, else None."""
    recipe = feature_recipe(dataset)
    for path in shipped_files(dataset.name):
        tensors, meta, _ = read_shipped(path)
        if meta.get("recipe") == recipe:
            net = new_feature_net(dataset)
            net.load_state_dict(tensors)
            return net.eval()
    return None


def scored_epochs(epochs: int, points: int = CURVE_FID_POINTS) -> list[int]:
    """Every k-th epoch (0-based: k-1, 2k-1, ...) and the last, k = ceil(epochs / points)."""
    every = -(-epochs // points)
    return sorted({*range(every - 1, epochs, every), epochs - 1})


class EpochFid:
    """Per-epoch FID-proxy of a training run; call with (epoch, sampler) -> {"fid_proxy": ...}
    on scored epochs, {} on the others."""

    def __init__(
        self, net: FeatureNet, real_x: torch.Tensor, epochs: int,
        n_samples: int = CURVE_FID_SAMPLES, points: int = CURVE_FID_POINTS,
    ) -> None:
        if n_samples < 2:
            raise ValueError(f"n_samples must be >= 2 (a covariance), got {n_samples}")
        self.net, self.n_samples = net.eval(), int(n_samples)
        self.epochs = set(scored_epochs(epochs, points))
        self.real = _statistics(self._features(real_x))

    def _features(self, x: torch.Tensor) -> np.ndarray:
        with torch.no_grad():
            return self.net.features(x.to(next(self.net.parameters()).device)).double().numpy()

    def __call__(self, epoch: int, sample: SampleFn) -> dict[str, float]:
        if epoch not in self.epochs:
            return {}
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            images = sample(self.n_samples, torch.Generator().manual_seed(CURVE_FID_SEED))
        return {"fid_proxy": frechet_distance(*_statistics(self._features(images.cpu())),
                                              *self.real)}


def _statistics(feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return feats.mean(axis=0), np.atleast_2d(np.cov(feats, rowvar=False))


def epoch_fid_for(
    dataset: Dataset, epochs: int, points: int = CURVE_FID_POINTS
) -> EpochFid | None:
    """The hook for a run of `epochs` epochs on `dataset`, None without a shipped feature net.
    A family whose sampling is costly (many denoising steps) sets a class attribute
    `curve_fid_points` below CURVE_FID_POINTS; genmodels.train passes it here."""
    net = shipped_net(dataset)
    return None if net is None else EpochFid(net, dataset.test_x, epochs, points=points)


def eval_sampler(module: torch.nn.Module, sample: SampleFn) -> SampleFn:
    """`sample` run with `module` in eval mode (BatchNorm uses, and never updates, its running
    statistics; dropout off), its previous mode restored afterwards."""

    def run(n: int, generator: torch.Generator) -> torch.Tensor:
        was_training = module.training
        module.eval()
        try:
            return sample(n, generator)
        finally:
            module.train(was_training)

    return run
