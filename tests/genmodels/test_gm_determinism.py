"""Baseline training does not depend on the thread count of the process that trains it."""

from __future__ import annotations

import pytest
import torch

from genmodels.data import load_dataset
from genmodels.models import MODELS
from genmodels.train import TrainConfig, train_model

TINY = {
    "gan": {"channels": 4, "disc_channels": 4},
    "vae": {"channels": 4},
    "rvae": {"hidden": 8, "row_dropout": 0.3},
    "ddpm": {"channels": 4, "steps": 3},
}


@pytest.mark.parametrize("family", sorted(MODELS))
def test_one_and_two_threads_train_the_same_checkpoint(family, tmp_path, monkeypatch) -> None:
    # The checkpoint key has no thread count: a pool worker (1 thread) and the sequential
    # runner (all cores) must write the same file, or the first one to train decides.
    data = load_dataset("mnist5k").subset(64, 16)
    config = TrainConfig(epochs=1, batch_size=32, lr=1e-3, latent_dim=4, max_steps=2,
                         model_kwargs=TINY[family])
    states = []
    for threads in (1, 2):
        monkeypatch.setenv("GENBENCH_CACHE", str(tmp_path / str(threads)))
        torch.set_num_threads(threads)
        states.append(train_model(family, data, config, seed=3, progress=False).model.state_dict())
        assert torch.get_num_threads() == threads  # restored after training
    a, b = states
    assert [k for k in a if not torch.equal(a[k], b[k])] == []
