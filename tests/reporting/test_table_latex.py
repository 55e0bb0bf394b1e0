"""LaTeX tables: booktabs note, \\label, a caption that describes the table, short setting names
with their legend below."""
from __future__ import annotations

import pytest

from bench.results.loading import load_results_dir
from bench.tables.build import family_tables
from bench.tables.latex import SHORT_SETTING, latex_label, short_settings, to_latex
from bench.tables.render import Table


def test_short_settings_code_long_labels_once_each() -> None:
    long_a, long_b = "a" * (SHORT_SETTING + 1), "b" * (SHORT_SETTING + 5)
    cells, legend = short_settings(["fp32", long_a, "8-bit, tensor", long_b, long_a])
    assert cells == ["fp32", "(a)", "8-bit, tensor", "(b)", "(a)"]
    assert legend == [f"(a) {long_a}", f"(b) {long_b}"]


def test_codes_go_past_z() -> None:
    cells, _ = short_settings([f"{i:03d}" + "x" * SHORT_SETTING for i in range(28)])
    assert cells[:2] == ["(a)", "(b)"] and cells[25:] == ["(z)", "(aa)", "(ab)"]


@pytest.mark.parametrize(("text", "label"), [
    ("default-gan", "tab:default-gan"),
    ("my sweep_2/gan", "tab:my-sweep-2-gan"),
])
def test_latex_label(text: str, label: str) -> None:
    assert latex_label(text) == label


def test_latex_table_describes_itself(make_results_dir) -> None:
    tex = to_latex(family_tables(load_results_dir(make_results_dir("three")))["gan"])
    lines = tex.splitlines()
    assert lines[0] == r"% needs \usepackage{booktabs} in the preamble"
    assert r"\label{tab:synthetic-gan}" in lines
    caption = next(line for line in lines if line.startswith(r"\caption{"))
    for words in ("gan on mnist5k", "three seeds (0, 1, 2)", "1000 generated samples",
                  "classifier lenet", r"$\pm$ 95\% interval", "bold: the best variant",
                  "baseline itself is never bold"):
        assert words in caption, words
    assert lines.index(r"\toprule") < lines.index(r"\bottomrule") < lines.index(r"\end{table}")


def test_long_settings_become_letters_with_a_legend_below() -> None:
    long = "global, sparsity 0.5, ft 200, lr=0.0001, teacher_weight=0.0"
    table = Table("t", ["Method", "Setting", "FID-proxy"],
                  [["baseline", "fp32", "1.0"], ["prune_magnitude", long, "2.0"]],
                  [[False] * 3, [False, False, True]], ("a note",), "run-gan")
    lines = to_latex(table).splitlines()
    assert r"prune\_magnitude & (a) & \textbf{2.0} \\" in lines
    legend = lines.index(r"\par\footnotesize Settings: (a) global, sparsity 0.5, ft 200, "
                         r"lr=0.0001, teacher\_weight=0.0.")
    assert lines.index(r"\end{tabular}") < legend < lines.index(r"\par\footnotesize a note")
    # Markdown keeps the full setting: only the paper table is short.
    from bench.tables.render import to_markdown
    assert long in to_markdown(table)
