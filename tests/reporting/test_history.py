"""History: runs of different machines, presets and run names stay apart; idempotent appends;
latency rows per device and batch with their median interval; regressions by compare's rule."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from synthetic_results import BATCHES, UNSTABLE, run_cli

from bench.compare.latency_tests import median_ci
from bench.errors import InputError
from bench.history.store import (
    HISTORY_COLUMNS,
    KEY_COLUMNS,
    append_run,
    last_run,
    read_store,
    run_block,
)
from bench.history.trends import detect_regressions, run_means
from bench.results import schema
from bench.results.environment import machine_id

MACHINE_A = machine_id("AMD EPYC", ["avx", "avx2"], 2, None)
MACHINE_B = machine_id("Intel Xeon", ["avx", "avx2", "avx512f"], 2, None)


def retag(directory: Path, *, machine: str = MACHINE_A, preset: str = "smoke",
          date: str = "2025-01-01T00:00:00Z", commit: str = "c0") -> Path:
    """Give a synthetic run a machine id, preset (= config name), date and commit."""
    path = directory / schema.RUN_FILE
    run = json.loads(path.read_text())
    run.update(machine={"id": machine}, preset=preset, finished_at=date, git_commit=commit)
    run["config"]["name"] = preset
    path.write_text(json.dumps(run))
    return directory


def scale(directory: Path, metric: str, factor: float, cell_prefix: str) -> None:
    """Multiply a metric and its interval on the cells whose id starts with cell_prefix."""
    results = pd.read_csv(directory / schema.RESULTS_FILE)
    rows = results["cell_id"].str.startswith(cell_prefix)
    for column in (metric, metric + "_ci_low", metric + "_ci_high"):
        results.loc[rows, column] *= factor
    results.to_csv(directory / schema.RESULTS_FILE, index=False)


def test_append_is_idempotent_and_tidy(make_results_dir, tmp_path: Path, capsys) -> None:
    run = retag(make_results_dir("run", unstable=True))
    store = tmp_path / "history.csv"
    assert run_cli(["history", "append", str(run), "--store", str(store)], capsys)[0] == 0
    first = store.read_bytes()
    run_cli(["history", "append", str(run), "--store", str(store)], capsys)
    assert store.read_bytes() == first
    assert not list(tmp_path.glob(".history.csv.*"))  # no temp file left behind
    history = read_store(store)
    assert list(history.columns) == HISTORY_COLUMNS
    assert set(history["machine_id"]) == {MACHINE_A} and set(history["preset"]) == {"smoke"}
    ok = pd.read_csv(run / schema.RESULTS_FILE).query("status == 'ok'")
    fid = history[history["metric"] == "fid_proxy"]
    assert len(fid) == len(ok) and set(fid["device"]) == {""} and set(fid["batch_size"]) == {0}
    assert np.allclose(fid["ci_high"] / fid["value"], 1.02)  # synthetic CI_REL
    # Latency: every batch size, not only the largest; the unstable row kept and marked.
    p50 = history[history["metric"] == "latency_p50_ms"]
    assert sorted(set(p50["batch_size"])) == BATCHES and len(p50) == len(ok) * len(BATCHES)
    assert (p50["status"] == schema.STATUS_UNSTABLE).sum() == 1
    unstable = p50[p50["status"] == schema.STATUS_UNSTABLE].iloc[0]
    assert (unstable["family"], int(unstable["batch_size"])) == (UNSTABLE[0], UNSTABLE[2])
    # p50's interval is median_ci over the row's timing blocks, in ms.
    samples = pd.read_csv(run / schema.LATENCY_SAMPLES_FILE)
    cell = ok.iloc[3]
    blocks = samples[(samples["cell_id"] == cell["cell_id"]) & (samples["batch_size"] == 64)]
    row = p50[(p50["pipeline_json"] == cell["pipeline_json"]) & (p50["seed"] == cell["seed"])
              & (p50["family"] == cell["family"]) & (p50["batch_size"] == 64)]
    low, high = median_ci(blocks["seconds_per_call"].to_numpy())
    assert (row["ci_low"].item(), row["ci_high"].item()) == pytest.approx((1e3 * low, 1e3 * high))
    # Another date keeps the first block as it was.
    append_run(run, store, date="2025-01-02T00:00:00Z")
    assert read_store(store).groupby("run_date").size().tolist() == [len(history)] * 2


def test_two_machines_and_two_presets_stay_apart(make_results_dir, tmp_path: Path) -> None:
    store = tmp_path / "history.csv"
    runs = {(m, p): retag(make_results_dir(f"{m}{p}"), machine=m, preset=p)
            for m in (MACHINE_A, MACHINE_B) for p in ("smoke", "default")}
    for run in runs.values():  # same date and commit: only machine and run name tell them apart
        append_run(run, store)
    history = read_store(store)
    assert history.groupby(["machine_id", "run_name", "preset"]).ngroups == 4
    later = retag(make_results_dir("later"), machine=MACHINE_B, preset="smoke",
                  date="2025-01-05T00:00:00Z", commit="c5")
    append_run(later, store)
    found = last_run(store, machine_id=MACHINE_B, preset="smoke", run_name="smoke")
    assert set(found["commit"]) == {"c5"} and set(found["machine_id"]) == {MACHINE_B}
    assert found.equals(run_block(later))
    earlier = last_run(store, machine_id=MACHINE_B, preset="smoke", run_name="smoke",
                       before="2025-01-05T00:00:00Z")
    assert set(earlier["commit"]) == {"c0"}
    found = last_run(store, machine_id=MACHINE_A, preset="default", run_name="default")
    assert set(found["machine_id"]) == {MACHINE_A} and set(found["preset"]) == {"default"}
    assert last_run(store, machine_id="000000000000", preset="smoke", run_name="smoke") is None


def test_runs_of_other_presets_are_never_judged_against_each_other(make_results_dir,
                                                                   tmp_path: Path) -> None:
    """The issue's 1147 -> 186 -> 1153: smoke and default appended in turn are two series."""
    store = tmp_path / "history.csv"
    small = make_results_dir("small")
    scale(small, "fid_proxy", 6.0, "")
    for day, (run, preset) in enumerate([(make_results_dir("d1"), "default"), (small, "smoke"),
                                         (make_results_dir("d3"), "default")]):
        append_run(retag(run, preset=preset, date=f"2025-01-0{day + 1}", commit=f"c{day}"), store)
    assert detect_regressions(read_store(store), "fid_proxy").empty


