"""Quality change against the baseline vs compression ratio and vs measured speedup, per family:
95% intervals as error bars, the baseline's interval and the real-vs-real floor as bands."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.ticker import FuncFormatter

from bench import schema
from bench.annotations import as_flag, floor_summary, n_samples
from bench.loading import ResultsDir, seed_summary, with_latency
from bench.plots.pareto import pareto_mask
from bench.plots.style import AXIS_LABELS, method_style, plt, save

PLAIN = FuncFormatter(lambda value, _: f"{value:g}")

X_AXES = ["compression_ratio", "speedup"]
# fid_proxy for every family; ELBO as a second panel where the family has one (VAEs).
QUALITY_PANELS = ["fid_proxy", "elbo_nats"]
_COLLAPSED = "collapsed__flag"


def relative_change(points: pd.DataFrame, metric: str) -> pd.DataFrame:
    """`<metric>_rel`, `_rel_low`, `_rel_high`: 100 (v - b) / |b| in %, b the dataset's baseline
    mean. A variant's change and interval are its paired delta (`<metric>_delta`, tighter than
    two independent intervals); where it has none, its value interval minus b. The baseline's
    own row: 0, with its value interval (the band the variants are read against)."""
    out = pd.DataFrame(index=points.index)
    baseline = points[points["method"] == "baseline"].groupby("dataset")[f"{metric}_mean"].mean()
    base = points["dataset"].map(baseline).abs()
    mean, low, high = (points[f"{metric}_{s}"] for s in ("mean", "low", "high"))
    has_delta = f"{metric}_delta_mean" in points
    delta = points[f"{metric}_delta_mean"] if has_delta else pd.Series(np.nan, points.index)
    paired = delta.notna() & (points["method"] != "baseline")
    for suffix, own, from_delta in (("", mean, "mean"), ("_low", low, "low"),
                                    ("_high", high, "high")):
        change = own - points["dataset"].map(baseline)
        if has_delta:
            change = change.where(~paired, points[f"{metric}_delta_{from_delta}"])
        out[f"{metric}_rel{suffix}"] = 100 * change / base
    return out


def tradeoff_points(run: ResultsDir, family: str) -> pd.DataFrame:
    """Per cell key of the family: seed_summary of quality (with deltas) and x-axis columns,
    the relative changes, and the count of collapsed seeds."""
    rows = with_latency(run, run.ok()[run.ok()["family"] == family])  # speedup: ok rows only
    rows[_COLLAPSED] = as_flag(rows["collapsed"]).astype(float)
    deltas = [f"{m}_delta" for m in QUALITY_PANELS if m in schema.DELTA_METRICS]
    points = seed_summary(rows, QUALITY_PANELS + deltas + X_AXES + [_COLLAPSED])
    for metric in QUALITY_PANELS:
        points = points.join(relative_change(points, metric))
    points["collapsed"] = points[f"{_COLLAPSED}_mean"] > 0
    return points


def _errors(points: pd.DataFrame, column: str) -> np.ndarray:
    """(2, n) asymmetric error bars from `<column>`, `_low`, `_high` (0 where unknown)."""
    value = points[column].to_numpy(float)
    low = points[f"{column}_low"].to_numpy(float)
    high = points[f"{column}_high"].to_numpy(float)
    return np.nan_to_num(np.clip(np.stack([value - low, high - value]), 0, None))


def _x_errors(points: pd.DataFrame, x: str) -> np.ndarray:
    return np.nan_to_num(points[f"{x}_hw"].to_numpy(float))


def _panel(ax: plt.Axes, points: pd.DataFrame, x: str, y: str,
           floor: tuple[float, float] | None, at: str) -> None:
    rel = f"{y}_rel"
    baseline = points[points["method"] == "baseline"]
    if not baseline.empty:
        low, high = baseline[f"{rel}_low"].min(), baseline[f"{rel}_high"].max()
        if np.isfinite(low) and np.isfinite(high):
            ax.axhspan(low, high, color="0.85", zorder=0, label="baseline 95% interval")
        ax.axhline(0.0, color="0.4", linewidth=1, label="uncompressed baseline")
        # The baseline as a point too: its measured speedup need not be exactly 1.
        ax.errorbar(baseline[f"{x}_mean"], baseline[rel], xerr=_x_errors(baseline, x),
                    color="black", marker="*", markersize=10, linestyle="none", capsize=3)
    base = points.loc[points["method"] == "baseline", f"{y}_mean"].mean()
    if floor is not None and np.isfinite(base) and base != 0:
        mean, spread = floor
        level = 100 * (mean - base) / abs(base)
        ax.axhline(level, color="0.4", linestyle="--", linewidth=1,
                   label=f"real-vs-real floor{at} (mean ± std)")
        if np.isfinite(spread):
            width = 100 * spread / abs(base)
            ax.axhspan(level - width, level + width, color="tab:green", alpha=0.15, zorder=0)
    variants = points[points["method"] != "baseline"]
    for index, (method, group) in enumerate(variants.groupby("method", sort=False)):
        group = group.sort_values(f"{x}_mean")
        ax.errorbar(group[f"{x}_mean"], group[rel], xerr=_x_errors(group, x),
                    yerr=_errors(group, rel), capsize=3, label=method, **method_style(index))
    collapsed = points[points["collapsed"] & points[f"{x}_mean"].notna()]
    if not collapsed.empty:
        ax.scatter(collapsed[f"{x}_mean"], collapsed[rel], s=120, marker="x", color="red",
                   zorder=6, label="collapsed (same output for every z)")
    valid = points[points[f"{x}_mean"].notna() & points[rel].notna() & ~points["collapsed"]]
    front = valid[pareto_mask(valid[f"{x}_mean"], valid[rel], schema.DIRECTIONS[x],
                              schema.DIRECTIONS[y])]
    front = front.sort_values(f"{x}_mean")
    ax.plot(front[f"{x}_mean"], front[rel], color="black", linewidth=0.8,
            drawstyle="steps-post", alpha=0.6)
    ax.scatter(front[f"{x}_mean"], front[rel], s=160, facecolors="none",
               edgecolors="black", linewidths=1.2, label="Pareto front", zorder=5)
    ax.set_xscale("log")
    # Plain numbers (2, 4, 8) on the log axis, not 2x10^0.
    ax.xaxis.set_major_formatter(PLAIN)
    ax.xaxis.set_minor_formatter(PLAIN)
    ax.set_xlabel(AXIS_LABELS[x])
    better = "lower" if schema.DIRECTIONS[y] < 0 else "higher"
    ax.set_ylabel(f"{AXIS_LABELS[y].split(' (')[0]} change vs baseline (%, {better} is better)")
    ax.grid(True, alpha=0.3)


def plot_tradeoffs(run: ResultsDir, family: str, out: Path) -> list[Path]:
    """plots/tradeoff_<family>.png|svg: rows are quality metrics, columns ratio and speedup."""
    points = tradeoff_points(run, family)
    panels_y = [m for m in QUALITY_PANELS if points[f"{m}_rel"].notna().any()]
    panels_x = [m for m in X_AXES if points[f"{m}_mean"].notna().any()]
    if not panels_y or not panels_x:
        return []
    figure, axes = plt.subplots(len(panels_y), len(panels_x), squeeze=False,
                                figsize=(6.5 * len(panels_x), 4.5 * len(panels_y)),
                                layout="constrained")
    n = n_samples(run)
    floors = floor_summary(run)
    for i, y in enumerate(panels_y):
        for j, x in enumerate(panels_x):
            _panel(axes[i][j], points, x, y, floors.get(y), f" at n={n}" if n else "")
    axes[0][0].legend(fontsize=8)
    family_rows = run.results[run.results["family"] == family]
    excluded = int((family_rows["status"] != schema.STATUS_OK).sum())
    unstable = int(run.latency["cell_id"].isin(family_rows["cell_id"]).mul(
        run.latency["status"] == schema.STATUS_UNSTABLE).sum())
    seeds = family_rows["seed"].nunique()
    figure.suptitle(f"{family}: quality change vs compression (95% intervals; mean over "
                    f"{seeds} seed(s)); {excluded} failed/skipped cell(s) excluded; "
                    f"{unstable} unstable latency row(s) give no speedup")
    return save(figure, out / f"tradeoff_{family}")
