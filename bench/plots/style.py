"""Shared matplotlib setup: headless backend, one marker/line style per method, saving."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: CI and servers have no display
import matplotlib.pyplot as plt  # noqa: E402

# Text stays text in SVG: smaller files, searchable labels (tests read titles from them).
matplotlib.rcParams["svg.fonttype"] = "none"

MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*", "<", ">"]
LINESTYLES = ["-", "--", "-.", ":"]
# tab10 without grey (index 7): grey is the noise bands' colour.
COLORS = [matplotlib.colormaps["tab10"](i) for i in (0, 1, 2, 3, 4, 5, 6, 8, 9)]

# Human axis labels with units, keyed by column.
AXIS_LABELS = {
    "compression_ratio": "compression ratio (fp32 file bytes / file bytes, log)",
    "speedup": "measured CPU speedup (baseline p50 / variant p50, log)",
    "fid_proxy": "FID-proxy (feature-net Frechet distance, lower is better)",
    "elbo_nats": "ELBO (nats per image, higher is better)",
    "kid_proxy": "KID-proxy (lower is better)",
    "size_file_bytes": "file size (bytes)",
    "latency_p50_ms": "latency p50 (ms)",
}


def method_style(index: int) -> dict[str, str]:
    """Marker and line style of the index-th method (lines: history plots)."""
    return {"marker": MARKERS[index % len(MARKERS)],
            "linestyle": LINESTYLES[(index // len(MARKERS)) % len(LINESTYLES)]}


def marker_style(index: int) -> dict[str, str]:
    """Marker and colour of the index-th method (markers only: trade-off plots). Index 0 is the
    baseline (drawn as a black star), so variants start at the first colour."""
    return {"marker": MARKERS[index % len(MARKERS)], "color": COLORS[index % len(COLORS)]}


def seeds_in_words(count: int) -> str:
    """'1 seed', '3 seeds'."""
    return f"{count} seed" if count == 1 else f"{count} seeds"


def save(figure: plt.Figure, stem: Path, formats: tuple[str, ...] = ("png", "svg")) -> list[Path]:
    """Write stem.png (and .svg), close the figure, return the paths."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        path = stem.with_suffix(f".{fmt}")
        # bbox "tight" only where no layout engine already fits the labels (it draws twice).
        tight = None if figure.get_layout_engine() is not None else "tight"
        figure.savefig(path, dpi=110, bbox_inches=tight, metadata=_metadata(fmt))
        paths.append(path)
    plt.close(figure)
    return paths


def _metadata(fmt: str) -> dict[str, None]:
    # No creation date/software stamps: the same results give byte-identical files.
    return {"Date": None} if fmt == "svg" else {"Software": None}
