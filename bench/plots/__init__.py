"""`genbench plot DIR`: trade-off plots, sample grids, training curves and per-layer sensitivity
under DIR/plots/ (PNG and SVG), redrawn from the current results every time."""
from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from bench.plots.pareto import pareto_mask
from bench.results.families import ordered_families
from bench.results.loading import ResultsDir, load_results_dir

__all__ = ["PLOT_KINDS", "draw_plots", "make_plots", "pareto_mask", "register_cli"]

# Section title -> file name prefix of the plots `draw_plots` owns. Files of these kinds that the
# current results no longer produce are deleted: a page must never show a stale plot. (History
# plots are `genbench history`'s and are left alone.)
PLOT_KINDS = {"Trade-offs": "tradeoff_", "Sample grids": "samples_",
              "Training curves": "training_", "Per-layer sensitivity": "sensitivity",
              "Deployment": "deployment_"}
SENSITIVITY_FILE = "sensitivity.csv"


def _sensitivity(run: ResultsDir, out: Path) -> list[Path]:
    """Heatmaps of DIR/sensitivity.csv by bench.plots.sensitivity, where both exist."""
    path = run.path / SENSITIVITY_FILE
    if not path.is_file():
        return []
    try:
        from bench.plots.sensitivity import plot_sensitivity
    except ImportError:  # drawn only where the adaptive-compression module is installed
        return []
    return [Path(p) for p in plot_sensitivity(pd.read_csv(path), out)]


def draw_plots(run: ResultsDir, out: Path | None = None) -> dict[str, list[Path]]:
    """Every plot of a run, by section (PLOT_KINDS order; default out: DIR/plots). Older files of
    the same kinds that this drawing did not write are removed."""
    # matplotlib loads here, not when the CLI imports this module to register `plot`.
    from bench.plots.curves import plot_training_curves
    from bench.plots.deployment import plot_deployment
    from bench.plots.grids import plot_sample_grid
    from bench.plots.tradeoff import plot_tradeoffs

    out = Path(out) if out is not None else run.path / "plots"
    drawn: dict[str, list[Path]] = {title: [] for title in PLOT_KINDS}
    for family in ordered_families(run.ok()["family"]):
        drawn["Trade-offs"] += plot_tradeoffs(run, family, out)
        drawn["Sample grids"] += plot_sample_grid(run, family, out)
    drawn["Training curves"] = plot_training_curves(run.path, out)
    drawn["Per-layer sensitivity"] = _sensitivity(run, out)
    drawn["Deployment"] = plot_deployment(run, out)  # latency against MACs per runtime
    remove_stale(out, [p for paths in drawn.values() for p in paths])
    return drawn


def remove_stale(out: Path, written: list[Path]) -> list[Path]:
    """Delete the files in `out` of the PLOT_KINDS prefixes that are not in `written`."""
    keep = {Path(p).resolve() for p in written}
    stale = [p for p in sorted(out.glob("*")) if p.is_file()
             and p.name.startswith(tuple(PLOT_KINDS.values())) and p.resolve() not in keep]
    for path in stale:
        path.unlink()
    return stale


def make_plots(run: ResultsDir, out: Path | None = None) -> list[Path]:
    """Every plot of a run (default out: DIR/plots); returns the files written."""
    return [path for paths in draw_plots(run, out).values() for path in paths]


def _run_cli(args: argparse.Namespace) -> int:
    for path in make_plots(load_results_dir(args.dir)):
        print(path)
    return 0


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "plot", help="redraw the trade-off plots, sample grids, training curves and (with "
                     "runtimes) latency against MACs of a results directory into DIR/plots/ "
                     "(stale plots removed)")
    parser.add_argument("dir", help="results directory written by `genbench run`")
    parser.set_defaults(func=_run_cli)
