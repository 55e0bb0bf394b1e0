"""Paper-style tables per family (value ± 95% interval, noise and collapse marked, best in bold
only beyond the intervals) as Markdown, LaTeX, HTML."""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from bench.results import schema
from bench.results.annotations import NoiseBand, as_flag, n_samples, speedup_noise_band
from bench.results.families import ordered_families
from bench.results.labels import cell_label, compact_setting_labels
from bench.results.loading import ResultsDir, load_results_dir, seed_summary, with_latency
from bench.tables.columns import (
    COLUMNS,
    Column,
    display_scale,
    header,
    latency_batch_threads,
    shown_columns,
)
from bench.tables.deployment import write_deployment
from bench.tables.latex import latex_escape, to_latex
from bench.tables.legend import caption, legend, run_name
from bench.tables.marks import (
    best_mask,
    latency_bold,
    quality_bold,
    speedup_within_noise,
    within_noise,
)
from bench.tables.render import (
    NOISE_MARK,
    PLUS_MINUS,
    Table,
    column_decimals,
    format_value,
    to_html,
    to_markdown,
)
from genmodels.cache import atomic_write_bytes

__all__ = ["COLUMNS", "NOISE_MARK", "PLUS_MINUS", "Column", "Table", "best_mask",
           "column_decimals", "family_table", "family_tables", "format_value", "latex_escape",
           "to_html", "to_latex", "to_markdown", "write_tables"]

# Per-key flags folded over seeds like a metric (the mean of a 0/1 flag times n is a count).
_COLLAPSED = "collapsed__flag"


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


def _decimals(column: Column, values: np.ndarray) -> int:
    """One format per column; a count prints whole unless a mean over seeds is fractional."""
    if not column.integer:
        return column_decimals(values)
    finite = values[np.isfinite(values)]
    return 0 if np.allclose(finite, np.rint(finite)) else 1


def _column_cells(summary: pd.DataFrame, column: Column, scale: float, collapsed: np.ndarray,
                  band: NoiseBand | None) -> tuple[list[str], np.ndarray, bool, int]:
    """(texts, bold marks, whether a noise mark was used, decimals) of one column."""
    source = column.source
    values = summary[f"{source}_mean"].to_numpy(float) * scale
    half_widths = summary[f"{source}_hw"].to_numpy(float) * scale
    if source not in schema.INTERVAL_METRICS:  # no interval over seeds: the value alone
        half_widths = np.where(half_widths > 0, half_widths, np.nan)
    unstable = np.zeros(len(values))
    if column.status:  # seeds whose latency row is unstable: counted, their figures unused
        flag = f"{column.status}__unstable"
        unstable = np.rint(summary[f"{flag}_mean"] * summary[f"{flag}_n"]).to_numpy()
    if column.device:
        bold = latency_bold(summary, column, band, unstable > 0)
    else:
        bold = quality_bold(summary, column, scale, collapsed)
    if source in schema.INTERVAL_METRICS:
        noise = within_noise(summary, source)
    elif source == "speedup":
        noise = speedup_within_noise(summary, band)
    else:
        noise = np.zeros(len(values), dtype=bool)
    decimals = _decimals(column, values)
    baseline = (summary["method"] == "baseline").to_numpy()
    texts = []
    for i, (value, width) in enumerate(zip(values, half_widths, strict=True)):
        if source == "speedup" and baseline[i] and band is not None:
            # The baseline against itself is 1 by definition; what it measured is the noise.
            texts.append(f"{1:.{decimals}f} (noise {band.low:.{decimals}f}-"
                         f"{band.high:.{decimals}f})")
            continue
        text = format_value(value, width, decimals)
        if unstable[i] > 0:
            text = "unstable" if text == "-" else f"{text} ({int(unstable[i])} unstable)"
        texts.append(f"{NOISE_MARK} {text}" if noise[i] and text != "-" else text)
    return texts, bold, bool(noise.any()), decimals


