"""The latency rows of one cell: per (device, batch size), against the baseline; peak memory."""
from __future__ import annotations

from typing import Any

import torch

from bench.config.sweep import SweepConfig
from bench.results.schema import STATUS_FAILED, STATUS_OK, STATUS_SKIPPED, STATUS_UNSTABLE


def latency_rows(config: SweepConfig, cell_id: str, cm: Any, baseline: Any
                 ) -> tuple[list[dict], list[dict]]:
    """One row per (device, batch size): the variant timed interleaved with the baseline and
    measured again while its blocks spread more than [latency] max_rel_iqr (see
    bench.metrics.stability); still unsteady after max_attempts, the row keeps its figures with
    status "unstable", which every speedup claim and verdict leaves out (they read status ok)."""
    from bench.metrics import speedup_for_models
    from bench.metrics.idle import wait_for_idle
    from bench.metrics.stability import measure_until_stable
    from bench.run.runner import CUDA_ABSENT, one_line, resolved_devices

    settings = config.latency
    rows, samples = [], []
    threads = torch.get_num_threads()
    for device in resolved_devices(config):
        for batch in config.batch_sizes:
            row = {"cell_id": cell_id, "device": device, "batch_size": batch, "threads": threads,
                   "execution": cm.execution}
            if device == "cuda" and not torch.cuda.is_available():
                rows.append({**row, "status": STATUS_SKIPPED, "error": CUDA_ABSENT})
                continue
            busy_notes: list[str] = []  # one per measurement whose idle wait hit its bound

            def measure(device: str = device, batch: int = batch, busy_notes: list = busy_notes):
                if settings.wait_idle:
                    wait = wait_for_idle(settings.idle_busy_cores, settings.wait_idle_timeout_s)
                    if not wait.idle:
                        busy_notes.append(wait.note())
                return speedup_for_models(baseline, cm.model, batch, device, threads,
                                          min_run_time=settings.min_run_time)

            try:
                measured = measure_until_stable(measure, max_rel_iqr=settings.max_rel_iqr,
                                                max_attempts=settings.max_attempts)
            except Exception as exc:  # noqa: BLE001 - e.g. OOM at a large batch: this row only
                rows.append({**row, "status": STATUS_FAILED, "error": one_line(exc)})
                continue
            kept, errors = measured.kept, []
            if not measured.stable:
                errors.append(f"relative IQR {kept.rel_iqr:.3f} > max_rel_iqr "
                              f"{settings.max_rel_iqr:g} after {measured.attempts} measurements")
            if busy_notes:
                errors.append(f"{busy_notes[-1]} before {len(busy_notes)} of "
                              f"{measured.attempts} measurements")
            row.update(kept.variant.row(), speedup=kept.speedup, latency_rel_iqr=kept.rel_iqr,
                       attempts=measured.attempts, load_avg_1m=kept.load_avg_1m,
                       status=STATUS_OK if measured.stable else STATUS_UNSTABLE)
            samples += [{"cell_id": cell_id, "device": device, "batch_size": batch,
                         "block": i, "seconds_per_call": s}
                        for i, s in enumerate(kept.variant.block_seconds)]
            if config.latency.memory:
                try:
                    row.update(peak_memory(cm.model, batch, device))
                except Exception as exc:  # noqa: BLE001 - latency stands; memory left empty
                    # e.g. torchao's int8 tensors cannot be sent to the fresh measuring process.
                    errors.append(f"peak memory not measured: {one_line(exc)}")
            rows.append({**row, "error": "; ".join(errors)})
    return rows, samples


def peak_memory(model: Any, batch: int, device: str) -> dict[str, Any]:
    """Peak memory of one forward at `batch`, in this process: the deployed weights' resident bytes
    + the allocator's peak over one forward (bench.metrics.memory; CPU: torch.profiler memory
    events, CUDA: max_memory_allocated/reserved)."""
    from bench.metrics import peak_memory_for_model

    result = peak_memory_for_model(model, batch, device, threads=torch.get_num_threads())
    return {"peak_mem_bytes": result.peak_bytes, "peak_mem_reserved_bytes": result.reserved_bytes}
