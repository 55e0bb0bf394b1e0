"""Bold only beyond noise: the baseline is a reference and never bold, paired changes decide
against it, speedups are judged against the baseline timed against itself, unstable rows are
never bold; headers say the device, batch, threads and KID's scale; one format per column."""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.results import schema
from bench.results.annotations import speedup_noise_band
from bench.results.loading import load_results_dir
from bench.tables.build import best_mask, family_tables


def _index(table, header: str) -> int:
    found = [j for j, h in enumerate(table.headers) if h == header or h.startswith(header + " (")]
    assert len(found) == 1, (header, table.headers)
    return found[0]


def _bold(table, header: str) -> list[bool]:
    j = _index(table, header)
    return [marks[j] for marks in table.bold]


def _cells(table, header: str) -> list[str]:
    j = _index(table, header)
    return [row[j] for row in table.rows]


def _edit(directory: Path, name: str, change) -> None:
    path = directory / name
    if name.endswith(".json"):
        data = json.loads(path.read_text())
        change(data)
        path.write_text(json.dumps(data))
    else:
        frame = pd.read_csv(path)
        change(frame)
        frame.to_csv(path, index=False)


def test_the_reference_row_is_compared_but_never_bold() -> None:
    # Lower is better; row 0 is the baseline with the best value beyond every interval.
    values, base = np.array([1.0, 2.0, 3.0]), np.array([True, False, False])
    assert best_mask(values, -1, eligible=~base, reference=base).tolist() == [False] * 3
    # A variant must clear the baseline too: 2.0 beats 3.0 but not the baseline's 1.0.
    values = np.array([1.0, 0.5, 3.0])
    assert best_mask(values, -1, eligible=~base, reference=base).tolist() == [False, True, False]


@pytest.mark.parametrize(("paired", "expected"), [
    (np.nan, False),  # unknown: the unpaired intervals (overlapping here) decide
    (1.0, True),      # the paired change excludes 0 on the better side: beyond the baseline
    (0.0, False),
])
def test_a_paired_change_replaces_the_interval_check_against_the_baseline(paired, expected):
    values = np.array([10.0, 9.0, 12.0])  # baseline, best variant, other variant
    low, high = values - 1.4, values + 1.4  # 9.0 overlaps the baseline, clears 12.0
    base = np.array([True, False, False])
    marks = best_mask(values, -1, low, high, ~base, base, np.array([np.nan, paired, 0.0]))
    assert marks.tolist() == [False, expected, False]
    # A paired "not better" overrides intervals that would clear the baseline.
    far = np.array([10.0, 5.0, 12.0])
    marks = best_mask(far, -1, far - 1, far + 1, ~base, base, np.array([np.nan, 0.0, 0.0]))
    assert not marks.any()


def test_baseline_is_never_bold_for_being_the_baseline(make_results_dir) -> None:
    # Narrow intervals: the baseline's FID (lowest) is now clearly beyond every variant's.
    directory = make_results_dir(seeds=[0])

    def narrow(frame: pd.DataFrame) -> None:
        for metric in ("fid_proxy", "kid_proxy", "precision", "recall"):
            frame[f"{metric}_ci_low"] = frame[metric] - 1e-6
            frame[f"{metric}_ci_high"] = frame[metric] + 1e-6
    _edit(directory, schema.RESULTS_FILE, narrow)
    for table in family_tables(load_results_dir(directory)).values():
        assert not any(table.bold[0]), table.rows[0]  # baseline row
        assert not any(_bold(table, "FID-proxy"))  # no variant beats the baseline


def test_speedup_is_bold_only_beyond_the_baseline_against_itself(make_results_dir) -> None:
    # One seed: the baseline against itself gave 0.99 (both batches); 4-bit runs 1/0.7 = 1.43.
    directory = make_results_dir(seeds=[0])
    gan = family_tables(load_results_dir(directory))["gan"]
    assert _cells(gan, "Speedup")[0] == "1.00 (noise 0.99-1.01)"
    assert _bold(gan, "Speedup") == [False, False, False, False, True]
    assert _bold(gan, "p50 CPU") == [False, False, False, False, True]
    assert _cells(gan, "Speedup")[1] == "≈ 1.00"  # 50% pruning: inside the band

    def noisy(run: dict) -> None:  # the same baseline measured 0.6 against itself
        for entry in run["speedup_noise"]:
            entry["speedup"] = 0.6
    _edit(directory, schema.RUN_FILE, noisy)
    run = load_results_dir(directory)
    assert speedup_noise_band(run, "gan").factor == pytest.approx(1 / 0.6)
    gan = family_tables(run)["gan"]
    assert _cells(gan, "Speedup")[0] == "1.00 (noise 0.60-1.67)"
    assert not any(_bold(gan, "Speedup")) and not any(_bold(gan, "p50 CPU"))
    assert _cells(gan, "Speedup")[4] == "≈ 1.43"


