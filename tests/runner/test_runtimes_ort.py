"""A tiny sweep on the shipped ONNX Runtime runtimes: rows with the right keys and known bounds."""
from __future__ import annotations

import importlib.util
import json

import pytest
from conftest import TINY_TOML

from bench.config.sweep import parse_config
from bench.results import schema
from bench.results.loading import load_results_dir
from bench.run.sweep import run_sweep

RUNTIMES = ["eager", "onnxruntime", "onnxruntime_int8"]
# One family, one compressed pipeline: a baseline and a pruned GAN, each on three runtimes;
# peak memory on, to see which rows get it.
GAN_PRUNED = (TINY_TOML.replace("[families.vae]\nepochs = 1\nmax_steps = 2\nlatent_dim = 4\n", "")
              .replace('[[sweep]]\nmethod = "quant"\nbits = [8]\ngranularity = ["tensor"]\n'
                       'rounding = ["naive"]\n', "")
              .replace("memory = false", "memory = true"))


def _shipped() -> str | None:
    from compression.runtimes import RUNTIMES as registered

    missing = [name for name in RUNTIMES if name not in registered]
    if missing:
        return f"runtimes not registered: {missing}"
    absent = [m for m in ("onnx", "onnxscript", "onnxruntime")
              if importlib.util.find_spec(m) is None]
    return f"needs the `runtimes` extra; not installed: {absent}" if absent else None


@pytest.fixture(scope="module")
def ort_run(tmp_path_factory):
    reason = _shipped()
    if reason:
        pytest.skip(reason)
    config = parse_config(f"runtimes = {json.dumps(RUNTIMES)}\n" + GAN_PRUNED)
    assert config.families.keys() == {"gan"} and len(config.pipelines) == 1
    out = tmp_path_factory.mktemp("ort")
    run_sweep(config, out, progress=False)
    return load_results_dir(out)


@pytest.mark.slow  # ONNX export and int8 calibration of 2 cells: ~30-60 s on a shared core
def test_ort_rows_have_the_keys_and_fp32_matches_eager(ort_run):
    latency = ort_run.latency_all
    cpu = latency[latency["device"] == "cpu"]
    assert set(cpu["runtime"]) == set(RUNTIMES)
    assert set(cpu.groupby(["cell_id", "runtime", "batch_size"]).size()) == {1}
    measured = cpu[cpu["status"].isin([schema.STATUS_OK, schema.STATUS_UNSTABLE])]
    assert set(measured["runtime"]) == set(RUNTIMES), cpu[["runtime", "status", "error"]]
    fp32 = measured[measured["runtime"] == "onnxruntime"]
    # The fp32 export is checked against eager at 1e-4 (compression.runtimes.export).
    assert (fp32["export_max_abs_err"] <= 1e-4).all()
    assert (measured["speedup"] > 0).all()
    # ORT's allocator is invisible to the torch profiler: no peak memory, and the row says so.
    ort_rows = measured[measured["runtime"] != "eager"]
    assert ort_rows["peak_mem_bytes"].isna().all()
    assert ort_rows["error"].str.contains("peak memory not measured").all()
    assert measured[measured["runtime"] == "eager"]["peak_mem_bytes"].gt(0).all()


@pytest.mark.slow
def test_int8_gets_a_results_row_with_its_own_quality(ort_run):
    results = ort_run.results_all
    int8 = results[results["runtime"] == "onnxruntime_int8"]
    eager = results[results["runtime"] == "eager"]
    assert len(eager) == 2 and sorted(int8["cell_id"]) == sorted(eager["cell_id"])
    assert int8["status"].eq(schema.STATUS_OK).all(), int8["error"].tolist()
    assert int8["fid_proxy"].notna().all() and int8["int8_mac_fraction"].between(0, 1).all()
    assert int8["size_file_bytes"].gt(0).all()
    assert int8["fp32_ops"].map(json.loads).map(lambda ops: isinstance(ops, list)).all()
    assert not (results["runtime"] == "onnxruntime").any()  # fp32: latency rows only
    assert ort_run.results["runtime"].eq("eager").all() and len(ort_run.results) == 2
