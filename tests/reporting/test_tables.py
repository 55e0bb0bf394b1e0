"""Tables: number formatting, bold on the true best, mean ± std, golden Markdown/LaTeX."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench import schema
from bench.loading import compact_setting_labels, load_results_dir, setting_label
from bench.tables import (
    COLUMNS,
    PLUS_MINUS,
    best_mask,
    family_tables,
    format_value,
    latex_escape,
    to_latex,
    to_markdown,
    write_tables,
)

GOLDEN = Path(__file__).parent / "golden"


@pytest.mark.parametrize(("mean", "std", "text"), [
    (12.345, 0.4321, f"12.3 {PLUS_MINUS} 0.4"),
    (-95.123, 1.27, f"-95.1 {PLUS_MINUS} 1.3"),
    (0.0012345, float("nan"), "0.00123"),
    (1234.5, 10.0, f"1234 {PLUS_MINUS} 10"),
    (float("nan"), 1.0, "-"),
])
def test_format_value(mean: float, std: float, text: str) -> None:
    assert format_value(mean, std) == text


@pytest.mark.parametrize(("values", "direction", "expected"), [
    ([3.0, 1.0, 2.0], -1, [False, True, False]),
    ([3.0, 1.0, 3.0], +1, [True, False, True]),      # ties all bold
    ([2.0, 2.0, 2.0], +1, [False, False, False]),    # all equal: nothing informs
    ([np.nan, 5.0, 4.0], -1, [False, False, True]),
    ([np.nan, 5.0, np.nan], -1, [False, False, False]),
])
def test_best_mask(values: list[float], direction: int, expected: list[bool]) -> None:
    assert best_mask(np.array(values), direction).tolist() == expected


def test_latex_escape() -> None:
    assert latex_escape("prune_magnitude 50% & #1 ±") == (
        r"prune\_magnitude 50\% \& \#1 $\pm$")


def test_tables_bold_the_true_best_and_report_mean_std(results_dir: Path) -> None:
    run = load_results_dir(results_dir)
    ok = run.ok()
    for family, table in family_tables(run).items():
        for column in COLUMNS:
            if column.header not in table.headers or column.source not in ok:
                continue
            j = table.headers.index(column.header)
            rows = ok[ok["family"] == family]
            means = rows.groupby(["method", "sparsity_target", "bits"], sort=False)[
                column.source].mean()
            best = means.max() if schema.DIRECTIONS[column.direction_of] > 0 else means.min()
            bolded = [row[j] for row, marks in zip(table.rows, table.bold, strict=True) if marks[j]]
            if means.nunique() > 1:
                assert bolded, (family, column.header)
                for text in bolded:
                    assert float(text.split(PLUS_MINUS)[0]) == pytest.approx(
                        best * column.scale, rel=5e-3), (family, column.header)
    # Known mean ± std: gan baseline FID over seeds 0,1,2 = 20*(0.99, 1.0, 1.01).
    gan = family_tables(run)["gan"]
    fid = gan.headers.index("FID-proxy")
    assert gan.rows[0][:2] == ["baseline", "fp32"]
    assert gan.rows[0][fid] == f"20.0 {PLUS_MINUS} 0.2"
    # The failed vae seed is excluded and named.
    assert "failed" in family_tables(run)["vae"].note
    assert "ELBO (nats)" not in gan.headers and "ELBO (nats)" in family_tables(run)["vae"].headers


def test_one_seed_prints_the_value_alone(make_results_dir) -> None:
    run = load_results_dir(make_results_dir(seeds=[0]))
    table = family_tables(run)["gan"]
    assert table.rows[0][table.headers.index("FID-proxy")] == "19.8"  # 20 * (1 - 0.01)
    assert PLUS_MINUS not in to_markdown(table)


def test_write_tables_files(results_dir: Path) -> None:
    written = write_tables(results_dir)
    assert sorted(p.name for p in written) == ["gan.md", "gan.tex", "vae.md", "vae.tex"]
    tex = (results_dir / "tables" / "gan.tex").read_text()
    assert r"\toprule" in tex and r"\bottomrule" in tex and "prune\\_magnitude" in tex
    assert "p50 CUDA" not in tex  # no CUDA rows in this run: no empty column


@pytest.mark.parametrize("family", ["gan", "vae"])
@pytest.mark.parametrize(("suffix", "render"), [(".md", to_markdown), (".tex", to_latex)])
def test_golden(family: str, suffix: str, render) -> None:
    text = render(family_tables(load_results_dir(GOLDEN / "input"))[family])
    golden = GOLDEN / f"{family}{suffix}"
    if os.environ.get("GENBENCH_REGEN_GOLDEN") == "1":  # regenerate only deliberately
        golden.write_text(text)
    assert text == golden.read_text()


def test_golden_input_is_what_the_schema_says() -> None:
    frame = pd.read_csv(GOLDEN / "input" / schema.RESULTS_FILE)
    assert list(frame.columns) == schema.RESULTS_COLUMNS


def test_compact_labels_show_only_varying_extra_settings() -> None:
    rows = pd.DataFrame([
        {"family": "gan", "method": "quant", "bits": "4",
         "settings_json": '{"scheme": "affine", "activation_bits": null, "group_size": 32}'},
        {"family": "gan", "method": "quant", "bits": "4",
         "settings_json": '{"scheme": "affine", "activation_bits": null, "group_size": 64}'},
        {"family": "gan", "method": "baseline", "bits": "", "settings_json": ""},
    ])
    assert compact_setting_labels(rows) == ["4-bit, group_size=32", "4-bit, group_size=64",
                                            "fp32"]
    # The full label (compare's identity) keeps every non-null setting.
    assert setting_label(rows.iloc[0]) == "4-bit, group_size=32, scheme=affine"
