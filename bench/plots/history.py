"""Trend plot of one metric across runs: a panel per family, regressions marked."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from bench.loading import KEY_COLUMNS, compact_setting_labels
from bench.plots.style import method_style, plt, save


def plot_metric_history(means: pd.DataFrame, regressions: pd.DataFrame, metric: str,
                        out: Path) -> list[Path]:
    """means: history.run_means rows; regressions: history.detect_regressions rows."""
    runs = means[["run_date", "commit"]].drop_duplicates().sort_values("run_date")
    position = {(r.run_date, r.commit): i for i, r in enumerate(runs.itertuples())}
    ticks = [f"{r.run_date[:10]}\n{r.commit[:7]}" for r in runs.itertuples()]
    means = means.assign(x=[position[k] for k in zip(means["run_date"], means["commit"],
                                                     strict=True)])
    # The regressed points: the later run of each flagged pair, at its series mean.
    hits = means.merge(regressions[KEY_COLUMNS + ["run_date", "commit"]],
                       on=KEY_COLUMNS + ["run_date", "commit"])
    families = list(pd.unique(means["family"]))
    figure, axes = plt.subplots(len(families), 1, squeeze=False,
                                figsize=(max(6.0, 1.2 * len(ticks) + 3), 3.8 * len(families)),
                                layout="constrained")
    for ax, family in zip(axes[:, 0], families, strict=True):
        rows = means[means["family"] == family]
        firsts = rows.drop_duplicates(KEY_COLUMNS)
        labels = dict(zip(firsts[KEY_COLUMNS].itertuples(index=False, name=None),
                          compact_setting_labels(firsts), strict=True))
        for index, (key, series) in enumerate(rows.groupby(KEY_COLUMNS, sort=False)):
            label = f"{series['method'].iloc[0]} [{labels[key]}]"
            ax.errorbar(series["x"], series["mean"], yerr=series["std"].fillna(0), capsize=2,
                        label=label, **method_style(index))
        flagged = hits[hits["family"] == family]
        ax.scatter(flagged["x"], flagged["mean"], s=150, marker="x", color="red", zorder=6,
                   linewidths=2, label=f"regression ({len(flagged)}; compare's rule)")
        ax.set_xticks(range(len(ticks)), ticks, fontsize=7)
        ax.set_ylabel(metric)
        ax.set_title(f"{family}: {metric} per run (mean ± std over seeds)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    return save(figure, out / f"history_{metric}", formats=("png",))  # a dashboard view
