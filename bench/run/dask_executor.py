"""The Dask executor: connect to a scheduler (or start a local cluster) and run the grid there."""
from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import torch

from bench.config.sweep import SweepConfig
from bench.errors import InputError
from bench.run.grid import Cell, train_keys
from bench.run.process import load_plugins, quiet_torch_logs
from bench.run.runner import (
    CellOutcome,
    feature_task,
    one_line,
    run_cell,
    train_task,
)

# A reachable scheduler answers in milliseconds; an unreachable one would otherwise be retried
# for distributed's default 30 s before the user hears of it.
CONNECT_TIMEOUT_S = 5.0
KILL_TIMEOUT_S = 0.5  # a local worker still busy this long after Ctrl-C is killed


def connect(scheduler: str, timeout_s: float = CONNECT_TIMEOUT_S) -> Any:
    """A distributed.Client of the scheduler at `scheduler`, or InputError in one line."""
    from distributed import Client

    try:
        return Client(scheduler, timeout=timeout_s)
    except Exception as exc:  # noqa: BLE001 - OSError, TimeoutError, ValueError (bad address)
        raise InputError(
            f"--scheduler {scheduler}: cannot reach a Dask scheduler there ({one_line(exc)}; "
            f"waited at most {timeout_s:g} s); check the address (tcp://HOST:8786) and that "
            "`dask scheduler` runs there, or leave out --scheduler to start a local cluster"
        ) from None


def _init_dask_worker(threads: int | None) -> None:
    """threads: those of a worker of our own local cluster (None: a cluster we only use)."""
    quiet_torch_logs()
    if threads is not None:
        torch.set_num_threads(threads)
        # Ctrl-C reaches our local workers too (one process group): this process alone
        # handles it. (client.run calls this on the worker's event loop, its main thread.)
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, signal.SIG_IGN)
    load_plugins()


@contextlib.contextmanager
def _local_cluster(workers: int, log: Callable[[str], None]) -> Iterator[Any]:
    """A LocalCluster of `workers` processes; says where its dashboard is (bokeh serves it)."""
    from distributed import Client, LocalCluster

    dashboard = importlib.util.find_spec("bokeh") is not None
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                           dashboard_address=":0" if dashboard else None)
    client = Client(cluster)
    where = (f"dashboard {client.dashboard_link}" if dashboard
             else "no dashboard (pip install bokeh, or genbench's [dist] extra, for one)")
    log(f"dask: local cluster of {workers} worker process(es); {where}")
    try:
        yield client
    except BaseException:
        # Ctrl-C: a graceful close waits 4 s for each busy worker before killing it, and
        # Dask logs every cancelled task and closed connection on the way.
        with contextlib.suppress(Exception):
            client.run(silence_dask_logs)
        silence_dask_logs()  # the scheduler and the nannies live in this process
        with contextlib.suppress(Exception):
            cluster.sync(_kill_workers, list(cluster.workers.values()))
        raise
    finally:
        client.close()
        cluster.close()


def silence_dask_logs() -> None:
    """No more Dask log lines from this process (the run is being torn down)."""
    names = [n for n in logging.root.manager.loggerDict if n.split(".")[0] == "distributed"]
    for name in ["distributed", *names]:
        logging.getLogger(name).setLevel(logging.CRITICAL + 1)


async def _kill_workers(nannies: list[Any]) -> None:
    import asyncio

    await asyncio.gather(*(nanny.close(timeout=KILL_TIMEOUT_S) for nanny in nannies),
                         return_exceptions=True)


def _log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def run_dask(config: SweepConfig, cells: list[Cell], on_result: Callable[[CellOutcome], None],
             scheduler: str | None = None, workers: int = 1, client: Any = None,
             log: Callable[[str], None] = _log) -> None:
    """Dask distributed: training futures are arguments of their cells' tasks, so the graph has
    the dependencies; results come back to this client, which writes them (no shared disk).
    `client`: an existing distributed.Client (the caller closes it)."""
    with contextlib.ExitStack() as stack:
        threads = None
        if client is None and scheduler:
            client = stack.enter_context(connect(scheduler))
        elif client is None:
            threads = max(1, (os.cpu_count() or 1) // workers)
            client = stack.enter_context(_local_cluster(workers, log))
        if scheduler:
            log(f"dask: scheduler {scheduler}; dashboard {client.dashboard_link}")
        # An existing cluster's workers need the user's registries too.
        client.run(_init_dask_worker, threads)
        _submit_and_collect(client, config, cells, on_result, cancel=threads is None)


def _submit_and_collect(client: Any, config: SweepConfig, cells: list[Cell],
                        on_result: Callable[[CellOutcome], None], cancel: bool = True) -> None:
    from distributed import as_completed

    from bench.run.executors import failed_outcome

    features = client.submit(feature_task, config, pure=False, key="genbench-features")
    trained = {key: client.submit(train_task, config, key, pure=False,
                                  key=f"genbench-train-{'-'.join(map(str, key))}")
               for key in train_keys(cells)}
    futures = {client.submit(run_cell, config, cell, trained[cell.train_key], features,
                             pure=False, key=f"genbench-cell-{cell.cell_id}"): cell
               for cell in cells}
    try:
        for future in as_completed(futures):
            cell = futures[future]
            try:
                on_result(future.result())
            except Exception as exc:  # noqa: BLE001 - a lost worker or an unpicklable result
                on_result(failed_outcome(cell, f"dask task failed: {one_line(exc)}"))
            future.release()
    except BaseException:
        # Ctrl-C or an error here: the scheduler would go on running the cells for nobody
        # (a local cluster is closed instead, which is quicker and quieter).
        if cancel:
            client.cancel([*futures, *trained.values(), features], force=True)
        raise
