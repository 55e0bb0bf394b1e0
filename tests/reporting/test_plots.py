"""Plots: Pareto front on known points, relative change with intervals, trade-off figures (markers
only, legend outside the data, noise bands, seeds in words), sample grids without an empty band,
family order, and stale plot files removed."""
from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_rgba
from synthetic_results import UNSTABLE_SPEEDUP

from bench.plots import draw_plots, make_plots, pareto_mask, remove_stale
from bench.plots.grids import image_row, stack_rows
from bench.plots.pareto import front_mask
from bench.plots.style import COLORS, seeds_in_words
from bench.plots.tradeoff import relative_change, tradeoff_points
from bench.results import schema
from bench.results.families import FAMILY_ORDER, ordered_families, ordered_methods
from bench.results.loading import load_results_dir

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


def _front_points() -> pd.DataFrame:
    # baseline (1, 0); "slow" is slower but better (would dominate the baseline on speed);
    # "dead" is collapsed with the best numbers; "fast" is faster and worse.
    return pd.DataFrame({
        "method": ["baseline", "slow", "dead", "fast"],
        "speedup_mean": [1.0, 0.9, 3.0, 1.5], "compression_ratio_mean": [1.0, 4.0, 9.0, 2.0],
        "fid_proxy_rel": [0.0, -5.0, -50.0, 10.0], "collapsed": [False, False, True, False]})


def test_front_on_speed_only_among_variants_not_slower_than_the_baseline() -> None:
    points = _front_points()
    assert front_mask(points, "speedup", "fid_proxy").tolist() == [True, False, False, True]
    # On size the slower variant competes (and dominates the baseline); collapsed never does.
    assert front_mask(points, "compression_ratio", "fid_proxy").tolist() == [
        False, True, False, False]


def test_family_and_method_order() -> None:
    assert ordered_families(["vae", "zeta", "gan", "ddpm", "rvae", "alpha", "gan"]) == [
        *FAMILY_ORDER, "alpha", "zeta"]
    assert ordered_methods(["quant", "baseline", "prune", "quant"]) == [
        "baseline", "quant", "prune"]
    assert [seeds_in_words(n) for n in (1, 3)] == ["1 seed", "3 seeds"]


def test_image_row_places_images_side_by_side() -> None:
    images = np.stack([np.full((1, 2, 3), v, np.float32) for v in (0.0, 0.5, 1.0)])
    strip = image_row(images, gap=1)
    assert strip.shape == (2, 3 * 3 + 2, 1)
    assert strip[0, 4, 0] == 0.5 and strip[0, 3, 0] == 1.0  # gap column is white


def test_stack_rows_places_strips_one_above_the_other() -> None:
    strips = [np.full((3, 5, 1), v, np.float32) for v in (0.0, 0.5)]
    mosaic, centres = stack_rows(strips, gap=2)
    assert mosaic.shape == (8, 5, 1) and centres == [1.0, 6.0]
    assert (mosaic[3:5] == 1).all() and (mosaic[5:] == 0.5).all()


def test_plots_of_every_family(reported_run: tuple[Path, Path]) -> None:
    results_dir = reported_run[1]  # the report drew these with make_plots
    written = sorted((results_dir / "plots").iterdir())
    names = [p.name for p in written]
    assert names == ["samples_gan.png", "samples_vae.png", "tradeoff_gan.png",
                     "tradeoff_gan.svg", "tradeoff_vae.png", "tradeoff_vae.svg"]
    for path in written:
        if path.suffix == ".png":
            assert path.read_bytes()[:8] == PNG_MAGIC
    svg = (results_dir / "plots" / "tradeoff_vae.svg").read_text()
    texts = "".join(ElementTree.fromstring(svg).itertext())
    # The failed vae cell is counted; the ELBO panel exists for vae, not for gan.
    assert "1 failed/skipped cell(s) excluded" in texts
    assert "ELBO" in texts and "Pareto front" in texts
    assert "real-vs-real floor at n=1000 (mean ± std)" in texts
    assert "noise: baseline 95% interval" in texts and "change vs baseline" in texts
    assert "lower is better" in texts and "speedup noise: baseline timed against itself" in texts
    assert "0 unstable latency row(s)" in texts and "collapsed" not in texts
    assert "mean over 3 seeds" in texts and "seed(s)" not in texts
    gan_texts = "".join(ElementTree.fromstring(
        (results_dir / "plots" / "tradeoff_gan.svg").read_text()).itertext())
    assert "ELBO" not in gan_texts and "0 failed/skipped" in gan_texts
    assert "1 unstable latency row(s) give no speedup" in gan_texts
    assert "collapsed (same output for every z)" in gan_texts


