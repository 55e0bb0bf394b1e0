"""Sample metrics (FD, KID, P/R, D/C) on resampled replicates, gathered from precomputed matrices.

A replicate is a weight vector w (n,) over a feature set. The resampling used is half-sampling:
a random half of the points, drawn without replacement (w in {0, 1}, sum w = n // 2), for the
generated and the real set independently. Why halves and not the n-out-of-n bootstrap:
- no duplicates: with resampling with replacement a point drawn k+1 times gets a k-NN radius of
  0, and counting copies as one point makes the balls those of ~0.63 n points; both mis-scale
  P/R and D/C (bootstrap density came out 1.7x too spread);
- the finite-population correction (1 - m/n) / m of a mean over m = n/2 of n points is 1/n: the
  spread of a half-sample mean around the full-sample mean equals the spread of the full-sample
  mean itself, and for a two-sample statistic the interaction term is matched as well
  (McCarthy 1969, "Pseudo-replication: half-samples"; Politis & Romano 1994 subsampling).
Each metric is written as a function of (w_real, w_fake) over matrices computed once per feature
set, so a replicate costs a gather and a reduction, not a new cdist or kernel matrix:
- FD: weighted mean and covariance; Tr (S_r S_f)^(1/2) from eigvalsh(S_r^(1/2) S_f S_r^(1/2)),
  S_r^(1/2) of every real replicate computed once (the real halves are shared by all cells).
- KID: the unbiased MMD^2 of the halves, (w'Kw - sum_i w_i K_ii) / (m^2 - m) within a set.
- P/R, D/C: k-NN radii among the points of the half (from each point's sorted neighbour list);
  ball membership only needs the (real, fake) pairs within the largest radius a point takes in
  any replicate, so each replicate is a gather over those pairs.
With all weights 1 every function returns the full-sample metric of bench.metrics.quality.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from scipy.spatial.distance import cdist

from bench.metrics.quality import _kernel

SAMPLE_METRICS = ("fid_proxy", "kid_proxy", "precision", "recall", "density", "coverage")
PAIR_CHUNK = 5_000_000  # replicate x pair elements per chunk: bounds the temporaries to ~200 MB


def _neighbours(feats: np.ndarray, depth: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's `depth` nearest neighbours in its own set, self excluded: sorted (n, depth)."""
    distances = cdist(feats, feats)
    np.fill_diagonal(distances, np.inf)
    idx = np.argpartition(distances, depth - 1, axis=1)[:, :depth]
    dist = np.take_along_axis(distances, idx, axis=1)
    order = np.argsort(dist, axis=1, kind="stable")
    return np.take_along_axis(idx, order, axis=1), np.take_along_axis(dist, order, axis=1)


