"""Executors: run the grid's tasks sequentially, in a spawned process pool, or on Dask.

Every executor gets the cells still to do and calls `on_result(outcome)` in the client process
as each cell ends; training and the feature net are dependencies of the cells that need them,
computed once per (dataset, family, seed) and once per dataset.
"""
from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
from collections.abc import Callable
from typing import Any

import torch

from bench.config import SweepConfig
from bench.grid import Cell, train_keys
from bench.runner import (
    CellOutcome,
    FeatureOutcome,
    TrainOutcome,
    feature_task,
    load_plugins,
    one_line,
    run_cell,
    train_task,
)

OnResult = Callable[[CellOutcome], None]
EXECUTORS = ("local", "dask")


def failed_outcome(cell: Cell, message: str) -> CellOutcome:
    """A cell whose task never returned (worker crash, lost future): failed with the reason."""
    row = {"cell_id": cell.cell_id, "dataset": cell.dataset, "family": cell.family,
           "method": cell.method, "seed": cell.seed, "status": "failed", "error": message}
    return CellOutcome({"cell_id": cell.cell_id, "cell": cell.to_dict(), "result": row,
                        "latency": [], "latency_samples": []})


def run_sequential(config: SweepConfig, cells: list[Cell], on_result: OnResult) -> None:
    """In this process, in order; baselines trained lazily, the first time a cell needs them."""
    features: FeatureOutcome | None = None
    trained: dict[tuple, TrainOutcome] = {}
    for cell in cells:
        features = features or feature_task(config)
        if cell.train_key not in trained:
            trained[cell.train_key] = train_task(config, cell.train_key)
        on_result(run_cell(config, cell, trained[cell.train_key], features))


def _init_worker(threads: int) -> None:
    # Workers share the cores: each gets its slice, so N workers do not oversubscribe them.
    torch.set_num_threads(threads)
    load_plugins()


def run_pool(config: SweepConfig, cells: list[Cell], on_result: OnResult, workers: int) -> None:
    """A spawn-context process pool (fork breaks CUDA, asv#1565); threads = cores // workers."""
    threads = max(1, (os.cpu_count() or 1) // workers)
    context = multiprocessing.get_context("spawn")
    with cf.ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker,
                                initargs=(threads,)) as pool:
        feature_future = pool.submit(feature_task, config)
        train_futures = {key: pool.submit(train_task, config, key) for key in train_keys(cells)}
        features = _result(feature_future, lambda msg: FeatureOutcome(error=msg))
        pending: dict[cf.Future, Cell] = {}
        by_key: dict[tuple, list[Cell]] = {}
        for cell in cells:
            by_key.setdefault(cell.train_key, []).append(cell)
        for future in cf.as_completed(train_futures.values()):
            key = next(k for k, f in train_futures.items() if f is future)
            trained = _result(future, lambda msg, key=key: TrainOutcome(key, error=msg))
            for cell in by_key[key]:
                pending[pool.submit(run_cell, config, cell, trained, features)] = cell
        for future in cf.as_completed(pending):
            cell = pending[future]
            try:
                on_result(future.result())
            except Exception as exc:  # noqa: BLE001 - e.g. BrokenProcessPool after an OOM kill
                on_result(failed_outcome(cell, f"worker failed: {one_line(exc)}"))


def _result(future: cf.Future, on_error: Callable[[str], Any]) -> Any:
    try:
        return future.result()
    except Exception as exc:  # noqa: BLE001
        return on_error(f"worker failed: {one_line(exc)}")


def run_dask(config: SweepConfig, cells: list[Cell], on_result: OnResult,
             scheduler: str | None = None, workers: int = 1, client: Any = None) -> None:
    """Dask distributed: training futures are arguments of their cells' tasks, so the graph has
    the dependencies; results come back to this client, which writes them (no shared disk)."""
    from distributed import Client, LocalCluster, as_completed

    own = client is None
    cluster = None
    if own:
        if scheduler:
            client = Client(scheduler)
        else:
            threads = max(1, (os.cpu_count() or 1) // workers)
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                   dashboard_address=None)
            client = Client(cluster)
            client.run(_init_worker, threads)
        client.run(load_plugins)  # an existing cluster's workers need the user's registries too
    try:
        features = client.submit(feature_task, config, pure=False, key="genbench-features")
        trained = {key: client.submit(train_task, config, key, pure=False,
                                      key=f"genbench-train-{'-'.join(map(str, key))}")
                   for key in train_keys(cells)}
        futures = {client.submit(run_cell, config, cell, trained[cell.train_key], features,
                                 pure=False, key=f"genbench-cell-{cell.cell_id}"): cell
                   for cell in cells}
        for future in as_completed(futures):
            cell = futures[future]
            try:
                on_result(future.result())
            except Exception as exc:  # noqa: BLE001 - a lost worker or an unpicklable result
                on_result(failed_outcome(cell, f"dask task failed: {one_line(exc)}"))
            future.release()
    finally:
        if own:
            client.close()
            if cluster is not None:
                cluster.close()


def execute(config: SweepConfig, cells: list[Cell], on_result: OnResult, *,
            executor: str = "local", workers: int = 1, scheduler: str | None = None,
            client: Any = None) -> None:
    """Run `cells`; `client` (Dask only) is an existing distributed.Client to use, e.g. an
    in-process LocalCluster in tests."""
    if executor not in EXECUTORS:
        raise ValueError(f"unknown executor {executor!r}; allowed: {', '.join(EXECUTORS)}")
    if workers < 1:
        raise ValueError(f"--workers must be >= 1, got {workers}")
    if not cells:
        return
    if executor == "dask":
        run_dask(config, cells, on_result, scheduler=scheduler, workers=workers, client=client)
    elif workers == 1:
        run_sequential(config, cells, on_result)
    else:
        run_pool(config, cells, on_result, workers)
