"""The frozen yardstick: feature-net weights shipped as package data, named and checked by hash.

A retrained feature net differs between CPUs (float training on AVX2 and AVX-512 diverges), so
FID-proxy, KID, P/R and D/C would move with the machine before any compression. genbench ships
the mnist5k net as `assets/feature_net_<dataset>_<sha16>.safetensors`, where sha16 is the first
16 hex digits of `features.weights_sha256` of its weights; the file's metadata records the same
sha256 and the training recipe. `load_feature_net` uses a shipped file whose recipe equals the
requested one, verifies it (a corrupt or renamed file is an error, never silently replaced by a
retrained net), and trains as before otherwise or when asked to ("retrain").

Re-ship (only when the recipe changes): `python -m genmodels.yardstick mnist5k`.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import time
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open

from genmodels.cache import config_hash, save_tensors
from genmodels.data import Dataset, load_dataset
from genmodels.features import (
    FEATURE_DIM,
    FEATURE_EPOCHS,
    FEATURE_LAYER,
    FeatureNet,
    accuracy,
    feature_recipe,
    new_feature_net,
    train_feature_net,
    weights_sha256,
)

ASSETS_DIR = Path(__file__).resolve().parent / "assets"
FEATURE_SOURCES = ("shipped", "retrain")  # the sweep key `features`; "shipped" is the default
_FILE_RE = re.compile(r"^feature_net_(?P<dataset>.+)_(?P<sha16>[0-9a-f]{16})\.safetensors$")


class ShippedWeightsError(ValueError):
    """A shipped feature-net file is unreadable or fails its sha256 check (one line)."""


def shipped_files(dataset_name: str, assets_dir: Path | None = None) -> list[Path]:
    """The shipped feature-net files of one dataset, sorted by name."""
    folder = ASSETS_DIR if assets_dir is None else Path(assets_dir)
    if not folder.is_dir():
        return []
    return sorted(
        p for p in folder.iterdir()
        if (m := _FILE_RE.match(p.name)) and m["dataset"] == dataset_name
    )


def read_shipped(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any], str]:
    """(tensors, metadata, weights sha256) of a shipped file, after checking that the weights'
    sha256 matches both the file name and the sha256 recorded in its metadata."""
    path = Path(path)
    match = _FILE_RE.match(path.name)
    fix = "reinstall genbench, or run with --retrain-features (features = \"retrain\")"
    if match is None:
        raise ShippedWeightsError(f"shipped feature net {path.name}: the name must be "
                                  f"feature_net_<dataset>_<sha16>.safetensors; {fix}")
    try:
        with safe_open(str(path), framework="pt") as handle:
            header = handle.metadata() or {}
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
        meta = json.loads(header["meta"])
    except (SafetensorError, OSError, ValueError, KeyError, RuntimeError) as exc:
        reason = " ".join(f"{exc.__class__.__name__}: {exc}".split())  # one line
        raise ShippedWeightsError(
            f"shipped feature net {path.name} cannot be read ({reason}); {fix}") from exc
    digest = weights_sha256(tensors)
    if digest[:16] != match["sha16"] or header.get("sha256") != digest:
        raise ShippedWeightsError(
            f"shipped feature net {path.name} failed its sha256 check (weights hash "
            f"{digest[:16]}, name {match['sha16']}, metadata "
            f"{str(header.get('sha256'))[:16]}): the file was altered; {fix}")
    return tensors, meta, digest


def load_feature_net(
    dataset: Dataset,
    features: str = "shipped",
    seed: int = 0,
    epochs: int = FEATURE_EPOCHS,
    progress: bool = True,
    assets_dir: Path | None = None,
) -> tuple[FeatureNet, dict[str, Any]]:
    """The feature net to score with. features="shipped": the shipped net whose recorded recipe
    equals feature_recipe(dataset, seed, epochs) (info source "shipped", test_accuracy recomputed
    on the test split); none matches, or features="retrain": `train_feature_net` (source
    "trained"). info["feature_net_id"] is the first 16 hex of the weights' sha256 either way."""
    if features not in FEATURE_SOURCES:
        raise ValueError(f"features = {features!r}; allowed: {', '.join(FEATURE_SOURCES)}")
    if features == "shipped":
        start = time.perf_counter()
        recipe = feature_recipe(dataset, seed, epochs)
        for path in shipped_files(dataset.name, assets_dir):
            tensors, meta, digest = read_shipped(path)  # every candidate is verified
            if meta.get("recipe") != recipe:
                continue
            net = new_feature_net(dataset, seed)
            net.load_state_dict(tensors)
            net.eval()
            return net, {
                "checkpoint": str(path),
                "feature_layer": FEATURE_LAYER,
                "feature_dim": FEATURE_DIM,
                "key": config_hash(recipe),
                "source": "shipped",
                "feature_net_id": digest[:16],
                "weights_sha256": digest,
                "test_accuracy": accuracy(net, dataset.test_x, dataset.test_y),
                "test_accuracy_shipped": meta.get("test_accuracy"),
                "cached": True,
                "seconds": time.perf_counter() - start,
            }
    return train_feature_net(dataset, seed, epochs, progress)


def ship_feature_net(
    dataset: Dataset,
    net: FeatureNet,
    test_accuracy: float,
    seed: int = 0,
    epochs: int = FEATURE_EPOCHS,
    assets_dir: Path | None = None,
) -> Path:
    """Write `net` (trained with feature_recipe(dataset, seed, epochs)) as a shipped file named
    by its weights' sha256; the recipe, accuracy and where it was trained go in the metadata."""
    folder = ASSETS_DIR if assets_dir is None else Path(assets_dir)
    folder.mkdir(parents=True, exist_ok=True)
    state = net.state_dict()
    path = folder / f"feature_net_{dataset.name}_{weights_sha256(state)[:16]}.safetensors"
    meta = {
        "recipe": feature_recipe(dataset, seed, epochs),
        "test_accuracy": float(test_accuracy),
        "trained_with": {"torch": torch.__version__, "machine": platform.machine(),
                         "processor": platform.processor(), "threads": torch.get_num_threads()},
    }
    save_tensors(path, state, meta)
    path.chmod(0o644)  # package data: readable by every user (mkstemp made it 0600)
    return path


def main(argv: list[str] | None = None) -> int:
    """Train a dataset's feature net with the current recipe and ship it into assets/."""
    parser = argparse.ArgumentParser(prog="python -m genmodels.yardstick", description=main.__doc__)
    parser.add_argument("dataset", help="a genmodels.data.DATASETS name (mnist5k)")
    args = parser.parse_args(argv)
    dataset = load_dataset(args.dataset)
    net, info = train_feature_net(dataset, progress=True)
    path = ship_feature_net(dataset, net, info["test_accuracy"])
    print(f"{path} ({path.stat().st_size} bytes, test accuracy {info['test_accuracy']:.4f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
