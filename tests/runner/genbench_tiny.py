"""A tiny synthetic dataset (1x16x16 blobs) registered as "tiny16" (a GENBENCH_PLUGINS module)."""
from __future__ import annotations

import torch

from genmodels.data import DATASETS, Dataset
from genmodels.registry import register

NAME = "tiny16"
N_TRAIN, N_TEST, SIDE = 256, 128, 16  # 16: the smallest side the LeNet feature net takes


def _blobs(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    # A Gaussian bump per image; the label is the quadrant of its centre (4 classes).
    g = torch.Generator().manual_seed(seed)
    centres = torch.rand(n, 2, generator=g) * (SIDE - 4) + 2  # (n, 2)
    grid = torch.arange(SIDE, dtype=torch.float32)
    dy = (grid[None, :, None] - centres[:, 0, None, None]) ** 2
    dx = (grid[None, None, :] - centres[:, 1, None, None]) ** 2
    images = torch.exp(-(dx + dy) / 4.0).unsqueeze(1).float()  # (n, 1, 16, 16) in (0, 1]
    labels = ((centres[:, 0] > SIDE / 2).long() * 2 + (centres[:, 1] > SIDE / 2).long())
    return images.clamp(0, 1), labels


def load_tiny(root: object = None, download: bool = False) -> Dataset:
    train_x, train_y = _blobs(N_TRAIN, 0)
    test_x, test_y = _blobs(N_TEST, 1)
    return Dataset(NAME, train_x, train_y, test_x, test_y)


if NAME not in DATASETS:
    register(DATASETS, NAME)(load_tiny)
