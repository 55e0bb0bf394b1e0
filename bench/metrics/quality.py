"""Sample quality on feature vectors: Frechet distance, KID, precision/recall, density/coverage."""

from __future__ import annotations

import numpy as np
import torch
from scipy.spatial.distance import cdist

# Above this many entries per kernel matrix (N^2), KID recomputes each subset's kernels instead.
KID_FULL_KERNEL_MAX = 4000**2


def _as_features(feats: np.ndarray, name: str, min_rows: int = 2) -> np.ndarray:
    array = np.asarray(feats, dtype=np.float64)
    if array.ndim != 2 or array.shape[0] < min_rows:
        raise ValueError(
            f"{name} must be a 2-d (N, d) array with N >= {min_rows}; got shape {array.shape}"
        )
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or inf; features must be finite")
    return array


def features_to_statistics(feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (d,) and unbiased covariance (d, d), denominator N-1, in float64 (as pytorch-fid)."""
    array = _as_features(feats, "feats")
    return array.mean(axis=0), np.atleast_2d(np.cov(array, rowvar=False))


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray
) -> float:
    """Frechet distance between N(mu1, sigma1) and N(mu2, sigma2).

    Heusel et al. 2017 (arXiv:1706.08500):

    d^2 = ||mu1 - mu2||^2 + Tr S1 + Tr S2 - 2 Tr (S1 S2)^(1/2), with
    Tr (S1 S2)^(1/2) = sum_i sqrt(lambda_i(S1 S2)): S1 S2 is similar to the PSD matrix
    S1^(1/2) S2 S1^(1/2), so its eigenvalues are real and >= 0 up to round-off. As torch-fidelity
    does, the eigenvalues are cast to complex128 before the square root and the real part is kept:
    tiny negative round-off eigenvalues (rank-deficient covariances, N < d) give imaginary roots
    that are dropped instead of NaN, and no scipy.linalg.sqrtm (with its regressions) is needed.
    """
    mu1, mu2 = (
        np.atleast_1d(np.asarray(mu1, np.float64)),
        np.atleast_1d(np.asarray(mu2, np.float64)),
    )
    sigma1, sigma2 = (
        np.atleast_2d(np.asarray(sigma1, np.float64)),
        np.atleast_2d(np.asarray(sigma2, np.float64)),
    )
    d = mu1.shape[0]
    if mu1.shape != (d,) or mu2.shape != (d,) or sigma1.shape != (d, d) or sigma2.shape != (d, d):
        raise ValueError(
            f"shapes must be mu (d,), sigma (d, d) with one d; got {mu1.shape}, {sigma1.shape}, "
            f"{mu2.shape}, {sigma2.shape}"
        )
    for name, value in (("mu1", mu1), ("sigma1", sigma1), ("mu2", mu2), ("sigma2", sigma2)):
        if not np.isfinite(value).all():
            raise ValueError(f"{name} contains NaN or inf; statistics must be finite")
    diff = mu1 - mu2
    eigenvalues = np.linalg.eigvals(sigma1 @ sigma2)
    # astype(complex128) matters: a real array would give sqrt(negative) = NaN (torch-fidelity #50).
    tr_covmean = np.sqrt(eigenvalues.astype(np.complex128)).real.sum()
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * tr_covmean)


def fid_proxy(feats_a: np.ndarray, feats_b: np.ndarray) -> float:
    """Frechet distance between the Gaussian statistics of two feature sets (N, d)."""
    return frechet_distance(*features_to_statistics(feats_a), *features_to_statistics(feats_b))


def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """KID's cubic kernel k(x, y) = (x.y / d + 1)^3, (n, m) (Binkowski 2018, arXiv:1801.01401)."""
    return _kernel(
        torch.from_numpy(np.asarray(x, np.float64)), torch.from_numpy(np.asarray(y, np.float64))
    ).numpy()


def _kernel(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    # torch (float64) rather than numpy: its matmul obeys torch.set_num_threads, the project's
    # thread policy; OpenBLAS's own threads ran KID 3.5x slower on a loaded 2-core machine.
    base = x @ y.T / x.shape[1] + 1.0
    return base * base * base  # not ** 3: a float power calls pow(), several times slower


def mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 with the cubic polynomial kernel (arXiv:1801.01401, eq. in sec. 2.3):

    sum_{i!=j} k(x_i, x_j) / (m(m-1)) + sum_{i!=j} k(y_i, y_j) / (n(n-1))
      - 2 sum_{i,j} k(x_i, y_j) / (mn).
    Unbiased, so it can be slightly negative for samples of one distribution.
    """
    tx, ty = (
        torch.from_numpy(np.asarray(x, np.float64)),
        torch.from_numpy(np.asarray(y, np.float64)),
    )
    m, n = tx.shape[0], ty.shape[0]
    k_xx, k_yy, k_xy = _kernel(tx, tx), _kernel(ty, ty), _kernel(tx, ty)
    term_xx = (k_xx.sum() - k_xx.diagonal().sum()) / (m * (m - 1))
    term_yy = (k_yy.sum() - k_yy.diagonal().sum()) / (n * (n - 1))
    return float(term_xx + term_yy - 2.0 * k_xy.mean())


def kid(
    feats_a: np.ndarray,
    feats_b: np.ndarray,
    subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """Kernel Inception Distance (arXiv:1801.01401): mean and std (ddof=0, as torch-fidelity) of
    `mmd2_unbiased` over `subsets` random subsets drawn without replacement from each set. The
    subset size is capped at min(N_a, N_b); subsets come from numpy's Generator seeded by `seed`."""
    a, b = _as_features(feats_a, "feats_a"), _as_features(feats_b, "feats_b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature dims differ: {a.shape[1]} vs {b.shape[1]}")
    if subsets < 1 or subset_size < 2:
        raise ValueError(f"need subsets >= 1 and subset_size >= 2; got {subsets}, {subset_size}")
    m = min(subset_size, a.shape[0], b.shape[0])
    if m == a.shape[0] == b.shape[0]:
        # Every subset is then a permutation of the full sets, and MMD^2 ignores order: one
        # evaluation gives every subset's value (std 0) instead of `subsets` identical ones.
        return mmd2_unbiased(a, b), 0.0
    rng = np.random.default_rng(seed)
    chosen = [
        (rng.choice(a.shape[0], m, replace=False), rng.choice(b.shape[0], m, replace=False))
        for _ in range(subsets)
    ]
    if max(a.shape[0], b.shape[0]) ** 2 > KID_FULL_KERNEL_MAX:
        values = np.array([mmd2_unbiased(a[ia], b[ib]) for ia, ib in chosen])
        return float(values.mean()), float(values.std())
    # Every subset's MMD^2 from the full kernel matrices, computed once: with 0/1 masks w,
    # w'Kw - w.diag(K) sums the subset's block off the diagonal (50 subsets of 500 of 1000
    # points: 0.1 s instead of 1.8 s recomputing three kernels per subset).
    mask_a, mask_b = torch.zeros(subsets, a.shape[0], dtype=torch.float64), torch.zeros(
        subsets, b.shape[0], dtype=torch.float64
    )
    for index, (ia, ib) in enumerate(chosen):
        mask_a[index, torch.from_numpy(ia)] = 1.0
        mask_b[index, torch.from_numpy(ib)] = 1.0
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    k_aa, k_bb, k_ab = _kernel(ta, ta), _kernel(tb, tb), _kernel(ta, tb)
    within_a = ((mask_a @ k_aa) * mask_a).sum(1) - mask_a @ k_aa.diagonal()
    within_b = ((mask_b @ k_bb) * mask_b).sum(1) - mask_b @ k_bb.diagonal()
    cross = ((mask_a @ k_ab) * mask_b).sum(1)
    values = ((within_a + within_b) / (m * (m - 1)) - 2.0 * cross / (m * m)).numpy()
    return float(values.mean()), float(values.std())


def kth_neighbour_radii(feats: np.ndarray, k: int) -> np.ndarray:
    """Distance from each row to its k-th nearest neighbour in its own set, self excluded: (N,)."""
    if not 1 <= k < feats.shape[0]:
        raise ValueError(f"k must be in [1, N-1] = [1, {feats.shape[0] - 1}]; got {k}")
    distances = cdist(feats, feats)
    # Column 0 of the sorted row is the point itself (distance 0), so the k-th neighbour is index k.
    return np.partition(distances, k, axis=1)[:, k]


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkaanniemi et al. 2019, arXiv:1904.06991).

    precision = mean_j 1[exists i: ||y_j - x_i|| <= r_k(x_i)] (fakes inside the real manifold),
    recall    = mean_i 1[exists j: ||x_i - y_j|| <= r_k(y_j)] (reals inside the fake manifold),
    r_k = distance to the k-th nearest neighbour within the own set (self excluded); `<=` as in
    the official code and torch-fidelity.
    """
    x, y = _as_features(real, "real", k + 1), _as_features(fake, "fake", k + 1)
    radii_real, radii_fake = kth_neighbour_radii(x, k), kth_neighbour_radii(y, k)
    distances = cdist(x, y)  # (N_real, N_fake)
    precision = (distances <= radii_real[:, None]).any(axis=0).mean()
    recall = (distances <= radii_fake[None, :]).any(axis=1).mean()
    return float(precision), float(recall)


def density_coverage(real: np.ndarray, fake: np.ndarray, k: int = 5) -> tuple[float, float]:
    """Density and coverage (Naeem et al. 2020, arXiv:2002.09797; clovaai/prdc), strict `<`:

    density  = 1/(k M) sum_j sum_i 1[||y_j - x_i|| < r_k(x_i)],
    coverage = 1/N sum_i 1[min_j ||x_i - y_j|| < r_k(x_i)].
    For identical distributions E[density] ~ 1 and E[coverage] ~ 1 - 2^-k.
    """
    x, y = _as_features(real, "real", k + 1), _as_features(fake, "fake")
    radii_real = kth_neighbour_radii(x, k)
    distances = cdist(x, y)  # (N_real, N_fake)
    density = (distances < radii_real[:, None]).sum() / (k * y.shape[0])
    coverage = (distances.min(axis=1) < radii_real).mean()
    return float(density), float(coverage)


def sample_metrics(
    real: np.ndarray,
    fake: np.ndarray,
    *,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    pr_k: int = 3,
    dc_k: int = 5,
    seed: int = 0,
) -> dict[str, float]:
    """All sample metrics between real and fake features, keyed by the quality columns of
    bench.results.schema."""
    kid_mean, kid_std = kid(real, fake, kid_subsets, kid_subset_size, seed)
    precision, recall = precision_recall(real, fake, pr_k)
    density, coverage = density_coverage(real, fake, dc_k)
    return {
        "fid_proxy": fid_proxy(real, fake),
        "kid_proxy": kid_mean,
        "kid_proxy_std": kid_std,
        "precision": precision,
        "recall": recall,
        "density": density,
        "coverage": coverage,
    }


def real_floor(
    reference: np.ndarray,
    pool: np.ndarray,
    n: int,
    repeats: int = 10,
    seed: int = 0,
    *,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    pr_k: int = 3,
    dc_k: int = 5,
) -> tuple[dict[str, float], dict[str, float]]:
    """What real data scores at the cells' sizes: the sample metrics between `reference` (the
    test features, all of them, as every cell uses them) and n real features from `pool` (real
    images that are not test images), as a cell compares n generated samples with the test set.
    Repeated on `repeats` random subsets of the pool (each without replacement; seeded), it
    returns the mean (the floor) and the std (ddof=1, the spread) of each metric. FD's bias
    grows as 1/n, so the floor must be measured at the cells' n, not on two halves of the test
    set (which doubles it)."""
    ref, array = _as_features(reference, "reference"), _as_features(pool, "pool")
    if not 2 <= n <= array.shape[0] or repeats < 2:
        raise ValueError(
            f"need 2 <= n <= {array.shape[0]} pool rows and repeats >= 2; got n={n}, "
            f"repeats={repeats}: pass more real images that are not test images"
        )
    rng = np.random.default_rng(seed)
    runs = [
        sample_metrics(
            ref,
            array[rng.choice(array.shape[0], n, replace=False)],
            kid_subsets=kid_subsets,
            kid_subset_size=kid_subset_size,
            pr_k=pr_k,
            dc_k=dc_k,
            seed=seed,
        )
        for _ in range(repeats)
    ]
    mean = {m: float(np.mean([r[m] for r in runs])) for m in runs[0]}
    spread = {m: float(np.std([r[m] for r in runs], ddof=1)) for m in runs[0]}
    return mean, spread
