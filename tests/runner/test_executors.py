"""Executors agree: Dask (in-process LocalCluster) and a spawned pool give local's results.csv."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import TINY_TOML

from bench.config.sweep import parse_config
from bench.results.schema import QUALITY_COLUMNS, SIZE_COLUMNS
from bench.run.executors import execute
from bench.run.sweep import run_sweep

# Deterministic columns: everything but timings (latency, compress/eval seconds).
COMPARED = ["cell_id", "family", "method", "seed", "status"] + QUALITY_COLUMNS + SIZE_COLUMNS


def _results(out) -> pd.DataFrame:
    return pd.read_csv(out / "results.csv").sort_values("cell_id").reset_index(drop=True)[COMPARED]


def _assert_same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    assert list(a["cell_id"]) == list(b["cell_id"])
    assert (a["status"] == "ok").all() and (b["status"] == "ok").all()
    for column in QUALITY_COLUMNS + SIZE_COLUMNS:
        left, right = a[column].to_numpy(float), b[column].to_numpy(float)
        assert np.array_equal(np.isnan(left), np.isnan(right)), column
        assert np.allclose(left, right, rtol=1e-6, atol=1e-9, equal_nan=True), column


@pytest.fixture(scope="module")
def local_out(tmp_path_factory):
    out = tmp_path_factory.mktemp("local")
    run_sweep(parse_config(TINY_TOML), out, progress=False)
    return out


class _RecordingClient:
    """A distributed.Client whose submit calls are recorded (to inspect the task graph)."""

    def __init__(self, client) -> None:
        self._client, self.submitted = client, []

    def submit(self, fn, *args, **kwargs):
        self.submitted.append((fn.__name__, args))
        return self._client.submit(fn, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._client, name)


def test_dask_in_process_cluster_gives_the_same_results(local_out, tmp_path):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        recording = _RecordingClient(client)
        summary = run_sweep(parse_config(TINY_TOML), tmp_path, executor="dask", progress=False,
                            client=recording)
    assert summary.ok == 6
    _assert_same(_results(local_out), _results(tmp_path))
    # The graph: one training per (family, seed), one feature net, and every cell task takes
    # its training's future (a dependency), not a finished model.
    names = [name for name, _ in recording.submitted]
    assert names.count("train_task") == 2 and names.count("feature_task") == 1
    cells = [args for name, args in recording.submitted if name == "run_cell"]
    assert len(cells) == 6
    assert all(isinstance(args[2], distributed.Future) for args in cells)
    assert all(isinstance(args[3], distributed.Future) for args in cells)


@pytest.mark.slow
def test_spawned_pool_gives_the_same_results(local_out, tmp_path, monkeypatch):
    monkeypatch.setenv("GENBENCH_PLUGINS", "genbench_tiny")  # spawned workers register it too
    summary = run_sweep(parse_config(TINY_TOML), tmp_path, workers=2, progress=False)
    assert summary.ok == 6
    _assert_same(_results(local_out), _results(tmp_path))


def test_unknown_executor_and_bad_workers_are_value_errors():
    config = parse_config(TINY_TOML)
    with pytest.raises(ValueError, match="allowed: local, dask"):
        execute(config, [], print, executor="spark")
    with pytest.raises(ValueError, match="--workers"):
        execute(config, [], print, workers=0)
