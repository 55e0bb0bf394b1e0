"""What a run says beside its numbers, made readable: floors with their spread, cell notes,
collapsed outputs, unstable latency rows (for tables, plots and the report)."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from bench.results import schema
from bench.results.loading import ResultsDir

# A note's list longer than this is cut ("... (+N more)"): a layer list must not fill a page.
MAX_LISTED = 8


def as_flag(values: pd.Series) -> pd.Series:
    """A boolean column as written to CSV (True/False, 1/0, true/false, empty) -> bool; empty
    and unreadable values are False."""
    text = values.astype(str).str.strip().str.lower()
    return text.isin(["true", "1", "1.0", "yes"])


def floor_summary(run: ResultsDir) -> dict[str, tuple[float, float]]:
    """{metric: (mean, spread)} of the real-vs-real floor: run.json `floors` (means) and
    `floors_spread` (std over resamples at the cells' n_samples; NaN where it is absent)."""
    spreads = run.run.get("floors_spread") or {}
    out = {}
    for metric, mean in run.floors.items():
        spread = spreads.get(metric) if isinstance(spreads, dict) else None
        out[metric] = (mean, float(spread) if isinstance(spread, int | float) else math.nan)
    return out


def n_samples(run: ResultsDir) -> int | None:
    """The quality metrics' sample size from the resolved config (None when not recorded)."""
    config = run.run.get("config")
    settings = config.get("eval") if isinstance(config, dict) else None
    value = settings.get("n_samples") if isinstance(settings, dict) else None
    return int(value) if isinstance(value, int | float) else None


def unstable_latency_rows(run: ResultsDir) -> int:
    """How many latency rows stayed unstable after every re-measurement."""
    return int((run.latency["status"] == schema.STATUS_UNSTABLE).sum())


def _readable(value: Any) -> str:
    if isinstance(value, list):
        shown = ", ".join(_readable(v) for v in value[:MAX_LISTED])
        more = len(value) - MAX_LISTED
        return f"{shown} ... (+{more} more)" if more > 0 else (shown or "none")
    if isinstance(value, dict):
        items = [f"{k}={_readable(v)}" for k, v in value.items()]
        more = len(items) - MAX_LISTED
        return ", ".join(items[:MAX_LISTED]) + (f" ... (+{more} more)" if more > 0 else "")
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def notes_text(notes: str, skip: tuple[str, ...] = ()) -> str:
    """A cell's `notes` JSON object as one readable line: 'simulated layers: fc, deconv1;
    collapsed: true' (keys in `skip` left out). Text that is not a JSON object is returned as
    it is."""
    notes = (notes or "").strip()
    if not notes:
        return ""
    try:
        parsed = json.loads(notes)
    except json.JSONDecodeError:
        return notes
    if not isinstance(parsed, dict):
        return _readable(parsed)
    return "; ".join(f"{str(k).replace('_', ' ')}: {_readable(v)}" for k, v in parsed.items()
                     if k not in skip and v not in (None, "", [], {}))


def cell_remarks(row: pd.Series | dict[str, Any]) -> str:
    """Everything worth saying about one cell: collapsed output (with its latent std) and its
    notes. Empty when there is nothing to say."""
    parts, skip = [], ()
    if as_flag(pd.Series([row.get("collapsed", "")])).iloc[0]:
        skip = ("collapsed",)  # said once, with the measured std
        std = pd.to_numeric(pd.Series([row.get("latent_std")]), errors="coerce").iloc[0]
        detail = f" (per-pixel std over latents {std:.2g})" if math.isfinite(std) else ""
        parts.append(f"COLLAPSED: the same output for every latent{detail}")
    text = notes_text(str(row.get("notes", "") or ""), skip)
    if text:
        parts.append(text)
    return "; ".join(parts)


def speedup_noise(run: ResultsDir, family: str, device: str = "cpu") -> tuple[int, list[float]]:
    """(batch size, speedups) of the family's baseline timed against itself (run.json
    `speedup_noise`) on `device` at the largest batch measured there, ok rows only: the run's
    speedup noise. (0, []) when the run has none."""
    entries = [e for e in run.run.get("speedup_noise") or [] if isinstance(e, dict)
               and e.get("family") == family and e.get("device") == device
               and e.get("status") == schema.STATUS_OK
               and isinstance(e.get("speedup"), int | float)]
    if not entries:
        return 0, []
    largest = max(int(e.get("batch_size") or 0) for e in entries)
    return largest, [float(e["speedup"]) for e in entries
                     if int(e.get("batch_size") or 0) == largest]


@dataclass(frozen=True)
class NoiseBand:
    """The speedup noise of a family on a device: the baseline timed against itself gave
    `measured` (at `batches`); a speedup s is within noise when 1/factor <= s <= factor, with
    factor = exp(max_i |log s_i|), the largest deviation from 1 either way (a self-speedup of
    0.94 says 1.06 was as likely)."""

    measured: tuple[float, ...]
    batches: tuple[int, ...]
    factor: float

    @property
    def low(self) -> float:
        return 1.0 / self.factor

    @property
    def high(self) -> float:
        return self.factor


def speedup_noise_band(run: ResultsDir, family: str, device: str = "cpu") -> NoiseBand | None:
    """The family's NoiseBand on `device` from run.json `speedup_noise`, over every batch size
    and every measured row (ok or unstable: an unstable self-timing is evidence of noise too);
    None when the run has none."""
    entries = [e for e in run.run.get("speedup_noise") or [] if isinstance(e, dict)
               and e.get("family") == family and e.get("device") == device
               and e.get("status") in (schema.STATUS_OK, schema.STATUS_UNSTABLE)
               and isinstance(e.get("speedup"), int | float) and e["speedup"] > 0]
    if not entries:
        return None
    measured = tuple(float(e["speedup"]) for e in entries)
    batches = tuple(sorted({int(e.get("batch_size") or 0) for e in entries}))
    return NoiseBand(measured, batches, math.exp(max(abs(math.log(s)) for s in measured)))
