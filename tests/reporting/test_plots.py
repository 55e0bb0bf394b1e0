"""Plots: Pareto front on known points, trade-off and sample-grid files with their content."""
from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import pytest

from bench.plots import pareto_mask
from bench.plots.grids import image_row

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
    assert "ELBO" in texts and "Pareto front" in texts and "real-vs-real floor" in texts
    gan_texts = "".join(ElementTree.fromstring(
        (results_dir / "plots" / "tradeoff_gan.svg").read_text()).itertext())
    assert "ELBO" not in gan_texts and "0 failed/skipped" in gan_texts
