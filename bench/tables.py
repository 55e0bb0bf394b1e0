"""Paper-style tables per family (value ± 95% interval, noise and collapse marked, best in bold
only beyond the intervals) as Markdown, LaTeX, HTML."""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bench import schema
from bench.annotations import as_flag, floor_summary, n_samples, speedup_noise
from bench.loading import (
    ResultsDir,
    cell_label,
    compact_setting_labels,
    load_results_dir,
    seed_summary,
    with_latency,
)
from bench.table_render import (
    NOISE_MARK,
    PLUS_MINUS,
    Table,
    column_decimals,
    format_value,
    latex_escape,
    to_html,
    to_latex,
    to_markdown,
)

__all__ = ["COLUMNS", "NOISE_MARK", "PLUS_MINUS", "Column", "Table", "best_mask",
           "column_decimals", "family_table", "family_tables", "format_value", "latex_escape",
           "to_html", "to_latex", "to_markdown", "write_tables"]


@dataclass(frozen=True)
class Column:
    """One metric column: header, source column, DIRECTIONS key, scale applied before printing,
    and the latency status column that says why a latency figure is missing."""

    header: str
    source: str
    direction_of: str
    scale: float = 1.0
    status: str = ""


COLUMNS = [
    Column("Size (MB)", "size_file_bytes", "size_file_bytes", 1e-6),
    Column("Ratio", "compression_ratio", "compression_ratio"),
    Column("MACs (M)", "macs", "macs", 1e-6),
    Column("p50 CPU (ms)", "latency_p50_ms", "latency_p50_ms", status="latency_status"),
    Column("p50 CUDA (ms)", "latency_p50_ms_cuda", "latency_p50_ms",
           status="latency_status_cuda"),
    Column("Speedup", "speedup", "speedup", status="latency_status"),
    Column("FID-proxy", "fid_proxy", "fid_proxy"),
    Column("KID", "kid_proxy", "kid_proxy"),
    Column("ELBO (nats)", "elbo_nats", "elbo_nats"),
]
# Per-key flags folded over seeds like a metric (the mean of a 0/1 flag times n is a count).
_COLLAPSED = "collapsed__flag"


def best_mask(values: np.ndarray, direction: int, low: np.ndarray | None = None,
              high: np.ndarray | None = None, eligible: np.ndarray | None = None) -> np.ndarray:
    """True where a value is the column's best *beyond noise*: its interval [low, high] lies
    entirely on the better side of every other eligible row's interval (touching counts as
    overlap). Ties at the best are all marked when each clears the rest. A missing interval is
    the point itself. Nothing is marked with fewer than two values or when all values tie."""
    values = np.asarray(values, float)
    low = values if low is None else np.where(np.isfinite(low), low, values)
    high = values if high is None else np.where(np.isfinite(high), high, values)
    finite = np.isfinite(values) & (True if eligible is None else np.asarray(eligible, bool))
    none = np.zeros(values.shape, dtype=bool)
    if finite.sum() < 2:
        return none
    score = direction * values
    score_low = np.minimum(direction * low, direction * high)
    score_high = np.maximum(direction * low, direction * high)
    top = finite & np.isclose(score, score[finite].max(), rtol=1e-9, atol=0.0)
    others = finite & ~top
    if not others.any():
        return none
    return top & (score_low > score_high[others].max())


def _summary(rows: pd.DataFrame, columns: list[Column]) -> pd.DataFrame:
    """seed_summary of the columns, their deltas and the collapsed/unstable flags; baseline
    first. rows: the family's ok result rows with latency joined."""
    rows = rows.copy()
    rows[_COLLAPSED] = as_flag(rows["collapsed"]).astype(float)
    flags = [_COLLAPSED]
    for status in sorted({c.status for c in columns if c.status}):
        rows[f"{status}__unstable"] = (rows[status] == schema.STATUS_UNSTABLE).astype(float)
        flags.append(f"{status}__unstable")
    deltas = [f"{c.source}_delta" for c in columns if c.source in schema.DELTA_METRICS]
    summary = seed_summary(rows, [c.source for c in columns] + deltas + flags)
    order = np.argsort((summary["method"] != "baseline").to_numpy(), kind="stable")
    return summary.iloc[order].reset_index(drop=True)


