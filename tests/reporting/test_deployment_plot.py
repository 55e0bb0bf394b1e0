"""The latency-against-MACs plot: a panel per batch size, a line per (model, runtime) through
the baselines in MAC order, hollow markers for compressed cells, nothing from unstable rows."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from synthetic_deployment import EAGER_P50, MACS, write_synthetic_run

from bench.plots.deployment import draw_deployment, plot_deployment, plotted_rows
from bench.results.loading import load_results_dir


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory):
    return load_results_dir(write_synthetic_run(tmp_path_factory.mktemp("plot") / "run"))


def _lines(ax) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return {line.get_gid(): (np.asarray(line.get_xdata()), np.asarray(line.get_ydata()))
            for line in ax.get_lines() if line.get_gid()}


def test_panels_lines_and_points(run) -> None:
    import matplotlib.pyplot as plt

    figure = draw_deployment(plotted_rows(run, "cpu"), "cpu")
    try:
        axes = figure.axes
        assert [ax.get_title() for ax in axes] == ["batch 1", "batch 64"]
        assert all(ax.get_xscale() == "log" and ax.get_yscale() == "log" for ax in axes)
        batch1, batch64 = _lines(axes[0]), _lines(axes[1])
        assert set(batch1) == {"gan|eager", "gan|compiled", "gan|onnxruntime",
                               "gan|onnxruntime_int8"}
        # The baselines of gan (width 1) and gan_w2 (width 2), joined in MAC order.
        x, y = batch1["gan|eager"]
        np.testing.assert_allclose(x * 1e6, [MACS[("gan", 0)], MACS[("gan_w2", 0)]])  # MMACs
        np.testing.assert_allclose(y, [EAGER_P50[("gan", 1)] / 1.01, EAGER_P50[("gan_w2", 1)]])
        # gan's baseline on onnxruntime at batch 64 is unstable: only gan_w2's point remains.
        x, y = batch64["gan|onnxruntime"]
        np.testing.assert_allclose(x * 1e6, [MACS[("gan_w2", 0)]])
        np.testing.assert_allclose(y, [EAGER_P50[("gan_w2", 64)] / 1.1])
        variants = [sorted(c.get_gid() for c in ax.collections) for ax in axes]
        assert variants == [["gan|compiled|variants", "gan|eager|variants",
                             "gan|onnxruntime_int8|variants"],
                            ["gan|compiled|variants", "gan|eager|variants"]]
        offsets = next(c for c in axes[0].collections
                       if c.get_gid() == "gan|onnxruntime_int8|variants").get_offsets()
        expected = [[MACS[("gan", 1)] / 1e6, EAGER_P50[("gan", 1)] / 4]]
        np.testing.assert_allclose(offsets, expected)
        labels = {t.get_text() for t in figure.legends[0].get_texts()}
        assert {"eager", "compiled", "onnxruntime", "onnxruntime_int8", "gan",
                "compressed"} <= labels
    finally:
        plt.close(figure)


def test_files_written_and_drawn_by_genbench_plot(run) -> None:
    from bench.plots import draw_plots

    written = plot_deployment(run, run.path / "plots")
    assert [p.name for p in written] == ["deployment_latency_cpu.png",
                                         "deployment_latency_cpu.svg"]
    assert all(p.stat().st_size > 1000 for p in written)
    svg = written[1].read_text()
    assert "4 unstable, skipped or failed rows not drawn" in svg
    drawn = draw_plots(run)
    assert [p.name for p in drawn["Deployment"]] == [p.name for p in written]


def test_no_plot_without_runtimes(tmp_path: Path) -> None:
    from synthetic_results import write_results_dir

    run = load_results_dir(write_results_dir(tmp_path / "eager"))
    assert plot_deployment(run, tmp_path / "plots") == []
