"""Sample grids: per family, the baseline's 16 digits above each variant's, same latents."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.annotations import as_flag
from bench.loading import ResultsDir, compact_setting_labels
from bench.plots.style import plt, save


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

    PNG only: the content is raster, an SVG would only wrap the same pixels.
    """
    ok = run.ok()[run.ok()["family"] == family]
    if ok.empty:
        return []
    cells = ok[ok["seed"] == ok["seed"].min()]
    cells = cells.iloc[np.argsort((cells["method"] != "baseline").to_numpy(), kind="stable")]
    rows, unreadable = [], 0
    collapsed = as_flag(cells["collapsed"]).to_numpy()
    for (_, cell), setting, flat in zip(cells.iterrows(), compact_setting_labels(cells),
                                        collapsed, strict=True):
        images = load_images(run.path / "samples" / f"{cell['cell_id']}.npz")
        if images is None:
            unreadable += 1
            continue
        flag = "\nCOLLAPSED (same output for every z)" if flat else ""
        rows.append((f"{cell['method']}\n{setting}{flag}", image_row(images)))
    if not rows:
        return []
    width = 12.0
    height = width * rows[0][1].shape[0] / rows[0][1].shape[1]
    figure, axes = plt.subplots(len(rows), 1, squeeze=False,
                                figsize=(width, max(1.0, (height + 0.25) * len(rows))))
    for ax, (label, strip) in zip(axes[:, 0], rows, strict=True):
        ax.imshow(strip.squeeze(-1) if strip.shape[-1] == 1 else strip, cmap="gray",
                  vmin=0.0, vmax=1.0, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
    note = f"; {unreadable} sample file(s) missing or unreadable" if unreadable else ""
    figure.suptitle(f"{family}: samples of seed {int(cells['seed'].min())}, same latents in "
                    f"every row{note}")
    return save(figure, out / f"samples_{family}", formats=("png",))