def test_without_a_noise_measurement_no_latency_cell_is_bold(make_results_dir) -> None:
    directory = make_results_dir(seeds=[0])
    _edit(directory, schema.RUN_FILE, lambda run: run.pop("speedup_noise"))
    gan = family_tables(load_results_dir(directory))["gan"]
    assert not any(_bold(gan, "Speedup")) and not any(_bold(gan, "p50 CPU"))
    assert _cells(gan, "Speedup")[0] == "0.99"  # the measured value, nothing invented
    assert any(note.startswith("Speedup noise: not measured") for note in gan.notes)


def test_a_row_with_an_unstable_seed_is_never_bold_and_still_compared(make_results_dir):
    # Three seeds; 4-bit's last seed is unstable: its mean over the stable seeds (1.43) is not
    # bold, and 8-bit (1.25) is not bold either, being below it.
    gan = family_tables(load_results_dir(make_results_dir("three", unstable=True)))["gan"]
    assert _cells(gan, "Speedup")[4] == "1.43 (1 unstable)"
    assert not any(_bold(gan, "Speedup")) and not any(_bold(gan, "p50 CPU"))


def test_headers_name_device_batch_threads_and_kid_scale(make_results_dir) -> None:
    gan = family_tables(load_results_dir(make_results_dir(cuda=True)))["gan"]
    assert "p50 CPU (ms, batch 64, 1 thread)" in gan.headers
    assert "p50 CUDA (ms, batch 64)" in gan.headers
    assert "Speedup (CPU, batch 64, 1 thread)" in gan.headers
    # Synthetic KID is ~0.01: printed x1000, its floor (0.0005 +/- 0.0002) on the same scale.
    assert "KID (x1000)" in gan.headers
    assert _cells(gan, "KID")[0].startswith("10.0 ")
    assert any("KID 0.5 ± 0.2" in note for note in gan.notes)  # the column's one decimal
    assert any(note.endswith("multiplied by 1000.") for note in gan.notes)


def test_a_large_kid_prints_as_it_is(make_results_dir) -> None:
    directory = make_results_dir(seeds=[0])

    def scale(frame: pd.DataFrame) -> None:
        for column in ("kid_proxy", "kid_proxy_ci_low", "kid_proxy_ci_high"):
            frame[column] *= 3000.0  # ~30, as the reference run's features give
    _edit(directory, schema.RESULTS_FILE, scale)
    gan = family_tables(load_results_dir(directory))["gan"]
    assert "KID" in gan.headers and _cells(gan, "KID")[0].startswith("29.7 ")
    assert any("as computed (not rescaled" in note for note in gan.notes)


_NUMBER = re.compile(r"-?\d+(?:\.(\d+))?")


@pytest.mark.parametrize("options", [{}, {"seeds": [0]}, {"cuda": True, "unstable": True}])
def test_one_number_format_per_column(make_results_dir, options) -> None:
    for table in family_tables(load_results_dir(make_results_dir(**options))).values():
        for j in range(2, len(table.headers)):
            decimals = set()
            for row in table.rows:
                match = _NUMBER.search(row[j])
                if match:  # the value, not its ± half-width or a note
                    decimals.add(len(match.group(1) or ""))
            assert len(decimals) <= 1, (table.headers[j], [row[j] for row in table.rows])


def test_class_columns_show_when_the_results_have_them(make_results_dir) -> None:
    directory = make_results_dir(seeds=[0])
    assert "Classes" not in family_tables(load_results_dir(directory))["gan"].headers

    def classes(frame: pd.DataFrame) -> None:
        frame["classes_present"] = np.where(frame["cell_id"].str.contains("2s"), 3, 10)
        frame["class_entropy_norm"] = 0.95
        frame["mean_confidence"] = np.where(frame["cell_id"].str.contains("2s"), 0.512, 0.93)
    _edit(directory, schema.RESULTS_FILE, classes)
    gan = family_tables(load_results_dir(directory))["gan"]
    assert _cells(gan, "Classes") == ["10", "10", "3", "10", "10"]
    assert _cells(gan, "Conf.") == ["0.930", "0.930", "0.512", "0.930", "0.930"]
    assert not any(_bold(gan, "Classes")) and not any(_bold(gan, "Conf."))  # no interval
    assert any(note.startswith("Classes: digits") for note in gan.notes)


def test_bits_per_dim_replaces_nats_when_present(make_results_dir) -> None:
    directory = make_results_dir(seeds=[0])

    def bpd(frame: pd.DataFrame) -> None:
        frame["elbo_bpd"] = -frame["elbo_nats"] / (784 * np.log(2))
    _edit(directory, schema.RESULTS_FILE, bpd)
    vae = family_tables(load_results_dir(directory))["vae"]
    assert "-ELBO (bits/dim)" in vae.headers and "ELBO (nats)" not in vae.headers
    assert _cells(vae, "-ELBO (bits/dim)")[0] == f"{100 * 0.99 / (784 * np.log(2)):.3f}"
