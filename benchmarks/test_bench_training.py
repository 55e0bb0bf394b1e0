"""Training cost per family: one optimiser step at batch 64, a SMOKE_TRAIN run, the feature net.

The full DEFAULT_TRAIN budgets (minutes each) are measured by
`pytest benchmarks/test_bench_training.py -k default` (opt-in: GENBENCH_BENCH_DEFAULT=1).
"""

from __future__ import annotations

import os

import pytest
import torch

from genmodels.data import load_dataset
from genmodels.features import train_feature_net
from genmodels.models import MODELS, build_model
from genmodels.train import DEFAULT_TRAIN, SMOKE_TRAIN, train_model


@pytest.fixture(scope="module")
def mnist5k():
    torch.set_num_threads(1)
    return load_dataset("mnist5k")


@pytest.fixture()
def fresh_cache(tmp_path, monkeypatch):
    # Every timed training must really train: no checkpoint from an earlier round.
    monkeypatch.setenv("GENBENCH_CACHE", str(tmp_path))


@pytest.mark.parametrize("family", sorted(MODELS))
def test_bench_train_step(benchmark, family, mnist5k) -> None:
    config = DEFAULT_TRAIN[family]
    model = build_model(family, latent_dim=config.latent_dim).train()
    params = model.deployable().parameters()
    opt = torch.optim.Adam(params, lr=config.lr)
    gen = torch.Generator().manual_seed(0)
    x = mnist5k.train_x[: config.batch_size]

    def step() -> float:
        if family == "gan":  # the discriminator's half of a GAN step (its optimiser omitted)
            model.discriminator_loss(x, gen).backward()
        opt.zero_grad(set_to_none=True)
        loss = model.finetune_loss(x, gen)
        loss.backward()
        opt.step()
        return loss.item()

    benchmark.pedantic(step, rounds=10, iterations=1, warmup_rounds=1)


@pytest.mark.parametrize("family", sorted(MODELS))
def test_bench_smoke_training(benchmark, family, mnist5k, fresh_cache) -> None:
    result = benchmark.pedantic(
        train_model,
        args=(family, mnist5k, SMOKE_TRAIN[family], 0),
        kwargs={"progress": False},
        rounds=1,
        iterations=1,
    )
    assert result.info["cached"] is False


def test_bench_feature_net_training(benchmark, mnist5k, fresh_cache) -> None:
    _, info = benchmark.pedantic(
        train_feature_net, args=(mnist5k,), kwargs={"progress": False}, rounds=1, iterations=1
    )
    benchmark.extra_info["test_accuracy"] = info["test_accuracy"]
    assert info["test_accuracy"] >= 0.97


@pytest.mark.skipif(not os.environ.get("GENBENCH_BENCH_DEFAULT"), reason="minutes per family")
@pytest.mark.parametrize("family", sorted(MODELS))
def test_bench_default_training(benchmark, family, mnist5k, fresh_cache) -> None:
    result = benchmark.pedantic(
        train_model,
        args=(family, mnist5k, DEFAULT_TRAIN[family], 0),
        kwargs={"progress": False},
        rounds=1,
        iterations=1,
    )
    benchmark.extra_info["final_loss"] = result.info["final_loss"]
