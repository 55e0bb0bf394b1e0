"""The `genbench` command: argparse subcommands that parse, call the library and print."""
from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from bench.run.cli import cmd_run, preflight

# The reporting modules add their own subcommands when they are installed alongside.
REPORTING_MODULES = ("bench.plots", "bench.tables.build", "bench.compare.cli",
                     "bench.history.store", "bench.report.html", "bench.run.sensitivity")
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for a Ctrl-C

DESCRIPTION = ("genbench measures what pruning, quantization and distillation do to the "
               "quality, size and speed of generative models (GAN, VAE, recurrent VAE, DDPM), "
               "over a grid of settings that resumes where it stopped.")
EPILOG = ("Start with `genbench presets` and `genbench run --preset smoke`; then `genbench "
          "report results/smoke`. `genbench COMMAND --help` describes each command.")
RUN_DESCRIPTION = """\
Run every cell (family x seed x compression setting) of a sweep that DIR does not hold yet.

Resume: rerunning the same command skips the cells already saved in DIR (failed ones too,
unless --rerun-failed); a sweep extended with new settings runs only the new cells. DIR
belongs to one sweep, the one named by the config's `name` (a preset's name, or `name = ...`
in your TOML file), as recorded in DIR/run.json: a run of a sweep with another name into it is
refused (exit 2, nothing written) unless --force, which deletes that sweep's outputs (results,
cells, samples, plots, tables, report) first. Files genbench does not write are left alone.

Ctrl-C stops the run within a couple of seconds, workers included, and says how many cells
were saved; rerun the same command to resume. Exit codes: 0 the sweep ran (failed cells are
rows with status=failed, not errors), 2 bad input, 130 interrupted.
"""


def cmd_validate(args: argparse.Namespace) -> int:
    from bench.config.sweep import load_config
    from bench.run.grid import expand

    config = load_config(args.file)
    if not args.no_data:
        preflight(config)
    cells = expand(config)
    trainings = len(config.families) * len(config.seeds)
    print(f"{args.file}: ok: {len(cells)} cells, {trainings} baseline trainings "
          f"({len(config.families)} families x {len(config.seeds)} seeds)")
    return 0


def cmd_presets(args: argparse.Namespace) -> int:
    from bench.config.sweep import load_preset, preset_names

    for name in preset_names():
        print(f"{name:10s} {load_preset(name).description}")
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad argument as one ValueError line (exit 2), not usage + error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise ValueError(f"{self.prog}: {message} (see {self.prog} --help)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="genbench", description=DESCRIPTION, epilog=EPILOG)
    parser.add_argument("--debug", action="store_true",
                        help="show the traceback of an error (accepted anywhere on the line)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = sub.add_parser("run", help="run a sweep into an output directory (resumes one)",
                         description=RUN_DESCRIPTION,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("--preset", metavar="NAME",
                     help="a shipped sweep (list them with `genbench presets`)")
    run.add_argument("--config", metavar="FILE", help="your sweep, a TOML file")
    run.add_argument("--out", metavar="DIR", help="output directory (default results/<name>)")
    run.add_argument("--workers", type=int, default=1, metavar="N",
                     help="cells run in N spawned local processes (or N Dask workers); "
                          "torch threads per worker = cores / N (default 1: this process)")
    run.add_argument("--executor", choices=("local", "dask"), default="local",
                     help="local: this machine (default); dask: a Dask cluster, a local one "
                          "of --workers processes unless --scheduler names one")
    run.add_argument("--scheduler", metavar="ADDR",
                     help="address of a running Dask scheduler (tcp://HOST:8786), with "
                          "--executor dask; refused in one line if it does not answer in 5 s")
    run.add_argument("--rerun-failed", action="store_true",
                     help="run the cells that failed in an earlier run again (by default a "
                          "failed cell counts as done; the summary says how many failed)")
    run.add_argument("--force", action="store_true",
                     help="run every cell again, even those done; over a directory that holds "
                          "another sweep, delete that sweep's outputs first")
    run.add_argument("--wait", action="store_true",
                     help="if another genbench run is writing into DIR, wait for it to end "
                          "(default: refuse)")
    run.add_argument("--device", choices=("cpu", "cuda", "auto"),
                     help="measure latency on this device only (overrides the config's "
                          "devices; auto = cpu and cuda, cuda rows skipped without a GPU)")
    run.add_argument("--data-root", metavar="DIR",
                     help="root of the torchvision datasets (overrides the config's data_root)")
    run.add_argument("--download", action="store_true",
                     help="allow torchvision to download a dataset missing under --data-root")
    run.add_argument("--quiet", action="store_true",
                     help="no progress bar (a line per finished cell and the summary remain)")
    run.add_argument("--retrain-features", action="store_true",
                     help="train the FID-proxy feature net here instead of using the shipped "
                          "one (overrides the config's features key; other cell ids)")
    run.add_argument("--wait-idle", action="store_true",
                     help="before each latency measurement, wait until other processes leave "
                          "the CPU idle ([latency] idle_busy_cores); cell ids do not change")
    run.add_argument("--wait-idle-timeout", type=float, metavar="S",
                     help="longest wait per measurement (default [latency] wait_idle_timeout_s)")
    run.set_defaults(func=cmd_run)
    validate = sub.add_parser("validate", help="check a sweep config without running it",
                              description="Check a sweep TOML file and count its cells and "
                                          "baseline trainings, without running anything.")
    validate.add_argument("file", metavar="FILE", help="the sweep TOML file to check")
    validate.add_argument("--no-data", action="store_true",
                          help="check the file only: skip loading the dataset, and so the "
                               "checks against it and this machine (data root present, [eval] "
                               "sizes within the test set, CUDA present when asked for, batch "
                               "sizes that fit in memory); for a machine without the data")
    validate.set_defaults(func=cmd_validate)
    presets = sub.add_parser("presets", help="list the shipped presets",
                             description="List the shipped presets with their descriptions.")
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
    try:
        from bench.run.process import load_plugins, quiet_torch_logs

        if not debug:
            quiet_torch_logs()  # import-time notes would break the one-line error contract
        load_plugins()
        parser = build_parser()
        args = parser.parse_args(argv)
        return int(args.func(args) or 0)
    except KeyboardInterrupt as exc:  # bench.run.cli.Interrupted says what was saved
        print(f"genbench: {exc or 'interrupted'}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except ValueError as exc:  # ConfigError, InputError, DataRootError, LockedError, ...
        if debug:
            raise
        from bench.config.validate import ConfigError

        # A ConfigError lists every problem of a file, one line each; others are one line.
        lines = str(exc).splitlines() if isinstance(exc, ConfigError) else [str(exc)]
        for line in lines or [""]:
            print(f"genbench: error: {' '.join(line.split())}", file=sys.stderr)
        return EXIT_BAD_INPUT


def entry() -> None:
    """The program (`genbench`, `python -m bench`): main(), then exit with its code."""
    code = main()
    if code == EXIT_INTERRUPTED:
        # Everything is on disk (atomic writes) and the workers are stopped: skip the
        # interpreter's teardown of torch, which takes seconds on a loaded machine, so that
        # Ctrl-C gives the prompt back at once.
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    raise SystemExit(code)


if __name__ == "__main__":
    entry()
