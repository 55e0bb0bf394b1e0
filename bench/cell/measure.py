"""What one cell measures: compress, quality on common random numbers, size, latency and memory."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bench.cell.runtimes import RuntimeMeasured
from bench.config.sweep import SweepConfig
from bench.results.schema import RUNTIME_EAGER
from bench.run.grid import Cell

N_SAMPLE_IMAGES = 16


@dataclass
class Measured:
    row: dict[str, Any]
    latency: list[dict[str, Any]] = field(default_factory=list)
    latency_samples: list[dict[str, Any]] = field(default_factory=list)
    samples: np.ndarray | None = None
    runtimes: RuntimeMeasured = field(default_factory=RuntimeMeasured)  # rows of cell.runtimes


def measure_cell(config: SweepConfig, cell: Cell, configs: list[Any], baseline: Any,
                 evaluator: Any) -> Measured:
    """Apply the pipeline to (a copy of) the baseline and measure the result: quality, size and
    latency as eager PyTorch runs it, then the rows of every other runtime in cell.runtimes
    (bench.cell.runtimes). A cell with eager=False (a resume that added runtimes) measures
    only those."""
    from bench.cell.latency import latency_rows
    from bench.cell.notes import notes_columns
    from bench.cell.runtimes import measure_runtimes
    from bench.cell.size import size_columns
    from bench.run.runner import load_dataset, on_device, quality_device
    from compression.api import CompressionContext, apply_pipeline

    device = quality_device(config)
    dataset = load_dataset(config)
    t0 = time.perf_counter()
    score = evaluator.selection_score() if hasattr(evaluator, "selection_score") else None
    ctx = CompressionContext(train_x=dataset.train_x, seed=cell.seed, device=device, score=score)
    cm = apply_pipeline(on_device(baseline, device), configs, ctx)
    compress_seconds = time.perf_counter() - t0
    measured = Measured({"runtime": RUNTIME_EAGER, "compress_seconds": compress_seconds})
    if cell.eager:
        model = on_device(cm.model, device).eval()
        t1 = time.perf_counter()
        # The evaluator fixes z and the test images once: every cell sees the same ones (CRN).
        quality = dict(evaluator.evaluate(model, baseline=on_device(baseline, device).eval()))
        samples = np.asarray(evaluator.samples(model, n=N_SAMPLE_IMAGES), dtype=np.float32)
        eval_seconds = time.perf_counter() - t1
        measured.row.update(**quality, **size_columns(cm, baseline), execution=cm.execution,
                            **notes_columns(cm, samples),  # notes, latent_std, collapsed
                            eval_seconds=eval_seconds)
        measured.latency, measured.latency_samples = latency_rows(config, cell.cell_id, cm,
                                                                  baseline)
        measured.samples = samples
    measured.runtimes = measure_runtimes(config, cell.runtimes, cell.cell_id, cm, baseline,
                                         evaluator, dataset.train_x, cell.seed)
    return measured
