"""Cost of evaluating one variant (quality + cost) per family at default sample sizes (seconds)."""

from __future__ import annotations

import pytest
import torch

from bench.metrics import EvalSettings, QualityEvaluator, latency_for_model, make_feature_fn
from bench.metrics.quality import kid, precision_recall
from compression.accounting import count_macs
from genmodels.features import FeatureNet
from genmodels.models import MODELS

BATCH_SIZES = (1, 64)


@pytest.fixture(scope="module")
def evaluator() -> QualityEvaluator:
    torch.set_num_threads(1)
    # Untrained nets: the cost of evaluation does not depend on the weights' values.
    test_x = torch.rand(1000, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    floor_x = torch.rand(4000, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    return QualityEvaluator(
        make_feature_fn(FeatureNet().eval()), test_x, EvalSettings(), floor_x=floor_x
    )


@pytest.mark.parametrize("family", sorted(MODELS))
def test_bench_evaluate_one_variant(benchmark, evaluator: QualityEvaluator, family: str) -> None:
    model = MODELS[family]().eval()
    baseline = MODELS[family]().eval()
    z1 = model.latent(1, torch.Generator().manual_seed(0))

    def one_variant() -> dict[str, float]:
        metrics = evaluator.evaluate(model, baseline=baseline)
        metrics["macs"], metrics["macs_effective"] = count_macs(model, z1)
        for batch_size in BATCH_SIZES:
            latency_for_model(model, batch_size, "cpu", threads=1, min_run_time=0.2)
        return metrics

    metrics = benchmark.pedantic(one_variant, rounds=1, iterations=1)
    assert "output_drift_mse" in metrics


def test_bench_floor(benchmark, evaluator: QualityEvaluator) -> None:
    benchmark.pedantic(evaluator.floor, rounds=1, iterations=1)


def test_bench_kid_100_subsets_of_500(benchmark, evaluator: QualityEvaluator) -> None:
    # KID as the default preset runs it (1000 samples, subsets of 500): all 100 subsets computed.
    real = evaluator.real_features
    fake = real + 0.01
    benchmark.pedantic(kid, args=(real, fake, 100, 500), rounds=1, iterations=1)


def test_bench_precision_recall_1000(benchmark, evaluator: QualityEvaluator) -> None:
    real = evaluator.real_features
    benchmark.pedantic(precision_recall, args=(real, real[::-1] + 0.01), rounds=1, iterations=1)