def _within_noise(summary: pd.DataFrame, metric: str) -> np.ndarray:
    """The paired change against the baseline has an interval that includes 0 (not baseline)."""
    if f"{metric}_delta_low" not in summary:
        return np.zeros(len(summary), dtype=bool)
    low, high = summary[f"{metric}_delta_low"], summary[f"{metric}_delta_high"]
    return ((low <= 0) & (high >= 0) & (summary["method"] != "baseline")).to_numpy()


def _column_cells(summary: pd.DataFrame, column: Column,
                  collapsed: np.ndarray) -> tuple[list[str], np.ndarray, bool]:
    """(texts, bold marks, whether a noise mark was used) of one column."""
    scale, source = column.scale, column.source
    values = summary[f"{source}_mean"].to_numpy(float) * scale
    half_widths = summary[f"{source}_hw"].to_numpy(float) * scale
    quality = source in schema.INTERVAL_METRICS
    if not quality:  # no interval over seeds (one seed, a deterministic size): value alone
        half_widths = np.where(half_widths > 0, half_widths, np.nan)
    bold = best_mask(values, schema.DIRECTIONS[column.direction_of],
                     summary[f"{source}_low"].to_numpy(float) * scale,
                     summary[f"{source}_high"].to_numpy(float) * scale,
                     ~collapsed if quality else None)  # a collapsed model is never "best"
    noise = _within_noise(summary, source) if quality else np.zeros(len(values), dtype=bool)
    unstable = np.zeros(len(values))
    if column.status:  # seeds whose latency row is unstable: counted, their figures unused
        flag = f"{column.status}__unstable"
        unstable = np.rint(summary[f"{flag}_mean"] * summary[f"{flag}_n"]).to_numpy()
    decimals = column_decimals(values)
    texts = []
    for i, (value, width) in enumerate(zip(values, half_widths, strict=True)):
        text = format_value(value, width, decimals)
        if unstable[i] > 0:
            text = "unstable" if text == "-" else f"{text} ({int(unstable[i])} unstable)"
        texts.append(f"{NOISE_MARK} {text}" if noise[i] and text != "-" else text)
    return texts, bold, bool(noise.any())


def _legend(run: ResultsDir, family: str, columns: list[Column], seeds: int, noise: bool,
            collapsed: bool) -> list[str]:
    n = n_samples(run)
    samples = f"the {n} samples" if n else "the samples"
    lines = [f"{PLUS_MINUS}: 95% interval. Quality: bootstrap over {samples} of each seed"
             + (f", widened by the spread of the {seeds} seeds (half-width sqrt(mean(h_i^2)/n "
                f"+ t_(n-1)^2 s^2/n)); other columns: t-interval over seeds." if seeds > 1
                else "; other columns: one measurement.")
             + " Bold: best beyond every other row's interval (none where intervals overlap)."]
    if noise:
        lines.append(f"{NOISE_MARK}: within noise, the paired change against the same-seed "
                     "baseline (same latents and test images) has a 95% interval that "
                     "includes 0.")
    if collapsed:
        lines.append("collapsed: the output no longer depends on the latent (one image for "
                     "every z); its quality is not ranked.")
    floors = floor_summary(run)
    shown = [(c.header, *floors[c.source]) for c in columns if c.source in floors]
    if shown:
        parts = [f"{header} {format_value(mean, spread, _floor_decimals(mean, spread))}"
                 for header, mean, spread in shown]
        at = f" at n={n}" if n else ""
        lines.append(f"Real-vs-real floor{at} (mean {PLUS_MINUS} std over resamples): "
                     + ", ".join(parts) + ".")
    batch, noise_speedups = speedup_noise(run, family)
    if noise_speedups and any(c.source == "speedup" for c in columns):
        low, high = min(noise_speedups), max(noise_speedups)
        spread = f"{low:.3f}" if low == high else f"{low:.3f} to {high:.3f}"
        lines.append(f"Speedup noise (the baseline timed against itself, CPU, batch {batch}): "
                     f"{spread} over {len(noise_speedups)} measurement(s).")
    unstable = run.latency[run.latency["status"] == schema.STATUS_UNSTABLE]
    family_unstable = int(unstable["cell_id"].isin(
        run.results.loc[run.results["family"] == family, "cell_id"]).sum())
    if family_unstable:
        lines.append(f"Latency: {family_unstable} unstable row(s) (relative IQR above the "
                     "threshold after re-measuring) give no p50 or speedup: 'unstable', or "
                     "'(k unstable)' beside the mean of the other seeds.")
    return lines


