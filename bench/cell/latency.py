"""The latency rows of one cell: per (runtime, device, batch size), against the baseline; memory."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from bench.config.sweep import SweepConfig
from bench.results.schema import (
    RUNTIME_EAGER,
    STATUS_FAILED,
    STATUS_OK,
    STATUS_SKIPPED,
    STATUS_UNSTABLE,
)


@dataclass(frozen=True)
class Timed:
    """What one set of latency rows times: a runnable model as one runtime runs it."""

    model: Any  # forward(z) -> images; latent(n, generator)
    execution: str  # what ran (results/latency column `execution`)
    runtime: str = RUNTIME_EAGER
    columns: dict[str, Any] = field(default_factory=dict)  # more columns of every row
    memory_note: str = ""  # why peak memory is not measured ("" = measure it)


def latency_rows(config: SweepConfig, cell_id: str, cm: Any, baseline: Any
                 ) -> tuple[list[dict], list[dict]]:
    """The eager rows of a cell: `device_rows` of cm.model on every latency device."""
    from bench.run.runner import resolved_devices

    rows: list[dict] = []
    samples: list[dict] = []
    for device in resolved_devices(config):
        more, more_samples = device_rows(config, cell_id, Timed(cm.model, cm.execution),
                                         baseline, device)
        rows += more
        samples += more_samples
    return rows, samples


def unmeasured_rows(config: SweepConfig, cell_id: str, runtime: str, device: str, status: str,
                    reason: str, execution: str = "") -> list[dict]:
    """One row per batch size that says why nothing was timed (status skipped or failed)."""
    return [{"cell_id": cell_id, "runtime": runtime, "device": device, "batch_size": batch,
             "threads": torch.get_num_threads(), "execution": execution, "status": status,
             "error": reason} for batch in config.batch_sizes]


def device_rows(config: SweepConfig, cell_id: str, timed: Timed, baseline: Any, device: str
                ) -> tuple[list[dict], list[dict]]:
    """One row per batch size on `device`: timed.model timed interleaved with the eager fp32
    baseline and measured again while its blocks spread more than [latency] max_rel_iqr (see
    bench.metrics.stability); still unsteady after max_attempts, the row keeps its figures with
    status "unstable", which every speedup claim and verdict leaves out (they read status ok)."""
    from bench.metrics import speedup_for_models
    from bench.metrics.idle import wait_for_idle
    from bench.metrics.stability import measure_until_stable
    from bench.run.runner import CUDA_ABSENT, one_line

    settings = config.latency
    if device == "cuda" and not torch.cuda.is_available():
        return unmeasured_rows(config, cell_id, timed.runtime, device, STATUS_SKIPPED,
                               CUDA_ABSENT, timed.execution), []
    rows, samples = [], []
    threads = torch.get_num_threads()
    for batch in config.batch_sizes:
        row = {"cell_id": cell_id, "runtime": timed.runtime, "device": device,
               "batch_size": batch, "threads": threads, "execution": timed.execution,
               **timed.columns}
        busy_notes: list[str] = []  # one per measurement whose idle wait hit its bound

        def measure(batch: int = batch, busy_notes: list = busy_notes):
            if settings.wait_idle:
                wait = wait_for_idle(settings.idle_busy_cores, settings.wait_idle_timeout_s)
                if not wait.idle:
                    busy_notes.append(wait.note())
            return speedup_for_models(baseline, timed.model, batch, device, threads,
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
        samples += [{"cell_id": cell_id, "runtime": timed.runtime, "device": device,
                     "batch_size": batch, "block": i, "seconds_per_call": s}
                    for i, s in enumerate(kept.variant.block_seconds)]
        if config.latency.memory and timed.memory_note:
            errors.append(f"peak memory not measured: {timed.memory_note}")
        elif config.latency.memory:
            try:
                row.update(peak_memory(timed.model, batch, device))
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
