"""History plots: per run name and metric, a panel per family (and device/batch for latency), a
line per cell and machine with its 95% interval, regressions marked where compare marks them."""
from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import matplotlib.lines as mlines
import numpy as np
import pandas as pd

from bench.errors import InputError
from bench.history.store import TREND_METRICS
from bench.history.trends import detect_regressions, run_means
from bench.plots.style import COLORS, LINESTYLES, MARKERS, plt, save
from bench.results.labels import compact_setting_labels
from bench.results.loading import KEY_COLUMNS

_SETTING_KEY = [c for c in KEY_COLUMNS if c != "family"]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "run"


def _cell_style(index: int) -> dict:
    return {"color": COLORS[index % len(COLORS)],
            "linestyle": LINESTYLES[(index // len(COLORS)) % len(LINESTYLES)]}


def metric_figure(means: pd.DataFrame, regressions: pd.DataFrame, metric: str) -> plt.Figure:
    """means: history_trends.run_means rows of ONE run name and preset; regressions: their
    detect_regressions rows. Rows of panels: families; columns: (device, batch size) (one for
    quality). In a panel, one line per (cell, machine): colour = cell, marker = machine."""
    runs = means[["run_date", "commit"]].drop_duplicates().sort_values("run_date", kind="stable")
    position = {(r.run_date, r.commit): i for i, r in enumerate(runs.itertuples())}
    ticks = [f"{r.run_date[:10]}\n{r.commit[:7]}" for r in runs.itertuples()]
    means = means.assign(x=[position[k] for k in zip(means["run_date"], means["commit"],
                                                     strict=True)])
    hits = means.merge(regressions.drop(columns=["cell", "change"]),
                       on=[c for c in regressions.columns if c not in ("cell", "change")])
    families = list(pd.unique(means["family"]))
    columns = means[["device", "batch_size"]].drop_duplicates().sort_values(
        ["device", "batch_size"]).itertuples(index=False, name=None)
    columns = list(columns)
    machines = list(pd.unique(means["machine_id"]))
    # A colour per setting, the same in every family's panel: the legend names each once.
    keys = means.drop_duplicates(_SETTING_KEY)
    cell_index = {k: i for i, k in enumerate(keys[_SETTING_KEY].itertuples(index=False, name=None))}
    labels = dict(zip(cell_index, (f"{m} [{s}]" for m, s in zip(
        keys["method"], compact_setting_labels(keys), strict=True)), strict=True))
    figure, axes = plt.subplots(len(families), len(columns), squeeze=False, sharex=True,
                                figsize=(max(5.0, 0.9 * len(ticks) + 3) * len(columns) + 3.5,
                                         3.2 * len(families)), layout="constrained")
    for row, family in enumerate(families):
        for col, (device, batch) in enumerate(columns):
            ax = axes[row, col]
            panel = means[(means["family"] == family) & (means["device"] == device)
                          & (means["batch_size"] == batch)]
            for (key, machine), series in _series(panel):
                style = {**_cell_style(cell_index[key]),
                         "marker": MARKERS[machines.index(machine) % len(MARKERS)]}
                judged = series[~series["unstable"]]
                # No bar where the interval is unknown (NaN) or unbounded (p50 of <= 5 blocks).
                low, high = ((judged["mean"] - judged["low"]).abs(),
                             (judged["high"] - judged["mean"]).abs())
                low, high = (b.where(np.isfinite(b), 0.0) for b in (low, high))
                ax.errorbar(judged["x"], judged["mean"], yerr=[low, high], capsize=2,
                            markersize=4, label=f"{labels[key]} @ {machine}", **style)
                shaky = series[series["unstable"]]
                if not shaky.empty:  # a seed's row unstable: shown hollow, never judged
                    ax.scatter(shaky["x"], shaky["mean"], facecolors="none",
                               edgecolors="grey", marker=style["marker"], zorder=5)
            flagged = hits[(hits["family"] == family) & (hits["device"] == device)
                           & (hits["batch_size"] == batch)]
            ax.scatter(flagged["x"], flagged["mean"], s=120, marker="x", color="red", zorder=6,
                       linewidths=2)
            where = f" · {device} batch {batch}" if device else ""
            ax.set_title(f"{family}{where}: {len(flagged)} regression(s)", fontsize=9)
            ax.set_ylabel(metric, fontsize=8)
            ax.set_xticks(range(len(ticks)), ticks, fontsize=7)
            ax.grid(True, alpha=0.3)
    _legend(figure, labels, cell_index, machines)
    return figure


def _series(panel: pd.DataFrame) -> Iterator[tuple[tuple, pd.DataFrame]]:
    """((setting key, machine id), that line's rows) in first-seen order (one family)."""
    for (*key, machine), series in panel.groupby(_SETTING_KEY + ["machine_id"], sort=False):
        yield (tuple(key), machine), series


def _legend(figure: plt.Figure, labels: dict, cell_index: dict, machines: list[str]) -> None:
    """One legend outside the panels: colours name cells, markers name machines."""
    handles = [mlines.Line2D([], [], label=labels[k], **_cell_style(i))
               for k, i in cell_index.items()]
    handles += [mlines.Line2D([], [], color="black", linestyle="none",
                              marker=MARKERS[i % len(MARKERS)], label=f"machine {m}")
                for i, m in enumerate(machines)]
    handles += [mlines.Line2D([], [], color="red", marker="x", linestyle="none",
                              label="regression (compare's rule)"),
                mlines.Line2D([], [], color="grey", marker="o", markerfacecolor="none",
                              linestyle="none", label="unstable latency (not judged)")]
    figure.legend(handles=handles, loc="outside right upper", fontsize=7,
                  title="bars: mean of the seeds' 95% intervals (as compare judges)",
                  title_fontsize=7)


def plot_history(history: pd.DataFrame, out: str | Path,
                 source: str | Path = "store") -> list[Path]:
    """history_<run name>_<metric>.png per run name (and preset) and trend metric; runs of
    different run names or presets are never drawn on one line."""
    if history.empty:
        raise InputError(f"{source}: no history yet; run `genbench history append` first")
    written = []
    for (run_name, preset), runs in history.groupby(["run_name", "preset"], sort=True):
        name = run_name if preset in ("", run_name) else f"{run_name}-{preset}"
        for metric in TREND_METRICS:
            means = run_means(runs, metric)
            if means.empty:
                continue
            figure = metric_figure(means, detect_regressions(runs, metric), metric)
            written += save(figure, Path(out) / f"history_{_slug(name)}_{metric}",
                            formats=("png",))  # a dashboard view
    return written
