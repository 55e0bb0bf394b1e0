"""Executors: run the grid's tasks sequentially, in a spawned process pool, or on Dask.

Every executor gets the cells still to do and calls `on_result(outcome)` in the client process
as each cell ends; training and the feature net are dependencies of the cells that need them,
computed once per (dataset, family, seed) and once per dataset.
"""
from __future__ import annotations

import concurrent.futures as cf
import contextlib
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

import torch

from bench.config.sweep import SweepConfig
from bench.run.grid import Cell, train_keys
from bench.run.process import load_plugins, quiet_torch_logs
from bench.run.runner import (
    CellOutcome,
    FeatureOutcome,
    TrainOutcome,
    _method_configs,
    feature_task,
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
    with contextlib.suppress(Exception):  # its setting columns, so the row says which it was
        _method_configs(cell, row)
    return CellOutcome({"cell_id": cell.cell_id, "cell": cell.to_dict(), "result": row,
                        "latency": [], "latency_samples": [], "runtimes": list(cell.runtimes),
                        "extends": not cell.eager})


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
    # Ctrl-C reaches the whole process group: the client alone handles it (it stops the
    # workers), so a worker neither prints a KeyboardInterrupt traceback nor delays the exit.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    quiet_torch_logs()
    # Workers share the cores: each gets its slice, so N workers do not oversubscribe them.
    torch.set_num_threads(threads)
    load_plugins()


@contextlib.contextmanager
def _sigint_blocked_in_children() -> Iterator[None]:
    """Processes started inside inherit SIGINT blocked (a signal mask survives fork and exec),
    so a Ctrl-C while a worker is still importing torch, before _init_worker ignores it, does
    not print a traceback there. This thread's own Ctrl-C is delivered when the block ends."""
    if not hasattr(signal, "pthread_sigmask"):  # Windows: no signal masks
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _stop_pool(pool: cf.ProcessPoolExecutor) -> None:
    """Stop now (Ctrl-C, an error): cancel what is queued and terminate the workers instead of
    waiting for their cells to end (shutdown(wait=True) would take as long as the longest)."""
    processes = list((getattr(pool, "_processes", None) or {}).values())  # 3.14: terminate_workers
    pool.shutdown(wait=False, cancel_futures=True)
    _ignore_resource_sharer_eof()
    for process in processes:
        process.terminate()
    for process in processes:
        process.join(timeout=5)


def _ignore_resource_sharer_eof() -> None:
    """A worker terminated while it fetched a shared tensor's file descriptor from this process
    leaves multiprocessing's resource-sharer thread ("Thread-N (_serve)") an EOFError, which
    would print a traceback; expected when we terminate workers, so not printed."""
    previous = threading.excepthook

    def hook(args: threading.ExceptHookArgs) -> None:
        name = args.thread.name if args.thread is not None else ""
        if not (issubclass(args.exc_type, EOFError | ConnectionError) and "_serve" in name):
            previous(args)

    threading.excepthook = hook


def run_pool(config: SweepConfig, cells: list[Cell], on_result: OnResult, workers: int) -> None:
    """A spawn-context process pool (fork breaks CUDA, asv#1565); threads = cores // workers."""
    threads = max(1, (os.cpu_count() or 1) // workers)
    context = multiprocessing.get_context("spawn")
    pool = cf.ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker,
                                  initargs=(threads,))

    def submit(fn: Callable[..., Any], *args: Any) -> cf.Future:
        with _sigint_blocked_in_children():  # a submit may start a worker process
            return pool.submit(fn, *args)

    try:
        _pool_tasks(config, cells, on_result, submit)
    except BaseException:
        _stop_pool(pool)
        raise
    pool.shutdown()


def _pool_tasks(config: SweepConfig, cells: list[Cell], on_result: OnResult,
                submit: Callable[..., cf.Future]) -> None:
    feature_future = submit(feature_task, config)
    train_futures = {key: submit(train_task, config, key) for key in train_keys(cells)}
    features = _result(feature_future, lambda msg: FeatureOutcome(error=msg))
    pending: dict[cf.Future, Cell] = {}
    by_key: dict[tuple, list[Cell]] = {}
    for cell in cells:
        by_key.setdefault(cell.train_key, []).append(cell)
    for future in cf.as_completed(train_futures.values()):
        key = next(k for k, f in train_futures.items() if f is future)
        trained = _result(future, lambda msg, key=key: TrainOutcome(key, error=msg))
        for cell in by_key[key]:
            pending[submit(run_cell, config, cell, trained, features)] = cell
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


def _whole_on_ctrl_c(on_result: OnResult) -> OnResult:
    """on_result with Ctrl-C held back until it returns: a cell's record, the CSVs and run.json
    are written together, so an interrupted run's files agree on what was saved."""

    def guarded(outcome: CellOutcome) -> None:
        if threading.current_thread() is not threading.main_thread():
            on_result(outcome)  # signal handlers can only be set in the main thread
            return
        received: list[int] = []
        previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
        try:
            on_result(outcome)
        finally:
            signal.signal(signal.SIGINT, previous)
        if received and callable(previous):
            previous(signal.SIGINT, None)  # default_int_handler: KeyboardInterrupt now

    return guarded


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
    on_result = _whole_on_ctrl_c(on_result)
    if executor == "dask":
        from bench.run.dask_executor import run_dask

        run_dask(config, cells, on_result, scheduler=scheduler, workers=workers, client=client)
    elif workers == 1:
        run_sequential(config, cells, on_result)
    else:
        run_pool(config, cells, on_result, workers)
