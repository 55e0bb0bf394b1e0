"""Fixtures of the reporting tests: synthetic results directories in tmp_path."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from synthetic_results import write_results_dir


@pytest.fixture
def make_results_dir(tmp_path: Path) -> Callable[..., Path]:
    def make(name: str = "run", **kwargs) -> Path:
        return write_results_dir(tmp_path / name, **kwargs)
    return make


@pytest.fixture
def results_dir(make_results_dir: Callable[..., Path]) -> Path:
    return make_results_dir()


@pytest.fixture(scope="session")
def reported_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(baseline, current), both with one unstable latency row, where current's gan 8-bit FID
    is 30% worse and `genbench report current --baseline baseline` has run once (it drew the
    plots and tables itself): plot and report tests read these files, so the slow drawing
    happens once per session."""
    import pandas as pd

    from bench.report.html import build_report
    from bench.results import schema

    root = tmp_path_factory.mktemp("reported")
    baseline = write_results_dir(root / "baseline", unstable=True)
    current = write_results_dir(root / "current", unstable=True)
    results = pd.read_csv(current / schema.RESULTS_FILE)
    worse = results["cell_id"].str.startswith("gan3s")
    results.loc[worse, "fid_proxy"] *= 1.3
    results.to_csv(current / schema.RESULTS_FILE, index=False)
    build_report(current, baseline)
    return baseline, current
