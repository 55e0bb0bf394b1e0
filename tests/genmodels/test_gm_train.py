"""Training: bit-identical reruns, checkpoint cache hits, rebuilds of corrupt or hostile files."""

from __future__ import annotations

import dataclasses
import json
import pickle

import pytest
import torch

from genmodels import train as gt
from genmodels.data import load_dataset
from genmodels.models import MODELS
from genmodels.train import TrainConfig, TrainingDiverged, train_model

TINY = {
    "gan": {"channels": 4, "disc_channels": 4},
    "vae": {"channels": 4},
    "rvae": {"hidden": 8, "row_dropout": 0.3},
    "ddpm": {"channels": 4, "steps": 3},
}  # dropout: RNG seeding
# The issue-13 recipes ride along, so bit-identity covers the EMA, warm-up and free bits.
RECIPE = {
    "gan": {"ema_decay": 0.9},
    "vae": {"kl_warmup_epochs": 1},
    "rvae": {"kl_warmup_epochs": 1, "free_bits": 0.5},
    "ddpm": {"ema_decay": 0.9},
}


def tiny_config(family: str, **overrides) -> TrainConfig:
    base = dict(
        epochs=2, batch_size=16, lr=1e-3, latent_dim=4, max_steps=3, model_kwargs=TINY[family],
        **RECIPE[family],
    )
    return TrainConfig(**{**base, **overrides})


@pytest.fixture(scope="module")
def tiny_data():
    return load_dataset("mnist5k").subset(64, 16)


def _fresh_cache(monkeypatch, tmp_path, name: str) -> None:
    monkeypatch.setenv("GENBENCH_CACHE", str(tmp_path / name))


@pytest.mark.parametrize("family", sorted(MODELS))
def test_same_seed_gives_bit_identical_checkpoints_and_cache_hits(
    family, tiny_data, tmp_path, monkeypatch
) -> None:
    config = tiny_config(family)
    runs = []
    for name in ("a", "b"):
        _fresh_cache(monkeypatch, tmp_path, name)
        runs.append(train_model(family, tiny_data, config, seed=7, progress=False))
        assert runs[-1].info["cached"] is False and not runs[-1].model.training
    a, b = (r.model.state_dict() for r in runs)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert (
        runs[0].info["key"] == runs[1].info["key"]
        and runs[0].info["final_loss"] == runs[1].info["final_loss"]
    )
    before = gt.TRAININGS_RUN
    hit = train_model(family, tiny_data, config, seed=7, progress=False)
    assert gt.TRAININGS_RUN == before and hit.info["cached"] is True
    assert hit.info["checkpoint"] == runs[1].info["checkpoint"]
    assert all(torch.equal(hit.model.state_dict()[k], b[k]) for k in b)
    other = train_model(family, tiny_data, config, seed=8, progress=False)  # another seed: retrains
    assert gt.TRAININGS_RUN == before + 1 and other.info["key"] != hit.info["key"]
    assert any(not torch.equal(other.model.state_dict()[k], b[k]) for k in b)


def test_counts_only_real_trainings_and_rebuilds_corrupt_checkpoint(
    tiny_data, tmp_path, monkeypatch
) -> None:
    _fresh_cache(monkeypatch, tmp_path, "c")
    config = tiny_config("vae")
    first = train_model("vae", tiny_data, config, seed=0, progress=False)
    path = first.info["checkpoint"]
    with open(path, "r+b") as handle:  # flip bytes inside the tensor data
        handle.seek(-8, 2)
        handle.write(b"\xff" * 8)
    before = gt.TRAININGS_RUN
    again = train_model("vae", tiny_data, config, seed=0, progress=False)
    assert again.info["cached"] is False and gt.TRAININGS_RUN == before + 1
    assert train_model("vae", tiny_data, config, seed=0, progress=False).info["cached"] is True


class _Payload:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):  # unpickling this would create the marker file
        return (open, (self.marker, "w"))


def test_pickle_at_checkpoint_path_is_never_executed(tiny_data, tmp_path, monkeypatch) -> None:
    _fresh_cache(monkeypatch, tmp_path, "p")
    config = tiny_config("gan")
    key = gt.checkpoint_key("gan", tiny_data, config, 0, 1.0)
    path = gt.checkpoint_path("gan", key)
    marker = tmp_path / "pwned"
    path.write_bytes(pickle.dumps({"generator.fc.weight": _Payload(str(marker))}))
    result = train_model("gan", tiny_data, config, seed=0, progress=False)
    assert not marker.exists() and result.info["cached"] is False
    assert train_model("gan", tiny_data, config, seed=0, progress=False).info["cached"] is True


@pytest.mark.parametrize(
    "lr,match",
    [(1e6, r"became \d.*e\+\d+ at epoch \d+, step \d+"), (1e20, "became nan at epoch 0, step 0")],
)
def test_absurd_learning_rate_raises_training_diverged(
    lr, match, tiny_data, tmp_path, monkeypatch
) -> None:
    # lr=1e6: finite but exploding losses (1e22); lr=1e20: NaN at the first step.
    _fresh_cache(monkeypatch, tmp_path, "d")
    before = gt.TRAININGS_RUN
    config = tiny_config("gan", lr=lr, max_steps=None, epochs=10)
    with pytest.raises(TrainingDiverged, match=match):
        train_model("gan", tiny_data, config, seed=0, progress=False)
    assert gt.TRAININGS_RUN == before and not list((tmp_path / "d").rglob("*.safetensors"))


@pytest.mark.parametrize(
    "field,value",
    [
        ("epochs", 0),
        ("batch_size", 0),
        ("lr", 0.0),
        ("lr", float("nan")),
        ("latent_dim", 0),
        ("beta1", 1.0),
        ("max_steps", 0),
        ("ema_decay", 1.0),
        ("kl_warmup_epochs", -1),
        ("free_bits", -0.5),
    ],
)
def test_train_config_rejects_bad_values(field, value) -> None:
    with pytest.raises(ValueError, match=field):
        tiny_config("vae", **{field: value})


def test_train_config_is_hashable_and_json_serialisable() -> None:
    config = TrainConfig(
        epochs=1, batch_size=8, lr=1e-3, latent_dim=4, model_kwargs={"cell": "lstm"}
    )
    assert config.model_kwargs == (("cell", "lstm"),) and hash(config) == hash(
        dataclasses.replace(config)
    )
    assert json.loads(json.dumps(dataclasses.asdict(config)))["model_kwargs"] == [["cell", "lstm"]]
    for budgets in (gt.DEFAULT_TRAIN, gt.SMOKE_TRAIN):
        assert set(budgets) == set(MODELS)


def test_training_works_under_a_callers_no_grad(tiny_data, tmp_path, monkeypatch) -> None:
    _fresh_cache(monkeypatch, tmp_path, "n")
    with torch.no_grad():
        result = train_model("vae", tiny_data, tiny_config("vae"), seed=0, progress=False)
    assert result.info["cached"] is False and torch.is_grad_enabled()


def test_unknown_family_is_rejected(tiny_data) -> None:
    with pytest.raises(ValueError, match=f"allowed: {', '.join(sorted(MODELS))}$"):
        train_model("flow", tiny_data, tiny_config("vae"), seed=0, progress=False)
