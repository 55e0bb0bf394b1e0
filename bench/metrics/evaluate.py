"""Quality evaluation of one variant on fixed z and fixed test images (common random numbers)."""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from bench.metrics.classes import class_columns
from bench.metrics.feature_fns import make_feature_fn  # noqa: F401 - public here too
from bench.metrics.likelihood import elbo_per_image, iwae_per_image, recon_bce_per_image
from bench.metrics.paired import Outputs, intervals, paired, weights_key
from bench.metrics.quality import real_floor, sample_metrics
from bench.metrics.replicates import ReplicateMetrics, half_samples
from bench.metrics.selection import SelectionScore
from bench.results.schema import CLASS_COLUMNS, INTERVAL_COLUMNS, QUALITY_COLUMNS
from genmodels.models.likelihood import nats_to_bpd

SAMPLE_BATCH = 500  # z per generator call
FLOOR_REPEATS = 10  # real subsets the floor is averaged over
BASELINES_KEPT = 8  # baselines whose outputs the evaluator keeps (one per family and seed)
LIKELIHOOD = (
    "VAE ELBO and IWAE in nats per image bound log p(x) of the 8-bit test images under a "
    "logistic in logit space discretised to the 256 grey levels (genmodels.models.likelihood); "
    "*_bpd = -bound / (D ln 2), D = pixels"
)
INTERVALS = (
    "95% intervals: sample metrics from 'centered' intervals on random half-samples of the "
    "generated and the test features (covers the expectation at this sample size); VAE "
    "likelihoods and drift from BCa bootstrap intervals of per-image / per-latent means; deltas "
    "paired on the same halves, images and latents as the baseline"
)


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
    bootstrap: int = 200  # replicates behind every interval
    seed: int = 0

    def __post_init__(self) -> None:
        minimum = {
            # half-samples (intervals) must still hold a point's k nearest neighbours
            "n_samples": 2 * (max(self.pr_k, self.dc_k) + 1),
            "kid_subsets": 1,
            "kid_subset_size": 2,
            "pr_k": 1,
            "dc_k": 1,
            "iwae_k": 1,
            "n_recon": 2,
            "bootstrap": 20,
            "seed": 0,
        }
        for name, low in minimum.items():
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"EvalSettings.{name} must be an int >= {low}; got {value!r}")


def _finite(metrics: dict[str, Any]) -> dict[str, Any]:
    for name, value in metrics.items():
        if not math.isfinite(value):
            raise FloatingPointError(f"metric {name} is {value} (non-finite)")
    return metrics


def _unwrap(model: nn.Module) -> nn.Module:
    # A compression.api.CompressedModel carries the runnable model in `.model`.
    return getattr(model, "model", model)