def test_regressions_follow_compare_rule(make_results_dir, tmp_path: Path) -> None:
    store = tmp_path / "history.csv"
    worse, slight = make_results_dir("worse"), make_results_dir("slight")
    scale(worse, "fid_proxy", 1.5, "vae1s")  # +50% on one cell (every seed)
    scale(slight, "fid_proxy", 1.02, "vae2s")  # +2%: within the threshold
    other = make_results_dir("other")  # another machine at +50% everywhere: its own series
    scale(other, "fid_proxy", 1.5, "")
    for day, (run, machine) in enumerate([(make_results_dir("good"), MACHINE_A),
                                          (other, MACHINE_B), (worse, MACHINE_A),
                                          (slight, MACHINE_A)]):
        append_run(retag(run, machine=machine, date=f"2025-01-0{day + 1}", commit=f"c{day}"),
                   store)
    found = detect_regressions(read_store(store), "fid_proxy")
    assert found[["cell", "commit", "machine_id"]].values.tolist() == [
        ["vae/prune_magnitude [global, sparsity 0.5] (mnist5k)", "c2", MACHINE_A]]
    assert found["change"].iloc[0] == pytest.approx(0.5)
    # worse -> slight is an improvement on vae1 and +2% on vae2: nothing more.
    means = run_means(read_store(store), "fid_proxy")
    assert set(means.groupby(["machine_id"])["run_date"].nunique()) == {1, 3}


def slow_down(directory: Path, cell_id: str, batch: int, factor: float) -> None:
    """One latency row `factor` times slower: its p50 and timing blocks multiplied, its speedup
    against the same-process baseline divided (what a slower variant shows)."""
    latency = pd.read_csv(directory / schema.LATENCY_FILE)
    row = (latency["cell_id"] == cell_id) & (latency["batch_size"] == batch)
    latency.loc[row, "latency_p50_ms"] *= factor
    latency.loc[row, "speedup"] /= factor
    latency.to_csv(directory / schema.LATENCY_FILE, index=False)
    samples = pd.read_csv(directory / schema.LATENCY_SAMPLES_FILE)
    row = (samples["cell_id"] == cell_id) & (samples["batch_size"] == batch)
    samples.loc[row, "seconds_per_call"] *= factor
    samples.to_csv(directory / schema.LATENCY_SAMPLES_FILE, index=False)


def test_latency_regression_on_stable_rows_only(make_results_dir, tmp_path: Path) -> None:
    """+30% on a stable row: regression; 3x on the unstable row: drawn, never judged."""
    store = tmp_path / "history.csv"
    family, index, batch = UNSTABLE
    append_run(retag(make_results_dir("a", seeds=[2])), store)
    slow = make_results_dir("b", seeds=[2], unstable=True)
    slow_down(slow, f"{family}{index}s2", batch, 3.0)
    slow_down(slow, "vae3s2", 64, 1.3)
    append_run(retag(slow, date="2025-01-02", commit="c1"), store)
    history = read_store(store)
    found = detect_regressions(history, "latency_p50_ms")
    assert found[["cell", "batch_size"]].values.tolist() == [
        ["vae/quant [8-bit, channel, naive] (mnist5k)", 64]]
    assert found["change"].iloc[0] == pytest.approx(0.3)
    means = run_means(history, "latency_p50_ms")
    shaky = means[means["unstable"]]
    assert len(shaky) == 1 and shaky["mean"].iloc[0] > 2.9 * means["mean"][
        (means["family"] == family) & (means["method"] == "quant") & (means["bits"] == "4")
        & (means["batch_size"] == batch) & ~means["unstable"]].iloc[0]


