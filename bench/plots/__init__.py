"""`genbench plot DIR`: trade-off plots and sample grids under DIR/plots/ (PNG and SVG)."""
from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from bench.loading import ResultsDir, load_results_dir
from bench.plots.pareto import pareto_mask

__all__ = ["make_plots", "pareto_mask", "register_cli"]


def make_plots(run: ResultsDir, out: Path | None = None) -> list[Path]:
    """Every plot of a run (default out: DIR/plots); returns the files written."""
    # matplotlib loads here, not when the CLI imports this module to register `plot`.
    from bench.plots.grids import plot_sample_grid
    from bench.plots.tradeoff import plot_tradeoffs

    out = Path(out) if out is not None else run.path / "plots"
    written = []
    for family in pd.unique(run.ok()["family"]):
        written += plot_tradeoffs(run, family, out)
        written += plot_sample_grid(run, family, out)
    return written


def _run_cli(args: argparse.Namespace) -> int:
    for path in make_plots(load_results_dir(args.dir)):
        print(path)
    return 0


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("plot", help="trade-off plots and sample grids: DIR/plots/")
    parser.add_argument("dir", help="results directory written by `genbench run`")
    parser.set_defaults(func=_run_cli)
