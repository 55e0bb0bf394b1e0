"""deployment.md: per family, each compression on each runtime, its speedup against eager fp32 and
against the best fp32 runtime of the family's baseline, its size and its quality change."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from bench.results import schema
from bench.results.annotations import NoiseBand
from bench.results.deployment import (
    EAGER,
    RUNTIME,
    deployment_rows,
    eager_band,
    family_models,
    has_runtimes,
    with_references,
)
from bench.results.families import ordered_families
from bench.results.loading import ResultsDir, load_results_dir
from bench.tables.render import NOISE_MARK, Table, column_decimals, to_markdown
from genmodels.cache import atomic_write_bytes

DEPLOYMENT_FILE = "deployment.md"
_SHORT = {schema.STATUS_UNSTABLE: "unstable", schema.STATUS_SKIPPED: "skipped",
          schema.STATUS_FAILED: "failed", "missing": "-"}


def speedup_text(value: float, band: NoiseBand | None, factor_power: int = 1) -> str:
    """'1.80 [1.76-1.84]': the speedup and its noise band (value times 1/f^k to f^k, f the
    family's band, k = 1 against eager, 2 for a ratio of two speedups); '≈' when the band
    holds 1; no band measured: the value alone."""
    if not math.isfinite(value):
        return "-"
    if band is None:
        return f"{value:.2f}"
    factor = band.factor ** factor_power
    low, high = value / factor, value * factor
    mark = f"{NOISE_MARK} " if low <= 1 <= high else ""
    return f"{mark}{value:.2f} [{low:.2f}-{high:.2f}]"


def quality_text(row: pd.Series) -> str:
    """'+12.3 [+8.1, +16.5]' (paired 95% interval; '≈' when it holds 0), '= eager' for a runtime
    whose outputs match eager's, '-' when not measured."""
    if row["quality_as_eager"]:
        return "= eager"
    delta, low, high = row["quality_delta"], row["quality_low"], row["quality_high"]
    if not math.isfinite(delta):
        return "-"
    if not (math.isfinite(low) and math.isfinite(high)):
        return f"{delta:+.1f}"
    mark = f"{NOISE_MARK} " if low <= 0 <= high else ""
    return f"{mark}{delta:+.1f} [{low:+.1f}, {high:+.1f}]"


def _size(row: pd.Series, fp32_bytes: float) -> tuple[str, str]:
    size = row["size_file_bytes"]
    if not math.isfinite(size) or size <= 0:
        return "-", "-"
    ratio = fp32_bytes / size if math.isfinite(fp32_bytes) else math.nan
    return f"{size / 1e6:.3f}", (f"{ratio:.2f}" if math.isfinite(ratio) else "-")


def _runtime_order(rows: pd.DataFrame) -> list[str]:
    seen = list(dict.fromkeys(rows[RUNTIME]))
    return [r for r in seen if r == EAGER] + [r for r in seen if r != EAGER]


def family_deployment(rows: pd.DataFrame, run: ResultsDir, family: str, device: str) -> Table:
    """The deployment Table of one family on one device: a row per (cell, runtime), the cells in
    run order (baseline first), a (p50, x eager, x best fp32) column group per batch size."""
    mine = rows[(rows["family"] == family) & (rows["device"] == device)]
    batches = sorted(mine["batch_size"].unique())
    band = eager_band(run, family, device)
    base = mine[mine["is_baseline"] & (mine[RUNTIME] == EAGER)]
    fp32_bytes = float(base["size_file_bytes"].mean()) if len(base) else math.nan
    headers = ["Method", "Setting", "Runtime", "Execution", "Size (MB)", "Ratio", "Int8 MACs",
               "ΔFID-proxy [95%]"]
    for b in batches:
        headers += [f"p50 (ms, batch {b})", f"x eager (batch {b})", f"x best fp32 (batch {b})"]
    decimals = {b: column_decimals(mine.loc[mine["batch_size"] == b, "p50_ms"].to_numpy())
                for b in batches}  # one number format per column
    text = []
    order = _runtime_order(mine)
    for key in dict.fromkeys(mine.sort_values("is_baseline", ascending=False,
                                              kind="stable")["key"]):
        for runtime in order:
            cell = mine[(mine["key"] == key) & (mine[RUNTIME] == runtime)]
            if cell.empty:
                continue
            head = cell.iloc[0]
            size, ratio = _size(head, fp32_bytes)
            int8 = head["int8_mac_fraction"]
            line = [head["method"], head["setting"], runtime, head["execution"] or "-", size,
                    ratio, f"{int8:.0%}" if math.isfinite(int8) else "-", quality_text(head)]
            for b in batches:
                at = cell[cell["batch_size"] == b]
                if at.empty:
                    line += ["-", "-", "-"]
                    continue
                r = at.iloc[0]
                if r["status"] != schema.STATUS_OK:
                    line += [_SHORT.get(r["status"], str(r["status"]))] * 3
                    continue
                is_reference = r["is_baseline"] and runtime == EAGER
                vs_eager = ("1.00 (reference)" if is_reference
                            else speedup_text(r["speedup"], band))
                power = 1 if r["reference_runtime"] == EAGER else 2
                vs_best = ("1.00 (reference)" if r["is_baseline"]
                           and runtime == r["reference_runtime"]
                           else speedup_text(r["speedup_vs_best"], band, power))
                line += [f"{r['p50_ms']:.{decimals[b]}f}", vs_eager, vs_best]
            text.append([str(v) for v in line])
    notes = _notes(mine, band, batches)
    model, width = family_models(run).get(family, (family, 1.0))
    what = f"{family} ({model} at width {width:g})" if (model, width) != (family, 1.0) else family
    threads = sorted({t for ts in mine["threads"] for t in ts})
    counted = f", {threads[-1]} thread{'s' if threads[-1] > 1 else ''}" if threads else ""
    title = (f"{what}, {device.upper()}{counted}: each compression on each runtime; speedups "
             "against the eager fp32 baseline of the same seed (timed interleaved) and against "
             "the fastest fp32 runtime of the baseline at that batch; ΔFID-proxy against the "
             "eager baseline on the same latents (paired 95% interval)")
    return Table(title, headers, text, [[False] * len(headers) for _ in text], tuple(notes),
                 f"deployment-{family}-{device}")


def _notes(mine: pd.DataFrame, band: NoiseBand | None, batches: list[int]) -> list[str]:
    refs = []
    for b in batches:
        at = mine[(mine["batch_size"] == b) & (mine["reference_runtime"] != "")]
        if len(at):
            name, speedup = at["reference_runtime"].iloc[0], at["reference_speedup"].iloc[0]
            refs.append(f"batch {b}: {name} ({speedup:.2f} x eager)")
    notes = ["Best fp32 runtime of the baseline (eager, at 1 by definition, or the fastest "
             "runtime whose outputs equal eager's and whose row is ok): "
             + ("; ".join(refs) or "none measured") + "."]
    if band is not None:
        notes.append(
            f"[a-b]: the speedup noise band: the eager baseline timed against itself gave "
            f"{', '.join(f'{s:.3f}' for s in band.measured)} (f = {band.factor:.3f}); a speedup "
            "against eager is within f either way of its value, one against another fp32 "
            f"runtime (a ratio of two speedups) within f^2; {NOISE_MARK}: the band holds 1.")
    notes.append("Quality: '= eager' for runtimes whose outputs match eager's within the export "
                 "tolerance; runtimes that change outputs (int8) were re-measured on the same "
                 "latents, so theirs is the deployed model's. Size: the deployed file (eager: "
                 "genbench's safetensors; int8: the quantized ONNX file), Ratio = the fp32 "
                 "baseline file / this file ('-': not recorded, fp32 runtimes run the eager "
                 "cell's fp32 weights). Int8 MACs: the share of MACs on int8 kernels.")
    errors = mine.groupby(RUNTIME, sort=False)["export_max_abs_err"].max().dropna()
    if len(errors):
        notes.append("Export check, max |deployed - eager| over the check latents (pixels in "
                     "[0, 1]): " + ", ".join(f"{r} {e:.1e}" for r, e in errors.items()) + ".")
    changing = mine[mine["changes_outputs"]]
    left = []
    for runtime, group in changing.groupby(RUNTIME, sort=False)["fp32_ops"]:
        ops = dict.fromkeys(op for text in group for op in text.split(", ") if op)
        left.append(f"{runtime}: {', '.join(ops) or 'none'}")
    if left:
        notes.append("Ops left in fp32 by the runtimes that change outputs: " + "; ".join(left)
                     + ".")
    seeds = int(mine["seeds"].max()) if len(mine) else 0
    if seeds > 1:
        notes.append(f"Means over {seeds} seeds; a figure only where every seed's row is ok.")
    bad = mine[mine["status"] != schema.STATUS_OK]
    if len(bad):
        notes.append("Unstable, skipped and failed rows give no figure and are never a "
                     "reference: " + "; ".join(
                         f"{r['method']} [{r['setting']}] {r[RUNTIME]} batch {r['batch_size']}: "
                         f"{r['status']}" + (f" ({r['reason']})" if r["reason"] else "")
                         for _, r in bad.iterrows()) + ".")
    return notes


def deployment_tables(run: ResultsDir) -> list[Table]:
    """A deployment Table per family and device (families in their one order); [] when the run
    measured no runtime besides eager."""
    if not has_runtimes(run):
        return []
    rows = with_references(deployment_rows(run))
    if rows.empty:
        return []
    devices = [d for d in ("cpu", "cuda") if d in set(rows["device"])]
    devices += sorted(set(rows["device"]) - set(devices))
    return [family_deployment(rows, run, family, device)
            for family in ordered_families(rows["family"]) for device in devices
            if (np.asarray((rows["family"] == family) & (rows["device"] == device))).any()]


def write_deployment(run: ResultsDir, out: Path) -> Path | None:
    """Write out/deployment.md (atomically) when the run has runtime rows; else None."""
    tables = deployment_tables(run)
    if not tables:
        return None
    path = Path(out) / DEPLOYMENT_FILE
    text = "\n".join(to_markdown(t) for t in tables)
    atomic_write_bytes(path, text.encode())
    return path


def write_deployment_dir(directory: str | Path) -> Path | None:
    """write_deployment for a results directory (DIR/tables/deployment.md)."""
    out = Path(directory) / "tables"
    out.mkdir(exist_ok=True)
    return write_deployment(load_results_dir(directory), out)
