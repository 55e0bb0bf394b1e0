"""`genbench run`: check everything that can be checked first, run the sweep, say what happened."""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
from pathlib import Path
from typing import Any

from bench.results.schema import STATUS_FAILED


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a run; the message says what was saved (the CLI prints it, exit 130)."""


def sweep_config(args: argparse.Namespace) -> Any:
    """The SweepConfig of --preset or --config with the command line's overrides."""
    from bench.config.sweep import load_config, load_preset

    if bool(args.preset) == bool(args.config):
        raise ValueError("give exactly one of --preset NAME or --config FILE")
    config = load_preset(args.preset) if args.preset else load_config(args.config)
    overrides: dict[str, Any] = {}
    if args.data_root is not None:
        overrides["data_root"] = args.data_root
    if args.download:
        overrides["download"] = True
    if args.device:
        overrides["devices"] = (args.device,)
    if getattr(args, "retrain_features", False):  # `genbench run` only
        overrides["features"] = "retrain"
    return dataclasses.replace(config, **overrides) if overrides else config


def preflight(config: Any) -> None:
    """Everything that can be checked before any output exists: data root, machine, sizes."""
    from bench.config.sweep import check_machine
    from bench.run.runner import load_dataset

    check_machine(config, load_dataset(config))


def _checked_options(args: argparse.Namespace, config: Any) -> Any:
    """Refuse contradictory flags; the config with --wait-idle applied."""
    if args.workers < 1:
        raise ValueError(f"--workers must be >= 1, got {args.workers}")
    if args.scheduler and args.executor != "dask":
        raise ValueError("--scheduler needs --executor dask")
    if args.wait_idle_timeout is not None and not args.wait_idle:
        raise ValueError("--wait-idle-timeout needs --wait-idle")
    if not args.wait_idle:
        return config
    if args.workers > 1 and not args.scheduler:
        # Sibling workers on this machine are "other processes": every wait would time out.
        raise ValueError("--wait-idle needs --workers 1 (parallel workers on this machine "
                         "keep it busy themselves)")
    timeout = ({} if args.wait_idle_timeout is None
               else {"wait_idle_timeout_s": args.wait_idle_timeout})
    return dataclasses.replace(
        config, latency=dataclasses.replace(config.latency, wait_idle=True, **timeout))


def grid_statuses(config: Any, out: Path) -> dict[str, int]:
    """{status: cells} over the records in `out` of the cells of `config`'s grid."""
    from bench.results.store import ResultStore
    from bench.run.grid import expand

    return ResultStore(out).status_counts([cell.cell_id for cell in expand(config)])


def interrupted_message(config: Any, out: Path) -> str:
    from bench.run.grid import expand

    saved = sum(grid_statuses(config, out).values())
    return (f"interrupted: {saved} of {len(expand(config))} cells saved; "
            "rerun the same command to resume")


def cmd_run(args: argparse.Namespace) -> int:
    from bench.run.sweep import run_sweep
    from bench.run.takeover import check_takeover

    config = _checked_options(args, sweep_config(args))
    out = Path(args.out) if args.out else Path("results") / config.name
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} exists and is not a directory")
    try:
        check_takeover(out, config.name, args.force)  # again under the run lock
        preflight(config)
        with contextlib.ExitStack() as stack:
            client = None
            if args.scheduler:  # before DIR exists: an unreachable one leaves nothing behind
                from bench.run.dask_executor import connect

                client = stack.enter_context(connect(args.scheduler))
            summary = run_sweep(config, out, executor=args.executor, workers=args.workers,
                                scheduler=args.scheduler, rerun_failed=args.rerun_failed,
                                force=args.force, wait=args.wait, progress=not args.quiet,
                                preset=args.preset, client=client)
    except KeyboardInterrupt:
        raise Interrupted(interrupted_message(config, out)) from None
    line = (f"{out}: {summary.cells} cells, {summary.reused} already done, {summary.ran} run "
            f"({summary.ok} ok, {summary.failed} failed) in {summary.seconds:.1f} s; "
            f"{summary.unstable} of {summary.latency_rows} latency rows unstable")
    failed = grid_statuses(config, out).get(STATUS_FAILED, 0)
    if failed:  # reused failed cells count as done: say so, or a resume hides them
        line += f"; {failed} failed; `--rerun-failed` retries them"
    print(line)
    return 0
