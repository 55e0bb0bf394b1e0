"""Sample grids: per family, the baseline's 16 digits above each variant's, same latents."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.plots.style import plt, save
from bench.results.annotations import as_flag
from bench.results.labels import compact_setting_labels
from bench.results.loading import ResultsDir


def load_images(path: Path) -> np.ndarray | None:
    """The (N, C, H, W) float array in [0, 1] of a samples npz, or None when unusable."""
    try:
        with np.load(path, allow_pickle=False) as data:
            images = np.asarray(data["images"], dtype=np.float32)
    except (OSError, KeyError, ValueError):
        return None
    return images if images.ndim == 4 and images.shape[1] in (1, 3) else None


def image_row(images: np.ndarray, gap: int = 1) -> np.ndarray:
    """(N, C, H, W) -> one (H, N*(W+gap)-gap, C) strip, images side by side."""
    n, c, h, w = images.shape
    strip = np.ones((h, n * (w + gap) - gap, c), dtype=np.float32)
    for i in range(n):
        strip[:, i * (w + gap): i * (w + gap) + w] = images[i].transpose(1, 2, 0)
    return np.clip(strip, 0.0, 1.0)


def plot_sample_grid(run: ResultsDir, family: str, out: Path) -> list[Path]:
    """plots/samples_<family>.png: a row per ok cell of the family's first seed, baseline first.

    One image of all rows (white gaps between them) in an axes sized to its aspect ratio, the
    title right above it: no empty band whatever the number of rows. PNG only: the content is
    raster, an SVG would only wrap the same pixels.
    """
    ok = run.ok()[run.ok()["family"] == family]
    if ok.empty:
        return []
    cells = ok[ok["seed"] == ok["seed"].min()]
    cells = cells.iloc[np.argsort((cells["method"] != "baseline").to_numpy(), kind="stable")]
    labels, strips, unreadable = [], [], 0
    collapsed = as_flag(cells["collapsed"]).to_numpy()
    for (_, cell), setting, flat in zip(cells.iterrows(), compact_setting_labels(cells),
                                        collapsed, strict=True):
        images = load_images(run.path / "samples" / f"{cell['cell_id']}.npz")
        if images is None:
            unreadable += 1
            continue
        flag = "\nCOLLAPSED (same output for every z)" if flat else ""
        labels.append(f"{cell['method']}\n{setting}{flag}")
        strips.append(image_row(images))
    if not strips:
        return []
    mosaic, centres = stack_rows(strips)
    note = f"; {unreadable} sample file(s) missing or unreadable" if unreadable else ""
    title = (f"{family}: samples of seed {int(cells['seed'].min())}, same latents in every "
             f"row{note}")
    return save(_mosaic_figure(mosaic, centres, labels, title), out / f"samples_{family}",
                formats=("png",))


def stack_rows(strips: list[np.ndarray], gap: int = 4) -> tuple[np.ndarray, list[float]]:
    """Strips of equal width, one above the other with `gap` white pixel rows between them ->
    (the (H, W, C) mosaic, each strip's centre row)."""
    height, width, channels = strips[0].shape
    mosaic = np.ones((len(strips) * (height + gap) - gap, width, channels), dtype=np.float32)
    for i, strip in enumerate(strips):
        mosaic[i * (height + gap): i * (height + gap) + height] = strip
    return mosaic, [i * (height + gap) + (height - 1) / 2 for i in range(len(strips))]


def _mosaic_figure(mosaic: np.ndarray, centres: list[float], labels: list[str],
                   title: str) -> plt.Figure:
    # Inches: a column for the row labels, the image at its aspect ratio, a line of title.
    label_w, image_w, title_h = 3.4, 9.0, 0.45
    image_h = image_w * mosaic.shape[0] / mosaic.shape[1]
    figure = plt.figure(figsize=(label_w + image_w + 0.1, image_h + title_h))
    width, height = figure.get_size_inches()
    ax = figure.add_axes((label_w / width, 0.0, image_w / width, image_h / height))
    ax.imshow(mosaic.squeeze(-1) if mosaic.shape[-1] == 1 else mosaic, cmap="gray",
              vmin=0.0, vmax=1.0, interpolation="nearest", aspect="equal")
    ax.set_xticks([])
    ax.set_yticks(centres, labels, fontsize=8)
    ax.tick_params(axis="y", length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    figure.text(0.5, 1.0 - 0.5 * title_h / height, title, ha="center", va="center",
                fontsize=11)
    return figure