def _drawn_figure(monkeypatch, module, run, family: str, tmp_path: Path):
    """The figure `module` would save for family (not written)."""
    drawn = {}

    def keep(figure, stem, formats=("png", "svg")):
        figure.canvas.draw()  # the layout engine places the legend
        drawn["figure"] = figure
        return []

    monkeypatch.setattr(module, "save", keep)
    getattr(module, "plot_tradeoffs" if "tradeoff" in module.__name__ else
            "plot_sample_grid")(run, family, tmp_path)
    return drawn["figure"]


def test_tradeoff_markers_only_and_legend_outside_the_data(make_results_dir, monkeypatch,
                                                           tmp_path) -> None:
    import bench.plots.tradeoff as tradeoff

    run = load_results_dir(make_results_dir(seeds=[0]))
    figure = _drawn_figure(monkeypatch, tradeoff, run, "gan", tmp_path)
    try:
        assert "mean over 1 seed," in figure.get_suptitle()
        legend = figure.legends[0]
        labels = [t.get_text() for t in legend.get_texts()]
        for method in ("prune_magnitude", "quant", "uncompressed baseline", "Pareto front",
                       "collapsed (same output for every z)", "noise: baseline 95% interval"):
            assert any(label.startswith(method) for label in labels), method
        box = legend.get_window_extent()
        for ax in figure.axes:
            assert not box.overlaps(ax.get_window_extent())  # below the panels, not on data
            # No line joins a method's points: no drawn line in a method's colour (the front's
            # step line is black, the reference lines grey or dark green).
            joined = [line for line in ax.get_lines() if line.get_linestyle() not in ("None", "")
                      and len(line.get_xdata()) > 1
                      and to_rgba(line.get_color()) in {to_rgba(c) for c in COLORS}]
            assert joined == []
    finally:
        tradeoff.plt.close(figure)


def test_tradeoff_points_take_no_speedup_from_unstable_rows(make_results_dir) -> None:
    run = load_results_dir(make_results_dir(unstable=True))
    points = tradeoff_points(run, "gan").set_index(["method", "bits"])
    four_bit = points.loc[("quant", "4")]
    assert four_bit["speedup_n"] == 2  # the unstable seed is left out
    assert four_bit["speedup_mean"] == pytest.approx(1 / 0.7)
    assert four_bit["speedup_mean"] != pytest.approx((2 / 0.7 + UNSTABLE_SPEEDUP) / 3)
    assert points["collapsed"].tolist() == [False, False, True, False, False]
    # The baseline's speedup is 1 by definition; what it measured against itself is noise.
    base = points.loc[("baseline", "")]
    assert base["speedup_mean"] == 1.0 and base["speedup_self"] == pytest.approx(1.0)
    # Error bars: the paired delta interval of 8-bit (2% +/- 4%/sqrt(3) and seed spread).
    eight = points.loc[("quant", "8")]
    assert eight["fid_proxy_rel"] == pytest.approx(2.0)
    assert eight["fid_proxy_rel_low"] < 0 < eight["fid_proxy_rel_high"]


def test_relative_change_uses_the_paired_delta() -> None:
    columns = ["method", "mean", "low", "high", "delta_mean", "delta_low", "delta_high"]

    def points(rows):
        frame = pd.DataFrame(rows, columns=columns).assign(dataset="mnist5k")
        return frame.rename(columns={c: f"fid_proxy_{c}" for c in columns[1:]})

    rel = relative_change(points([("baseline", 20, 19, 21, np.nan, np.nan, np.nan),
                                  ("quant", 22, 21, 23, 2, 1, 3),                 # paired
                                  ("prune", 30, 28, 32, np.nan, np.nan, np.nan)]), "fid_proxy")
    np.testing.assert_allclose(rel.to_numpy(), [[0, -5, 5], [10, 5, 15], [50, 40, 60]])
    # A negative baseline (ELBO): the change is relative to |b|, so worse stays negative.
    rel = relative_change(points([("baseline", -100, -103, -97, 0, 0, 0),
                                  ("quant", -105, -108, -102, -5, -7, -3)]), "fid_proxy")
    np.testing.assert_allclose(rel.to_numpy(), [[0, -3, 3], [-5, -7, -3]])