def family_table(run: ResultsDir, family: str) -> Table:
    """The table of one family: a row per cell key (baseline first), metrics over ok seeds."""
    ok = run.ok()
    family_ok = ok[ok["family"] == family]
    joined = with_latency(run, family_ok)
    columns = shown_columns(joined)
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
    bands = {device: speedup_noise_band(run, family, device) for device in ("cpu", "cuda")}
    noise_used, scales, decimals = False, {}, {}
    for column in columns:
        scale = display_scale(column, summary[f"{column.source}_mean"].to_numpy(float))
        band = bands[column.device] if column.device else None
        cells, marks, noise, decimals[column.source] = _column_cells(
            summary, column, scale, collapsed, band)
        noise_used |= noise
        scales[column.source] = scale
        batch, threads = latency_batch_threads(run, column.device, family_ok["cell_id"]) \
            if column.device else (0, [])
        headers.append(header(column, scale, batch, threads))
        for i, (cell, mark) in enumerate(zip(cells, marks, strict=True)):
            text[i].append(cell)
            bold[i].append(bool(mark))
    seeds = sorted(int(s) for s in pd.unique(family_ok["seed"]))
    notes = legend(run, family, columns, scales, decimals, len(seeds), noise_used,
                   bool(collapsed.any()), bands["cpu"])
    excluded = run.results[(run.results["family"] == family)
                           & (run.results["status"] != schema.STATUS_OK)]
    if not excluded.empty:
        notes.append("Excluded: " + "; ".join(
            f"{cell_label(r)} seed {r['seed']}: {r['status']}"
            + (f" ({r['error']})" if r["error"] else "") for _, r in excluded.iterrows()))
    title = caption(run, family, sorted(summary["dataset"].unique()), seeds, n_samples(run),
                    [c.source for c in columns])
    return Table(title, headers, text, bold, tuple(notes), f"{run_name(run)}-{family}")


def family_tables(run: ResultsDir) -> dict[str, Table]:
    """A table per family with at least one ok cell, families in their one order."""
    return {family: family_table(run, family) for family in ordered_families(run.ok()["family"])}


def write_tables(directory: str | Path) -> list[Path]:
    """DIR/tables/<family>.md and .tex, each written atomically; returns the files written.

    Table files of families the results no longer have are removed: a reader must never find a
    table the current results do not back."""
    run = load_results_dir(directory)
    out = Path(directory) / "tables"
    out.mkdir(exist_ok=True)
    written = []
    for family, table in family_tables(run).items():
        for suffix, render in ((".md", to_markdown), (".tex", to_latex)):
            path = out / f"{family}{suffix}"
            atomic_write_bytes(path, render(table).encode())
            written.append(path)
    deployment = write_deployment(run, out)  # only when the run measured runtimes
    if deployment is not None:
        written.append(deployment)
    keep = {p.resolve() for p in written}
    for stale in sorted(out.glob("*")):
        if stale.is_file() and stale.suffix in (".md", ".tex") and stale.resolve() not in keep:
            stale.unlink()
    return written


def _run_cli(args: argparse.Namespace) -> int:
    from bench.report.readme_sync import sync_readme

    for path in write_tables(args.dir):
        print(path)
    if args.readme:
        for path in sync_readme(args.readme):
            print(f"{args.readme}: excerpt of {path} updated")
    return 0


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "table", help="paper-style tables of a results directory: DIR/tables/<family>.md|tex "
                      "(and deployment.md when runtimes were measured)",
        description="Write one Markdown and one LaTeX table per family into DIR/tables/ "
                    "(value ± 95%% interval, ≈ within noise, bold: best beyond every interval), "
                    "and deployment.md (each compression on each runtime) when the run "
                    "measured a runtime besides eager.")
    parser.add_argument("dir", help="results directory written by `genbench run`")
    parser.add_argument("--readme", metavar="FILE", default=None,
                        help="also rewrite FILE's <!-- table-excerpt: PATH --> blocks from the "
                             "tables files they name (README.md keeps its excerpt current)")
    parser.set_defaults(func=_run_cli)
