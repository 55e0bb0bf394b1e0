"""compare: asv's rule (threshold AND beyond noise), exit codes, named cells, bad input."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from synthetic_results import run_cli

from bench import schema
from bench.compare import (
    DEFAULT_THRESHOLDS,
    compare_runs,
    judge,
    parse_thresholds,
    relative_change,
    seed_noise,
)
from bench.errors import InputError
from bench.loading import load_results_dir


def _edit(directory: Path, name: str, edit) -> None:
    path = directory / name
    frame = pd.read_csv(path)
    edited = edit(frame)  # edits in place, or returns a new frame
    (frame if edited is None else edited).to_csv(path, index=False)


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_relative_change_and_noise_closed_forms() -> None:
    assert relative_change(10.0, 13.0) == pytest.approx(0.3)
    assert relative_change(-100.0, -130.0) == pytest.approx(-0.3)
    assert relative_change(0.0, 0.0) == 0.0 and relative_change(0.0, 1.0) == float("inf")
    # 2 * sqrt((var_a + var_b) / 2) with var = 1 and 4 (ddof=1).
    assert seed_noise(np.array([0.0, 2.0 ** 0.5]), np.array([0.0, 8.0 ** 0.5]), None) == \
        pytest.approx(2 * np.sqrt((1 + 4) / 2))
    assert seed_noise(np.array([1.0]), np.array([2.0]), 0.7) == 0.7
    assert seed_noise(np.array([1.0]), np.array([2.0]), None) is None


@pytest.mark.parametrize(("metric", "base", "cur", "verdict"), [
    ("fid_proxy", [10, 10.1, 9.9], [13, 13.1, 12.9], "regression"),   # 30% worse, tiny noise
    ("fid_proxy", [10, 10.1, 9.9], [7, 7.1, 6.9], "improvement"),
    ("fid_proxy", [10, 10.1, 9.9], [10.5, 10.6, 10.4], "unchanged"),  # 5% < 10% threshold
    ("fid_proxy", [5, 10, 15], [8, 13, 18], "unchanged"),             # 30% but inside noise
    ("elbo_nats", [-100, -101, -99], [-130, -131, -129], "regression"),  # higher is better
    ("speedup", [2.0, 2.0], [1.0, 1.0], "regression"),               # zero noise, real change
    ("size_file_bytes", [100.0], [110.0], "regression"),              # one seed: threshold
])
def test_judge_rule(metric: str, base: list, cur: list, verdict: str) -> None:
    got, *_ = judge(metric, np.array(base, float), np.array(cur, float),
                    DEFAULT_THRESHOLDS[metric])
    assert got == verdict


def test_judge_one_seed_uses_the_floor_as_noise() -> None:
    base, cur = np.array([10.0]), np.array([12.0])  # +20%: over the 10% threshold
    assert judge("fid_proxy", base, cur, 0.1, floor=3.0)[0] == "unchanged"
    assert judge("fid_proxy", base, cur, 0.1, floor=1.0)[0] == "regression"


def test_judge_latency_needs_factor_and_significance() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(1.0, 0.02, 200)
    assert judge("latency_p50_ms", a, a, 0.2, raw=(a, 2 * a))[0] == "regression"
    assert judge("latency_p50_ms", a, a, 0.2, raw=(a, 1.05 * a))[0] == "unchanged"  # factor
    few = rng.normal(1.0, 0.02, 2)  # n=2 each: no p-value below alpha is possible
    assert judge("latency_p50_ms", few, few, 0.2, raw=(few, 3 * few))[0] == "unchanged"


def test_self_comparison_exits_0(results_dir: Path, capsys) -> None:
    code, out, _ = run_cli(["compare", str(results_dir), str(results_dir)], capsys)
    assert code == 0 and "clean" in out
    report = compare_runs(load_results_dir(results_dir), load_results_dir(results_dir))
    metrics = {c.metric for c in report.comparisons}
    assert {"fid_proxy", "elbo_nats", "size_file_bytes", "latency_p50_ms", "speedup"} <= metrics
    assert all(c.verdict == "unchanged" for c in report.comparisons)


def test_fid_30_percent_worse_exits_1_and_names_the_cell(results_dir: Path, tmp_path: Path,
                                                         capsys) -> None:
    current = _copy(results_dir, tmp_path / "worse")

    def worse(frame: pd.DataFrame) -> None:
        cells = frame["cell_id"].str.startswith("gan3s")  # gan quant 8-bit, every seed
        frame.loc[cells, "fid_proxy"] = frame.loc[cells, "fid_proxy"].astype(float) * 1.3

    _edit(current, schema.RESULTS_FILE, worse)
    md, js = tmp_path / "c.md", tmp_path / "c.json"
    code, out, _ = run_cli(["compare", str(results_dir), str(current), "--markdown", str(md),
                            "--json", str(js)], capsys)
    assert code == 1
    regressions = [c for c in json.loads(js.read_text())["comparisons"]
                   if c["verdict"] == "regression"]
    assert [(r["cell"], r["metric"]) for r in regressions] == [
        ("gan/quant [8-bit, channel, naive] (mnist5k)", "fid_proxy")]
    assert regressions[0]["change"] == pytest.approx(0.3)
    assert "gan/quant [8-bit, channel, naive]" in md.read_text()
    # A looser threshold for that metric makes the same change acceptable.
    code, _, _ = run_cli(["compare", str(results_dir), str(current), "--threshold",
                          "fid_proxy=0.5"], capsys)
    assert code == 0


def test_noise_level_latency_changes_exit_0(results_dir: Path, tmp_path: Path, capsys) -> None:
    current = _copy(results_dir, tmp_path / "noisy")
    rng = np.random.default_rng(99)

    def resample(frame: pd.DataFrame) -> None:  # same distribution per group, new draws
        for _, index in frame.groupby(["cell_id", "device", "batch_size"]).groups.items():
            values = frame.loc[index, "seconds_per_call"].astype(float)
            frame.loc[index, "seconds_per_call"] = rng.normal(values.mean(), values.std(),
                                                              len(values))

    def jitter(frame: pd.DataFrame) -> None:
        for column in ("latency_p50_ms", "speedup", "throughput_sps"):
            frame[column] = frame[column].astype(float) * rng.uniform(0.97, 1.03, len(frame))

    _edit(current, schema.LATENCY_SAMPLES_FILE, resample)
    _edit(current, schema.LATENCY_FILE, jitter)
    code, out, _ = run_cli(["compare", str(results_dir), str(current)], capsys)
    assert code == 0, out


def test_2x_slower_latency_exits_1(results_dir: Path, tmp_path: Path, capsys) -> None:
    current = _copy(results_dir, tmp_path / "slow")

    def slower(frame: pd.DataFrame) -> None:
        cells = frame["cell_id"].str.startswith("vae1s") & (frame["batch_size"] == 64)
        frame.loc[cells, "seconds_per_call"] = frame.loc[cells, "seconds_per_call"] * 2

    _edit(current, schema.LATENCY_SAMPLES_FILE, slower)
    report = compare_runs(load_results_dir(results_dir), load_results_dir(current))
    assert [(c.cell, c.metric, c.batch_size) for c in report.regressions] == [
        ("vae/prune_magnitude [global, sparsity 0.5] (mnist5k)", "latency_p50_ms", 64)]
    assert report.regressions[0].p_value < 1e-10
    assert run_cli(["compare", str(results_dir), str(current)], capsys)[0] == 1


def test_status_changes_and_one_sided_cells_are_listed(results_dir: Path, tmp_path: Path,
                                                       capsys) -> None:
    current = _copy(results_dir, tmp_path / "changed")

    def change(frame: pd.DataFrame) -> pd.DataFrame:
        failed = frame["cell_id"] == "gan2s0"  # a failed cell has no execution path
        frame.loc[failed, ["status", "error", "execution"]] = ["failed", "timeout", np.nan]
        return frame[~frame["cell_id"].str.startswith("gan4")]

    _edit(current, schema.RESULTS_FILE, change)
    report = compare_runs(load_results_dir(results_dir), load_results_dir(current))
    assert report.only_baseline == ["gan/quant [4-bit, channel, naive] (mnist5k)"]
    assert report.only_current == []
    assert [(s["cell"], s["seed"], s["current"]) for s in report.status_changes] == [
        ("gan/prune_magnitude [global, sparsity 0.9] (mnist5k)", "0", "failed")]
    code, out, _ = run_cli(["compare", str(results_dir), str(current)], capsys)
    assert code == 1 and "Only in baseline" in out and "ok -> failed (timeout)" in out


def _missing_dir(d: Path) -> Path:
    return d.parent / "nope"


def _missing_results(d: Path) -> Path:
    (d / schema.RESULTS_FILE).unlink()
    return d


def _wrong_schema(d: Path) -> Path:
    run = json.loads((d / schema.RUN_FILE).read_text())
    (d / schema.RUN_FILE).write_text(json.dumps({**run, "schema_version": 999}))
    return d


def _missing_column(d: Path) -> Path:
    _edit(d, schema.RESULTS_FILE, lambda f: f.drop(columns=["fid_proxy"]))
    return d


@pytest.mark.parametrize("breaker", [_missing_dir, _missing_results, _wrong_schema,
                                     _missing_column])
def test_bad_input_exits_2_with_one_line(results_dir: Path, tmp_path: Path, capsys,
                                         breaker) -> None:
    broken = breaker(_copy(results_dir, tmp_path / "broken"))
    code, _, err = run_cli(["compare", str(results_dir), str(broken)], capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and str(broken.name) in err


@pytest.mark.parametrize("item", ["fid=0.1", "fid_proxy=abc", "fid_proxy=-1"])
def test_bad_threshold(item: str) -> None:
    with pytest.raises(InputError, match="--threshold"):
        parse_thresholds([item])
