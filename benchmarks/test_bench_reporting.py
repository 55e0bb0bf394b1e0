"""Speed of the reporting layer on a synthetic 2-family x 5-variant x 3-seed results directory.

Run: .venv/bin/python -m pytest benchmarks/test_bench_reporting.py --benchmark-only
(`python -m` puts the repository root on sys.path for the shared synthetic-results writer.)
"""
from __future__ import annotations

from pathlib import Path

import pytest

from bench.compare.cli import compare_runs
from bench.history.store import append_run
from bench.results.loading import load_results_dir
from bench.tables.build import family_tables, to_latex, to_markdown
from tests.reporting.synthetic_results import write_results_dir


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_results_dir(tmp_path_factory.mktemp("bench") / "run", cuda=True)


def test_load(benchmark, run_dir: Path) -> None:
    run = benchmark(load_results_dir, run_dir)
    assert len(run.results) == 30


def test_tables(benchmark, run_dir: Path) -> None:
    run = load_results_dir(run_dir)

    def render() -> int:
        return sum(len(to_markdown(t)) + len(to_latex(t)) for t in family_tables(run).values())

    assert benchmark(render) > 0


def test_compare(benchmark, run_dir: Path) -> None:
    run = load_results_dir(run_dir)
    report = benchmark(compare_runs, run, run)
    assert report.exit_code == 0


def test_history_append(benchmark, run_dir: Path, tmp_path: Path) -> None:
    store = tmp_path / "history.csv"
    assert benchmark(append_run, run_dir, store) > 0