def test_sample_grid_labels_the_collapsed_row(make_results_dir, monkeypatch, tmp_path) -> None:
    import bench.plots.grids as grids

    figure = _drawn_figure(monkeypatch, grids, load_results_dir(make_results_dir()), "gan",
                           tmp_path)
    labels = [t.get_text() for t in figure.axes[0].get_yticklabels()]
    grids.plt.close(figure)
    assert labels[0] == "baseline\nfp32" and len(labels) == 5
    assert [label for label in labels if "COLLAPSED" in label] == [
        "prune_magnitude\nglobal, sparsity 0.9\nCOLLAPSED (same output for every z)"]


def _longest_white_run(png: Path) -> int:
    import matplotlib.image

    pixels = matplotlib.image.imread(png)[..., :3]
    white = (pixels > 0.99).all(axis=(1, 2))
    longest = current = 0
    for row_is_white in white:
        current = current + 1 if row_is_white else 0
        longest = max(longest, current)
    return longest


@pytest.mark.parametrize("seeds", [[0], [0, 1, 2]])
def test_sample_grid_has_no_empty_band(make_results_dir, tmp_path, seeds) -> None:
    # Many rows (the default preset has 21): the old figure left a band of blank inches.
    run_dir = make_results_dir(seeds=seeds)
    results = pd.read_csv(run_dir / schema.RESULTS_FILE, dtype=str)
    copies = [results]
    for copy in range(3):  # 4 x 5 rows of the same samples (ids differ, files copied)
        extra = results.copy()
        extra["cell_id"] = extra["cell_id"] + f"c{copy}"
        for cid in results["cell_id"]:
            source = run_dir / "samples" / f"{cid}.npz"
            if source.exists():
                (run_dir / "samples" / f"{cid}c{copy}.npz").write_bytes(source.read_bytes())
        copies.append(extra)
    pd.concat(copies).to_csv(run_dir / schema.RESULTS_FILE, index=False)
    from bench.plots.grids import plot_sample_grid

    (png,) = plot_sample_grid(load_results_dir(run_dir), "gan", tmp_path)
    # The white gaps between rows are a few pixels and the title line about 50: no band.
    assert _longest_white_run(png) < 60


def test_plots_follow_the_family_order_and_stale_plots_go(make_results_dir) -> None:
    run_dir = make_results_dir()
    results = pd.read_csv(run_dir / schema.RESULTS_FILE, dtype=str)
    results.sort_values("family", ascending=False, kind="stable").to_csv(
        run_dir / schema.RESULTS_FILE, index=False)  # vae rows first
    plots = run_dir / "plots"
    plots.mkdir()
    for name in ("tradeoff_rvae.png", "samples_old.png", "history_fid_proxy.png"):
        (plots / name).write_bytes(PNG_MAGIC)
    drawn = draw_plots(load_results_dir(run_dir))
    assert [p.name for p in drawn["Trade-offs"]] == [
        "tradeoff_gan.png", "tradeoff_gan.svg", "tradeoff_vae.png", "tradeoff_vae.svg"]
    # Plots of kinds the results no longer produce are gone; history plots are not ours.
    assert not (plots / "tradeoff_rvae.png").exists()
    assert not (plots / "samples_old.png").exists()
    assert (plots / "history_fid_proxy.png").exists()
    # Without vae results, the vae plots go too.
    results[results["family"] == "gan"].to_csv(run_dir / schema.RESULTS_FILE, index=False)
    names = sorted(p.name for p in make_plots(load_results_dir(run_dir)))
    assert sorted(p.name for p in plots.glob("*_vae*")) == []
    assert names == ["samples_gan.png", "tradeoff_gan.png", "tradeoff_gan.svg"]


def test_remove_stale_only_touches_its_kinds(tmp_path) -> None:
    for name in ("tradeoff_a.png", "tradeoff_b.png", "notes.txt", "history_x.png"):
        (tmp_path / name).write_text("x")
    removed = remove_stale(tmp_path, [tmp_path / "tradeoff_a.png"])
    assert [p.name for p in removed] == ["tradeoff_b.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "history_x.png", "notes.txt", "tradeoff_a.png"]


def test_log_axis_minor_labels_do_not_crowd_the_major_ones() -> None:
    from bench.plots.tradeoff import SPARSE

    labels = [SPARSE(v, 0) for v in (0.2, 0.3, 0.4, 0.5, 0.9, 2, 3, 4, 5, 9, 20, 0.03)]
    assert labels == ["0.2", "0.3", "", "0.5", "", "2", "3", "", "5", "", "20", "0.03"]
