"""Paper-style tables per family (mean ± std over seeds, best in bold) as Markdown, LaTeX, HTML."""
from __future__ import annotations

import argparse
import html
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bench import schema
from bench.loading import (
    ResultsDir,
    cell_label,
    compact_setting_labels,
    load_results_dir,
    seed_summary,
        with_latency,
)


@dataclass(frozen=True)
class Column:
    """One metric column: header, source column, DIRECTIONS key, scale applied before printing."""

    header: str
    source: str
    direction_of: str
    scale: float = 1.0


COLUMNS = [
    Column("Size (MB)", "size_file_bytes", "size_file_bytes", 1e-6),
    Column("Ratio", "compression_ratio", "compression_ratio"),
    Column("MACs (M)", "macs", "macs", 1e-6),
    Column("p50 CPU (ms)", "latency_p50_ms", "latency_p50_ms"),
    Column("p50 CUDA (ms)", "latency_p50_ms_cuda", "latency_p50_ms"),
    Column("Speedup", "speedup", "speedup"),
    Column("FID-proxy", "fid_proxy", "fid_proxy"),
    Column("KID", "kid_proxy", "kid_proxy"),
    Column("ELBO (nats)", "elbo_nats", "elbo_nats"),
]
PLUS_MINUS = "\u00b1"


@dataclass(frozen=True)
class Table:
    """Rendered cells (text) with a bold flag each; `note` lists the excluded cells."""

    title: str
    headers: list[str]
    rows: list[list[str]]
    bold: list[list[bool]]
    note: str


def format_value(mean: float, std: float = math.nan) -> str:
    """Three significant digits of the mean without exponent; std with the same decimals."""
    if not math.isfinite(mean):
        return "-"
    magnitude = math.floor(math.log10(abs(mean))) if mean != 0 else 0
    decimals = min(8, max(0, 2 - magnitude))
    text = f"{mean:.{decimals}f}"
    return f"{text} {PLUS_MINUS} {std:.{decimals}f}" if math.isfinite(std) else text


def best_mask(means: np.ndarray, direction: int) -> np.ndarray:
    """True where the mean is the best of the column (ties all marked).

    Nothing is marked with fewer than two values or when all values tie: bold must inform.
    """
    finite = np.isfinite(means)
    score = np.where(finite, direction * means, -np.inf)
    best = finite & np.isclose(score, score.max(), rtol=1e-9, atol=0.0)
    return best if finite.sum() >= 2 and best.sum() < finite.sum() else np.zeros_like(finite)


def family_table(run: ResultsDir, family: str) -> Table:
    """The table of one family: a row per cell key (baseline first), metrics over ok seeds."""
    rows = with_latency(run, run.ok()[run.ok()["family"] == family])
    columns = [c for c in COLUMNS if c.source in rows and rows[c.source].notna().any()]
    summary = seed_summary(rows, [c.source for c in columns])
    summary = summary.iloc[np.argsort((summary["method"] != "baseline").to_numpy(), kind="stable")]
    many_datasets = summary["dataset"].nunique() > 1
    headers = (["Dataset"] if many_datasets else []) + ["Method", "Setting"]
    labels = compact_setting_labels(summary)
    text = [([r["dataset"]] if many_datasets else []) + [r["method"], label]
            for (_, r), label in zip(summary.iterrows(), labels, strict=True)]
    bold = [[False] * len(headers) for _ in text]
    for column in columns:
        means = summary[f"{column.source}_mean"].to_numpy(float) * column.scale
        stds = summary[f"{column.source}_std"].to_numpy(float) * column.scale
        marks = best_mask(means, schema.DIRECTIONS[column.direction_of])
        for i, (mean, std) in enumerate(zip(means, stds, strict=True)):
            text[i].append(format_value(mean, std))
            bold[i].append(bool(marks[i]))
    headers += [c.header for c in columns]
    excluded = run.results[(run.results["family"] == family)
                           & (run.results["status"] != schema.STATUS_OK)]
    note = "; ".join(f"{cell_label(r)} seed {r['seed']}: {r['status']}"
                     + (f" ({r['error']})" if r["error"] else "") for _, r in excluded.iterrows())
    seeds = run.ok()[run.ok()["family"] == family]["seed"].nunique()
    spread = f"mean {PLUS_MINUS} std over {seeds} seeds" if seeds > 1 else "one seed"
    title = f"{family}: {spread}; best in bold"
    return Table(title, headers, text, bold, f"Excluded: {note}" if note else "")


def to_markdown(table: Table) -> str:
    def cell(value: str, strong: bool) -> str:
        return f"**{value}**" if strong else value

    lines = [f"**{table.title}**", "", "| " + " | ".join(table.headers) + " |",
             "|" + "|".join("---" if i < 2 else "---:" for i in range(len(table.headers))) + "|"]
    for row, marks in zip(table.rows, table.bold, strict=True):
        lines.append("| " + " | ".join(cell(v, b) for v, b in zip(row, marks, strict=True)) + " |")
    if table.note:
        lines += ["", table.note]
    return "\n".join(lines) + "\n"


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                  "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
                  "^": r"\textasciicircum{}"}


def latex_escape(text: str) -> str:
    """Escape LaTeX's special characters; ± becomes $\\pm$."""
    escaped = "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)
    return escaped.replace(PLUS_MINUS, r"$\pm$")


def to_latex(table: Table) -> str:
    """A booktabs table (needs \\usepackage{booktabs})."""
    def cell(value: str, strong: bool) -> str:
        return rf"\textbf{{{latex_escape(value)}}}" if strong else latex_escape(value)

    spec = "l" * 2 + "r" * (len(table.headers) - 2)
    lines = [r"\begin{table}[t]", r"\centering", rf"\caption{{{latex_escape(table.title)}}}",
             rf"\begin{{tabular}}{{{spec}}}", r"\toprule",
             " & ".join(latex_escape(h) for h in table.headers) + r" \\", r"\midrule"]
    for row, marks in zip(table.rows, table.bold, strict=True):
        lines.append(" & ".join(cell(v, b) for v, b in zip(row, marks, strict=True)) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    if table.note:
        lines.append(rf"\par\footnotesize {latex_escape(table.note)}")
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


def to_html(table: Table) -> str:
    def cell(tag: str, value: str, strong: bool) -> str:
        value = html.escape(value)
        return f"<{tag}>{f'<b>{value}</b>' if strong else value}</{tag}>"

    head = "".join(cell("th", h, False) for h in table.headers)
    body = "".join("<tr>" + "".join(cell("td", v, b) for v, b in zip(row, marks, strict=True))
                   + "</tr>" for row, marks in zip(table.rows, table.bold, strict=True))
    note = f"<p class='note'>{html.escape(table.note)}</p>" if table.note else ""
    return (f"<table><caption>{html.escape(table.title)}</caption><thead><tr>{head}</tr></thead>"
            f"<tbody>{body}</tbody></table>{note}")


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