def test_plots_one_panel_per_family_one_line_per_machine(make_results_dir,
                                                          tmp_path: Path) -> None:
    from bench.plots.history import metric_figure

    store = tmp_path / "history.csv"
    for day, machine in enumerate([MACHINE_A, MACHINE_B, MACHINE_A]):
        run = make_results_dir(f"r{day}")
        if day == 2:
            scale(run, "fid_proxy", 1.5, "vae1s")
        append_run(retag(run, machine=machine, date=f"2025-01-0{day + 1}", commit=f"c{day}"),
                   store)
    history = read_store(store)
    figure = metric_figure(run_means(history, "fid_proxy"),
                           detect_regressions(history, "fid_proxy"), "fid_proxy")
    assert [ax.get_title().split(":")[0] for ax in figure.axes] == ["gan", "vae"]
    settings = history.drop_duplicates(KEY_COLUMNS).groupby("family").size()
    for ax in figure.axes:  # one errorbar line per (setting, machine), intervals drawn
        family = ax.get_title().split(":")[0]
        lines = [c for c in ax.containers if c.has_yerr]
        assert len(lines) == 2 * settings[family]
        assert {c.get_label().rsplit(" @ ", 1)[1] for c in lines} == {MACHINE_A, MACHINE_B}
        machine_a = [c for c in lines if c.get_label().endswith(MACHINE_A)][0]
        assert list(machine_a.lines[0].get_xdata()) == [0, 2]  # runs 1 and 3, not run 2
        assert ax.get_legend() is None  # one legend, outside the panels
        marks = [c for c in ax.collections if c.get_offsets().shape[0]
                 and c.get_edgecolor()[0].tolist() == [1.0, 0.0, 0.0, 1.0]]
        regressed = [list(p) for m in marks for p in m.get_offsets()]
        assert regressed == ([[2, pytest.approx(1.5 * 31.5)]] if family == "vae" else [])
    assert len(figure.legends) == 1
    latency = metric_figure(run_means(history, "latency_p50_ms"),
                            detect_regressions(history, "latency_p50_ms"), "latency_p50_ms")
    assert len(latency.axes) == 2 * len(BATCHES)  # families x (device, batch)


def test_plot_cli_writes_one_file_per_run_name(make_results_dir, tmp_path: Path,
                                               capsys) -> None:
    store = tmp_path / "history.csv"
    for preset in ("smoke", "default"):
        append_run(retag(make_results_dir(preset), preset=preset), store)
    out = tmp_path / "trend"
    code, printed, _ = run_cli(["history", "plot", "--store", str(store), "--out", str(out)],
                               capsys)
    assert code == 0
    names = sorted(p.name for p in out.glob("*.png"))
    assert "history_smoke_fid_proxy.png" in names and "history_default_fid_proxy.png" in names
    assert len(names) == 2 * 5  # fid, elbo, latency p50, speedup, size per run name
    assert (out / "history_smoke_fid_proxy.png").read_bytes()[:4] == b"\x89PNG"


def test_bad_date_and_bad_store(results_dir: Path, tmp_path: Path, capsys) -> None:
    with pytest.raises(InputError, match="ISO 8601"):
        append_run(results_dir, tmp_path / "h.csv", date="yesterday")
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    code, _, err = run_cli(["history", "plot", "--store", str(bad), "--out", str(tmp_path)],
                           capsys)
    assert code == 2 and "expected" in err
    old = tmp_path / "old.csv"  # a store written before runs were keyed by machine
    old.write_text(",".join(["run_date", "commit", *KEY_COLUMNS, "seed", "metric", "value"])
                   + "\n")
    with pytest.raises(InputError, match="rebuild it") as error:
        read_store(old)
    assert "\n" not in str(error.value)


def test_few_blocks_give_unbounded_intervals(make_results_dir) -> None:
    """With <= 5 timing blocks no order-statistic interval reaches 95%: p50's is (-inf, inf)
    and throughput's, batch / p50, is [0, inf) (never an inverted interval)."""
    run = retag(make_results_dir("few", seeds=[0]))
    samples = pd.read_csv(run / schema.LATENCY_SAMPLES_FILE)
    keep = ((samples["cell_id"] != "gan0s0") | (samples["batch_size"] != 64)
            | (samples["block"] < 4))
    samples[keep].to_csv(run / schema.LATENCY_SAMPLES_FILE, index=False)
    block = run_block(run)
    rows = block[(block["pipeline_json"] == '[{"method": "baseline"}]')
                 & (block["family"] == "gan")].set_index(["metric", "batch_size"])
    assert tuple(rows.loc[("latency_p50_ms", 64), ["ci_low", "ci_high"]]) == (-np.inf, np.inf)
    assert tuple(rows.loc[("throughput_sps", 64), ["ci_low", "ci_high"]]) == (0.0, np.inf)
    low, value, high = rows.loc[("throughput_sps", 1), ["ci_low", "value", "ci_high"]]
    assert 0 < low <= value <= high < np.inf  # 40 blocks at batch 1: bounded