def family_table(run: ResultsDir, family: str) -> Table:
    """The table of one family: a row per cell key (baseline first), metrics over ok seeds."""
    ok = run.ok()
    joined = with_latency(run, ok[ok["family"] == family])
    columns = [c for c in COLUMNS if c.source in joined and (
        joined[c.source].notna().any()
        or (c.status and (joined[c.status] == schema.STATUS_UNSTABLE).any()))]
    summary = _summary(joined, columns)
    collapsed_seeds = np.rint(summary[f"{_COLLAPSED}_mean"] * summary[f"{_COLLAPSED}_n"])
    collapsed = collapsed_seeds.to_numpy() > 0
    many_datasets = summary["dataset"].nunique() > 1
    headers = (["Dataset"] if many_datasets else []) + ["Method", "Setting"]
    text = []
    for (_, r), label, k in zip(summary.iterrows(), compact_setting_labels(summary),
                                collapsed_seeds, strict=True):
        n = int(r[f"{_COLLAPSED}_n"])
        if k > 0:
            label += " (collapsed)" if k == n else f" (collapsed in {int(k)}/{n} seeds)"
        text.append(([r["dataset"]] if many_datasets else []) + [r["method"], label])
    bold = [[False] * len(headers) for _ in text]
    any_noise = False
    for column in columns:
        cells, marks, noise = _column_cells(summary, column, collapsed)
        any_noise |= noise
        for i, (cell, mark) in enumerate(zip(cells, marks, strict=True)):
            text[i].append(cell)
            bold[i].append(bool(mark))
    headers += [c.header for c in columns]
    seeds = int(ok.loc[ok["family"] == family, "seed"].nunique())
    notes = _legend(run, family, columns, seeds, any_noise, bool(collapsed.any()))
    excluded = run.results[(run.results["family"] == family)
                           & (run.results["status"] != schema.STATUS_OK)]
    if not excluded.empty:
        notes.append("Excluded: " + "; ".join(
            f"{cell_label(r)} seed {r['seed']}: {r['status']}"
            + (f" ({r['error']})" if r["error"] else "") for _, r in excluded.iterrows()))
    spread = f"mean over {seeds} seeds" if seeds > 1 else "one seed"
    title = f"{family}: {spread}, {PLUS_MINUS} 95% interval; best beyond the intervals in bold"
    return Table(title, headers, text, bold, tuple(notes))


def family_tables(run: ResultsDir) -> dict[str, Table]:
    """A table per family with at least one ok cell, in the results' order."""
    families = pd.unique(run.ok()["family"])
    return {family: family_table(run, family) for family in families}


def write_tables(directory: str | Path) -> list[Path]:
    """DIR/tables/<family>.md and .tex; returns the files written."""
    run = load_results_dir(directory)
    out = Path(directory) / "tables"
    out.mkdir(exist_ok=True)
    written = []
    for family, table in family_tables(run).items():
        for suffix, render in ((".md", to_markdown), (".tex", to_latex)):
            path = out / f"{family}{suffix}"
            path.write_text(render(table))
            written.append(path)
    return written


def _run_cli(args: argparse.Namespace) -> int:
    for path in write_tables(args.dir):
        print(path)
    return 0


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("table", help="paper-style tables: DIR/tables/<family>.md|tex")
    parser.add_argument("dir", help="results directory written by `genbench run`")
    parser.set_defaults(func=_run_cli)


def _floor_decimals(mean: float, spread: float) -> int:
    """Decimals of a floor 'mean ± spread': three significant digits of the larger of the two
    (a KID floor of 0.01 ± 3.9 would otherwise print its spread to 4 decimals)."""
    return column_decimals(np.array([max(abs(mean), spread)]))
