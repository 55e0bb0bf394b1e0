"""The latency rows of one cell: per (device, batch size), timed against the baseline; peak memory."""
from __future__ import annotations

from typing import Any

import torch

from bench.config import SweepConfig
from bench.schema import STATUS_FAILED, STATUS_OK


def latency_rows(config: SweepConfig, cell_id: str, cm: Any, baseline: Any
                 ) -> tuple[list[dict], list[dict]]:
    """One row per (device, batch size); speedup against the baseline timed interleaved."""
    from bench.metrics import speedup_for_models
    from bench.runner import CUDA_ABSENT, one_line, resolved_devices

    rows, samples = [], []
    threads = torch.get_num_threads()
    for device in resolved_devices(config):
        for batch in config.batch_sizes:
            row = {"cell_id": cell_id, "device": device, "batch_size": batch, "threads": threads,
                   "execution": cm.execution}
            if device == "cuda" and not torch.cuda.is_available():
                rows.append({**row, "status": "skipped", "error": CUDA_ABSENT})
                continue
            try:
                _, variant, speedup = speedup_for_models(
                    baseline, cm.model, batch, device, threads,
                    min_run_time=config.latency.min_run_time)
                row.update(variant.row(), speedup=speedup, status=STATUS_OK, error="")
                samples += [{"cell_id": cell_id, "device": device, "batch_size": batch,
                             "block": i, "seconds_per_call": s}
                            for i, s in enumerate(variant.block_seconds)]
            except Exception as exc:  # noqa: BLE001 - e.g. OOM at a large batch: this row only
                row.update(status=STATUS_FAILED, error=one_line(exc))
            if row["status"] == STATUS_OK and config.latency.memory:
                try:
                    row.update(peak_memory(cm.model, batch, device))
                except Exception as exc:  # noqa: BLE001 - latency stands; memory left empty
                    # e.g. torchao's int8 tensors cannot be sent to the fresh measuring process.
                    row["error"] = f"peak memory not measured: {one_line(exc)}"
            rows.append(row)
    return rows, samples


def peak_memory(model: Any, batch: int, device: str) -> dict[str, Any]:
    """Peak memory of one forward at `batch` (CUDA allocator stats; CPU: a fresh process)."""
    from bench.metrics import peak_memory_for_model

    result = peak_memory_for_model(model, batch, device, threads=torch.get_num_threads())
    return {"peak_mem_bytes": result.peak_bytes, "peak_mem_reserved_bytes": result.reserved_bytes}
