"""Baselines at other widths: the checkpoint key holds the width, and a wider model is wider."""
from __future__ import annotations

import pytest

from genmodels.data import load_dataset
from genmodels.models import build_model
from genmodels.recipes import SMOKE_TRAIN
from genmodels.train import checkpoint_key


@pytest.mark.parametrize("family", ["gan", "vae", "rvae"])
def test_checkpoint_key_holds_the_width(family: str) -> None:
    data, config = load_dataset("mnist5k"), SMOKE_TRAIN[family]
    keys = {w: checkpoint_key(family, data, config, 0, w) for w in (1, 1.0, 2.0, 4.0)}
    assert keys[1] == keys[1.0]  # 1 and 1.0 are one width
    assert len({keys[1.0], keys[2.0], keys[4.0]}) == 3


@pytest.mark.parametrize("family", ["gan", "vae", "rvae"])
def test_wider_models_have_more_weights(family: str) -> None:
    counts = [sum(p.numel() for p in build_model(family, image_shape=(1, 28, 28), width=w)
                  .parameters()) for w in (1.0, 2.0, 4.0)]
    assert counts[0] < counts[1] < counts[2]
