"""Tables: number formats per column, bold only beyond the intervals, noise and collapse marks,
unstable latency, legend lines, golden Markdown/LaTeX."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from synthetic_results import UNSTABLE_SPEEDUP

from bench.results import schema
from bench.results.labels import compact_setting_labels, setting_label
from bench.results.loading import load_results_dir, seed_summary, with_latency
from bench.tables.build import (
    COLUMNS,
    NOISE_MARK,
    PLUS_MINUS,
    best_mask,
    column_decimals,
    family_tables,
    format_value,
    latex_escape,
    to_html,
    to_latex,
    to_markdown,
    write_tables,
)

GOLDEN = Path(__file__).parent / "golden"


@pytest.mark.parametrize(("value", "half_width", "decimals", "text"), [
    (12.345, 0.4321, 1, f"12.3 {PLUS_MINUS} 0.4"),
    (-95.123, 1.27, 1, f"-95.1 {PLUS_MINUS} 1.3"),
    (0.0012345, float("nan"), 5, "0.00123"),
    (1234.5, 10.0, 0, f"1234 {PLUS_MINUS} 10"),      # banker's rounding of .5 as Python does
    (20.0, 0.02, 1, f"20.0 {PLUS_MINUS} 0.02"),      # a half-width never prints as 0
    (-0.01, 0.5, 1, f"0.0 {PLUS_MINUS} 0.5"),        # no "-0.0"
    (float("nan"), 1.0, 2, "-"),
])
def test_format_value(value: float, half_width: float, decimals: int, text: str) -> None:
    assert format_value(value, half_width, decimals) == text


@pytest.mark.parametrize(("values", "decimals"), [
    ([19.9, 20.9, 31.8, 1198.0], 1),     # 3 significant digits of the median (26.35)
    ([0.400, 0.222, 0.0667, 0.103], 3),  # median 0.16 -> 3, smallest 0.0667 -> 2 sig = 3
    ([0.4, 0.0053], 4),                  # the smallest keeps 2 significant digits
    ([0.0104, 0.0159, 1e-9], 4),         # ~0 next to the rest does not set the format
    ([np.nan, 0.0], 2),
])
def test_column_decimals(values: list[float], decimals: int) -> None:
    assert column_decimals(np.array(values)) == decimals


@pytest.mark.parametrize(("values", "direction", "expected"), [
    ([3.0, 1.0, 2.0], -1, [False, True, False]),
    ([3.0, 1.0, 3.0], +1, [True, False, True]),      # ties all bold
    ([2.0, 2.0, 2.0], +1, [False, False, False]),    # all equal: nothing informs
    ([np.nan, 5.0, 4.0], -1, [False, False, True]),
    ([np.nan, 5.0, np.nan], -1, [False, False, False]),
])
def test_best_mask_without_intervals(values: list[float], direction: int,
                                     expected: list[bool]) -> None:
    assert best_mask(np.array(values), direction).tolist() == expected


@pytest.mark.parametrize(("low", "high", "expected"), [
    ([0.5, 1.9, 2.5], [1.5, 2.1, 3.5], [True, False, False]),   # 1.5 < 1.9: clear
    ([0.5, 1.4, 2.5], [1.5, 2.6, 3.5], [False, False, False]),  # overlaps the runner-up
    ([0.5, 1.9, 1.4], [1.5, 2.1, 4.6], [False, False, False]),  # overlaps the third
    ([0.5, 1.5, 2.5], [1.5, 2.5, 3.5], [False, False, False]),  # touching is overlap
    ([1.0, 2.0, 3.0], [np.nan, np.nan, np.nan], [True, False, False]),  # points
])
def test_best_mask_bolds_only_beyond_every_interval(low, high, expected) -> None:
    values = np.array([1.0, 2.0, 3.0])  # lower is better
    assert best_mask(values, -1, np.array(low), np.array(high)).tolist() == expected
    # Higher-is-better mirrors it.
    assert best_mask(-values, +1, -np.array(high), -np.array(low)).tolist() == expected


def test_best_mask_skips_ineligible_rows() -> None:
    values, eligible = np.array([1.0, 2.0, 3.0]), np.array([False, True, True])
    assert best_mask(values, -1, eligible=eligible).tolist() == [False, True, False]


def test_latex_escape() -> None:
    assert latex_escape(f"prune_magnitude 50% & #1 {PLUS_MINUS} {NOISE_MARK}") == (
        r"prune\_magnitude 50\% \& \#1 $\pm$ $\approx$")


def _index(table, header: str) -> int:
    """The column whose header is `header` or starts with it and a context ('Speedup (CPU...')."""
    found = [j for j, h in enumerate(table.headers) if h == header or h.startswith(header + " (")]
    assert len(found) == 1, (header, table.headers)
    return found[0]


def _column(table, header: str) -> list[str]:
    j = _index(table, header)
    return [row[j] for row in table.rows]


def test_bold_never_overlaps_another_interval(make_results_dir) -> None:
    run = load_results_dir(make_results_dir(unstable=True))
    for family, table in family_tables(run).items():
        rows = with_latency(run, run.ok()[run.ok()["family"] == family])
        summary = seed_summary(rows, [c.source for c in COLUMNS if c.source in rows])
        for column in COLUMNS:
            if not any(h.startswith(column.header) for h in table.headers):
                continue
            j = _index(table, column.header)
            sign = schema.DIRECTIONS[column.direction_of]
            low = sign * summary[f"{column.source}_low"].fillna(summary[f"{column.source}_mean"])
            high = sign * summary[f"{column.source}_high"].fillna(
                summary[f"{column.source}_mean"])
            worst_side, best_side = np.minimum(low, high), np.maximum(low, high)
            for i, marks in enumerate(table.bold):
                if marks[j]:
                    others = [k for k in range(len(table.rows)) if k != i
                              and np.isfinite(summary[f"{column.source}_mean"].iloc[k])]
                    assert worst_side.iloc[i] > best_side.iloc[others].max(), (family, column)
    # Something is bold (not a vacuous check): 4-bit has the clearly smallest file.
    gan = family_tables(run)["gan"]
    assert gan.bold[4][_index(gan, "Size (MB)")]
    # The FID baseline (20.0 +/- 0.5) overlaps 8-bit (20.4 +/- 0.6): not bold although lowest.
    assert not any(marks[_index(gan, "FID-proxy")] for marks in gan.bold)


def test_known_mean_and_interval(results_dir: Path) -> None:
    # gan baseline FID over seeds 0,1,2 = 20*(0.99, 1.0, 1.01), bootstrap h_i = 0.02 x_i:
    # hw = sqrt(mean(h_i^2)/3 + t2^2 * 0.04/3) = 0.548.
    gan = family_tables(load_results_dir(results_dir))["gan"]
    assert gan.rows[0][:2] == ["baseline", "fp32"]
    assert _column(gan, "FID-proxy")[0] == f"20.0 {PLUS_MINUS} 0.5"
    assert _column(gan, "Size (MB)")[0] == "0.400"  # the same in every seed: no interval
    vae = family_tables(load_results_dir(results_dir))["vae"]
    assert any("failed" in note for note in vae.notes)  # the failed vae seed is named
    assert "ELBO (nats)" not in gan.headers and "ELBO (nats)" in vae.headers


@pytest.mark.parametrize("seeds", [[0], [0, 1, 2]])
def test_within_noise_changes_are_marked(make_results_dir, seeds: list[int]) -> None:
    # 8-bit quant: a 2% change with a paired half-width of 4% (per seed) includes 0; the
    # 5%-worse 50% pruning excludes it; the baseline is never marked.
    vae = family_tables(load_results_dir(make_results_dir(seeds=seeds)))["vae"]
    for header in ("FID-proxy", "KID", "ELBO (nats)"):
        cells = _column(vae, header)
        assert cells[3].startswith(NOISE_MARK + " "), (header, cells[3])
        assert not cells[0].startswith(NOISE_MARK) and not cells[1].startswith(NOISE_MARK)
    assert any(note.startswith(NOISE_MARK) for note in vae.notes)  # the legend line
    assert not any(c.startswith(NOISE_MARK) for c in _column(vae, "Size (MB)"))


def test_collapsed_cell_is_flagged_and_never_best(make_results_dir) -> None:
    directory = make_results_dir()
    frame = pd.read_csv(directory / schema.RESULTS_FILE)
    collapsed = frame["cell_id"].str.startswith("gan2s")
    # Give the collapsed cell the best FID by far (as precision 1.0 looked best in the issue).
    # Its paired change against the baseline (~20) then excludes 0 on the better side.
    for column, value in (("fid_proxy", 1.0), ("fid_proxy_ci_low", 0.9),
                          ("fid_proxy_ci_high", 1.1), ("fid_proxy_delta", -19.0),
                          ("fid_proxy_delta_ci_low", -19.5), ("fid_proxy_delta_ci_high", -18.5)):
        frame.loc[collapsed, column] = value
    frame.to_csv(directory / schema.RESULTS_FILE, index=False)
    gan = family_tables(load_results_dir(directory))["gan"]
    assert _column(gan, "Setting")[2] == "global, sparsity 0.9 (collapsed)"
    assert not gan.bold[2][_index(gan, "FID-proxy")]
    assert any(note.startswith("collapsed:") for note in gan.notes)
    # Without the flag the same numbers would be bold: the check above can fail.
    frame.loc[collapsed, "collapsed"] = False
    frame.to_csv(directory / schema.RESULTS_FILE, index=False)
    gan = family_tables(load_results_dir(directory))["gan"]
    assert gan.bold[2][_index(gan, "FID-proxy")]
    assert "collapsed" not in _column(gan, "Setting")[2]


def test_collapsed_in_some_seeds_says_how_many(make_results_dir) -> None:
    directory = make_results_dir()
    frame = pd.read_csv(directory / schema.RESULTS_FILE)
    frame.loc[frame["cell_id"] == "gan2s0", "collapsed"] = False
    frame.to_csv(directory / schema.RESULTS_FILE, index=False)
    gan = family_tables(load_results_dir(directory))["gan"]
    assert _column(gan, "Setting")[2] == "global, sparsity 0.9 (collapsed in 2/3 seeds)"


def test_unstable_latency_gives_no_speedup(make_results_dir) -> None:
    # One seed: the 4-bit cell's only CPU row at batch 64 is unstable.
    gan = family_tables(load_results_dir(make_results_dir(seeds=[2], unstable=True)))["gan"]
    assert _column(gan, "Speedup")[4] == "unstable"
    assert _column(gan, "p50 CPU")[4] == "unstable"
    assert any("1 unstable row(s)" in note for note in gan.notes)
    # Three seeds: the mean speedup is over the two stable seeds (1/0.7), never 0.3.
    gan = family_tables(load_results_dir(make_results_dir("three", unstable=True)))["gan"]
    assert _column(gan, "Speedup")[4] == "1.43 (1 unstable)"
    assert _column(gan, "Speedup")[3] == "1.25"  # other cells: plain
    assert f"{UNSTABLE_SPEEDUP}" not in "".join(_column(gan, "Speedup"))


def test_legend_says_what_plus_minus_means_and_the_floor(make_results_dir) -> None:
    one = family_tables(load_results_dir(make_results_dir(seeds=[0])))["gan"]
    three = family_tables(load_results_dir(make_results_dir("three")))["gan"]
    assert "95% interval" in one.notes[0] and "bootstrap over the 1000 samples" in one.notes[0]
    assert "spread of the 3 seeds" in three.notes[0] and "seeds" not in one.notes[0]
    floor = next(note for note in one.notes if note.startswith("Real-vs-real floor"))
    # In the FID column's format (one decimal: its values are ~20-30).
    assert "at n=1000" in floor and f"FID-proxy 0.5 {PLUS_MINUS} 0.1" in floor
    noise = next(note for note in three.notes if note.startswith("Speedup noise"))
    # Seeds 0-2 timed their baseline against itself at batches 1 and 64: 0.99, 1.00, 1.01;
    # f = 1/0.99, the largest deviation either way.
    assert noise.startswith("Speedup noise: the baseline timed against itself gave 0.99 to "
                            "1.01 over 6 measurements (CPU, batches 1, 64); a speedup between "
                            "0.99 and 1.01 ")
    assert _column(three, "Speedup")[0] == "1.00 (noise 0.99-1.01)"
    # Every rendering carries the notes.
    for render in (to_markdown, to_latex, to_html):
        assert "Real-vs-real floor" in render(one)


def test_write_tables_files(results_dir: Path) -> None:
    written = write_tables(results_dir)
    assert sorted(p.name for p in written) == ["gan.md", "gan.tex", "vae.md", "vae.tex"]
    tex = (results_dir / "tables" / "gan.tex").read_text()
    assert r"\toprule" in tex and r"\bottomrule" in tex and "prune\\_magnitude" in tex
    assert "p50 CUDA" not in tex  # no CUDA rows in this run: no empty column


def test_write_tables_removes_tables_the_results_no_longer_back(results_dir: Path) -> None:
    write_tables(results_dir)
    results = pd.read_csv(results_dir / schema.RESULTS_FILE, dtype=str)
    results[results["family"] == "vae"].to_csv(results_dir / schema.RESULTS_FILE, index=False)
    written = write_tables(results_dir)
    assert sorted(p.name for p in (results_dir / "tables").iterdir()) == ["vae.md", "vae.tex"]
    assert sorted(p.name for p in written) == ["vae.md", "vae.tex"]


@pytest.mark.parametrize("family", ["gan", "vae"])
@pytest.mark.parametrize(("suffix", "render"), [(".md", to_markdown), (".tex", to_latex)])
def test_golden(family: str, suffix: str, render) -> None:
    text = render(family_tables(load_results_dir(GOLDEN / "input"))[family])
    golden = GOLDEN / f"{family}{suffix}"
    if os.environ.get("GENBENCH_REGEN_GOLDEN") == "1":  # regenerate only deliberately
        golden.write_text(text)
    assert text == golden.read_text()


def test_golden_input_is_what_the_schema_says() -> None:
    # Written before the class, bits/dim and runtime columns were added: older results must
    # still render.
    frame = pd.read_csv(GOLDEN / "input" / schema.RESULTS_FILE)
    assert list(frame.columns) == [c for c in schema.RESULTS_COLUMNS
                                   if c not in schema.ADDED_RESULTS_COLUMNS]
    latency = pd.read_csv(GOLDEN / "input" / schema.LATENCY_FILE)
    assert list(latency.columns) == [c for c in schema.LATENCY_COLUMNS
                                     if c not in schema.ADDED_LATENCY_COLUMNS]
    assert (latency["status"] == schema.STATUS_UNSTABLE).sum() == 1


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
