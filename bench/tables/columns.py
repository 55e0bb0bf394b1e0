"""The columns of a results table and what each header says (device, threads, batch, scale)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench.results import schema
from bench.results.loading import ResultsDir, measured_latency_rows

# A KID column whose median |value| is below this prints x1000 (torch-fidelity's KID of 128-d
# normalised features is ~1e-3; ours is not normalised and is ~10-100: printed as it is).
KID_RESCALE_BELOW = 0.1


@dataclass(frozen=True)
class Column:
    """One metric column. header: its name without context; source: the results (or joined
    latency) column; direction_of: its DIRECTIONS key; scale: applied before printing;
    status: the latency status column that says why a latency figure is missing; device: the
    latency device ("" for result columns); exact: deterministic (size, MACs), so a point value
    has no noise; integer: a count, printed without decimals."""

    header: str
    source: str
    direction_of: str
    scale: float = 1.0
    status: str = ""
    device: str = ""
    exact: bool = False
    integer: bool = False

    @property
    def direction(self) -> int:
        return schema.DIRECTIONS[self.direction_of]


COLUMNS = [
    Column("Size (MB)", "size_file_bytes", "size_file_bytes", 1e-6, exact=True),
    Column("Ratio", "compression_ratio", "compression_ratio", exact=True),
    Column("MACs (M)", "macs", "macs", 1e-6, exact=True),
    Column("p50 CPU (ms)", "latency_p50_ms", "latency_p50_ms", status="latency_status",
           device="cpu"),
    Column("p50 CUDA (ms)", "latency_p50_ms_cuda", "latency_p50_ms",
           status="latency_status_cuda", device="cuda"),
    Column("Speedup", "speedup", "speedup", status="latency_status", device="cpu"),
    Column("FID-proxy", "fid_proxy", "fid_proxy"),
    Column("KID", "kid_proxy", "kid_proxy"),
    Column("ELBO (nats)", "elbo_nats", "elbo_nats"),
    Column("-ELBO (bits/dim)", "elbo_bpd", "elbo_bpd"),
    # Class statistics of the samples under the feature network; older results lack them.
    Column("Classes", "classes_present", "classes_present", integer=True),
    Column("Conf.", "mean_confidence", "mean_confidence"),
]
# A normalised unit replaces the per-image one where the results have it (not both).
_REPLACES = {"elbo_bpd": "elbo_nats"}


def shown_columns(joined: pd.DataFrame) -> list[Column]:
    """The columns with a value (or an unstable latency row) in the family's joined rows."""
    shown = [c for c in COLUMNS if c.source in joined and (
        pd.to_numeric(joined[c.source], errors="coerce").notna().any()
        or (c.status and (joined[c.status] == schema.STATUS_UNSTABLE).any()))]
    replaced = {_REPLACES[c.source] for c in shown if c.source in _REPLACES}
    return [c for c in shown if c.source not in replaced]


def display_scale(column: Column, means: np.ndarray) -> float:
    """The column's scale, KID x1000 where its values are small (see KID_RESCALE_BELOW)."""
    if column.source != "kid_proxy":
        return column.scale
    finite = np.abs(means[np.isfinite(means)])
    return 1e3 if finite.size and float(np.median(finite)) < KID_RESCALE_BELOW else 1.0


def latency_batch_threads(run: ResultsDir, device: str,
                          cell_ids: pd.Series) -> tuple[int, list[int]]:
    """(batch size, sorted thread counts) of the latency rows behind a family's figures on
    `device`: the largest batch measured there, as with_latency joins them."""
    rows = measured_latency_rows(run, device)
    if rows.empty:
        return 0, []
    rows = rows[rows["cell_id"].isin(cell_ids)]
    threads = pd.to_numeric(rows["threads"], errors="coerce").dropna()
    batch = pd.to_numeric(rows["batch_size"], errors="coerce").max()
    return (int(batch) if np.isfinite(batch) else 0), sorted({int(t) for t in threads})


def _threads_text(threads: list[int]) -> str:
    if not threads:
        return ""
    count = str(threads[0]) if len(threads) == 1 else f"{threads[0]}-{threads[-1]}"
    return f", {count} thread{'s' if threads[-1] > 1 else ''}"


def header(column: Column, scale: float, batch: int = 0, threads: list[int] | None = None) -> str:
    """'p50 CPU (ms, batch 64, 2 threads)', 'Speedup (CPU, batch 64)', 'KID (x1000)'."""
    if column.source == "kid_proxy" and scale != 1.0:
        return f"KID (x{scale:g})"
    if not column.device or not batch:
        return column.header
    device = column.device.upper()
    context = f"batch {batch}" + (_threads_text(threads or []) if column.device == "cpu" else "")
    if column.source == "speedup":
        return f"Speedup ({device}, {context})"
    return f"p50 {device} (ms, {context})"
