"""SelectionScore: the FID-proxy formula, its own fixed latents, the training split, NaN -> inf."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from bench.metrics.evaluate import EvalSettings, QualityEvaluator
from bench.metrics.quality import fid_proxy
from bench.metrics.selection import SELECTION_SEED, SelectionScore


class Linear4(nn.Module):
    """z (4) -> 16 values in (0, 1), as a 1x4x4 image."""

    latent_dim = 4

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.net = nn.Linear(4, 16)

    def latent(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return torch.randn(n, self.latent_dim, generator=generator)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(z)).view(-1, 1, 4, 4)


def features(x: torch.Tensor) -> np.ndarray:
    return x.flatten(1).double().numpy()


REAL = torch.rand(300, 1, 4, 4, generator=torch.Generator().manual_seed(3))


def test_score_is_the_fid_proxy_of_its_own_latents_against_the_real_images():
    model = Linear4()
    score = SelectionScore(features, REAL, n=200)
    z = model.latent(200, torch.Generator().manual_seed(SELECTION_SEED))
    with torch.no_grad():
        expected = fid_proxy(features(model(z)), features(REAL))
    assert score(model) == pytest.approx(expected, rel=1e-12)
    assert score(model) == score(model)  # fixed latents: the same model scores the same


def test_score_restores_training_mode_and_ranks_a_worse_model_lower():
    model = Linear4().train()
    score = SelectionScore(features, REAL, n=200)
    good = score(model)
    assert model.training
    with torch.no_grad():
        model.net.bias.add_(3.0)  # pushes every pixel towards 1: far from uniform noise
    assert score(model) > good


def test_nan_output_scores_inf():
    model = Linear4()
    with torch.no_grad():
        model.net.weight.fill_(float("nan"))
    assert SelectionScore(features, REAL, n=50)(model) == float("inf")


def test_evaluator_score_uses_the_training_split_not_the_test_images():
    test_x = torch.rand(80, 1, 4, 4, generator=torch.Generator().manual_seed(5))
    settings = EvalSettings(n_samples=64, kid_subsets=2, kid_subset_size=16, n_recon=40,
                            bootstrap=20)
    assert QualityEvaluator(features, test_x, settings).selection_score() is None
    evaluator = QualityEvaluator(features, test_x, settings, floor_x=REAL)
    score = evaluator.selection_score()
    assert score is evaluator.selection_score() and score.n == settings.n_samples
    assert score.seed != settings.seed
    mu, sigma = score.real_stats
    assert np.allclose(mu, features(REAL).mean(0)) and not np.allclose(mu, features(test_x).mean(0))
