"""Text of a table: one number format per column, and Markdown or HTML rendering (LaTeX:
bench/tables/latex.py)."""
from __future__ import annotations

import html
import math
from dataclasses import dataclass

import numpy as np

PLUS_MINUS = "\u00b1"
# Prefix of a quality value whose paired change against the baseline is within noise.
NOISE_MARK = "\u2248"


@dataclass(frozen=True)
class Table:
    """Rendered cells (text) with a bold flag each. title: the caption (what the table shows,
    what ± and bold mean); notes: legend and excluded-cell lines printed under the table;
    label: a short id for cross-references (LaTeX \\label{tab:<label>})."""

    title: str
    headers: list[str]
    rows: list[list[str]]
    bold: list[list[bool]]
    notes: tuple[str, ...] = ()
    label: str = ""


def column_decimals(values: np.ndarray) -> int:
    """One number of decimals for a whole column: 3 significant digits of its median |value|,
    and at least 2 of its smallest value that is not ~0 (under 1e-3 of the median)."""
    magnitudes = np.abs(np.asarray(values, float))
    magnitudes = magnitudes[np.isfinite(magnitudes) & (magnitudes > 0)]
    if magnitudes.size == 0:
        return 2
    median = float(np.median(magnitudes))
    smallest = float(magnitudes[magnitudes >= 1e-3 * median].min())
    decimals = max(2 - math.floor(math.log10(median)), 1 - math.floor(math.log10(smallest)))
    return int(min(8, max(0, decimals)))


def _fixed(value: float, decimals: int) -> str:
    text = f"{value:.{decimals}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text  # no "-0.0"


def format_value(value: float, half_width: float, decimals: int) -> str:
    """'12.3 ± 0.4' with the column's decimals; the half-width keeps one significant digit
    where those decimals would round it to 0; the value alone without a half-width."""
    if not math.isfinite(value):
        return "-"
    text = _fixed(value, decimals)
    if not math.isfinite(half_width):
        return text
    width = _fixed(half_width, decimals)
    if float(width) == 0 and half_width > 0:
        width = _fixed(half_width, min(10, -math.floor(math.log10(half_width))))
    return f"{text} {PLUS_MINUS} {width}"


def text_columns(table: Table) -> int:
    """Leading text columns (Dataset, Method, Setting): left-aligned, never numbers."""
    return 3 if table.headers[:1] == ["Dataset"] else 2


def to_markdown(table: Table) -> str:
    def cell(value: str, strong: bool) -> str:
        return f"**{value}**" if strong else value

    left = text_columns(table)
    lines = [f"**{table.title}**", "", "| " + " | ".join(table.headers) + " |",
             "|" + "|".join("---" if i < left else "---:" for i in range(len(table.headers)))
             + "|"]
    for row, marks in zip(table.rows, table.bold, strict=True):
        lines.append("| " + " | ".join(cell(v, b) for v, b in zip(row, marks, strict=True)) + " |")
    for note in table.notes:
        lines += ["", note]
    return "\n".join(lines) + "\n"


def to_html(table: Table) -> str:
    def cell(tag: str, value: str, strong: bool) -> str:
        value = html.escape(value)
        return f"<{tag}>{f'<b>{value}</b>' if strong else value}</{tag}>"

    head = "".join(cell("th", h, False) for h in table.headers)
    body = "".join("<tr>" + "".join(cell("td", v, b) for v, b in zip(row, marks, strict=True))
                   + "</tr>" for row, marks in zip(table.rows, table.bold, strict=True))
    notes = "".join(f"<p class='note'>{html.escape(note)}</p>" for note in table.notes)
    return (f"<table><caption>{html.escape(table.title)}</caption><thead><tr>{head}</tr></thead>"
            f"<tbody>{body}</tbody></table>{notes}")
