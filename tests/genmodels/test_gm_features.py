"""FID-proxy feature net: batch-size independence, shift augmentation, caching, accuracy floor,
and the shipped (frozen) net: its hash, bit-exact loading, refusal of tampered copies."""

from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from genmodels.data import load_dataset
from genmodels.features import (
    FEATURE_ARCH,
    FEATURE_DIM,
    FEATURE_LAYER,
    FeatureNet,
    feature_recipe,
    random_shift,
    train_feature_net,
)
from genmodels.yardstick import (
    ShippedWeightsError,
    load_feature_net,
    ship_feature_net,
    shipped_files,
)


@pytest.fixture(scope="module")
def mnist5k():
    return load_dataset("mnist5k")


@pytest.fixture(scope="module")
def shipped(mnist5k):
    files = shipped_files("mnist5k")
    assert len(files) == 1, files  # exactly one frozen yardstick for the default dataset
    return files[0]


def _reference_sha256(tensors: dict[str, torch.Tensor]) -> str:
    """The documented weights hash, written out independently: sha256 over each tensor's
    name, dtype, shape and raw bytes, names sorted."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name]
        digest.update(name.encode())
        digest.update(str(t.dtype).encode())
        digest.update(str(tuple(t.shape)).encode())
        digest.update(np.ascontiguousarray(t.numpy()).tobytes())
    return digest.hexdigest()


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
    assert FEATURE_LAYER in FEATURE_ARCH and str(FEATURE_DIM) in FEATURE_ARCH


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
    assert info["source"] == "trained"
    assert info["feature_net_id"] == _reference_sha256(net.state_dict())[:16]
    again, info2 = train_feature_net(data, seed=1, epochs=1, progress=False)
    assert info2["cached"] is True and info2["test_accuracy"] == info["test_accuracy"]
    assert info2["feature_net_id"] == info["feature_net_id"]
    assert all(
        torch.equal(a, b)
        for a, b in zip(net.state_dict().values(), again.state_dict().values(), strict=True)
    )
    assert not again.training
    with pytest.raises(ValueError, match="epochs"):
        train_feature_net(data, epochs=0)


@pytest.mark.slow
def test_feature_net_reaches_97_percent_on_mnist5k(mnist5k) -> None:
    _, info = train_feature_net(mnist5k, progress=False)
    assert info["test_accuracy"] >= 0.97, info


def test_feature_net_rejects_images_too_small_for_two_5x5_stages() -> None:
    assert FeatureNet((1, 16, 16)).features(torch.rand(2, 1, 16, 16)).shape == (2, FEATURE_DIM)
    with pytest.raises(ValueError, match="at least 16x16"):
        FeatureNet((1, 12, 12))


def test_shipped_file_hash_matches_its_name_and_metadata(mnist5k, shipped) -> None:
    tensors = load_file(str(shipped))
    digest = _reference_sha256(tensors)
    assert shipped.name == f"feature_net_mnist5k_{digest[:16]}.safetensors"
    with safe_open(str(shipped), framework="pt") as handle:
        header = handle.metadata()
    assert header["sha256"] == digest
    meta = json.loads(header["meta"])
    # It records the recipe that made it, which is today's recipe for mnist5k with seed 0.
    assert meta["recipe"] == feature_recipe(mnist5k, seed=0)
    assert meta["recipe"]["data"] == mnist5k.fingerprint and meta["test_accuracy"] >= 0.97
    assert shipped.stat().st_size < 600_000  # 129k float32 weights; well under 1 MB


def test_shipped_net_is_the_default_and_classifies_mnist5k_at_97_percent(
    mnist5k, shipped
) -> None:
    before = torch.random.get_rng_state()
    net, info = load_feature_net(mnist5k, progress=False)
    assert torch.equal(torch.random.get_rng_state(), before)  # caller's RNG untouched
    assert info["source"] == "shipped" and info["checkpoint"] == str(shipped)
    assert info["feature_net_id"] == shipped.name.split("_")[-1].split(".")[0]
    assert info["weights_sha256"].startswith(info["feature_net_id"])
    # Recomputed on load, independently of the number recorded when it was shipped.
    correct = int((net(mnist5k.test_x).argmax(1) == mnist5k.test_y).sum())
    assert info["test_accuracy"] == correct / len(mnist5k.test_y) >= 0.97
    assert info["test_accuracy_shipped"] >= 0.97 and not net.training


def test_loading_the_shipped_net_is_bit_exact_across_thread_counts(mnist5k, shipped) -> None:
    reference = FeatureNet(mnist5k.image_shape)
    reference.load_state_dict(load_file(str(shipped)))  # plain safetensors, no genbench code
    x = mnist5k.test_x[:256]
    with torch.no_grad():
        expected = reference.eval().features(x)
        for threads in (1, 2):
            torch.set_num_threads(threads)
            net, _ = load_feature_net(mnist5k, progress=False)
            assert torch.equal(net.features(x), expected), threads


def test_a_shipped_net_loads_bit_identical_to_the_net_it_was_made_from(tmp_path) -> None:
    data = load_dataset("mnist5k").subset(96, 32)
    made, info = train_feature_net(data, seed=2, epochs=1, progress=False)
    path = ship_feature_net(data, made, info["test_accuracy"], seed=2, epochs=1,
                            assets_dir=tmp_path)
    net, loaded = load_feature_net(data, seed=2, epochs=1, assets_dir=tmp_path)
    assert loaded["source"] == "shipped" and loaded["checkpoint"] == str(path)
    assert loaded["feature_net_id"] == info["feature_net_id"]  # same weights, same id
    with torch.no_grad():
        x = data.test_x
        assert torch.equal(net.features(x), made.features(x)) and torch.equal(net(x), made(x))
    # Another recipe (budget) or features="retrain" never uses that file: they train.
    assert load_feature_net(data, seed=2, epochs=2, assets_dir=tmp_path)[1]["source"] == "trained"
    again = load_feature_net(data, "retrain", seed=2, epochs=1, assets_dir=tmp_path)[1]
    assert again["source"] == "trained" and again["feature_net_id"] == info["feature_net_id"]


def _flip_last_byte(path) -> None:
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 0x01  # inside the last weight tensor
    path.write_bytes(bytes(raw))


def _break_header(path) -> None:
    raw = bytearray(path.read_bytes())
    raw[8:16] = b"\x00" * 8  # the JSON header starts at byte 8
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize("tamper,match", [
    (_flip_last_byte, "failed its sha256 check"),
    (_break_header, "cannot be read"),
    ("rename", "failed its sha256 check"),
])
def test_a_tampered_copy_is_refused_with_a_one_line_error(
    mnist5k, shipped, tmp_path, tamper, match
) -> None:
    if tamper == "rename":  # intact weights under another hash
        shutil.copy(shipped, tmp_path / "feature_net_mnist5k_0123456789abcdef.safetensors")
    else:
        copy = tmp_path / shipped.name
        shutil.copy(shipped, copy)
        tamper(copy)
    with pytest.raises(ShippedWeightsError, match=match) as caught:
        load_feature_net(mnist5k, assets_dir=tmp_path)  # never silently retrained
    assert "\n" not in str(caught.value) and "--retrain-features" in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_load_feature_net_rejects_an_unknown_source(mnist5k) -> None:
    with pytest.raises(ValueError, match="allowed: shipped, retrain"):
        load_feature_net(mnist5k, "frozen")
