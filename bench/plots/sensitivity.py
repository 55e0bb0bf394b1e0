"""Per-layer sensitivity heatmaps (layer x setting) of a sensitivity.csv, one per family."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from bench.plots.style import plt, save

FILE_PREFIX = "sensitivity_"  # bench.plots.PLOT_KINDS owns files starting with "sensitivity"
DRIFT_FLOOR = 1e-8  # drifts below this are drawn at it (log colour scale; exact 0 has no log)


def _setting_order(frame: pd.DataFrame) -> list[str]:
    # Quantization from mild to harsh, then pruning from mild to harsh.
    keyed = frame.drop_duplicates("setting").assign(
        harsh=lambda f: np.where(f["setting_kind"] == "quant", -f["setting_value"],
                                 100 + f["setting_value"]))
    return keyed.sort_values("harsh")["setting"].tolist()


def _delta_text(measured: pd.DataFrame, metric: str, fmt: str) -> str:
    """Mean delta over seeds, '*' when its mean 95% interval excludes 0; '' when not measured."""
    if metric + "_delta" not in measured or measured[metric + "_delta"].isna().all():
        return ""
    low = measured[metric + "_delta_ci_low"].mean()
    high = measured[metric + "_delta_ci_high"].mean()
    return format(measured[metric + "_delta"].mean(), fmt) + ("*" if low > 0 or high < 0 else "")


def _annotation(cell: pd.DataFrame) -> str:
    """FID-proxy delta and, for VAEs, the ELBO delta in nats below it, where they were measured;
    '' where the drift was below the gate."""
    measured = cell[cell["evaluated"].astype(bool)]
    lines = [_delta_text(measured, "fid_proxy", "+.1f"), _delta_text(measured, "elbo_nats", "+.0f")]
    return "\n".join(line for line in lines if line)


def plot_family(frame: pd.DataFrame, family: str, out_dir: Path) -> list[Path]:
    """One heatmap: rows the family's layers (in model order, with their weight counts),
    columns the settings; colour log10 of the drift (mean over seeds); text the FID-proxy delta."""
    rows = frame[frame["family"] == family]
    layers = list(dict.fromkeys(rows["layer"]))
    columns = _setting_order(rows)
    drift = np.full((len(layers), len(columns)), np.nan)
    text = [["" for _ in columns] for _ in layers]
    for (layer, setting), cell in rows.groupby(["layer", "setting"], sort=False):
        i, j = layers.index(layer), columns.index(setting)
        drift[i, j] = math.log10(max(float(cell["drift_mse"].mean()), DRIFT_FLOOR))
        text[i][j] = _annotation(cell)
    params = rows.drop_duplicates("layer").set_index("layer")["params"]
    figure, axes = plt.subplots(figsize=(1.1 * len(columns) + 3.2, 0.5 * len(layers) + 1.8),
                                layout="constrained")
    image = axes.imshow(drift, cmap="magma_r", aspect="auto")
    axes.set_xticks(range(len(columns)), columns, rotation=30, ha="right")
    axes.set_yticks(range(len(layers)), [f"{name} ({int(params[name]):,})" for name in layers])
    for i in range(len(layers)):
        for j in range(len(columns)):
            if text[i][j]:
                dark = drift[i, j] > np.nanmean(drift)
                axes.text(j, i, text[i][j], ha="center", va="center", fontsize=7,
                          color="white" if dark else "black")
    seeds = rows["seed"].nunique()
    axes.set_title(f"{family}: one layer compressed, the rest fp32 ({seeds} seed"
                   f"{'s' if seeds != 1 else ''})\ncolour: output drift; text: FID-proxy change"
                   " (VAEs: ELBO change in nats below it; * interval excludes 0)", fontsize=9)
    figure.colorbar(image, ax=axes, label="log10 output drift (per-pixel MSE)")
    return save(figure, Path(out_dir) / f"{FILE_PREFIX}{family}")


def plot_sensitivity(frame: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Heatmaps (PNG + SVG) of a sensitivity frame (bench.run.sensitivity.SENSITIVITY_COLUMNS), one
    per family, written as out_dir/sensitivity_<family>.{png,svg}; returns the paths."""
    paths: list[Path] = []
    for family in dict.fromkeys(frame["family"]):
        paths += plot_family(frame, family, out_dir)
    return paths
