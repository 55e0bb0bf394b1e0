"""Evaluation cost of one diffusion cell at the default preset's sample sizes (issue 17: under
60 s on the 2-core reference machine), and the sampling cost per DDIM step count.

The weights do not change the cost (a DDIM step is one UNet call whatever it predicts), so an
untrained width-1 ddpm stands in for the trained one: no training, no cache. The evaluator is
built with the default preset's [eval] settings on mnist5k and the shipped feature net, as
the runner builds it; the timed call is what a cell's `eval_seconds` measures (its baseline's
outputs are computed once, before timing, as the runner caches them).
"""

from __future__ import annotations

import pytest
import torch

from bench.metrics import EvalSettings, QualityEvaluator, make_feature_fn
from genmodels.data import load_dataset
from genmodels.models import build_model
from genmodels.yardstick import load_feature_net

DEFAULT_EVAL = EvalSettings(n_samples=1000, kid_subsets=50, kid_subset_size=500, iwae_k=16,
                            n_recon=500)


@pytest.fixture(scope="module")
def evaluator() -> QualityEvaluator:
    data = load_dataset("mnist5k")
    net, _ = load_feature_net(data, progress=False)
    return QualityEvaluator(make_feature_fn(net), data.test_x, DEFAULT_EVAL, floor_x=data.train_x)


def _ddpm(steps: int = 50) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model("ddpm", steps=steps).eval()


def test_bench_ddpm_cell_evaluation(benchmark, evaluator) -> None:
    baseline, variant = _ddpm(), _ddpm()
    with torch.no_grad():
        variant.unet.conv_out.weight.mul_(0.5)  # another model: its outputs are measured
    evaluator.evaluate(baseline)  # the baseline's outputs, cached as in a run
    benchmark.pedantic(evaluator.evaluate, args=(variant,), kwargs={"baseline": baseline},
                       rounds=1, iterations=1)


@pytest.mark.parametrize("steps", [50, 20, 10])
def test_bench_ddpm_sampling_1000(benchmark, steps) -> None:
    model = _ddpm(steps)
    z = model.latent(1000, torch.Generator().manual_seed(0))

    def sample() -> None:
        with torch.no_grad():
            for chunk in torch.split(z, 500):
                model(chunk)

    benchmark.pedantic(sample, rounds=1, iterations=1)
