"""compare: verdicts that tell change from noise on synthetic runs; exit codes; named cells;
like with like; verdict-first report; bad input."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from synthetic_results import run_cli, write_results_dir

from bench.compare.cli import compare_runs, parse_thresholds
from bench.compare.report import to_markdown
from bench.errors import InputError
from bench.results import schema
from bench.results.loading import load_results_dir

GAN_8BIT = "gan/quant [8-bit, channel, naive] (mnist5k)"
VAE_PRUNE = "vae/prune_magnitude [global, sparsity 0.5] (mnist5k)"
MACHINE_METRICS = {"latency_p50_ms", "speedup", "throughput_sps", "peak_mem_bytes"}


def _edit(directory: Path, name: str, edit) -> None:
    path = directory / name
    frame = pd.read_csv(path)
    edited = edit(frame)  # edits in place, or returns a new frame
    (frame if edited is None else edited).to_csv(path, index=False)


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _scale(directory: Path, metric: str, factor: float, prefix: str) -> None:
    """Multiply a metric and its interval on the cells whose id starts with prefix."""
    def scale(frame: pd.DataFrame) -> None:
        rows = frame["cell_id"].str.startswith(prefix)
        for column in (metric, metric + "_ci_low", metric + "_ci_high"):
            frame.loc[rows, column] = frame.loc[rows, column].astype(float) * factor
    _edit(directory, schema.RESULTS_FILE, scale)


def _run_json(directory: Path, **changes) -> None:
    path = directory / schema.RUN_FILE
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


def _slower(directory: Path, prefix: str, batch: int | None, factor: float,
            speedup: bool = True) -> None:
    """The cells' timings `factor` times slower: raw blocks and p50, and (speedup=True, what a
    slower variant does) its speedup against the same-process baseline divided by factor;
    speedup=False is a slower process (between-run drift), which the speedup cancels."""
    def rows_of(frame: pd.DataFrame) -> pd.Series:
        rows = frame["cell_id"].str.startswith(prefix)
        return rows if batch is None else rows & (frame["batch_size"] == batch)

    def shift(frame: pd.DataFrame) -> None:
        frame.loc[rows_of(frame), "seconds_per_call"] *= factor

    def shift_rows(frame: pd.DataFrame) -> None:
        rows = rows_of(frame)
        frame.loc[rows, "latency_p50_ms"] *= factor
        frame.loc[rows, "throughput_sps"] /= factor
        if speedup:
            frame.loc[rows, "speedup"] /= factor
    _edit(directory, schema.LATENCY_SAMPLES_FILE, shift)
    _edit(directory, schema.LATENCY_FILE, shift_rows)


def _compare(base: Path, cur: Path):
    return compare_runs(load_results_dir(base), load_results_dir(cur))


def test_identical_runs_same_machine_are_clean(results_dir: Path, tmp_path: Path,
                                               capsys) -> None:
    again = write_results_dir(tmp_path / "again")  # same code, same seeds
    report = _compare(results_dir, again)
    assert report.regressions == [] and report.exit_code == 0
    assert {"fid_proxy", "elbo_nats", "recall", "size_file_bytes"} | MACHINE_METRICS <= {
        c.metric for c in report.comparisons}
    assert all(c.verdict == "unchanged" for c in report.comparisons)
    code, out, _ = run_cli(["compare", str(results_dir), str(again)], capsys)
    assert code == 0 and out.splitlines()[0].startswith("## genbench compare: CLEAN")


def test_other_machine_skips_timings_keeps_quality(results_dir: Path, tmp_path: Path) -> None:
    same = _copy(results_dir, tmp_path / "same")
    _scale(same, "fid_proxy", 1.5, "gan3")
    other = _copy(same, tmp_path / "other")
    _run_json(other, machine={"id": "0123456789ab"})
    on_same, on_other = _compare(results_dir, same), _compare(results_dir, other)
    assert not any(c.metric in MACHINE_METRICS for c in on_other.comparisons)
    quality = [(c.cell, c.metric, c.verdict) for c in on_same.comparisons
               if c.metric not in MACHINE_METRICS]
    assert quality == [(c.cell, c.metric, c.verdict) for c in on_other.comparisons]
    markdown = to_markdown(on_other)
    assert markdown.count("different machines") == 1
    assert "not compared: latency_p50_ms" in "\n".join(markdown.splitlines()[:4])


def test_fid_50_percent_worse_on_one_cell_is_the_only_regression(results_dir: Path,
                                                                 tmp_path: Path, capsys) -> None:
    current = _copy(results_dir, tmp_path / "worse")
    _scale(current, "fid_proxy", 1.5, "gan3")  # gan quant 8-bit, every seed
    md, js = tmp_path / "c.md", tmp_path / "c.json"
    code, out, _ = run_cli(["compare", str(results_dir), str(current), "--markdown", str(md),
                            "--json", str(js)], capsys)
    assert code == 1
    payload = json.loads(js.read_text())
    assert [(r["cell"], r["metric"]) for r in payload["regressions"]] == [(GAN_8BIT, "fid_proxy")]
    assert payload["regressions"][0]["change"] == pytest.approx(0.5)
    assert payload["regressions"][0]["rule"] == "intervals"
    assert list(payload)[:2] == ["verdict", "exit_code"]
    assert payload["verdict"].startswith("REGRESSION: 1 regression(s) in 1 cell(s)")
    assert GAN_8BIT in md.read_text()
    # A looser threshold for that metric makes the same change acceptable.
    code, _, _ = run_cli(["compare", str(results_dir), str(current), "--threshold",
                          "fid_proxy=0.6"], capsys)
    assert code == 0


def test_fid_2_percent_worse_is_not_a_regression(results_dir: Path, tmp_path: Path) -> None:
    current = _copy(results_dir, tmp_path / "slightly")
    _scale(current, "fid_proxy", 1.02, "gan3")
    assert _compare(results_dir, current).regressions == []


def test_recall_near_zero_needs_the_absolute_tolerance(results_dir: Path,
                                                       tmp_path: Path) -> None:
    base, current = _copy(results_dir, tmp_path / "b"), _copy(results_dir, tmp_path / "c")
    _scale(base, "recall", 0.008 / 0.8, "gan0")  # baseline recall 0.8 -> 0.008
    _scale(current, "recall", 0.007 / 0.8, "gan0")  # -12.5%, intervals disjoint
    report = _compare(base, current)
    recall = [c for c in report.comparisons if c.metric == "recall" and c.cell.startswith("gan/b")]
    assert recall[0].change == pytest.approx(-0.125) and recall[0].verdict == "unchanged"
    assert report.regressions == []


def test_one_seed_kid_floor_is_not_a_noise_band(tmp_path: Path) -> None:
    # One seed, no intervals (an old run), KID's real-vs-real floor negative: the old rule
    # |diff| > floor always held and flagged a +20% wobble that the floor's spread covers.
    runs = [write_results_dir(tmp_path / name, seeds=[0]) for name in ("b", "c")]
    for run in runs:
        _run_json(run, floors={"kid_proxy": -3.39}, floors_spread={"kid_proxy": 1.2})
        _edit(run, schema.RESULTS_FILE, lambda f: f.assign(
            **{c: np.nan for c in schema.INTERVAL_COLUMNS}))
    _edit(runs[0], schema.RESULTS_FILE, lambda f: f.assign(kid_proxy=1.0))
    _edit(runs[1], schema.RESULTS_FILE, lambda f: f.assign(kid_proxy=1.2))
    report = _compare(*runs)
    kid = [c for c in report.comparisons if c.metric == "kid_proxy"]
    assert kid and all(c.rule == "floor" and c.verdict == "unchanged" for c in kid)
    assert kid[0].noise == pytest.approx(2 * 2 ** 0.5 * 1.2)
    _edit(runs[1], schema.RESULTS_FILE, lambda f: f.assign(kid_proxy=6.0))
    assert {c.metric for c in _compare(*runs).regressions} == {"kid_proxy"}


def test_30_percent_slower_stable_row_regresses(results_dir: Path, tmp_path: Path) -> None:
    current = _copy(results_dir, tmp_path / "slow")
    _slower(current, "vae1", 64, 1.3)
    report = _compare(results_dir, current)
    regressed = {(c.cell, c.metric, c.batch_size) for c in report.regressions}
    assert regressed == {(VAE_PRUNE, m, 64) for m in ("latency_p50_ms", "throughput_sps",
                                                        "speedup")}
    latency = next(c for c in report.regressions if c.metric == "latency_p50_ms")
    assert latency.change == pytest.approx(0.3) and latency.ratio_ci[0] > 1.0
    assert latency.rule == "derived" and report.exit_code == 1
    speedup = next(c for c in report.regressions if c.metric == "speedup")
    assert speedup.rule == "speedup-noise" and speedup.change == pytest.approx(1 / 1.3 - 1)


def test_a_slower_process_is_drift_not_a_regression(results_dir: Path, tmp_path: Path) -> None:
    # Identical code, the second run's process twice as slow on every row (what two runs on
    # the reference machine showed: raw p50 up to 2.2x apart, interleaved speedups 1.00 vs
    # 0.96): the block intervals exclude 1, the speedups are unchanged, nothing regresses.
    current = _copy(results_dir, tmp_path / "drift")
    _slower(current, "", None, 2.0, speedup=False)
    report = _compare(results_dir, current)
    assert report.regressions == [] and report.exit_code == 0
    latency = [c for c in report.comparisons if c.metric == "latency_p50_ms"]
    assert latency and all(c.ratio_ci[0] > 1.0 and c.verdict == "unchanged" for c in latency)
    assert any("between-run drift" in note for note in report.notes)


def test_unstable_row_is_listed_not_judged(make_results_dir, tmp_path: Path) -> None:
    base = make_results_dir("b", unstable=True)
    current = _copy(base, tmp_path / "c")
    _slower(current, "gan4", 64, 1.3)  # gan 4-bit batch 64: unstable in the last seed
    report = _compare(base, current)
    assert report.regressions == []
    assert report.unstable == [{"cell": "gan/quant [4-bit, channel, naive] (mnist5k)",
                                "device": "cpu", "batch_size": 64,
                                "side": "baseline and current"}]
    assert not any(c.cell.startswith("gan/quant [4-bit") and c.batch_size == 64
                   for c in report.comparisons)
    assert "Unstable latency rows, not judged (1)" in to_markdown(report)


def test_throughput_follows_its_latency(results_dir: Path, tmp_path: Path) -> None:
    # Throughput doctored alone (its timings unchanged): judged with its source, not flagged.
    current = _copy(results_dir, tmp_path / "tp")
    _edit(current, schema.LATENCY_FILE, lambda f: f.assign(
        throughput_sps=f["throughput_sps"] * 0.5))
    report = _compare(results_dir, current)
    assert report.regressions == []
    assert {c.rule for c in report.comparisons if c.metric == "throughput_sps"} == {"derived"}


def test_noise_level_latency_changes_exit_0(results_dir: Path, tmp_path: Path, capsys) -> None:
    current = _copy(results_dir, tmp_path / "noisy")
    rng = np.random.default_rng(99)

    def resample(frame: pd.DataFrame) -> None:  # same distribution per group, new draws
        for _, index in frame.groupby(["cell_id", "device", "batch_size"]).groups.items():
            values = frame.loc[index, "seconds_per_call"].astype(float)
            frame.loc[index, "seconds_per_call"] = rng.normal(values.mean(), values.std(),
                                                              len(values))

    _edit(current, schema.LATENCY_SAMPLES_FILE, resample)
    code, out, _ = run_cli(["compare", str(results_dir), str(current)], capsys)
    assert code == 0, out


def test_different_eval_settings_refuse_with_one_line(results_dir: Path, tmp_path: Path,
                                                      capsys) -> None:
    current = _copy(results_dir, tmp_path / "other_eval")
    config = json.loads((current / schema.RUN_FILE).read_text())["config"]
    _run_json(current, config={**config, "eval": {"n_samples": 2000}})
    code, out, err = run_cli(["compare", str(results_dir), str(current)], capsys)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1
    assert "eval.n_samples: 1000 vs 2000" in err and "--allow-settings-mismatch" in err
    code, out, _ = run_cli(["compare", str(results_dir), str(current),
                            "--allow-settings-mismatch"], capsys)
    assert code == 0
    assert "settings differ: eval.n_samples: 1000 vs 2000" in "\n".join(out.splitlines()[:3])


def test_other_feature_network_refuses(results_dir: Path, tmp_path: Path, capsys) -> None:
    current = _copy(results_dir, tmp_path / "other_net")
    _run_json(current, feature_net={"id": "ffffffffffff"})
    code, _, err = run_cli(["compare", str(results_dir), str(current)], capsys)
    assert code == 2 and "feature_net: lenet vs ffffffffffff" in err


def test_different_seeds_compare_the_common_ones(results_dir: Path, tmp_path: Path) -> None:
    fewer = write_results_dir(tmp_path / "fewer", seeds=[0, 1], failed=False)
    report = _compare(results_dir, fewer)
    assert report.exit_code == 0 and report.regressions == []
    assert report.notes[0] == ("seeds differ (baseline [0, 1, 2], current [0, 1]): compared "
                               "seeds [0, 1] only")


def test_report_leads_with_the_verdict_then_in_order(make_results_dir, tmp_path: Path) -> None:
    base = make_results_dir("b", unstable=True)
    current = _copy(base, tmp_path / "c")
    _scale(current, "fid_proxy", 1.5, "gan3")
    _scale(current, "fid_proxy", 1.2, "vae3")  # a milder regression: listed second
    _scale(current, "fid_proxy", 0.5, "vae2")
    _edit(current, schema.RESULTS_FILE, lambda f: f[~f["cell_id"].str.startswith("gan1")])
    lines = to_markdown(_compare(base, current)).splitlines()
    assert lines[0].startswith("## genbench compare: REGRESSION: 2 regression(s) in 2 cell(s)")
    headings = [line for line in lines if line.startswith("### ")]
    assert [h.split(" (")[0] for h in headings] == [
        "### Regressions", "### Improvements", "### Within noise",
        "### Unstable latency rows, not judged", "### Only in baseline"]
    rows = [line for line in lines if line.startswith("| ") and "fid_proxy" in line]
    assert GAN_8BIT in rows[0] and "vae/quant [8-bit" in rows[1]  # worst first


def test_status_changes_and_one_sided_cells_are_listed(results_dir: Path, tmp_path: Path,
                                                       capsys) -> None:
    current = _copy(results_dir, tmp_path / "changed")

    def change(frame: pd.DataFrame) -> pd.DataFrame:
        failed = frame["cell_id"] == "gan2s0"  # a failed cell has no execution path
        frame.loc[failed, ["status", "error", "execution"]] = ["failed", "timeout", np.nan]
        return frame[~frame["cell_id"].str.startswith("gan4")]

    _edit(current, schema.RESULTS_FILE, change)
    report = _compare(results_dir, current)
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
    _run_json(d, schema_version=999)
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


@pytest.mark.parametrize("argv", [["compare", "only_one"], ["compare", "a", "b", "--history",
                                                            "store.csv"]])
def test_wrong_number_of_directories(argv: list[str], capsys) -> None:
    code, _, err = run_cli(argv, capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("item", ["fid=0.1", "fid_proxy=abc", "fid_proxy=-1"])
def test_bad_threshold(item: str) -> None:
    with pytest.raises(InputError, match="--threshold"):
        parse_thresholds([item])


def test_bad_abs_tol(results_dir: Path, capsys) -> None:
    code, _, err = run_cli(["compare", str(results_dir), str(results_dir), "--abs-tol",
                            "fid_proxy=1"], capsys)
    assert code == 2 and "--abs-tol" in err and "recall" in err


def test_settings_differences_names_each_setting() -> None:
    from bench.compare.settings import settings_differences

    base = {"config": {"dataset": "mnist5k", "eval": {"n_samples": 1000, "iwae_k": 16},
                       "train": "default", "seeds": [0], "families": {"gan": {}, "vae": {}}},
            "feature_net": {"id": "aaaa"}}
    same_but_seeds = {**base, "config": {**base["config"], "seeds": [0, 1, 2]}}
    assert settings_differences(base, same_but_seeds) == []
    other = {"config": {**base["config"], "eval": {"n_samples": 1000, "iwae_k": 64},
                        "families": {"gan": {"epochs": 3}, "rvae": {}}},
             "feature_net": {"id": "bbbb"}}
    assert settings_differences(base, other) == ["eval.iwae_k: 16 vs 64",
                                                 "families.gan.epochs: None vs 3",
                                                 "feature_net: aaaa vs bbbb"]
    # A run that did not record its feature network is not refused for it.
    assert settings_differences(base, {**base, "feature_net": None}) == []
