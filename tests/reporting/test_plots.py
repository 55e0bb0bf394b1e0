"""Plots: Pareto front on known points, relative change with intervals, trade-off and
sample-grid files with their content."""
from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import pandas as pd
import pytest
from synthetic_results import UNSTABLE_SPEEDUP

from bench.loading import load_results_dir
from bench.plots import pareto_mask
from bench.plots.grids import image_row
from bench.plots.tradeoff import relative_change, tradeoff_points

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(("x", "y", "y_direction", "front"), [
    # ratio up, FID down: (1,20) baseline, (2,21), (4,20.5) dominates (2,21), (8,30), (3,40).
    ([1, 2, 4, 8, 3], [20, 21, 20.5, 30, 40], -1, [True, False, True, True, False]),
    # ELBO: higher is better; (2,-100) dominates (1,-101) and ties nobody.
    ([1, 2, 3], [-101, -100, -120], +1, [False, True, True]),
    # exact duplicates dominate nobody: both stay on the front.
    ([1, 1], [5, 5], -1, [True, True]),
    # NaN never on the front and never dominates.
    ([1, np.nan, 2], [5, 1, 6], -1, [True, False, True]),
])
def test_pareto_mask_known_points(x, y, y_direction, front) -> None:
    assert pareto_mask(np.array(x, float), np.array(y, float), +1, y_direction).tolist() == front


def test_pareto_front_is_invariant_to_order() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.random(30), rng.random(30)
    order = rng.permutation(30)
    assert (pareto_mask(x, y)[order] == pareto_mask(x[order], y[order])).all()


def test_image_row_places_images_side_by_side() -> None:
    images = np.stack([np.full((1, 2, 3), v, np.float32) for v in (0.0, 0.5, 1.0)])
    strip = image_row(images, gap=1)
    assert strip.shape == (2, 3 * 3 + 2, 1)
    assert strip[0, 4, 0] == 0.5 and strip[0, 3, 0] == 1.0  # gap column is white


def test_plots_of_every_family(reported_run: tuple[Path, Path]) -> None:
    results_dir = reported_run[1]  # the report drew these with make_plots
    written = sorted((results_dir / "plots").iterdir())
    names = [p.name for p in written]
    assert names == ["samples_gan.png", "samples_vae.png", "tradeoff_gan.png",
                     "tradeoff_gan.svg", "tradeoff_vae.png", "tradeoff_vae.svg"]
    for path in written:
        assert path.parent == results_dir / "plots"
        if path.suffix == ".png":
            assert path.read_bytes()[:8] == PNG_MAGIC
    svg = (results_dir / "plots" / "tradeoff_vae.svg").read_text()
    ElementTree.fromstring(svg)  # well-formed
    texts = "".join(ElementTree.fromstring(svg).itertext())
    # The failed vae cell is counted; the ELBO panel exists for vae, not for gan.
    assert "1 failed/skipped cell(s) excluded" in texts
    assert "ELBO" in texts and "Pareto front" in texts
    assert "real-vs-real floor at n=1000 (mean ± std)" in texts
    assert "baseline 95% interval" in texts and "change vs baseline (%, lower is better)" in texts
    assert "0 unstable latency row(s)" in texts and "collapsed" not in texts
    gan_texts = "".join(ElementTree.fromstring(
        (results_dir / "plots" / "tradeoff_gan.svg").read_text()).itertext())
    assert "ELBO" not in gan_texts and "0 failed/skipped" in gan_texts
    assert "1 unstable latency row(s) give no speedup" in gan_texts
    assert "collapsed (same output for every z)" in gan_texts


def _points(rows: list[tuple]) -> pd.DataFrame:
    columns = ["method", "mean", "low", "high", "delta_mean", "delta_low", "delta_high"]
    frame = pd.DataFrame(rows, columns=columns).assign(dataset="mnist5k")
    return frame.rename(columns={c: f"fid_proxy_{c}" for c in columns[1:]})


def test_relative_change_uses_the_paired_delta() -> None:
    points = _points([("baseline", 20, 19, 21, np.nan, np.nan, np.nan),
                      ("quant", 22, 21, 23, 2, 1, 3),                 # paired: tighter
                      ("prune", 30, 28, 32, np.nan, np.nan, np.nan)])  # no delta: values
    rel = relative_change(points, "fid_proxy")
    np.testing.assert_allclose(rel.to_numpy(), [[0, -5, 5], [10, 5, 15], [50, 40, 60]])
    # A negative baseline (ELBO): the change is relative to |b|, so worse stays negative.
    points = _points([("baseline", -100, -103, -97, 0, 0, 0), ("quant", -105, -108, -102,
                                                                -5, -7, -3)])
    rel = relative_change(points, "fid_proxy")
    np.testing.assert_allclose(rel.to_numpy(), [[0, -3, 3], [-5, -7, -3]])


def test_tradeoff_points_take_no_speedup_from_unstable_rows(make_results_dir) -> None:
    run = load_results_dir(make_results_dir(unstable=True))
    points = tradeoff_points(run, "gan").set_index(["method", "bits"])
    four_bit = points.loc[("quant", "4")]
    assert four_bit["speedup_n"] == 2  # the unstable seed is left out
    assert four_bit["speedup_mean"] == pytest.approx(1 / 0.7)
    assert four_bit["speedup_mean"] != pytest.approx((2 / 0.7 + UNSTABLE_SPEEDUP) / 3)
    assert points["collapsed"].tolist() == [False, False, True, False, False]
    # Error bars: the paired delta interval of 8-bit (2% +/- 4%/sqrt(3) and seed spread).
    eight = points.loc[("quant", "8")]
    assert eight["fid_proxy_rel"] == pytest.approx(2.0)
    assert eight["fid_proxy_rel_low"] < 0 < eight["fid_proxy_rel_high"]


def test_sample_grid_labels_the_collapsed_row(make_results_dir, monkeypatch, tmp_path) -> None:
    import bench.plots.grids as grids

    drawn = {}

    def keep(figure, stem, formats):  # what would be saved: the row labels
        drawn["labels"] = [ax.get_ylabel() for ax in figure.axes]
        grids.plt.close(figure)
        return []

    monkeypatch.setattr(grids, "save", keep)
    grids.plot_sample_grid(load_results_dir(make_results_dir()), "gan", tmp_path)
    flagged = [label for label in drawn["labels"] if "COLLAPSED" in label]
    assert flagged == ["prune_magnitude\nglobal, sparsity 0.9\nCOLLAPSED (same output for "
                       "every z)"]