def _radii(nbr_idx: np.ndarray, nbr_dist: np.ndarray, present: np.ndarray, k: int) -> np.ndarray:
    """(B, n) distance to the k-th nearest PRESENT neighbour (self excluded) in each replicate.
    If fewer than k of the listed neighbours are present (probability < 1e-14 for halves at the
    depth used), the last listed distance stands in: a lower bound of the true radius."""
    hit = present[:, nbr_idx]  # (B, n, depth)
    rank = np.cumsum(hit, axis=2, dtype=np.int16)
    position = np.argmax(rank >= k, axis=2)  # first column where k present neighbours are seen
    position = np.where(rank[..., -1] >= k, position, nbr_idx.shape[1] - 1)
    return nbr_dist[np.arange(nbr_idx.shape[0])[None, :], position]


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """torch on one thread inside: the replicates are many small (d, d) products and eigenproblems
    that gain nothing from threads, and on a loaded 2-core machine two OpenMP threads spinning
    made them 15x slower (measured); one thread also makes the sums thread-count independent."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def half_samples(n: int, n_resamples: int, seed: int | list[int]) -> np.ndarray:
    """(n_resamples, n) 0/1 masks of random halves (n // 2 points, without replacement)."""
    if n < 2 or n_resamples < 1:
        raise ValueError(f"need n >= 2 and n_resamples >= 1; got {n}, {n_resamples}")
    order = np.argsort(np.random.default_rng(seed).random((n_resamples, n)), axis=1)
    masks = np.zeros((n_resamples, n), dtype=np.int64)
    np.put_along_axis(masks, order[:, : n // 2], 1, axis=1)
    return masks


def _depth(n: int, k: int) -> int:
    return min(n - 1, 10 * k + 20)


def _any_by_group(inside: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    """(B, n_groups) any() of inside (B, P) over the pairs of each group; groups sorted."""
    out = np.zeros((inside.shape[0], n_groups), dtype=bool)
    if groups.size:
        starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
        out[:, groups[starts]] = np.logical_or.reduceat(inside, starts, axis=1)
    return out


@dataclass
class _Side:
    """One feature set with its replicate multiplicities and everything a replicate gathers."""

    feats: np.ndarray  # (n, d)
    weights: np.ndarray  # (B, n) 0/1 half-sample masks (all 1: the full set)
    radii: dict[int, np.ndarray]  # k -> (B, n) k-NN radii among the points present
    kernel_self: np.ndarray  # (B,) unbiased within-set kernel mean over pairs i != j
    mean: torch.Tensor  # (B, d)
    cov: torch.Tensor  # (B, d, d)

    @classmethod
    def build(cls, feats: np.ndarray, weights: np.ndarray, ks: tuple[int, ...]) -> _Side:
        n = feats.shape[0]
        nbr_idx, nbr_dist = _neighbours(feats, _depth(n, max(ks)))
        present = weights > 0
        radii = {k: _radii(nbr_idx, nbr_dist, present, k) for k in ks}
        x = torch.from_numpy(feats)
        w = torch.from_numpy(weights).double()
        kernel = _kernel(x, x)
        size, sq = w.sum(1), (w * w).sum(1)  # (B,) sample size and sum of squared weights
        quad = ((w @ kernel) * w).sum(1) - (w * w) @ kernel.diagonal()
        kernel_self = (quad / (size * size - sq)).numpy()
        centred = x - x.mean(0)  # centring first keeps the weighted covariance well conditioned
        mean = w @ centred / size[:, None]
        # The (B, d, d) Gram matrices in float32 (3x faster; relative error ~1e-6 of the trace,
        # far below a replicate's spread); every other step in float64.
        low = centred.float()
        gram = ((low.T[None] * w.float()[:, None, :]) @ low).double()  # sum_i w_i x_i x_i^T
        outer = mean[:, :, None] * mean[:, None, :]
        cov = (gram - size[:, None, None] * outer) / (size - 1)[:, None, None]
        return cls(feats, weights, radii, kernel_self, mean + x.mean(0), cov)


class ReplicateMetrics:
    """The real side of every replicate, computed once; `replicates(fake, fake_masks)` gives
    (B,) arrays of the sample metrics for one generated feature set."""

    def __init__(
        self, real: np.ndarray, real_masks: np.ndarray, pr_k: int = 3, dc_k: int = 5
    ) -> None:
        self.pr_k, self.dc_k = pr_k, dc_k
        with one_thread():
            self.real = _Side.build(np.asarray(real, np.float64), real_masks, (pr_k, dc_k))
            values, vectors = torch.linalg.eigh(self.real.cov)
            self.real_sqrt = vectors * values.clamp_min(0).sqrt()[:, None, :] @ vectors.mT

    def replicates(self, fake: np.ndarray, fake_masks: np.ndarray) -> dict[str, np.ndarray]:
        """(B,) replicate values of every metric in SAMPLE_METRICS."""
        if fake_masks.shape[0] != self.real.weights.shape[0]:
            raise ValueError(
                f"fake_masks has {fake_masks.shape[0]} replicates; the real side has "
                f"{self.real.weights.shape[0]}: pair every fake replicate with a real one"
            )
        with one_thread():
            fake_side = _Side.build(np.asarray(fake, np.float64), fake_masks, (self.pr_k,))
            out = {"fid_proxy": self._fd(fake_side), "kid_proxy": self._kid(fake_side)}
            out.update(self._balls(fake_side, cdist(self.real.feats, fake_side.feats)))
        return out

    def _fd(self, fake: _Side) -> np.ndarray:
        real = self.real
        product = self.real_sqrt @ fake.cov @ self.real_sqrt  # symmetric PSD, similar to S_r S_f
        tr_sqrt = torch.linalg.eigvalsh(product).clamp_min(0).sqrt().sum(1)
        diff = fake.mean - real.mean
        traces = fake.cov.diagonal(dim1=1, dim2=2).sum(1) + real.cov.diagonal(dim1=1, dim2=2).sum(1)
        return ((diff * diff).sum(1) + traces - 2 * tr_sqrt).numpy()

    def _kid(self, fake: _Side) -> np.ndarray:
        x, y = torch.from_numpy(self.real.feats), torch.from_numpy(fake.feats)
        w_real = torch.from_numpy(self.real.weights).double()
        w_fake = torch.from_numpy(fake.weights).double()
        cross = ((w_real @ _kernel(x, y)) * w_fake).sum(1) / (w_real.sum(1) * w_fake.sum(1))
        return self.real.kernel_self + fake.kernel_self - 2 * cross.numpy()

    def _balls(self, fake: _Side, distances: np.ndarray) -> dict[str, np.ndarray]:
        real, n_real, n_fake = self.real, *distances.shape
        r_pr, r_dc, f_pr = real.radii[self.pr_k], real.radii[self.dc_k], fake.radii[self.pr_k]
        reach = np.maximum(r_pr.max(0), r_dc.max(0))  # the largest ball of each real point
        ri, fj = np.nonzero(distances <= reach[:, None])  # sorted by real index
        by_fake = np.argsort(fj, kind="stable")
        rr, rf = np.nonzero(distances <= f_pr.max(0)[None, :])  # fake balls, sorted by real
        w_real, w_fake = real.weights, fake.weights
        result: dict[str, list[np.ndarray]] = {m: [] for m in SAMPLE_METRICS[2:]}
        pairs = max(ri.size, rr.size, 1)
        step = max(1, PAIR_CHUNK // pairs)
        for b in range(0, w_real.shape[0], step):
            sl = slice(b, b + step)
            real_in = (w_real[sl] > 0)[:, ri]
            fake_in = (w_fake[sl] > 0)[:, fj]
            d_real = distances[ri, fj]
            inside_pr = real_in & (d_real <= r_pr[sl][:, ri])
            covered_fake = _any_by_group(inside_pr[:, by_fake], fj[by_fake], n_fake)
            size_real, size_fake = w_real[sl].sum(1), w_fake[sl].sum(1)
            result["precision"].append((w_fake[sl] * covered_fake).sum(1) / size_fake)
            inside_fake = (w_fake[sl] > 0)[:, rf] & (distances[rr, rf] <= f_pr[sl][:, rf])
            covered_real = _any_by_group(inside_fake, rr, n_real)
            result["recall"].append((w_real[sl] * covered_real).sum(1) / size_real)
            strict = d_real < r_dc[sl][:, ri]
            weight = w_real[sl][:, ri] * w_fake[sl][:, fj]
            result["density"].append((weight * strict).sum(1) / (self.dc_k * size_fake))
            covered = _any_by_group(fake_in & strict, ri, n_real)
            result["coverage"].append((w_real[sl] * covered).sum(1) / size_real)
        return {m: np.concatenate(v).astype(np.float64) for m, v in result.items()}
