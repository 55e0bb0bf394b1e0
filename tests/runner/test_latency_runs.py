"""Latency you can rerun, end to end: [latency] settings, cell ids, --wait-idle, run.json noise."""
from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import TINY_TOML

import bench.metrics
import bench.run.cli
import bench.run.sweep
from bench.cli import main
from bench.config.sweep import ConfigError, LatencySettings, parse_config
from bench.metrics import LatencyResult
from bench.results.loading import load_results_dir, with_latency
from bench.run.grid import expand
from bench.run.sweep import SweepSummary, run_sweep

UNSTEADY = (0.010, 0.010, 0.012, 0.014, 0.014)  # IQR 4 ms / median 12 ms: rel IQR 1/3
STEADY = (0.006,) * 5


def _config(latency: str = "max_rel_iqr = 0.1", devices: str = '["cpu"]'):
    return parse_config(TINY_TOML.replace("max_rel_iqr = 1e9", latency)
                        .replace('devices = ["auto"]', f"devices = {devices}"))


def test_latency_settings_defaults_and_bad_values():
    settings = LatencySettings()
    assert (settings.max_rel_iqr, settings.max_attempts, settings.wait_idle) == (0.1, 3, False)
    for text, match in [("max_rel_iqr = 0", "max_rel_iqr"), ("max_attempts = 0", "max_attempts"),
                        ("wait_idle_timeout_s = -1", "wait_idle_timeout_s"),
                        ("idle_busy_cores = -0.5", "idle_busy_cores"),
                        ("max_attempts = 2.5", "max_attempts"), ("max_rel_iqrs = 0.1", "max_rel")]:
        with pytest.raises(ConfigError, match=match):
            _config(text)


def test_the_idle_wait_does_not_change_cell_ids_but_the_gate_does():
    plain = [cell.cell_id for cell in expand(_config())]
    waiting = _config("max_rel_iqr = 0.1\nwait_idle = true\nwait_idle_timeout_s = 5\n"
                      "idle_busy_cores = 1.0")
    assert waiting.latency.wait_idle and [cell.cell_id for cell in expand(waiting)] == plain
    stricter = [cell.cell_id for cell in expand(_config("max_rel_iqr = 0.05"))]
    assert not set(stricter) & set(plain)  # a different gate can give a different status


@pytest.fixture
def captured(monkeypatch, tmp_path):
    """`genbench run` up to run_sweep: the config it would run with, and the printed summary."""
    seen = {}

    def fake_run_sweep(config, out, **kwargs):
        seen["config"] = config
        return SweepSummary(6, 0, 6, 6, 0, 1.0, latency_rows=6, unstable=2)

    monkeypatch.setattr(bench.run.sweep, "run_sweep", fake_run_sweep)
    monkeypatch.setattr(bench.run.cli, "preflight", lambda config: None)
    path = tmp_path / "tiny.toml"
    path.write_text(TINY_TOML)
    return seen, ["run", "--config", str(path), "--out", str(tmp_path / "out"), "--quiet"]


def test_wait_idle_flags_reach_the_sweep_and_the_summary_counts_unstable(captured, capsys):
    seen, argv = captured
    assert main([*argv, "--wait-idle", "--wait-idle-timeout", "12"]) == 0
    latency = seen["config"].latency
    assert latency.wait_idle and latency.wait_idle_timeout_s == 12.0
    assert "; 2 of 6 latency rows unstable" in capsys.readouterr().out
    assert main(argv) == 0 and not seen["config"].latency.wait_idle


@pytest.mark.parametrize("extra,match", [(["--wait-idle-timeout", "5"], "needs --wait-idle"),
                                         (["--wait-idle", "--workers", "2"], "--workers 1"),
                                         (["--wait-idle", "--wait-idle-timeout", "-1"],
                                          "wait_idle_timeout_s")])
def test_wait_idle_misuse_is_a_one_line_error(captured, capsys, extra, match):
    _, argv = captured
    assert main([*argv, *extra]) == 2
    assert match in capsys.readouterr().err


def _always_unsteady(baseline, variant, batch, device, threads, min_run_time):
    base = LatencyResult(device, threads, batch, STEADY, 2)
    var = LatencyResult(device, threads, batch, UNSTEADY, 2)
    return base, var, base.p50_ms / var.p50_ms


def test_unstable_rows_are_counted_kept_out_of_speedups_and_noise_is_recorded(
        monkeypatch, tmp_path):
    monkeypatch.setattr(bench.metrics, "speedup_for_models", _always_unsteady)
    config = _config("max_rel_iqr = 0.1\nmax_attempts = 2")
    summary = run_sweep(config, tmp_path, progress=False)
    assert (summary.ok, summary.latency_rows, summary.unstable) == (6, 6, 6)
    run = load_results_dir(tmp_path)
    assert list(run.latency["attempts"]) == [2] * 6
    assert set(run.latency["status"]) == {"unstable"}
    assert np.allclose(run.latency["latency_rel_iqr"], 1 / 3)
    assert with_latency(run, run.results)["speedup"].isna().all()  # no claim from these rows
    noise = json.loads((tmp_path / "run.json").read_text())["speedup_noise"]
    expected = [{"family": family, "seed": 0, "device": "cpu", "batch_size": 2,
                 "speedup": pytest.approx(0.5), "rel_iqr": pytest.approx(1 / 3),
                 "status": "unstable"} for family in ("gan", "vae")]
    assert sorted(noise, key=lambda e: e["family"]) == expected
    # Resume: reused baseline cells keep their entries in the new invocation's run.json.
    redo = next(c for c in expand(config) if c.method != "baseline")
    (tmp_path / "cells" / f"{redo.cell_id}.json").unlink()
    again = run_sweep(config, tmp_path, progress=False)
    assert (again.ran, again.unstable) == (1, 6)
    noise = json.loads((tmp_path / "run.json").read_text())["speedup_noise"]
    assert sorted(entry["family"] for entry in noise) == ["gan", "vae"]

