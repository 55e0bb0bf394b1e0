"""End-to-end sweeps on the tiny dataset: all ok, resume, training counts, contained failures."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import TINY_TOML

import genmodels.train as train
from bench.config.sweep import parse_config
from bench.results.environment import git_state
from bench.results.schema import LATENCY_COLUMNS, RESULTS_COLUMNS, SCHEMA_VERSION
from bench.run.grid import code_fingerprint, expand
from bench.run.sweep import run_sweep


def _run(text: str, out, **kwargs):
    return run_sweep(parse_config(text), out, progress=False, **kwargs)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny-run")
    before = train.TRAININGS_RUN
    summary = _run(TINY_TOML, out)
    return out, summary, train.TRAININGS_RUN - before


def test_every_cell_ok_with_the_output_layout(tiny_run):
    out, summary, _ = tiny_run
    results = pd.read_csv(out / "results.csv")
    assert list(results.columns) == RESULTS_COLUMNS
    assert summary.ok == summary.cells == len(results) == 6
    assert set(results["status"]) == {"ok"}
    assert sorted(results["method"]) == sorted(["baseline", "prune_magnitude", "quant"] * 2)
    base = results[results["method"] == "baseline"]
    assert (base["compression_ratio"] == 1.0).all() and (base["output_drift_mse"] == 0).all()
    pruned = results[results["method"] == "prune_magnitude"]
    assert (pruned["sparsity_target"] == 0.5).all() and (pruned["scope"] == "global").all()
    quant = results[results["method"] == "quant"]
    # 8-bit weights: under 4x (biases, norms and the file header stay), well over 2x.
    assert (quant["bits"] == 8).all() and quant["compression_ratio"].between(2, 4).all()
    vae = results[results["family"] == "vae"]
    assert vae["elbo_nats"].notna().all()
    assert results[results["family"] == "gan"]["elbo_nats"].isna().all()  # not 0.0: n/a


def test_latency_rows_and_skipped_cuda(tiny_run):
    out, _, _ = tiny_run
    latency = pd.read_csv(out / "latency.csv")
    assert list(latency.columns) == LATENCY_COLUMNS
    assert len(latency) == 6 * 2  # devices auto = cpu + cuda, one batch size
    cpu = latency[latency["device"] == "cpu"]
    assert (cpu["status"] == "ok").all() and (cpu["latency_p50_ms"] > 0).all()
    assert (cpu["speedup"] > 0).all()
    cuda = latency[latency["device"] == "cuda"]
    if not torch.cuda.is_available():
        assert (cuda["status"] == "skipped").all()
        assert cuda["error"].str.contains("CUDA is not available").all()
    samples = pd.read_csv(out / "latency_samples.csv")
    assert set(samples["cell_id"]) == set(cpu["cell_id"])


def test_samples_share_the_same_latents(tiny_run):
    out, _, _ = tiny_run
    results = pd.read_csv(out / "results.csv")
    images = {r.method: np.load(out / "samples" / f"{r.cell_id}.npz")["images"]
              for r in results[results["family"] == "gan"].itertuples()}
    assert images["baseline"].shape == (16, 1, 16, 16)
    assert images["baseline"].min() >= 0 and images["baseline"].max() <= 1
    # 8-bit weights from the same z: close to the baseline, but not identical.
    gap = np.abs(images["quant"] - images["baseline"]).max()
    assert 0 < gap < 0.2


def test_run_json(tiny_run):
    out, _, _ = tiny_run
    run = json.loads((out / "run.json").read_text())
    assert run["schema_version"] == SCHEMA_VERSION and run["config"]["name"] == "tiny"
    assert run["finished_at"] >= run["started_at"]
    assert set(run["floors"]) >= {"fid_proxy", "kid_proxy", "precision", "recall"}
    # The floor at the cells' size: n_samples training images vs the test set, 10 subsets.
    assert set(run["floors_spread"]) == set(run["floors"])
    assert run["floor_method"].startswith("32 real images that are not test images")
    assert 0 <= run["feature_net"]["test_accuracy"] <= 1
    assert run["environment"]["torch"] == torch.__version__
    assert (run["git_commit"], run["git_dirty"]) == git_state()
    assert run["code_fingerprint"] == code_fingerprint()
    (invocation,) = run["invocations"]
    assert invocation["status"] == "completed" and invocation["cells_run"] == 6
    assert invocation["code_fingerprint"] == code_fingerprint()


def test_each_record_says_what_measured_it(tiny_run):
    out, _, _ = tiny_run
    results = pd.read_csv(out / "results.csv")
    for cell_id in results["cell_id"]:
        provenance = json.loads((out / "cells" / f"{cell_id}.json").read_text())["provenance"]
        assert provenance["code_fingerprint"] == code_fingerprint()
        assert (provenance["git_commit"], provenance["git_dirty"]) == git_state()
        assert provenance["environment"]["torch"] == torch.__version__
    steps = [json.loads(text) for text in results["pipeline_json"]]
    assert sorted(len(s) for s in steps) == [0, 0, 1, 1, 1, 1]
    assert all(s[0]["method"] == m for s, m in zip(steps, results["method"], strict=True) if s)


def test_trainings_equal_families_times_seeds(tiny_run):
    _, _, trainings = tiny_run
    assert trainings <= 2  # gan + vae; fewer only if another test cached them first


def test_completed_rerun_does_no_work(tiny_run):
    out, _, _ = tiny_run
    before_csv = (out / "results.csv").read_bytes()
    before = train.TRAININGS_RUN
    summary = _run(TINY_TOML, out)
    assert summary.ran == 0 and summary.reused == 6
    assert train.TRAININGS_RUN == before
    assert (out / "results.csv").read_bytes() == before_csv


def test_trainings_do_not_grow_with_the_number_of_settings(tmp_path):
    # A fresh training budget (max_steps 1) so nothing is cached: 1 family x 2 seeds, 4 settings.
    text = (TINY_TOML.replace("[families.gan]\nepochs = 1\nmax_steps = 2\nlatent_dim = 4\n", "")
            .replace("max_steps = 2", "max_steps = 1").replace("seeds = [0]", "seeds = [0, 1]")
            .replace("sparsity = [0.5]", "sparsity = [0.3, 0.6, 0.9]"))
    before = train.TRAININGS_RUN
    summary = _run(text, tmp_path)
    assert summary.ok == summary.cells == len(expand(parse_config(text))) == 2 * (1 + 3 + 1)
    assert train.TRAININGS_RUN - before == 1 * 2  # families x seeds, not x settings


def test_failing_cell_is_recorded_and_the_sweep_goes_on(tmp_path, monkeypatch):
    from compression import api
    from compression.quantization.ptq import QuantConfig

    def boom(cm, config, ctx):
        raise RuntimeError("quantizer exploded\non two lines")

    monkeypatch.setitem(api._BY_CONFIG, QuantConfig, api.MethodSpec(QuantConfig, boom))
    summary = _run(TINY_TOML, tmp_path)
    results = pd.read_csv(tmp_path / "results.csv")
    failed = results[results["status"] == "failed"]
    assert summary.failed == 2 and list(failed["method"]) == ["quant", "quant"]
    assert (failed["error"] == "RuntimeError: quantizer exploded on two lines").all()
    assert failed["fid_proxy"].isna().all() and (failed["bits"] == 8).all()
    assert (results[results["method"] != "quant"]["status"] == "ok").all()
    # A rerun keeps failed cells unless asked; --rerun-failed redoes exactly them.
    monkeypatch.undo()
    assert _run(TINY_TOML, tmp_path).ran == 0
    again = _run(TINY_TOML, tmp_path, rerun_failed=True)
    assert again.ran == 2 and again.ok == 2
    assert set(pd.read_csv(tmp_path / "results.csv")["status"]) == {"ok"}
    # Three invocations wrote into the directory: run.json names all of them.
    log = json.loads((tmp_path / "run.json").read_text())["invocations"]
    assert [(i["status"], i["cells_run"]) for i in log] == [("completed", 6), ("completed", 0),
                                                             ("completed", 2)]


def test_nan_model_is_a_failed_cell(tmp_path, monkeypatch):
    from compression import api
    from compression.quantization.ptq import QuantConfig

    def nan_weights(cm, config, ctx):
        with torch.no_grad():
            for p in cm.model.deployable().parameters():
                p.fill_(float("nan"))
        return cm

    monkeypatch.setitem(api._BY_CONFIG, QuantConfig, api.MethodSpec(QuantConfig, nan_weights))
    _run(TINY_TOML, tmp_path)
    results = pd.read_csv(tmp_path / "results.csv")
    failed = results[results["status"] == "failed"]
    assert list(failed["method"]) == ["quant", "quant"]
    assert failed["error"].str.startswith("FloatingPointError").all()


def test_diverging_baseline_fails_its_cells_only(tmp_path):
    text = TINY_TOML.replace("max_steps = 2\nlatent_dim = 4\n[families.vae]",
                             "max_steps = 5\nlatent_dim = 4\nlr = 1e30\n[families.vae]")
    _run(text, tmp_path)
    results = pd.read_csv(tmp_path / "results.csv")
    gan, vae = results[results["family"] == "gan"], results[results["family"] == "vae"]
    assert (gan["status"] == "failed").all(), gan[["status", "error"]]
    reason = "RuntimeError: baseline training failed: TrainingDiverged"
    assert gan["error"].str.startswith(reason).all()
    assert (vae["status"] == "ok").all()


def test_timeout_fails_the_cell(tmp_path):
    _run(TINY_TOML.replace("timeout_s = 120", "timeout_s = 0.001"), tmp_path)
    results = pd.read_csv(tmp_path / "results.csv")
    assert (results["status"] == "failed").all()
    assert (results["error"] == "CellTimeout: timeout after 0.001 s").all()


def test_force_redoes_everything(tiny_run, tmp_path):
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(tiny_run[0], out)
    forced = _run(TINY_TOML, out, force=True)
    assert forced.ran == tiny_run[1].cells and forced.reused == 0


def test_a_swallowed_alarm_still_fails_the_block():
    # An exception raised inside a finalizer is printed and dropped by Python; the time limit
    # must still end the cell as failed once its block returns.
    from bench.run.limits import CellTimeout, time_limit

    with pytest.raises(CellTimeout, match="timeout after 0.01 s"):
        with time_limit(0.01):
            try:
                while True:  # busy until the alarm interrupts it
                    pass
            except CellTimeout:
                pass  # swallowed, as a finalizer would