class QualityEvaluator:
    """Real features computed once; every variant sees the same z (model.latent from a CPU
    generator seeded by settings.seed), the same test images, the same likelihood generator seed
    and the same half-sample replicates, so variants and their baseline are paired."""

    def __init__(
        self,
        feature_fn: Callable[[torch.Tensor], np.ndarray],
        test_x: torch.Tensor,
        settings: EvalSettings = EvalSettings(),
        floor_x: torch.Tensor | None = None,
        logits_fn: Callable[[torch.Tensor], np.ndarray] | None = None,
    ) -> None:
        """floor_x: real images that are not test images (the training split), for `floor`.
        logits_fn: images -> class logits (N, K) for CLASS_COLUMNS; default feature_fn.logits
        (set by make_feature_fn for a classifier), none: no class columns."""
        if settings.n_recon > test_x.shape[0]:
            raise ValueError(
                f"n_recon={settings.n_recon} exceeds the {test_x.shape[0]} test images"
            )
        self.feature_fn = feature_fn
        self.logits_fn = logits_fn if logits_fn is not None else getattr(feature_fn, "logits", None)
        self.settings = settings
        self.test_x = test_x
        self.floor_x = floor_x
        self.real_features = np.asarray(feature_fn(test_x), dtype=np.float64)  # (N_test, d)
        self._floor: tuple[dict[str, float], dict[str, float], str] | None = None
        self._replicates: ReplicateMetrics | None = None
        self._baselines: OrderedDict[str, Outputs] = OrderedDict()
        self._selection: SelectionScore | None = None

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

    def _floor_stats(self) -> tuple[dict[str, float], dict[str, float], str]:
        if self._floor is None:
            if self.floor_x is None:
                raise ValueError(
                    "the real-vs-real floor needs real images that are not test images: pass "
                    "floor_x (e.g. dataset.train_x) to QualityEvaluator"
                )
            pool = np.asarray(self.feature_fn(self.floor_x), dtype=np.float64)
            n = min(self.settings.n_samples, pool.shape[0])
            mean, spread = real_floor(
                self.real_features, pool, n, FLOOR_REPEATS, self.settings.seed,
                **self._metric_kwargs(),
            )
            method = (
                f"{n} real images that are not test images (random subsets of {pool.shape[0]}) "
                f"vs the {self.real_features.shape[0]} test images, as a cell compares "
                f"n_samples={self.settings.n_samples} generated images; mean and std over "
                f"{FLOOR_REPEATS} subsets"
            )
            self._floor = (_finite(mean), _finite(spread), method)
        return self._floor

    def floor(self) -> dict[str, float]:
        """Mean sample metrics of real images vs the test set at the cells' sizes (`real_floor`)."""
        return dict(self._floor_stats()[0])

    def floor_spread(self) -> dict[str, float]:
        """Std of each floor metric over the FLOOR_REPEATS real subsets."""
        return dict(self._floor_stats()[1])

    def floor_method(self) -> str:
        """One sentence saying how the floor was measured (for run.json)."""
        return self._floor_stats()[2]

    def _real_replicates(self) -> ReplicateMetrics:
        if self._replicates is None:
            s = self.settings
            masks = half_samples(self.real_features.shape[0], s.bootstrap, [s.seed, 0])
            self._replicates = ReplicateMetrics(self.real_features, masks, s.pr_k, s.dc_k)
        return self._replicates

    def _outputs(self, model: nn.Module, like: Outputs | None = None,
                 sampling_only: bool = False) -> Outputs:
        """Measure one model; `like` (its baseline) is reused when the outputs are identical;
        sampling_only: no likelihoods (a deployed sampling path has no encoder)."""
        s = self.settings
        images = self._generate(model, self.latent(model))
        fake = np.asarray(self.feature_fn(images), dtype=np.float64)
        if not np.isfinite(fake).all():
            raise FloatingPointError("sample features are non-finite (the model produced NaN/inf)")
        if like is not None and np.array_equal(fake, like.features):
            # The baseline cell (or a variant equal to it): the same features give the same
            # metrics and replicates, so every delta is exactly 0.
            # (Its likelihoods are not reused: they are measured below, or not at all.)
            metrics = {k: v for k, v in like.metrics.items() if k not in like.per_image}
            replicates = like.replicates
        else:
            metrics = sample_metrics(self.real_features, fake, seed=s.seed, **self._metric_kwargs())
            masks = half_samples(fake.shape[0], s.bootstrap, [s.seed, 1])
            replicates = self._real_replicates().replicates(fake, masks)
        per_image: dict[str, np.ndarray] = {}
        if getattr(model, "is_vae", False) and not sampling_only:
            x = self.test_x[: s.n_recon]
            per_image["recon_bce_nats"] = recon_bce_per_image(model, x).numpy()
            per_image["elbo_nats"] = elbo_per_image(model, x, self._generator()).numpy()
            iwae = iwae_per_image(model, x, s.iwae_k, self._generator()).numpy()
            per_image["nll_iwae_nats"] = -iwae
            dims = x[0].numel()  # D pixels (C * H * W), each a 256-level variable
            per_image["elbo_bpd"] = nats_to_bpd(per_image["elbo_nats"], dims)
            per_image["iwae_bpd"] = nats_to_bpd(iwae, dims)
            metrics.update({m: float(v.mean()) for m, v in per_image.items()})
        return Outputs(images, fake, _finite(metrics), replicates, per_image)

    def _baseline(self, baseline: nn.Module) -> Outputs:
        key = weights_key(baseline)
        if key not in self._baselines:
            self._baselines[key] = self._outputs(baseline)
            if len(self._baselines) > BASELINES_KEPT:
                self._baselines.popitem(last=False)
        self._baselines.move_to_end(key)
        return self._baselines[key]

    def evaluate(
        self, model: nn.Module, baseline: nn.Module | None = None, sampling_only: bool = False
    ) -> dict[str, float | bool | str]:
        """Metrics of `model` keyed by bench.results.schema QUALITY_COLUMNS, INTERVAL_COLUMNS and
        CLASS_COLUMNS (the samples' class statistics, with a logits_fn; class_fractions is JSON
        text); metrics that do not apply are absent: likelihoods only for VAEs (is_vae),
        sampling_only drops them for any family (a runtime deploys the sampling path alone);
        output_drift_mse and the deltas only with a baseline (whose outputs are cached by
        `weights_key`). Intervals: see INTERVALS. Any non-finite value raises FloatingPointError
        naming the metric."""
        s = self.settings
        base = None if baseline is None else self._baseline(_unwrap(baseline).eval())
        out = self._outputs(_unwrap(model).eval(), like=base, sampling_only=sampling_only)
        metrics: dict[str, float | bool] = dict(out.metrics)
        metrics.update(intervals(out, s.bootstrap, s.seed))
        if base is not None:
            metrics.update(paired(out, base, s.bootstrap, s.seed))
        classes = {} if self.logits_fn is None else class_columns(self.logits_fn(out.images))
        unknown = set(metrics) - set(QUALITY_COLUMNS) - set(INTERVAL_COLUMNS)
        assert not unknown, sorted(unknown)
        assert set(classes) <= set(CLASS_COLUMNS), sorted(classes)
        return {**_finite(metrics), **classes}

    def selection_score(self) -> SelectionScore | None:
        """The held-out score methods choose candidates by (bench.metrics.selection): n_samples
        images from its own latents against the floor_x (training) images; None without floor_x."""
        if self._selection is None and self.floor_x is not None:
            self._selection = SelectionScore(self.feature_fn, self.floor_x, self.settings.n_samples)
        return self._selection

    def describe(self) -> dict[str, object]:
        """Settings for run.json."""
        return {
            **asdict(self.settings),
            "n_real": int(self.real_features.shape[0]),
            "feature_dim": int(self.real_features.shape[1]),
            "intervals": INTERVALS,
            "likelihood": LIKELIHOOD,
        }
