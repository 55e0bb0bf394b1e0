"""Training curves of a run's reference models (DIR/training/*.json): loss and FID-proxy per
epoch, a column per family, so a reader sees each model has converged."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from bench.plots.style import plt, save
from bench.results.families import ordered_families

TRAINING_DIR = "training"  # bench.cell.training_curves.TRAINING_DIR
# Per-epoch keys that are not a loss: the epoch itself, and schedules such as the KL weight.
NOT_PLOTTED = {"epoch", "beta", "lr"}


def _is_quality(key: str) -> bool:
    return "fid" in key  # fid_proxy and the like: own panel, lower is better, no loss scale


def _payloads(directory: Path) -> list[dict]:
    """The readable DIR/training/*.json objects that hold a "curve" list. Read here, not with
    bench.cell.training_curves.read_training_curves: that module imports torch (4 s) to write
    files."""
    payloads = []
    for path in sorted((Path(directory) / TRAINING_DIR).glob("*.json")):
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue
        if isinstance(payload, dict) and isinstance(payload.get("curve"), list):
            payloads.append(payload)
    return payloads


def load_training_curves(directory: Path) -> pd.DataFrame:
    """Long table (family, seed, epoch, key, value) of every readable DIR/training/*.json, as
    bench.cell.training_curves writes them: "family", "seed" and "curve", a list of per-epoch
    objects with "epoch" and numeric keys. Entries that are not objects, and values that are not
    finite numbers, are skipped: a curve is an aid to reading, never a reason to fail a report."""
    rows = []
    for payload in _payloads(directory):
        family, seed = str(payload.get("family")), payload.get("seed", 0)
        for index, epoch in enumerate(payload["curve"]):
            if not isinstance(epoch, dict):
                continue
            number = epoch.get("epoch", index)
            for key, value in epoch.items():
                if (key not in NOT_PLOTTED and isinstance(value, int | float)
                        and not isinstance(value, bool) and math.isfinite(value)):
                    rows.append((family, seed, number, str(key), float(value)))
    return pd.DataFrame(rows, columns=["family", "seed", "epoch", "key", "value"])


def _samples_note(directory: Path) -> str:
    """", N samples" from the files' "fid_proxy_samples" ("N-M" if they differ), else ""."""
    counts = sorted({int(n) for p in _payloads(directory)
                     if isinstance(n := p.get("fid_proxy_samples"), int) and n > 0})
    if not counts:
        return ""
    span = f"{counts[0]:,}" if len(counts) == 1 else f"{counts[0]:,}-{counts[-1]:,}"
    return f", {span} samples"


def plot_training_curves(directory: Path, out: Path) -> list[Path]:
    """plots/training_curves.png|svg: per family (columns) the losses per epoch (top) and, where
    recorded, the FID-proxy per epoch (bottom); one line per key and seed. [] without curves."""
    curves = load_training_curves(directory)
    if curves.empty:
        return []
    families = ordered_families(curves["family"])
    has_quality = curves["key"].map(_is_quality).any()
    fid_label = f"FID-proxy{_samples_note(directory)} (lower is better)"
    rows = 2 if has_quality else 1
    figure, axes = plt.subplots(rows, len(families), squeeze=False, layout="constrained",
                                figsize=(max(4.2 * len(families), 6.0), 2.9 * rows + 0.5))
    for column, family in enumerate(families):
        mine = curves[curves["family"] == family]
        quality = mine["key"].map(_is_quality)
        for row, part in enumerate([mine[~quality], mine[quality]][:rows]):
            ax = axes[row][column]
            for (key, seed), line in part.groupby(["key", "seed"], sort=True):
                ax.plot(line["epoch"], line["value"], marker="." if len(line) < 30 else None,
                        label=f"{key}, seed {seed}" if mine["seed"].nunique() > 1 else key)
            ax.set_title(family if row == 0 else f"{family}: FID-proxy", fontsize=10)
            ax.set_xlabel("epoch")
            ax.set_ylabel("loss (per-batch mean)" if row == 0 else fid_label)
            ax.grid(True, alpha=0.3)
            if part.empty:
                ax.text(0.5, 0.5, "not recorded", ha="center", va="center",
                        transform=ax.transAxes, color="0.5")
            else:
                ax.legend(fontsize=7)
    figure.suptitle("Training curves of the reference models (mean per epoch)", fontsize=11)
    return save(figure, Path(out) / "training_curves")
