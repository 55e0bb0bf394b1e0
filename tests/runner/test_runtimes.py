"""The runtime axis: config key, rows per (cell, runtime, device, batch), resume, old results."""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import torch
from conftest import TINY_TOML
from torch import nn

from bench.cell.extend import merge_runtime_record, missing_runtimes
from bench.compare.judge import compare_runs
from bench.config.sweep import parse_config
from bench.config.validate import ConfigError
from bench.results import schema
from bench.results.loading import load_results_dir
from bench.run.grid import expand
from bench.run.sweep import run_sweep
from compression.runtimes import RUNTIMES, Deployed, Runtime

ABSENT_REASON = "fake_absent needs a package this machine lacks"
INT8_ERR = 0.25  # the export error fake_int8 reports, checked in the rows


class Wrapped(nn.Module):
    """A deployed model holding no torch tensor, like an ORT session wrapper: it computes the
    variant's own function (so quality must equal eager's exactly)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        object.__setattr__(self, "inner", model)  # not a submodule: no parameters, no buffers
        self.family, self.latent_dim = model.family, model.latent_dim

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.inner(z)

    def latent(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.inner.latent(n, generator)


class FakeSame(Runtime):
    name = "fake_same"

    def deploy(self, cm, device, ctx) -> Deployed:
        # The runner's context: calibration latents that are not the quality latents.
        assert ctx.calib_z.shape[1] == cm.model.latent_dim and ctx.check_z.shape[0] == 8
        assert not torch.equal(ctx.calib_z[:8], ctx.check_z)
        return Deployed(Wrapped(cm.model), self.name, "fake-fp32", export_max_abs_err=0.0)


class FakeInt8(Runtime):
    name = "fake_int8"

    def deploy(self, cm, device, ctx) -> Deployed:
        return Deployed(Wrapped(cm.model), self.name, "fake-int8", int8_mac_fraction=0.5,
                        fp32_ops=("GRU x1",), export_max_abs_err=INT8_ERR,
                        size_file_bytes=1000, changes_outputs=True, notes=("fake",))


class FakeAbsent(Runtime):
    name = "fake_absent"

    def unavailable(self, cm, device) -> str | None:
        return ABSENT_REASON


class FakeBroken(Runtime):
    name = "fake_broken"

    def deploy(self, cm, device, ctx) -> Deployed:
        raise RuntimeError("export refused this graph")


FAKES = (FakeSame, FakeInt8, FakeAbsent, FakeBroken)


@pytest.fixture(scope="module", autouse=True)
def fake_runtimes():
    import compression.runtimes  # noqa: F401 - the shipped runtimes first

    for cls in FAKES:
        RUNTIMES[cls.name] = cls()
    yield
    for cls in FAKES:
        RUNTIMES.pop(cls.name, None)


def with_runtimes(names: list[str], text: str = TINY_TOML) -> str:
    return f"runtimes = {json.dumps(names)}\n" + text


@dataclass
class Ran:
    out: Path
    summary: object


@pytest.fixture(scope="module")
def runtime_run(tmp_path_factory, fake_runtimes) -> Ran:
    out = tmp_path_factory.mktemp("runtimes")
    text = with_runtimes(["fake_same", "fake_int8", "fake_absent", "fake_broken"])
    return Ran(out, run_sweep(parse_config(text), out, progress=False))


# --- config ---------------------------------------------------------------------------------

def test_runtimes_default_to_eager_and_eager_is_always_first():
    assert parse_config(TINY_TOML).runtimes == ("eager",)
    config = parse_config(with_runtimes(["fake_int8", "eager", "fake_int8"]))
    assert config.runtimes == ("eager", "fake_int8")


def test_unknown_runtime_is_one_line_naming_the_registered_ones():
    with pytest.raises(ConfigError) as caught:
        parse_config(with_runtimes(["onnx_runtime_typo"]))
    message = str(caught.value)
    assert "unknown runtime 'onnx_runtime_typo'" in message and "fake_int8" in message
    assert "eager" in message


def test_runtimes_leave_cell_ids_alone_and_a_sweep_may_override_them():
    plain = [c.cell_id for c in expand(parse_config(TINY_TOML))]
    override = TINY_TOML.replace('method = "quant"\n',
                                 'method = "quant"\nruntimes = ["fake_int8"]\n')
    cells = expand(parse_config(with_runtimes(["fake_same"], override)))
    assert [c.cell_id for c in cells] == plain
    by_method = {c.method: c.runtimes for c in cells}
    assert by_method["quant"] == ("eager", "fake_int8")
    assert by_method["prune_magnitude"] == ("eager", "fake_same")
    assert by_method["baseline"] == ("eager", "fake_same", "fake_int8")  # every runtime's ref


# --- rows of a run --------------------------------------------------------------------------

def test_latency_rows_per_runtime_device_and_batch(runtime_run):
    latency = pd.read_csv(runtime_run.out / schema.LATENCY_FILE)
    assert list(latency.columns) == schema.LATENCY_COLUMNS
    # 6 cells x 5 runtimes x 2 devices (auto = cpu + cuda) x 1 batch size
    assert len(latency) == 6 * 5 * 2
    assert set(latency.groupby(["cell_id", "runtime", "device", "batch_size"]).size()) == {1}
    cpu = latency[latency["device"] == "cpu"].set_index(["cell_id", "runtime"])
    for name in ("eager", "fake_same", "fake_int8"):
        rows = cpu.xs(name, level="runtime")
        assert (rows["status"] == "ok").all() and (rows["speedup"] > 0).all()
    assert cpu.xs("fake_int8", level="runtime")["export_max_abs_err"].eq(INT8_ERR).all()
    assert cpu.xs("fake_same", level="runtime")["execution"].eq("fake-fp32").all()
    absent = latency[latency["runtime"] == "fake_absent"]
    assert absent["status"].eq("skipped").all() and absent["error"].eq(ABSENT_REASON).all()
    broken = cpu.xs("fake_broken", level="runtime")
    assert broken["status"].eq("failed").all()
    assert broken["error"].str.contains("export refused this graph").all()
    samples = pd.read_csv(runtime_run.out / schema.LATENCY_SAMPLES_FILE)
    assert set(samples["runtime"]) == {"eager", "fake_same", "fake_int8"}


def test_a_runtime_that_changes_outputs_gets_a_results_row_measured_on_the_same_latents(
        runtime_run):
    results = pd.read_csv(runtime_run.out / schema.RESULTS_FILE)
    assert list(results.columns) == schema.RESULTS_COLUMNS
    assert runtime_run.summary.cells == 6 and len(results) == 12  # eager + fake_int8 per cell
    eager = results[results["runtime"] == "eager"].set_index("cell_id")
    int8 = results[results["runtime"] == "fake_int8"].set_index("cell_id")
    assert sorted(int8.index) == sorted(eager.index)
    # Wrapped computes the variant's own function: on the same latents every sample metric is
    # the eager one exactly (drift against the baseline too), the baseline's change 0.
    for metric in ("fid_proxy", "kid_proxy", "precision", "coverage", "output_drift_mse",
                   "fid_proxy_delta"):
        assert int8[metric].to_dict() == eager.loc[int8.index, metric].to_dict()
    base = eager["method"] == "baseline"
    assert (int8.loc[base[base].index, "fid_proxy_delta"] == 0).all()
    assert (int8.loc[base[base].index, "output_drift_mse"] == 0).all()
    assert int8["status"].eq("ok").all() and int8["execution"].eq("fake-int8").all()
    assert int8["export_max_abs_err"].eq(INT8_ERR).all() and int8["int8_mac_fraction"].eq(0.5).all()
    assert int8["size_file_bytes"].eq(1000).all()
    assert int8["fp32_ops"].map(json.loads).tolist() == [["GRU x1"]] * len(int8)
    vae = int8[int8["family"] == "vae"]
    assert vae["elbo_nats"].isna().all() and eager.loc[vae.index, "elbo_nats"].notna().all()
    assert vae["notes"].map(json.loads).map(lambda n: "likelihood" in n).all()
    assert (int8["pipeline_json"] == eager.loc[int8.index, "pipeline_json"]).all()


def test_readers_see_eager_rows_and_runtime_aware_ones_every_row(runtime_run):
    run = load_results_dir(runtime_run.out)
    assert len(run.results) == 6 and run.results["runtime"].eq("eager").all()
    assert len(run.results_all) == 12
    assert run.latency["runtime"].eq("eager").all() and len(run.latency_all) == 60
    assert run.samples["runtime"].eq("eager").all()
    # Only the eager baseline timed against itself is the run's speedup noise.
    noise = run.run["speedup_noise"]
    assert len(noise) == 2  # 2 baselines x cpu x 1 batch


# --- resume ---------------------------------------------------------------------------------

def _text(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def test_adding_a_runtime_measures_only_its_rows_on_resume(tmp_path, capsys):
    out = tmp_path / "out"
    first = run_sweep(parse_config(with_runtimes(["fake_same"])), out, progress=False)
    before = _text(out / schema.LATENCY_FILE)
    results_before = _text(out / schema.RESULTS_FILE)
    second = run_sweep(parse_config(with_runtimes(["fake_same", "fake_int8"])), out,
                       progress=False)
    assert first.ran == 6 and second.cells == 6 and second.ran == 6  # 6 extensions
    lines = capsys.readouterr().err.splitlines()[-6:]
    assert all(line.startswith("ok") and line.endswith("+runtimes fake_int8") for line in lines)
    after = _text(out / schema.LATENCY_FILE)
    kept = after[after["runtime"].isin(["eager", "fake_same"])].reset_index(drop=True)
    pd.testing.assert_frame_equal(kept, before)  # stored rows untouched, not measured again
    assert (after["runtime"] == "fake_int8").sum() == 12
    results = _text(out / schema.RESULTS_FILE)
    eager = results[results["runtime"] == "eager"].reset_index(drop=True)
    pd.testing.assert_frame_equal(eager, results_before)  # quality not re-evaluated
    assert (results["runtime"] == "fake_int8").sum() == 6
    third = run_sweep(parse_config(with_runtimes(["fake_int8", "fake_same"])), out,
                      progress=False)
    assert third.ran == 0


def test_missing_runtimes_and_merge_are_exact():
    stored = {"cell_id": "c", "result": {"status": "ok"}, "runtimes": ["eager", "a"],
              "latency": [{"runtime": "eager"}, {"runtime": "a", "status": "failed"}],
              "latency_samples": [], "seconds": 2.0}
    assert missing_runtimes(("eager", "a", "b"), stored) == ("b",)
    assert missing_runtimes(("eager", "a", "b"), stored, rerun_failed=True) == ("a", "b")
    assert missing_runtimes(("eager",), {"result": {}}) == ()  # pre-runtime records: eager
    extension = {"cell_id": "c", "result": {"status": "ok"}, "runtimes": ["a", "b"],
                 "latency": [{"runtime": "a", "status": "ok"}, {"runtime": "b"}],
                 "latency_samples": [{"runtime": "b"}], "runtime_results": [{"runtime": "b"}],
                 "deployments": {"b": {"execution": "x"}}, "seconds": 1.0}
    merged = merge_runtime_record(stored, extension)
    assert merged["runtimes"] == ["eager", "a", "b"] and merged["seconds"] == 3.0
    assert merged["latency"] == [{"runtime": "eager"}, {"runtime": "a", "status": "ok"},
                                 {"runtime": "b"}]
    assert merged["result"] is stored["result"]
    assert merged["deployments"] == {"b": {"execution": "x"}}
    failed = merge_runtime_record(stored, {**extension, "result": {"status": "failed",
                                                                   "error": "E"}})
    assert failed["runtimes"] == ["eager", "a"] and failed["runtime_errors"] == {"a": "E", "b": "E"}
    assert failed["latency"] == stored["latency"]


# --- results written before runtimes --------------------------------------------------------

def _as_old_code_wrote_it(src: Path, dst: Path) -> Path:
    """A copy of `src` with only eager rows and without the runtime columns."""
    shutil.copytree(src, dst)
    for name, columns in ((schema.RESULTS_FILE, schema.RUNTIME_RESULTS_COLUMNS),
                          (schema.LATENCY_FILE, schema.ADDED_LATENCY_COLUMNS),
                          (schema.LATENCY_SAMPLES_FILE, schema.ADDED_LATENCY_SAMPLE_COLUMNS)):
        frame = pd.read_csv(dst / name, dtype=str, keep_default_na=False)
        frame = frame[frame["runtime"] == "eager"].drop(columns=columns)
        frame.to_csv(dst / name, index=False)
    return dst


def test_old_results_load_as_eager_and_compare_with_new_on_their_eager_rows(runtime_run,
                                                                            tmp_path):
    old = load_results_dir(_as_old_code_wrote_it(runtime_run.out, tmp_path / "old"))
    new = load_results_dir(runtime_run.out)
    assert old.results["runtime"].eq("eager").all() and old.latency["runtime"].eq("eager").all()
    assert old.samples["runtime"].eq("eager").all() and len(old.results_all) == 6
    against_old, against_itself = compare_runs(old, new), compare_runs(old, old)

    def rows(report) -> list[tuple]:
        return sorted((c.cell, c.metric, c.device, c.batch_size, c.baseline, c.current, c.verdict)
                      for c in report.comparisons if " on " not in c.cell)

    assert rows(against_old) and rows(against_old) == rows(against_itself)
    assert not against_old.only_baseline and not against_old.status_changes
    assert len(against_old.only_current) == 6
    assert all(label.endswith(" on fake_int8") for label in against_old.only_current)
    # new vs new: runtime rows are matched with their own runtime (quality and latency)
    itself = compare_runs(new, new)
    int8 = [c for c in itself.comparisons if c.cell.endswith(" on fake_int8")]
    assert {c.metric for c in int8} >= {"fid_proxy", "speedup"}
    assert all(c.baseline == c.current for c in int8)


def test_the_committed_reference_results_load_as_eager():
    smoke = Path(__file__).resolve().parents[2] / "results" / "reference" / "smoke"
    run = load_results_dir(smoke)
    assert len(run.results) > 0 and run.results["runtime"].eq("eager").all()
    assert len(run.results_all) == len(run.results) and len(run.latency_all) == len(run.latency)
    assert run.latency["runtime"].eq("eager").all() and run.samples["runtime"].eq("eager").all()
    assert run.results["fp32_ops"].eq("").all() and run.latency["export_max_abs_err"].isna().all()
