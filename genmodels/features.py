"""The FID-proxy feature network: a small LeNet-style classifier trained on the dataset itself.

Inception features suit neither 28x28 digits nor offline machines; Binkowski et al. (MMD-GAN,
arXiv:1801.01401, `gan/compute_scores.py`) score MNIST with a LeNet's penultimate layer instead.
Scores are comparable only between runs that used the same FEATURE_NET_ID.
"""

from __future__ import annotations

import time
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from genmodels.cache import CorruptCacheError, cache_dir, config_hash, load_tensors, save_tensors
from genmodels.data import Dataset

FEATURE_LAYER = "fc1_relu"
FEATURE_DIM = 128
FEATURE_NET_ID = f"lenet-v1:{FEATURE_LAYER}:{FEATURE_DIM}"  # bump v1 when training changes
FEATURE_EPOCHS = 8


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


def train_feature_net(
    dataset: Dataset, seed: int = 0, epochs: int = FEATURE_EPOCHS, progress: bool = True
) -> tuple[FeatureNet, dict[str, Any]]:
    """Train (or load from cache) the classifier on the train split; info has test_accuracy,
    seconds, cached, checkpoint, feature_layer, feature_dim, feature_net_id, key."""
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    n_classes = int(max(dataset.train_y.max(), dataset.test_y.max())) + 1
    key = config_hash(
        {
            "net": FEATURE_NET_ID,
            "dataset": dataset.name,
            "data": dataset.fingerprint,
            "seed": int(seed),
            "epochs": int(epochs),
            "classes": n_classes,
        }
    )
    path = cache_dir() / "checkpoints" / f"featurenet-{key}.safetensors"
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.random.fork_rng(devices=[]):  # seeded init without touching the caller's RNG
        torch.manual_seed(seed)
        net = FeatureNet(dataset.image_shape, n_classes)
    info = {
        "checkpoint": str(path),
        "feature_layer": FEATURE_LAYER,
        "feature_dim": FEATURE_DIM,
        "feature_net_id": FEATURE_NET_ID,
        "key": key,
    }
    start = time.perf_counter()
    if path.exists():
        try:
            tensors, meta = load_tensors(path)
            net.load_state_dict(tensors)
            return net.eval(), {
                **info,
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
        {"test_accuracy": test_accuracy, "seconds": seconds, "feature_net_id": FEATURE_NET_ID},
    )
    return net, {**info, "test_accuracy": test_accuracy, "cached": False, "seconds": seconds}


def _fit_classifier(
    net: FeatureNet,
    dataset: Dataset,
    seed: int,
    epochs: int,
    progress: bool,
    batch_size: int = 32,
    max_lr: float = 2e-3,
    max_shift: int = 2,
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
