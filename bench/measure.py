"""What one cell measures: compress, quality on common random numbers, size, latency and memory."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from bench.config import SweepConfig
from bench.grid import Cell
from bench.schema import STATUS_FAILED, STATUS_OK
from compression.quantization import storage

N_SAMPLE_IMAGES = 16


@dataclass
class Measured:
    row: dict[str, Any]
    latency: list[dict[str, Any]] = field(default_factory=list)
    latency_samples: list[dict[str, Any]] = field(default_factory=list)
    samples: np.ndarray | None = None


def measure_cell(config: SweepConfig, cell: Cell, configs: list[Any], baseline: Any,
                 evaluator: Any) -> Measured:
    """Apply the pipeline to (a copy of) the baseline and measure the result."""
    from bench.runner import load_dataset, on_device, quality_device
    from compression.api import CompressionContext, apply_pipeline

    device = quality_device(config)
    dataset = load_dataset(config)
    t0 = time.perf_counter()
    ctx = CompressionContext(train_x=dataset.train_x, seed=cell.seed, device=device)
    cm = apply_pipeline(on_device(baseline, device), configs, ctx)
    compress_seconds = time.perf_counter() - t0
    model = on_device(cm.model, device).eval()
    t1 = time.perf_counter()
    # The evaluator fixes z and the test images once: every cell sees the same ones (CRN).
    quality = dict(evaluator.evaluate(model, baseline=on_device(baseline, device).eval()))
    samples = np.asarray(evaluator.samples(model, n=N_SAMPLE_IMAGES), dtype=np.float32)
    eval_seconds = time.perf_counter() - t1
    row = {**quality, **size_columns(cm, baseline), "execution": cm.execution,
           "compress_seconds": compress_seconds, "eval_seconds": eval_seconds}
    latency, latency_samples = latency_rows(config, cell.cell_id, cm, baseline)
    return Measured(row, latency, latency_samples, samples)


def packed_bytes(cm: Any) -> int:
    """Bytes of the deployed weights as stored: packed codes (+ scales) of every quantized tensor,
    element bytes of every other parameter and buffer of deployable() (fp32). Zeros of masked
    pruning are stored dense (no sparse format), as in the saved file."""
    from compression.quantization.storage import deployable_state

    state = deployable_state(cm.model)  # keyed like cm.quantized
    plain = sum(t.numel() * t.element_size() for k, t in state.items() if k not in cm.quantized)
    return plain + sum(int(q.packed_bytes()) for q in cm.quantized.values())


def size_columns(cm: Any, baseline: Any) -> dict[str, Any]:
    from bench.runner import file_bytes
    from compression.accounting import bits_per_weight, count_macs, count_nonzero, count_params

    params, nonzero = count_params(cm.model), count_nonzero(cm.model)
    z = cm.model.latent(1, torch.Generator().manual_seed(0))
    macs, macs_effective = count_macs(cm.model, z)
    out = {"params": params, "nonzero_params": nonzero,
           "sparsity": 1.0 - nonzero / params if params else None,
           "bits_per_weight": bits_per_weight(cm), "size_packed_bytes": packed_bytes(cm),
           "macs": macs, "macs_effective": macs_effective}
    fp32_bytes = file_bytes(storage.save_fp32, baseline)
    # The baseline is shipped as the fp32 file itself: ratio exactly 1 by definition.
    out["size_file_bytes"] = file_bytes(storage.save_compressed, cm) if cm.steps else fp32_bytes
    out["compression_ratio"] = fp32_bytes / out["size_file_bytes"]
    return out


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
