"""FID-proxy feature net: batch-size independence, shift augmentation, caching, accuracy floor."""

from __future__ import annotations

import pytest
import torch

from genmodels.data import load_dataset
from genmodels.features import (
    FEATURE_DIM,
    FEATURE_LAYER,
    FEATURE_NET_ID,
    FeatureNet,
    random_shift,
    train_feature_net,
)


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
def test_features_shape_and_batch_size_independence(shape) -> None:
    net = FeatureNet(shape).eval()
    x = torch.rand(12, *shape)
    feats = net.features(x)
    assert feats.shape == (12, FEATURE_DIM) and (feats >= 0).all()  # post-ReLU activations
    torch.testing.assert_close(net.features(x[:5]), feats[:5], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(
        torch.cat([net.features(x[i : i + 1]) for i in range(12)]), feats, rtol=1e-5, atol=1e-6
    )
    assert net(x).shape == (12, 10)
    assert FEATURE_LAYER in FEATURE_NET_ID and str(FEATURE_DIM) in FEATURE_NET_ID


def test_random_shift_moves_pixels_by_whole_steps() -> None:
    x = torch.zeros(64, 1, 28, 28)
    x[:, 0, 10, 12] = 1.0
    shifted = random_shift(x, 2, torch.Generator().manual_seed(0))
    for img in shifted:  # one pixel of value 1 moved by at most 2 in each direction, no blur
        ys, xs = torch.nonzero(img[0] > 0, as_tuple=True)
        assert len(ys) == 1 and torch.isclose(img[0, ys[0], xs[0]], torch.tensor(1.0), atol=1e-6)
        assert abs(int(ys[0]) - 10) <= 2 and abs(int(xs[0]) - 12) <= 2
    assert torch.equal(random_shift(x, 0, torch.Generator()), x)


def test_train_feature_net_is_cached_and_deterministic() -> None:
    data = load_dataset("mnist5k").subset(96, 32)
    net, info = train_feature_net(data, seed=1, epochs=1, progress=False)
    assert info["cached"] is False and 0.0 <= info["test_accuracy"] <= 1.0
    assert info["feature_layer"] == FEATURE_LAYER and info["feature_dim"] == FEATURE_DIM
    again, info2 = train_feature_net(data, seed=1, epochs=1, progress=False)
    assert info2["cached"] is True and info2["test_accuracy"] == info["test_accuracy"]
    assert all(
        torch.equal(a, b)
        for a, b in zip(net.state_dict().values(), again.state_dict().values(), strict=True)
    )
    assert not again.training
    with pytest.raises(ValueError, match="epochs"):
        train_feature_net(data, epochs=0)


@pytest.mark.slow
def test_feature_net_reaches_97_percent_on_mnist5k() -> None:
    _, info = train_feature_net(load_dataset("mnist5k"), progress=False)
    assert info["test_accuracy"] >= 0.97, info


def test_feature_net_rejects_images_too_small_for_two_5x5_stages() -> None:
    assert FeatureNet((1, 16, 16)).features(torch.rand(2, 1, 16, 16)).shape == (2, FEATURE_DIM)
    with pytest.raises(ValueError, match="at least 16x16"):
        FeatureNet((1, 12, 12))
