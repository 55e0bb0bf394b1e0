"""Quality evaluation of one variant on fixed z and fixed test images (common random numbers)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from bench.metrics.likelihood import elbo_nats, nll_iwae_nats, output_drift, recon_bce_nats
from bench.metrics.quality import real_floor, sample_metrics
from bench.schema import QUALITY_COLUMNS

FEATURE_BATCH = 500  # images per feature-net call; features do not depend on it (eval mode)
SAMPLE_BATCH = 500  # z per generator call


@dataclass(frozen=True)
class EvalSettings:
    """Sample sizes and seeds of one evaluation; the same settings give the same metrics."""

    n_samples: int = 1000
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    pr_k: int = 3
    dc_k: int = 5
    iwae_k: int = 16
    n_recon: int = 1000
    seed: int = 0

    def __post_init__(self) -> None:
        minimum = {
            "n_samples": max(self.pr_k, self.dc_k) + 1,
            "kid_subsets": 1,
            "kid_subset_size": 2,
            "pr_k": 1,
            "dc_k": 1,
            "iwae_k": 1,
            "n_recon": 1,
            "seed": 0,
        }
        for name, low in minimum.items():
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"EvalSettings.{name} must be an int >= {low}; got {value!r}")


def make_feature_fn(
    net: nn.Module, batch_size: int = FEATURE_BATCH
) -> Callable[[torch.Tensor], np.ndarray]:
    """Wrap a feature network (with `.features(x)` if it has one, else its forward) into
    images (B, C, H, W) -> float64 features (B, d), batched, in eval mode, on the net's device."""
    extract = getattr(net, "features", net)

    @torch.no_grad()
    def feature_fn(x: torch.Tensor) -> np.ndarray:
        net.eval()
        device = next(net.parameters()).device
        parts = [extract(chunk.to(device)).double().cpu() for chunk in torch.split(x, batch_size)]
        return torch.cat(parts).numpy()

    return feature_fn


def _finite(metrics: dict[str, float]) -> dict[str, float]:
    for name, value in metrics.items():
        if not math.isfinite(value):
            raise FloatingPointError(f"metric {name} is {value} (non-finite)")
    return metrics


def _unwrap(model: nn.Module) -> nn.Module:
    # A compression.api.CompressedModel carries the runnable model in `.model`.
    return getattr(model, "model", model)


class QualityEvaluator:
    """Real features computed once; every variant sees the same z (model.latent from a CPU
    generator seeded by settings.seed) and the same test images and likelihood generator seed."""

    def __init__(
        self,
        feature_fn: Callable[[torch.Tensor], np.ndarray],
        test_x: torch.Tensor,
        settings: EvalSettings = EvalSettings(),
    ) -> None:
        if settings.n_recon > test_x.shape[0]:
            raise ValueError(
                f"n_recon={settings.n_recon} exceeds the {test_x.shape[0]} test images"
            )
        self.feature_fn = feature_fn
        self.settings = settings
        self.test_x = test_x
        self.real_features = np.asarray(feature_fn(test_x), dtype=np.float64)  # (N_test, d)
        self._floor: dict[str, float] | None = None

    def _generator(self) -> torch.Generator:
        return torch.Generator().manual_seed(self.settings.seed)

    def _metric_kwargs(self) -> dict[str, int]:
        s = self.settings
        return {
            "kid_subsets": s.kid_subsets,
            "kid_subset_size": s.kid_subset_size,
            "pr_k": s.pr_k,
            "dc_k": s.dc_k,
        }

    def latent(self, model: nn.Module) -> torch.Tensor:
        """The fixed z (n_samples, latent_dim) on the model's device: identical for every call."""
        return _unwrap(model).latent(self.settings.n_samples, self._generator())

    @torch.no_grad()
    def _generate(self, model: nn.Module, z: torch.Tensor) -> torch.Tensor:
        return torch.cat([model(chunk).cpu() for chunk in torch.split(z, SAMPLE_BATCH)])

    def samples(self, model: nn.Module, n: int = 16) -> np.ndarray:
        """(n, C, H, W) float32 images from the first n fixed z (the same z for every variant)."""
        if not 1 <= n <= self.settings.n_samples:
            raise ValueError(f"n must be in [1, n_samples={self.settings.n_samples}]; got {n}")
        model = _unwrap(model).eval()
        return self._generate(model, self.latent(model)[:n]).float().numpy()

    def floor(self) -> dict[str, float]:
        """Sample metrics between two disjoint halves of the real test features (noise scale)."""
        if self._floor is None:
            self._floor = _finite(
                real_floor(self.real_features, self.settings.seed, **self._metric_kwargs())
            )
        return dict(self._floor)

    def evaluate(self, model: nn.Module, baseline: nn.Module | None = None) -> dict[str, float]:
        """Metrics of `model` keyed by bench.schema QUALITY_COLUMNS; metrics that do not apply are
        absent: likelihoods only for VAEs (is_vae), output_drift_mse only with a baseline.
        Any non-finite value raises FloatingPointError naming the metric."""
        model, s = _unwrap(model).eval(), self.settings
        z = self.latent(model)
        fake = np.asarray(self.feature_fn(self._generate(model, z)), dtype=np.float64)
        if not np.isfinite(fake).all():
            raise FloatingPointError("sample features are non-finite (the model produced NaN/inf)")
        metrics = sample_metrics(self.real_features, fake, seed=s.seed, **self._metric_kwargs())
        if getattr(model, "is_vae", False):
            x = self.test_x[: s.n_recon]
            metrics["recon_bce_nats"] = recon_bce_nats(model, x)
            metrics["elbo_nats"] = elbo_nats(model, x, self._generator())
            metrics["nll_iwae_nats"] = nll_iwae_nats(model, x, s.iwae_k, self._generator())
        if baseline is not None:
            metrics["output_drift_mse"] = output_drift(model, _unwrap(baseline).eval(), z=z)
        assert set(metrics) <= set(QUALITY_COLUMNS), sorted(set(metrics) - set(QUALITY_COLUMNS))
        return _finite(metrics)

    def describe(self) -> dict[str, object]:
        """Settings for run.json."""
        return {
            **asdict(self.settings),
            "n_real": int(self.real_features.shape[0]),
            "feature_dim": int(self.real_features.shape[1]),
        }
