"""The FID-proxy feature network: a small LeNet-style classifier trained on the dataset itself.

Inception features suit neither 28x28 digits nor offline machines; Binkowski et al. (MMD-GAN,
arXiv:1801.01401, `gan/compute_scores.py`) score MNIST with a LeNet's penultimate layer instead.
Scores are comparable only between runs that used the same feature net, named by the sha256 of
its weights (`weights_sha256`): training is float work whose result differs between CPUs (AVX2
vs AVX-512), so genmodels.yardstick ships the mnist5k net's weights instead of retraining them.
"""

from __future__ import annotations

import time
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from genmodels.cache import CorruptCacheError, cache_dir, config_hash, load_tensors, save_tensors
from genmodels.cache import _digest as _tensors_digest
from genmodels.data import Dataset

FEATURE_LAYER = "fc1_relu"
FEATURE_DIM = 128
FEATURE_ARCH = f"lenet-v1:{FEATURE_LAYER}:{FEATURE_DIM}"  # bump v1 when the layout changes
# The training recipe (seed and epochs are arguments): every field is in feature_recipe().
FEATURE_EPOCHS = 8
FEATURE_BATCH_SIZE = 32
FEATURE_MAX_LR = 2e-3
FEATURE_MAX_SHIFT = 2


class FeatureNet(nn.Module):
    """Caffe's LeNet layout (as in Binkowski et al.'s scorer, narrower fc): conv5x5(20)-ReLU-
    maxpool, conv5x5(50)-ReLU-maxpool, fc1(128)-ReLU [features], fc2 -> class logits.

    Inputs in [0, 1] are centred to [-0.5, 0.5] as in that scorer."""

    def __init__(
        self, image_shape: tuple[int, int, int] = (1, 28, 28), n_classes: int = 10
    ) -> None:
        super().__init__()
        c, h, w = image_shape
        if min(h, w) < 16:
            raise ValueError(f"FeatureNet needs images of at least 16x16, got {h}x{w}")
        self.image_shape, self.n_classes = tuple(image_shape), int(n_classes)
        self.conv1 = nn.Conv2d(c, 20, 5)
        self.conv2 = nn.Conv2d(20, 50, 5)
        side_h, side_w = ((h - 4) // 2 - 4) // 2, ((w - 4) // 2 - 4) // 2  # two valid 5x5 + pool
        self.fc1 = nn.Linear(50 * side_h * side_w, FEATURE_DIM)
        self.fc2 = nn.Linear(FEATURE_DIM, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) in [0, 1] -> (B, 128) ReLU activations of fc1 (the penultimate layer)."""
        h = F.max_pool2d(F.relu(self.conv1(x - 0.5)), 2)
        h = F.max_pool2d(F.relu(self.conv2(h)), 2)
        return F.relu(self.fc1(h.flatten(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.features(x))


def random_shift(x: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Translate each image by its own integer (dx, dy) in [-max_shift, max_shift], zero fill.

    Integer shifts land exactly on pixel centres, so bilinear grid_sample copies pixels."""
    b, _, h, w = x.shape
    shifts = torch.randint(-max_shift, max_shift + 1, (b, 2), generator=generator).float()
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0
    theta[:, 0, 2], theta[:, 1, 2] = shifts[:, 0] * 2 / w, shifts[:, 1] * 2 / h
    grid = F.affine_grid(theta.to(x.device), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, align_corners=False, padding_mode="zeros")


@torch.no_grad()
def accuracy(net: FeatureNet, x: torch.Tensor, y: torch.Tensor, batch_size: int = 500) -> float:
    """Fraction of x classified as y, evaluated in batches."""
    correct = sum(
        int((net(x[i : i + batch_size]).argmax(1) == y[i : i + batch_size]).sum())
        for i in range(0, x.shape[0], batch_size)
    )
    return correct / x.shape[0]


def weights_sha256(state_dict: dict[str, torch.Tensor]) -> str:
    """sha256 (64 hex) over every tensor's (name, dtype, shape, bytes), names sorted: the
    content hash `save_tensors` stores, so a file's name, metadata and weights can be checked
    against each other. The first 16 hex digits are the net's `feature_net_id`."""
    return _tensors_digest({k: v.detach().cpu() for k, v in state_dict.items()})


def feature_recipe(
    dataset: Dataset, seed: int = 0, epochs: int = FEATURE_EPOCHS
) -> dict[str, Any]:
    """Everything that decides the trained weights on one machine (JSON-ready): layout, train
    split content, seed and budget. A shipped net is used only when its recorded recipe equals
    this one."""
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    return {
        "net": FEATURE_ARCH,
        "dataset": dataset.name,
        "data": dataset.fingerprint,
        "classes": int(max(dataset.train_y.max(), dataset.test_y.max())) + 1,
        "seed": int(seed),
        "epochs": int(epochs),
        "batch_size": FEATURE_BATCH_SIZE,
        "max_lr": FEATURE_MAX_LR,
        "max_shift": FEATURE_MAX_SHIFT,
    }


def new_feature_net(dataset: Dataset, seed: int = 0) -> FeatureNet:
    """An untrained FeatureNet for the dataset, seeded without touching the caller's RNG."""
    n_classes = int(max(dataset.train_y.max(), dataset.test_y.max())) + 1
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return FeatureNet(dataset.image_shape, n_classes)


def train_feature_net(
    dataset: Dataset, seed: int = 0, epochs: int = FEATURE_EPOCHS, progress: bool = True
) -> tuple[FeatureNet, dict[str, Any]]:
    """Train (or load from this machine's cache) the classifier on the train split; info has
    test_accuracy, seconds, cached, checkpoint, feature_layer, feature_dim, key, source
    ("trained") and feature_net_id (16 hex of weights_sha256: retrained weights differ
    between CPUs, and so does this id)."""
    recipe = feature_recipe(dataset, seed, epochs)
    key = config_hash(recipe)
    path = cache_dir() / "checkpoints" / f"featurenet-{key}.safetensors"
    path.parent.mkdir(parents=True, exist_ok=True)
    net = new_feature_net(dataset, seed)
    info = {
        "checkpoint": str(path),
        "feature_layer": FEATURE_LAYER,
        "feature_dim": FEATURE_DIM,
        "key": key,
        "source": "trained",
    }
    start = time.perf_counter()
    if path.exists():
        try:
            tensors, meta = load_tensors(path)
            net.load_state_dict(tensors)
            return net.eval(), {
                **info,
                "feature_net_id": weights_sha256(tensors)[:16],
                "test_accuracy": meta["test_accuracy"],
                "cached": True,
                "seconds": time.perf_counter() - start,
            }
        except (CorruptCacheError, RuntimeError, KeyError):
            pass  # rebuild below
    with torch.enable_grad():  # callers may hold torch.no_grad()
        _fit_classifier(net, dataset, seed, epochs, progress)
    net.eval()
    test_accuracy = accuracy(net, dataset.test_x, dataset.test_y)
    seconds = time.perf_counter() - start
    save_tensors(
        path,
        net.state_dict(),
        {"test_accuracy": test_accuracy, "seconds": seconds, "recipe": recipe},
    )
    return net, {
        **info,
        "feature_net_id": weights_sha256(net.state_dict())[:16],
        "test_accuracy": test_accuracy,
        "cached": False,
        "seconds": seconds,
    }


def _fit_classifier(
    net: FeatureNet,
    dataset: Dataset,
    seed: int,
    epochs: int,
    progress: bool,
    batch_size: int = FEATURE_BATCH_SIZE,
    max_lr: float = FEATURE_MAX_LR,
    max_shift: int = FEATURE_MAX_SHIFT,
) -> None:
    # Random shifts and a one-cycle schedule: with only 4,000 digits they lift test accuracy
    # from ~97.2% to ~98% at the same budget (measured on mnist5k).
    gen = torch.Generator().manual_seed(seed)
    n = dataset.train_x.shape[0]
    opt = torch.optim.Adam(net.parameters(), lr=max_lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=max_lr, total_steps=epochs * ((n + batch_size - 1) // batch_size)
    )
    net.train()
    for _ in tqdm(range(epochs), disable=not progress, desc="train feature net", leave=False):
        order = torch.randperm(n, generator=gen)
        for i in range(0, n, batch_size):
            idx = order[i : i + batch_size]
            x = random_shift(dataset.train_x[idx], max_shift, gen)
            loss = F.cross_entropy(net(x), dataset.train_y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
