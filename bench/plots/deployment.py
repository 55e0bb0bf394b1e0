"""Latency against MACs per runtime (plots/deployment_latency_<device>.png|svg): where each
runtime and each compression starts to pay as the models grow."""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from bench.plots.style import COLORS, MARKERS, save
from bench.results import schema
from bench.results.deployment import (
    EAGER,
    RUNTIME,
    deployment_rows,
    family_models,
    has_runtimes,
)
from bench.results.families import ordered_families
from bench.results.loading import ResultsDir

PLOT_PREFIX = "deployment_"
# Runtimes in the order the README introduces them (fixed colours across plots); others after.
RUNTIME_ORDER = ("eager", "compiled", "onnxruntime", "onnxruntime_int8", "openvino", "sparse")


def runtime_colors(runtimes: list[str]) -> dict[str, tuple]:
    """One colour per runtime: known ones by RUNTIME_ORDER, others after them alphabetically."""
    known = [r for r in RUNTIME_ORDER if r in runtimes]
    ordered = known + sorted(set(runtimes) - set(known))
    index = {r: RUNTIME_ORDER.index(r) if r in RUNTIME_ORDER else len(RUNTIME_ORDER) + i
             for i, r in enumerate(ordered)}
    return {r: COLORS[index[r] % len(COLORS)] for r in ordered}


def plotted_rows(run: ResultsDir, device: str) -> pd.DataFrame:
    """The ok deployment rows of `device` with a MAC count, each with its `model` (the family's
    registered model: gan_w2 -> gan) and width."""
    rows = deployment_rows(run)
    if rows.empty:
        return rows
    rows = rows[(rows["device"] == device) & (rows["status"] == schema.STATUS_OK)
                & (rows["macs"] > 0) & (rows["p50_ms"] > 0)].copy()
    models = family_models(run)
    rows["model"] = [models.get(f, (f, 1.0))[0] for f in rows["family"]]
    rows["width"] = [models.get(f, (f, 1.0))[1] for f in rows["family"]]
    return rows


def draw_deployment(rows: pd.DataFrame, device: str, skipped: int = 0) -> plt.Figure:
    """Panels per batch size: p50 latency (log) against MMACs per generated image (log). Colour:
    runtime; marker: model; filled and joined in MAC order: the baselines (one per width);
    hollow: compressed variants. Each line's gid is 'model|runtime'."""
    batches = sorted(rows["batch_size"].unique())
    models = ordered_families(rows["model"])
    colors = runtime_colors(list(rows[RUNTIME].unique()))
    figure, axes = plt.subplots(1, len(batches), squeeze=False, layout="constrained",
                                figsize=(max(5.0 * len(batches), 6.0), 4.4))
    for ax, batch in zip(axes[0], batches, strict=True):
        at = rows[rows["batch_size"] == batch]
        for m, model in enumerate(models):
            marker = MARKERS[m % len(MARKERS)]
            for runtime, color in colors.items():
                mine = at[(at["model"] == model) & (at[RUNTIME] == runtime)]
                base = mine[mine["is_baseline"]].sort_values("macs")
                if len(base):
                    (line,) = ax.plot(base["macs"] / 1e6, base["p50_ms"], marker=marker,
                                      color=color, linestyle="-", markersize=6)
                    line.set_gid(f"{model}|{runtime}")
                rest = mine[~mine["is_baseline"]]
                if len(rest):
                    ax.scatter(rest["macs"] / 1e6, rest["p50_ms"], marker=marker, facecolors="none",
                               edgecolors=[color], s=36, gid=f"{model}|{runtime}|variants")
        ax.set_xscale("log")
        ax.set_yscale("log")
        for axis in (ax.xaxis, ax.yaxis):  # 1-2-5 ticks as plain numbers, no crowded minors
            axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
            axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            axis.set_minor_formatter(NullFormatter())
        ax.set_title(f"batch {batch}", fontsize=10)
        ax.set_xlabel("MMACs per generated image (log)")
        ax.set_ylabel(f"latency p50 per call, {device.upper()} (ms, log)")
        ax.grid(True, which="both", alpha=0.3)
    handles = [Line2D([], [], color=c, label=r) for r, c in colors.items()]
    handles += [Line2D([], [], color="0.3", marker=MARKERS[m % len(MARKERS)], linestyle="",
                       label=model) for m, model in enumerate(models)]
    handles += [Line2D([], [], color="0.3", marker="o", linestyle="-", label="baseline (widths)"),
                Line2D([], [], color="0.3", marker="o", markerfacecolor="none", linestyle="",
                       label="compressed")]
    figure.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 6),
                  fontsize=8, frameon=False)
    left_out = f"; {skipped} unstable, skipped or failed rows not drawn" if skipped else ""
    figure.suptitle(f"Latency against MACs per runtime ({device.upper()}){left_out}",
                    fontsize=11)
    return figure


def plot_deployment(run: ResultsDir, out: Path) -> list[Path]:
    """plots/deployment_latency_<device>.png|svg per device with ok runtime rows; [] when the run
    measured no runtime besides eager."""
    if not has_runtimes(run):
        return []
    latency = run.latency_all
    written: list[Path] = []
    for device in sorted(set(latency["device"])):
        rows = plotted_rows(run, device)
        if rows.empty or not (rows[RUNTIME] != EAGER).any():
            continue
        mine = latency[latency["device"] == device]
        skipped = int((mine["status"] != schema.STATUS_OK).sum())
        figure = draw_deployment(rows, device, skipped)
        written += save(figure, Path(out) / f"{PLOT_PREFIX}latency_{device}")
    return written
