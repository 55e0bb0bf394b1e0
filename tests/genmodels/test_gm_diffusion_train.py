"""ddpm training: bit-identical checkpoints, the cache, and the UNet's EMA as the kept weights."""

from __future__ import annotations

import pytest
import torch

from genmodels.data import load_dataset
from genmodels.train import TrainConfig, train_model

TINY = {"channels": 4, "steps": 3}


@pytest.fixture(scope="module")
def tiny_data():
    return load_dataset("mnist5k").subset(64, 16)


def _config(**overrides) -> TrainConfig:
    base = dict(epochs=2, batch_size=16, lr=1e-3, latent_dim=784, max_steps=3, ema_decay=0.9,
                model_kwargs=TINY)
    return TrainConfig(**{**base, **overrides})


def _unet(trained) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in trained.model.unet.state_dict().items()}


def test_same_seed_gives_bit_identical_checkpoints_and_a_cache_hit(tiny_data, tmp_path,
                                                                   monkeypatch) -> None:
    runs = []
    for root in ("a", "b"):
        monkeypatch.setenv("GENBENCH_CACHE", str(tmp_path / root))
        runs.append(train_model("ddpm", tiny_data, _config(), seed=7, progress=False))
    first, second = (_unet(r) for r in runs)
    assert not runs[1].info["cached"] and all(torch.equal(first[k], second[k]) for k in first)
    hit = train_model("ddpm", tiny_data, _config(), seed=7, progress=False)
    assert hit.info["cached"] and all(torch.equal(first[k], v) for k, v in _unet(hit).items())
    assert [p["epoch"] for p in hit.info["curve"]] == [0]  # 3 steps of 4 per epoch: one epoch
    z = hit.model.latent(2, torch.Generator().manual_seed(0))
    assert torch.equal(hit.model(z), runs[0].model(z))


def test_the_kept_unet_is_the_ema_of_the_iterates(tiny_data, tmp_path, monkeypatch) -> None:
    # AveragedModel's EMA starts as a copy of the first iterate: after two steps it is
    # d * w_1 + (1 - d) * w_2, with w_1, w_2 the weights after one and two plain steps.
    monkeypatch.setenv("GENBENCH_CACHE", str(tmp_path))
    d = 0.9
    w1 = _unet(train_model("ddpm", tiny_data, _config(max_steps=1, ema_decay=0.0), seed=3,
                           progress=False))
    w2 = _unet(train_model("ddpm", tiny_data, _config(max_steps=2, ema_decay=0.0), seed=3,
                           progress=False))
    ema = _unet(train_model("ddpm", tiny_data, _config(max_steps=2, ema_decay=d), seed=3,
                            progress=False))
    assert any(not torch.equal(w1[k], w2[k]) for k in w1)
    for k in ema:
        torch.testing.assert_close(ema[k], d * w1[k] + (1 - d) * w2[k], atol=1e-6, rtol=1e-5)
