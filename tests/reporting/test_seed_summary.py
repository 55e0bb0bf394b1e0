"""Seed aggregation of values and intervals on known numbers; the latency join's status."""
from __future__ import annotations

import math

import pandas as pd
import pytest

from bench.results import schema
from bench.results.loading import KEY_COLUMNS, load_results_dir, seed_summary, with_latency

# Student t quantiles at 0.975 (tables): 1 and 2 degrees of freedom.
T1, T2 = 12.706204736, 4.302652730


def _cells(values: list[float], lows: list[float], highs: list[float]) -> pd.DataFrame:
    """One cell key over len(values) seeds, fid_proxy with its bootstrap interval."""
    frame = pd.DataFrame({c: "" for c in KEY_COLUMNS}, index=range(len(values)))
    frame[["dataset", "family", "method"]] = ["mnist5k", "gan", "quant"]
    frame["fid_proxy"] = values
    frame["fid_proxy_ci_low"], frame["fid_proxy_ci_high"] = lows, highs
    return frame


def test_one_seed_keeps_its_own_interval() -> None:
    # An asymmetric bootstrap interval stays as it is; the half-width is half its width.
    row = seed_summary(_cells([10.0], [9.0], [12.0]), ["fid_proxy"]).iloc[0]
    assert (row["fid_proxy_mean"], row["fid_proxy_low"], row["fid_proxy_high"]) == (10, 9, 12)
    assert row["fid_proxy_hw"] == 1.5 and row["fid_proxy_n"] == 1
    assert math.isnan(row["fid_proxy_std"])


def test_two_seeds_combine_sampling_noise_and_seed_spread() -> None:
    # x = 10, 12 (s^2 = 2), h = 1, 1: hw = sqrt(1/2 + t1^2 * 2 / 2).
    row = seed_summary(_cells([10.0, 12.0], [9.0, 11.0], [11.0, 13.0]), ["fid_proxy"]).iloc[0]
    hw = math.sqrt(0.5 + T1 ** 2)
    assert row["fid_proxy_mean"] == 11.0
    assert row["fid_proxy_hw"] == pytest.approx(hw, rel=1e-8)
    assert (row["fid_proxy_low"], row["fid_proxy_high"]) == pytest.approx((11 - hw, 11 + hw))


def test_three_seeds_that_agree_keep_the_sampling_noise() -> None:
    # Identical seeds (s = 0) with h = 0.6, 0.6, 0.9: hw = sqrt(mean(h^2) / 3) = sqrt(0.51 / 3).
    row = seed_summary(_cells([5.0] * 3, [4.4, 4.4, 4.1], [5.6, 5.6, 5.9]),
                       ["fid_proxy"]).iloc[0]
    assert row["fid_proxy_hw"] == pytest.approx(math.sqrt(0.51 / 3), rel=1e-9)
    # And with spread: x = 1, 2, 3 (s = 1), h = 0.5 each: sqrt(0.25/3 + t2^2/3).
    row = seed_summary(_cells([1.0, 2.0, 3.0], [0.5, 1.5, 2.5], [1.5, 2.5, 3.5]),
                       ["fid_proxy"]).iloc[0]
    assert row["fid_proxy_hw"] == pytest.approx(math.sqrt(0.25 / 3 + T2 ** 2 / 3), rel=1e-8)


def test_without_intervals_the_t_interval_alone_and_none_for_one_seed() -> None:
    frame = _cells([1.0, 2.0, 3.0], [float("nan")] * 3, [float("nan")] * 3)
    assert seed_summary(frame, ["fid_proxy"]).iloc[0]["fid_proxy_hw"] == pytest.approx(
        T2 / math.sqrt(3), rel=1e-8)
    frame = frame.drop(columns=["fid_proxy_ci_low", "fid_proxy_ci_high"]).iloc[:1]
    assert math.isnan(seed_summary(frame, ["fid_proxy"]).iloc[0]["fid_proxy_hw"])


def test_a_missing_seed_value_is_not_counted() -> None:
    row = seed_summary(_cells([10.0, float("nan")], [9.0, 0.0], [11.0, 99.0]),
                       ["fid_proxy"]).iloc[0]
    assert row["fid_proxy_n"] == 1 and (row["fid_proxy_low"], row["fid_proxy_high"]) == (9, 11)


def test_deltas_aggregate_with_their_own_intervals(results_dir) -> None:
    # Synthetic gan 8-bit: delta_i = 0.4 * jitter_i, half-width 0.04 * 20 * jitter_i.
    run = load_results_dir(results_dir)
    rows = run.ok()[(run.ok()["family"] == "gan") & (run.ok()["bits"] == "8")]
    row = seed_summary(rows, ["fid_proxy_delta"]).iloc[0]
    jitter = pd.Series([0.99, 1.0, 1.01])
    assert row["fid_proxy_delta_mean"] == pytest.approx(0.4)
    expected = math.sqrt((0.8 * jitter).pow(2).mean() / 3 + T2 ** 2 * (0.4 * jitter).var() / 3)
    assert row["fid_proxy_delta_hw"] == pytest.approx(expected, rel=1e-6)
    assert row["fid_proxy_delta_low"] < 0 < row["fid_proxy_delta_high"]  # within noise


def test_unstable_latency_rows_give_no_figures(make_results_dir) -> None:
    run = load_results_dir(make_results_dir(unstable=True))
    joined = with_latency(run, run.ok()).set_index("cell_id")
    assert joined.loc["gan4s2", "latency_status"] == schema.STATUS_UNSTABLE
    assert math.isnan(joined.loc["gan4s2", "speedup"])
    assert math.isnan(joined.loc["gan4s2", "latency_p50_ms"])
    assert joined.loc["gan4s1", "latency_status"] == schema.STATUS_OK
    assert joined.loc["gan4s1", "speedup"] == pytest.approx(1 / 0.7)
    assert (joined["latency_status_cuda"] == "").all()  # no CUDA rows in this run
