"""A results table as a LaTeX booktabs float: label, caption, short setting names with a legend."""
from __future__ import annotations

import re
import string

from bench.tables.render import NOISE_MARK, PLUS_MINUS, Table, text_columns

# Settings longer than this print as a letter, "(a)", spelled out in the legend below the table
# (a paper column cannot hold "global, sparsity 0.5, ft 200, lr=0.0001, teacher_weight=0.0").
SHORT_SETTING = 24
_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                  "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
                  "^": r"\textasciicircum{}"}


def latex_escape(text: str) -> str:
    """Escape LaTeX's special characters; ± becomes $\\pm$ and ≈ $\\approx$."""
    escaped = "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)
    return escaped.replace(PLUS_MINUS, r"$\pm$").replace(NOISE_MARK, r"$\approx$")


def latex_label(text: str) -> str:
    """A \\label key: 'tab:' and the text with anything but letters, digits, '-' and '.' as '-'."""
    return "tab:" + re.sub(r"[^A-Za-z0-9.-]+", "-", text).strip("-")


def _letters(index: int) -> str:
    """0 -> 'a', 25 -> 'z', 26 -> 'aa': spreadsheet-style codes."""
    code = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        code = string.ascii_lowercase[rest] + code
    return code


def short_settings(settings: list[str]) -> tuple[list[str], list[str]]:
    """(cells, legend): settings up to SHORT_SETTING characters as they are, longer ones as
    '(a)', '(b)', ... (one code per distinct text), legend entries '(a) <full setting>'."""
    codes: dict[str, str] = {}
    cells = []
    for setting in settings:
        if len(setting) <= SHORT_SETTING:
            cells.append(setting)
            continue
        codes.setdefault(setting, f"({_letters(len(codes))})")
        cells.append(codes[setting])
    return cells, [f"{code} {setting}" for setting, code in codes.items()]


def to_latex(table: Table) -> str:
    """A table float: booktabs rules (needs \\usepackage{booktabs}, said in a comment line), the
    caption and \\label{tab:...} above, the settings legend and the notes below as footnote-size
    lines."""
    def cell(value: str, strong: bool) -> str:
        return rf"\textbf{{{latex_escape(value)}}}" if strong else latex_escape(value)

    rows = [list(row) for row in table.rows]
    legend: list[str] = []
    if "Setting" in table.headers:
        j = table.headers.index("Setting")
        shortened, legend = short_settings([row[j] for row in rows])
        for row, short in zip(rows, shortened, strict=True):
            row[j] = short
    left = text_columns(table)
    spec = "l" * left + "r" * (len(table.headers) - left)
    lines = [r"% needs \usepackage{booktabs} in the preamble",
             r"\begin{table}[t]", r"\centering", rf"\caption{{{latex_escape(table.title)}}}"]
    if table.label:
        lines.append(rf"\label{{{latex_label(table.label)}}}")
    lines += [rf"\begin{{tabular}}{{{spec}}}", r"\toprule",
              " & ".join(latex_escape(h) for h in table.headers) + r" \\", r"\midrule"]
    for row, marks in zip(rows, table.bold, strict=True):
        lines.append(" & ".join(cell(v, b) for v, b in zip(row, marks, strict=True)) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    if legend:
        lines.append(r"\par\footnotesize Settings: " + latex_escape("; ".join(legend)) + ".")
    lines += [rf"\par\footnotesize {latex_escape(note)}" for note in table.notes]
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"
