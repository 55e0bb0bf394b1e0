"""Quality vs compression ratio and vs measured speedup, per family, with the Pareto front."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.ticker import FuncFormatter

from bench import schema
from bench.loading import ResultsDir, seed_summary, with_latency
from bench.plots.pareto import pareto_mask
from bench.plots.style import AXIS_LABELS, method_style, plt, save

PLAIN = FuncFormatter(lambda value, _: f"{value:g}")

X_AXES = ["compression_ratio", "speedup"]
# fid_proxy for every family; ELBO as a second panel where the family has one (VAEs).
QUALITY_PANELS = ["fid_proxy", "elbo_nats"]


def tradeoff_points(run: ResultsDir, family: str) -> pd.DataFrame:
    """Per cell key of the family: mean/std over ok seeds of quality and x-axis columns."""
    rows = with_latency(run, run.ok()[run.ok()["family"] == family])
    return seed_summary(rows, QUALITY_PANELS + X_AXES)


def _panel(ax: plt.Axes, points: pd.DataFrame, x: str, y: str, floor: float | None) -> None:
    baseline = points[points["method"] == "baseline"]
    if not baseline.empty:
        ax.axhline(baseline[f"{y}_mean"].mean(), color="0.4", linewidth=1,
                   label="uncompressed baseline")
        # The baseline as a point too: its measured speedup need not be exactly 1.
        ax.errorbar(baseline[f"{x}_mean"], baseline[f"{y}_mean"],
                    xerr=baseline[f"{x}_std"].fillna(0), yerr=baseline[f"{y}_std"].fillna(0),
                    color="black", marker="*", markersize=10, linestyle="none", capsize=3)
    if floor is not None:
        ax.axhline(floor, color="0.4", linestyle="--", linewidth=1, label="real-vs-real floor")
    variants = points[points["method"] != "baseline"]
    for index, (method, group) in enumerate(variants.groupby("method", sort=False)):
        group = group.sort_values(f"{x}_mean")
        ax.errorbar(group[f"{x}_mean"], group[f"{y}_mean"], xerr=group[f"{x}_std"].fillna(0),
                    yerr=group[f"{y}_std"].fillna(0), capsize=3, label=method,
                    **method_style(index))
    valid = points[points[f"{x}_mean"].notna() & points[f"{y}_mean"].notna()]
    front = valid[pareto_mask(valid[f"{x}_mean"], valid[f"{y}_mean"],
                              schema.DIRECTIONS[x], schema.DIRECTIONS[y])]
    front = front.sort_values(f"{x}_mean")
    ax.plot(front[f"{x}_mean"], front[f"{y}_mean"], color="black", linewidth=0.8,
            drawstyle="steps-post", alpha=0.6)
    ax.scatter(front[f"{x}_mean"], front[f"{y}_mean"], s=160, facecolors="none",
               edgecolors="black", linewidths=1.2, label="Pareto front", zorder=5)
    ax.set_xscale("log")
    # Plain numbers (2, 4, 8) on the log axis, not 2x10^0.
    ax.xaxis.set_major_formatter(PLAIN)
    ax.xaxis.set_minor_formatter(PLAIN)
    ax.set_xlabel(AXIS_LABELS[x])
    ax.set_ylabel(AXIS_LABELS[y])
    ax.grid(True, alpha=0.3)


def plot_tradeoffs(run: ResultsDir, family: str, out: Path) -> list[Path]:
    """plots/tradeoff_<family>.png|svg: rows are quality metrics, columns ratio and speedup."""
    points = tradeoff_points(run, family)
    panels_y = [m for m in QUALITY_PANELS if points[f"{m}_mean"].notna().any()]
    panels_x = [m for m in X_AXES if points[f"{m}_mean"].notna().any()]
    if not panels_y or not panels_x:
        return []
    figure, axes = plt.subplots(len(panels_y), len(panels_x), squeeze=False,
                                figsize=(6.5 * len(panels_x), 4.5 * len(panels_y)),
                                layout="constrained")
    for i, y in enumerate(panels_y):
        floor = run.floors.get(y)
        for j, x in enumerate(panels_x):
            _panel(axes[i][j], points, x, y, floor)
    axes[0][0].legend(fontsize=8)
    family_rows = run.results[run.results["family"] == family]
    excluded = int((family_rows["status"] != schema.STATUS_OK).sum())
    seeds = family_rows["seed"].nunique()
    figure.suptitle(f"{family}: quality vs compression (mean ± std over {seeds} seed(s); "
                    f"{excluded} failed/skipped cell(s) excluded)")
    return save(figure, out / f"tradeoff_{family}")
