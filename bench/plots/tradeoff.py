"""Quality change against the baseline vs compression ratio and vs measured speedup, per family:
markers with 95% intervals, the noise bands, the Pareto front; the legend outside the data."""
from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.ticker import FuncFormatter

from bench.plots.pareto import front_mask
from bench.plots.style import AXIS_LABELS, marker_style, plt, save, seeds_in_words
from bench.results import schema
from bench.results.annotations import as_flag, floor_summary, n_samples, speedup_noise_band
from bench.results.families import ordered_methods
from bench.results.labels import compact_setting_labels
from bench.results.loading import ResultsDir, seed_summary, with_latency

LABEL_WIDTH = 32  # characters per line of a Pareto point's setting label

PLAIN = FuncFormatter(lambda value, _: f"{value:g}")
# Minor ticks of a log axis labelled at 2, 3 and 5 times a power of ten only: a label at 0.9 or
# 9 would run into the one at 1 or 10.
SPARSE = FuncFormatter(lambda value, _: f"{value:g}" if value > 0 and round(
    value / 10 ** np.floor(np.log10(value) + 1e-9), 6) in (2, 3, 5) else "")

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
    the relative changes, the count of collapsed seeds and a compact `setting` label.

    The baseline's speedup is 1 by definition (its p50 over itself); what it measured against
    itself is kept as `speedup_self` (the measurement noise, drawn as a band, never a point)."""
    rows = with_latency(run, run.ok()[run.ok()["family"] == family])  # speedup: ok rows only
    rows[_COLLAPSED] = as_flag(rows["collapsed"]).astype(float)
    deltas = [f"{m}_delta" for m in QUALITY_PANELS if m in schema.DELTA_METRICS]
    points = seed_summary(rows, QUALITY_PANELS + deltas + X_AXES + [_COLLAPSED])
    for metric in QUALITY_PANELS:
        points = points.join(relative_change(points, metric))
    points["collapsed"] = points[f"{_COLLAPSED}_mean"] > 0
    is_base = points["method"] == "baseline"
    points["speedup_self"] = points["speedup_mean"].where(is_base)
    points.loc[is_base, ["speedup_mean", "speedup_low", "speedup_high"]] = 1.0
    points.loc[is_base, "speedup_hw"] = 0.0
    points["setting"] = compact_setting_labels(points) if len(points) else []
    return points


def _errors(points: pd.DataFrame, column: str) -> np.ndarray:
    """(2, n) asymmetric error bars from `<column>`, `_low`, `_high` (0 where unknown)."""
    value = points[column].to_numpy(float)
    low = points[f"{column}_low"].to_numpy(float)
    high = points[f"{column}_high"].to_numpy(float)
    return np.nan_to_num(np.clip(np.stack([value - low, high - value]), 0, None))


def _x_errors(points: pd.DataFrame, x: str) -> np.ndarray:
    return np.nan_to_num(points[f"{x}_hw"].to_numpy(float))


def speed_noise(run: ResultsDir, family: str, points: pd.DataFrame) -> tuple[float, float]:
    """(low, high) speedups within noise: annotations.speedup_noise_band of run.json (the
    baseline timed against itself, 1/f to f), widened to the baseline's own latency row; (1, 1)
    when the run measured neither."""
    band = speedup_noise_band(run, family)
    values = [1.0] + points["speedup_self"].dropna().tolist()
    if band is not None:
        values += [band.low, band.high]
    return min(values), max(values)


def _noise_bands(ax: plt.Axes, points: pd.DataFrame, x: str, y: str,
                 floor: tuple[float, float] | None, at: str,
                 speed_band: tuple[float, float]) -> None:
    rel = f"{y}_rel"
    baseline = points[points["method"] == "baseline"]
    low, high = baseline[f"{rel}_low"].min(), baseline[f"{rel}_high"].max()
    if np.isfinite(low) and np.isfinite(high):
        ax.axhspan(low, high, color="0.82", zorder=0, label="noise: baseline 95% interval")
    ax.axhline(0.0, color="0.3", linewidth=1, zorder=1)
    if x == "speedup" and speed_band[1] > speed_band[0]:
        ax.axvspan(*speed_band, color="tab:blue", alpha=0.12, zorder=0,
                   label="speedup noise: baseline timed against itself")
    base = points.loc[points["method"] == "baseline", f"{y}_mean"].mean()
    if floor is not None and np.isfinite(base) and base != 0:
        mean, spread = floor
        level = 100 * (mean - base) / abs(base)
        ax.axhline(level, color="darkgreen", linestyle="--", linewidth=1,
                   label=f"real-vs-real floor{at} (mean ± std)")
        if np.isfinite(spread):
            width = 100 * spread / abs(base)
            ax.axhspan(level - width, level + width, color="tab:green", alpha=0.15, zorder=0)


def _panel(ax: plt.Axes, points: pd.DataFrame, x: str, y: str, methods: list[str],
           floor: tuple[float, float] | None, at: str, speed_band: tuple[float, float]) -> None:
    rel = f"{y}_rel"
    _noise_bands(ax, points, x, y, floor, at, speed_band)
    baseline = points[points["method"] == "baseline"]
    ax.plot(baseline[f"{x}_mean"], baseline[rel], color="black", marker="*", markersize=12,
            linestyle="none", zorder=4, label="uncompressed baseline")
    # Markers only: a line through a method's settings would suggest an order they do not have.
    for method, group in points[points["method"] != "baseline"].groupby("method", sort=False):
        ax.errorbar(group[f"{x}_mean"], group[rel], xerr=_x_errors(group, x),
                    yerr=_errors(group, rel), capsize=2, linestyle="none", markersize=6,
                    label=method, zorder=3, **marker_style(methods.index(method)))
    collapsed = points[points["collapsed"] & points[f"{x}_mean"].notna()]
    if not collapsed.empty:
        ax.scatter(collapsed[f"{x}_mean"], collapsed[rel], s=120, marker="x", color="red",
                   zorder=6, label="collapsed (same output for every z)")
    front = points[front_mask(points, x, y)].sort_values(f"{x}_mean")
    ax.plot(front[f"{x}_mean"], front[rel], color="black", linewidth=0.8,
            drawstyle="steps-post", alpha=0.6, zorder=2)
    ax.scatter(front[f"{x}_mean"], front[rel], s=170, facecolors="none", edgecolors="black",
               linewidths=1.2, zorder=5,
               label="Pareto front (speed: only variants not slower than the baseline)")
    # Named where the change is beyond the baseline's noise band (inside it, the names of
    # cells that changed nothing would pile up on the zero line).
    band = baseline[[f"{rel}_low", f"{rel}_high"]].to_numpy(float)
    low, high = (np.nanmin(band), np.nanmax(band)) if band.size else (0.0, 0.0)
    named = front[(front["method"] != "baseline") & ~front[rel].between(low, high)]
    for _, point in named.iterrows():
        # Wrapped: a long setting on one line would widen the figure and squeeze the axes.
        setting = "\n".join(textwrap.wrap(str(point["setting"]), LABEL_WIDTH))
        ax.annotate(f"{point['method']}\n{setting}", (point[f"{x}_mean"], point[rel]),
                    xytext=(6, 6), textcoords="offset points", fontsize=6.5, color="0.25")
    ax.set_xscale("log")
    # Plain numbers (2, 4, 8) on the log axis, not 2x10^0.
    ax.xaxis.set_major_formatter(PLAIN)
    ax.xaxis.set_minor_formatter(SPARSE)
    # Symmetric log: the changes within noise (a few %) stay readable beside a +600% cell.
    span = points[[f"{rel}_low", f"{rel}_high"]].abs().max().max()
    if np.isfinite(span) and span > 50:
        ax.set_yscale("symlog", linthresh=10, linscale=1.5)
        ax.yaxis.set_major_formatter(PLAIN)
    _pad_y(ax)
    ax.set_xlabel(AXIS_LABELS[x])
    better = "lower" if schema.DIRECTIONS[y] < 0 else "higher"
    scale = ", symlog" if ax.get_yscale() == "symlog" else ""
    ax.set_ylabel(f"{AXIS_LABELS[y].split(' (')[0]} change vs baseline\n"
                  f"(%, {better} is better{scale})")
    ax.grid(True, alpha=0.3)


def _pad_y(ax: plt.Axes, fraction: float = 0.08) -> None:
    """Room above and below the data (in the scale's own space): no marker or label on the
    frame."""
    low, high = ax.dataLim.intervaly
    forward = ax.yaxis.get_transform()
    a, b = forward.transform([low, high])
    pad = fraction * (b - a if b > a else 1.0)
    ax.set_ylim(*forward.inverted().transform([a - pad, b + pad]))


def _legend(figure: plt.Figure, axes: np.ndarray) -> None:
    """One legend for the figure, below the panels: every marker and band, once."""
    handles: dict[str, object] = {}
    for ax in axes.flat:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    figure.legend(list(handles.values()), list(handles), loc="outside lower center",
                  ncols=min(4, len(handles)), fontsize=8, frameon=False)


def plot_tradeoffs(run: ResultsDir, family: str, out: Path) -> list[Path]:
    """plots/tradeoff_<family>.png|svg: rows are quality metrics, columns ratio and speedup."""
    points = tradeoff_points(run, family)
    panels_y = [m for m in QUALITY_PANELS if points[f"{m}_rel"].notna().any()]
    panels_x = [m for m in X_AXES if points[f"{m}_mean"].notna().any()]
    if not panels_y or not panels_x:
        return []
    figure, axes = plt.subplots(len(panels_y), len(panels_x), squeeze=False,
                                figsize=(6.5 * len(panels_x), 1.6 + 4.2 * len(panels_y)),
                                layout="constrained")
    n = n_samples(run)
    floors = floor_summary(run)
    methods = [m for m in ordered_methods(run.results["method"]) if m != "baseline"]
    noise = speed_noise(run, family, points)
    for i, y in enumerate(panels_y):
        for j, x in enumerate(panels_x):
            _panel(axes[i][j], points, x, y, methods, floors.get(y), f" at n={n}" if n else "",
                   noise)
    _legend(figure, axes)
    family_rows = run.results[run.results["family"] == family]
    excluded = int((family_rows["status"] != schema.STATUS_OK).sum())
    unstable = int(run.latency["cell_id"].isin(family_rows["cell_id"]).mul(
        run.latency["status"] == schema.STATUS_UNSTABLE).sum())
    seeds = int(family_rows.loc[family_rows["status"] == schema.STATUS_OK, "seed"].nunique())
    figure.suptitle(f"{family}: quality change vs compression, mean over {seeds_in_words(seeds)}, "
                    f"error bars 95% intervals\n{excluded} failed/skipped cell(s) excluded; "
                    f"{unstable} unstable latency row(s) give no speedup", fontsize=11)
    return save(figure, out / f"tradeoff_{family}")
