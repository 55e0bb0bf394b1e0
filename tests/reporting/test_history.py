"""History: idempotent appends per (date, commit), regressions between runs, trend plots."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from synthetic_results import run_cli

from bench import schema
from bench.errors import InputError
from bench.history import HISTORY_COLUMNS, append_run, detect_regressions, read_store


def test_append_is_idempotent_and_tidy(results_dir: Path, tmp_path: Path, capsys) -> None:
    store = tmp_path / "history.csv"
    assert run_cli(["history", "append", str(results_dir), "--store", str(store)], capsys)[0] == 0
    first = store.read_bytes()
    run_cli(["history", "append", str(results_dir), "--store", str(store)], capsys)
    assert store.read_bytes() == first
    history = read_store(store)
    assert list(history.columns) == HISTORY_COLUMNS
    assert set(history["commit"]) == {"abc1234"}  # from run.json
    # One row per (ok cell, metric present): 29 ok cells; fid for one gan cell per seed, etc.
    ok = pd.read_csv(results_dir / schema.RESULTS_FILE).query("status == 'ok'")
    assert (history["metric"] == "fid_proxy").sum() == len(ok)
    assert (history["metric"] == "elbo_nats").sum() == (ok["family"] == "vae").sum()
    assert not list(tmp_path.glob(".history.csv.*"))  # no temp file left behind
    # Another commit adds a block; the first stays as it was.
    append_run(results_dir, store, date="2025-01-02T00:00:00Z", commit="def5678")
    history = read_store(store)
    assert history.groupby(["run_date", "commit"]).size().tolist() == [len(first.splitlines())
                                                                       - 1] * 2


def test_regression_between_consecutive_runs_is_detected(make_results_dir, tmp_path: Path,
                                                          capsys) -> None:
    store = tmp_path / "history.csv"
    good, bad = make_results_dir("good"), make_results_dir("bad")
    results = pd.read_csv(bad / schema.RESULTS_FILE)
    worse = results["cell_id"].str.startswith("vae1s")
    results.loc[worse, "fid_proxy"] *= 1.3
    results.to_csv(bad / schema.RESULTS_FILE, index=False)
    for day, run in (("01", good), ("02", bad), ("03", good)):
        append_run(run, store, date=f"2025-01-{day}T00:00:00Z", commit=f"c{day}")
    found = detect_regressions(read_store(store), "fid_proxy")
    # Only the step 01 -> 02 is worse; 02 -> 03 is an improvement.
    assert found[["cell", "commit"]].values.tolist() == [
        ["vae/prune_magnitude [global, sparsity 0.5] (mnist5k)", "c02"]]
    assert found["change"].iloc[0] == pytest.approx(0.3)
    out = tmp_path / "trend"
    code, printed, _ = run_cli(["history", "plot", "--store", str(store), "--out", str(out)],
                               capsys)
    assert code == 0
    assert sorted(p.name for p in out.glob("*.png")) == [
        "history_elbo_nats.png", "history_fid_proxy.png", "history_size_file_bytes.png",
        "history_speedup.png"]
    assert (out / "history_fid_proxy.png").read_bytes()[:4] == b"\x89PNG"


def test_bad_date_and_bad_store(results_dir: Path, tmp_path: Path, capsys) -> None:
    with pytest.raises(InputError, match="ISO 8601"):
        append_run(results_dir, tmp_path / "h.csv", date="yesterday")
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    code, _, err = run_cli(["history", "plot", "--store", str(bad), "--out", str(tmp_path)],
                           capsys)
    assert code == 2 and "expected" in err
