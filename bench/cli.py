"""The `genbench` command: thin argparse subcommands (run, validate, presets, reporting)."""
from __future__ import annotations

import argparse
import dataclasses
import importlib
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

# The reporting modules add their own subcommands when they are installed alongside.
REPORTING_MODULES = ("bench.plots", "bench.tables", "bench.compare", "bench.history",
                     "bench.report", "bench.sensitivity")
EXIT_BAD_INPUT = 2


def _config(args: argparse.Namespace):
    from bench.config import load_config, load_preset

    if bool(args.preset) == bool(args.config):
        raise ValueError("give exactly one of --preset NAME or --config FILE")
    config = load_preset(args.preset) if args.preset else load_config(args.config)
    overrides = {}
    if args.data_root is not None:
        overrides["data_root"] = args.data_root
    if args.download:
        overrides["download"] = True
    if args.device:
        overrides["devices"] = (args.device,)
    if getattr(args, "retrain_features", False):  # `genbench run` only
        overrides["features"] = "retrain"
    return dataclasses.replace(config, **overrides) if overrides else config


def _preflight(config) -> None:
    """Everything that can be checked before any output exists: data root, machine, sizes."""
    from bench.config import check_machine
    from bench.runner import load_dataset

    check_machine(config, load_dataset(config))


def cmd_run(args: argparse.Namespace) -> int:
    from bench.sweep import run_sweep

    config = _config(args)
    out = Path(args.out) if args.out else Path("results") / config.name
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} exists and is not a directory")
    if args.workers < 1:
        raise ValueError(f"--workers must be >= 1, got {args.workers}")
    if args.scheduler and args.executor != "dask":
        raise ValueError("--scheduler needs --executor dask")
    if args.wait_idle_timeout is not None and not args.wait_idle:
        raise ValueError("--wait-idle-timeout needs --wait-idle")
    if args.wait_idle:
        if args.workers > 1 and not args.scheduler:
            # Sibling workers on this machine are "other processes": every wait would time out.
            raise ValueError("--wait-idle needs --workers 1 (parallel workers on this machine "
                             "keep it busy themselves)")
        timeout = ({} if args.wait_idle_timeout is None
                   else {"wait_idle_timeout_s": args.wait_idle_timeout})
        config = dataclasses.replace(
            config, latency=dataclasses.replace(config.latency, wait_idle=True, **timeout))
    _preflight(config)
    summary = run_sweep(config, out, executor=args.executor, workers=args.workers,
                        scheduler=args.scheduler, rerun_failed=args.rerun_failed,
                        force=args.force, wait=args.wait, progress=not args.quiet,
                        preset=args.preset)
    print(f"{out}: {summary.cells} cells, {summary.reused} already done, {summary.ran} run "
          f"({summary.ok} ok, {summary.failed} failed) in {summary.seconds:.1f} s; "
          f"{summary.unstable} of {summary.latency_rows} latency rows unstable")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from bench.config import load_config
    from bench.grid import expand

    config = load_config(args.file)
    if not args.no_data:
        _preflight(config)
    cells = expand(config)
    trainings = len(config.families) * len(config.seeds)
    print(f"{args.file}: ok: {len(cells)} cells, {trainings} baseline trainings "
          f"({len(config.families)} families x {len(config.seeds)} seeds)")
    return 0


def cmd_presets(args: argparse.Namespace) -> int:
    from bench.config import load_preset, preset_names

    for name in preset_names():
        print(f"{name:10s} {load_preset(name).description}")
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad argument as one ValueError line (exit 2), not usage + error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise ValueError(f"{self.prog}: {message} (see {self.prog} --help)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="genbench", description=__doc__)
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a sweep (resumes into an existing --out)")
    run.add_argument("--preset", help="a shipped preset (genbench presets)")
    run.add_argument("--config", help="a sweep TOML file")
    run.add_argument("--out", help="output directory (default results/<name>)")
    run.add_argument("--workers", type=int, default=1, help="local processes or Dask workers")
    run.add_argument("--executor", choices=("local", "dask"), default="local")
    run.add_argument("--scheduler", help="address of an existing Dask scheduler")
    run.add_argument("--rerun-failed", action="store_true", help="redo failed cells too")
    run.add_argument("--force", action="store_true", help="redo every cell")
    run.add_argument("--wait", action="store_true", help="wait for another run's lock")
    run.add_argument("--device", choices=("cpu", "cuda", "auto"), help="override devices")
    run.add_argument("--data-root", help="root of torchvision datasets")
    run.add_argument("--download", action="store_true", help="allow dataset download")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.add_argument("--retrain-features", action="store_true",
                     help="train the FID-proxy feature net here instead of using the shipped "
                          "one (overrides the config's features key; other cell ids)")
    run.add_argument("--wait-idle", action="store_true",
                     help="before each latency measurement, wait until other processes leave "
                          "the CPU idle ([latency] idle_busy_cores); cell ids do not change")
    run.add_argument("--wait-idle-timeout", type=float, metavar="S",
                     help="longest wait per measurement (default [latency] wait_idle_timeout_s)")
    run.set_defaults(func=cmd_run)
    validate = sub.add_parser("validate", help="check a sweep config without running it")
    validate.add_argument("file")
    validate.add_argument("--no-data", action="store_true", help="skip loading the dataset")
    validate.set_defaults(func=cmd_validate)
    presets = sub.add_parser("presets", help="list the shipped presets")
    presets.set_defaults(func=cmd_presets)
    for name in REPORTING_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue  # not in this checkout: its subcommand is simply absent
        register = getattr(module, "register_cli", None)
        if register is not None:
            register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]  # accepted anywhere on the line
    if not debug:
        # Importing torchao makes torch log a CUDA_HOME warning on CPU machines and a pytree
        # deprecation note; both are noise here and would break the one-line error contract.
        for name in ("torch.utils.cpp_extension", "torch.utils._pytree"):
            logging.getLogger(name).setLevel(logging.ERROR)
    try:
        from bench.runner import load_plugins

        load_plugins()
        parser = build_parser()
        args = parser.parse_args(argv)
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("genbench: interrupted", file=sys.stderr)
        return 130
    except ValueError as exc:  # ConfigError, InputError, DataRootError, LockedError, ...
        if debug:
            raise
        from bench.validate import ConfigError

        # A ConfigError lists every problem of a file, one line each; others are one line.
        lines = str(exc).splitlines() if isinstance(exc, ConfigError) else [str(exc)]
        for line in lines or [""]:
            print(f"genbench: error: {' '.join(line.split())}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    raise SystemExit(main())
