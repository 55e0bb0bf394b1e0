"""The runtime rows of one cell: deploy the variant on each listed runtime, time it, and measure
its quality again where the runtime changes its outputs (int8)."""
from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from bench.cell.latency import Timed, device_rows, unmeasured_rows
from bench.config.sweep import SweepConfig
from bench.results.schema import RUNTIME_EAGER, STATUS_FAILED, STATUS_OK, STATUS_SKIPPED

CALIB_N = 128  # latents and training images a runtime may calibrate on (ORT static int8)
CHECK_N = 8  # common latents the export is checked on against eager
# calib_z comes from its own generator: the quality latents (seeded by [eval] seed) must not be
# the calibration set, or int8 quality would be measured on the very inputs it was fitted to.
CALIB_SEED_OFFSET = 7919
NO_LIKELIHOOD = "likelihood columns empty: only the sampling path is deployed"


@dataclass
class RuntimeMeasured:
    """What the listed runtimes add to a cell: results rows (runtimes that change outputs),
    latency rows and samples, and per runtime what it deployed (the record's `deployments`)."""

    results: list[dict[str, Any]] = field(default_factory=list)
    latency: list[dict[str, Any]] = field(default_factory=list)
    latency_samples: list[dict[str, Any]] = field(default_factory=list)
    deployments: dict[str, dict[str, Any]] = field(default_factory=dict)


def runtime_context(config: SweepConfig, cm: Any, train_x: torch.Tensor, evaluator: Any,
                    seed: int, workdir: Path) -> Any:
    """calib_x: the first CALIB_N training images; calib_z: CALIB_N latents of a generator
    seeded [eval] seed + CALIB_SEED_OFFSET; check_z: the first CHECK_N common quality latents."""
    from compression.runtimes import RuntimeContext

    eval_seed = int(evaluator.settings.seed)
    calib_z = cm.model.latent(CALIB_N, torch.Generator().manual_seed(eval_seed + CALIB_SEED_OFFSET))
    check_z = evaluator.latent(cm.model)[:CHECK_N]
    return RuntimeContext(calib_x=train_x[:CALIB_N].cpu(), calib_z=calib_z.cpu(),
                          check_z=check_z.cpu(), seed=seed, workdir=workdir)


def _memory_note(model: Any, runtime: str) -> str:
    """Peak memory is read from torch's allocator: a model holding no torch tensor (an ORT or
    OpenVINO session) allocates elsewhere, so its figure would be the input alone."""
    holds_tensors = next(iter(model.parameters()), None) is not None or \
        next(iter(model.buffers()), None) is not None
    return "" if holds_tensors else (f"{runtime} allocates outside torch, whose allocator the "
                                     "profiler reads")


def deployment_info(deployed: Any, device: str) -> dict[str, Any]:
    """The record's `deployments` entry of one runtime on one device (JSON-ready)."""
    return {"device": device, "execution": deployed.execution,
            "export_max_abs_err": deployed.export_max_abs_err,
            "size_file_bytes": deployed.size_file_bytes,
            "int8_mac_fraction": deployed.int8_mac_fraction, "fp32_ops": list(deployed.fp32_ops),
            "changes_outputs": bool(deployed.changes_outputs), "notes": list(deployed.notes)}


def measure_runtimes(config: SweepConfig, runtimes: tuple[str, ...], cell_id: str, cm: Any,
                     baseline: Any, evaluator: Any, train_x: torch.Tensor,
                     seed: int) -> RuntimeMeasured:
    """For each runtime but eager, on each latency device: unavailable -> skipped rows with its
    reason; else deploy (a failure: failed rows) and time against the eager fp32 baseline
    (bench.cell.latency.device_rows). A runtime whose Deployed.changes_outputs also gets a
    results row (`runtime_result_row`), from the first device it deployed on."""
    from bench.run.runner import one_line, resolved_devices
    from compression.runtimes import get_runtime

    out = RuntimeMeasured()
    others = [name for name in runtimes if name != RUNTIME_EAGER]
    if not others:
        return out
    with tempfile.TemporaryDirectory(prefix="genbench-runtime-") as tmp:
        ctx = runtime_context(config, cm, train_x, evaluator, seed, Path(tmp))
        for name in others:
            runtime, quality_from = get_runtime(name), None
            for device in resolved_devices(config):
                try:
                    reason = runtime.unavailable(cm, device)
                    deployed = None if reason else runtime.deploy(cm, device, ctx)
                except Exception as exc:  # noqa: BLE001 - this runtime on this device only
                    out.latency += unmeasured_rows(config, cell_id, name, device, STATUS_FAILED,
                                                   f"deploy failed: {one_line(exc)}")
                    continue
                if deployed is None:
                    out.latency += unmeasured_rows(config, cell_id, name, device,
                                                   STATUS_SKIPPED, str(reason))
                    continue
                out.deployments.setdefault(name, deployment_info(deployed, device))
                timed = Timed(deployed.model, deployed.execution, name,
                              {"export_max_abs_err": deployed.export_max_abs_err},
                              _memory_note(deployed.model, name))
                rows, samples = device_rows(config, cell_id, timed, baseline, device)
                out.latency += rows
                out.latency_samples += samples
                if deployed.changes_outputs and quality_from is None:
                    quality_from = (device, deployed)
            if quality_from is not None:
                out.results.append(runtime_result_row(config, cm, baseline, evaluator,
                                                      *quality_from))
    return out


def runtime_result_row(config: SweepConfig, cm: Any, baseline: Any, evaluator: Any,
                       device: str, deployed: Any) -> dict[str, Any]:
    """The results row of a runtime that changes outputs (the runner adds the cell's identity
    columns): runtime = its name; sample metrics, intervals and paired deltas against the
    same-seed eager baseline on the common latents; size_file_bytes, compression_ratio (fp32
    baseline file / deployed artefact), int8_mac_fraction, fp32_ops and export_max_abs_err from
    the deployment; params and MACs of the variant (the network is the same). Likelihoods stay
    empty (noted)."""
    from bench.cell.measure import N_SAMPLE_IMAGES
    from bench.cell.notes import collapse_columns, notes_json
    from bench.cell.size import size_columns
    from bench.run.runner import on_device, one_line, quality_device

    row = {"runtime": deployed.runtime, "execution": deployed.execution,
           "export_max_abs_err": deployed.export_max_abs_err,
           "fp32_ops": json.dumps(list(deployed.fp32_ops))}
    notes: dict[str, Any] = {"runtime_device": device, "likelihood": NO_LIKELIHOOD}
    if deployed.notes:
        notes["runtime_notes"] = list(deployed.notes)
    try:
        sizes = size_columns(cm, baseline)
        fp32_bytes = sizes["size_file_bytes"] * sizes["compression_ratio"]
        file_bytes = deployed.size_file_bytes
        sizes.update(size_file_bytes=file_bytes, bits_per_weight=None, size_packed_bytes=None,
                     compression_ratio=fp32_bytes / file_bytes if file_bytes else None,
                     int8_mac_fraction=deployed.int8_mac_fraction)
        reference = on_device(baseline, quality_device(config)).eval()
        quality = evaluator.evaluate(deployed.model, baseline=reference, sampling_only=True)
        images = evaluator.samples(deployed.model, n=N_SAMPLE_IMAGES)
        row.update(sizes, **quality, **collapse_columns(images), status=STATUS_OK, error="")
    except Exception as exc:  # noqa: BLE001 - the runtime row fails, the cell stands
        row.update(status=STATUS_FAILED, error=one_line(exc))
    row["notes"] = notes_json(notes)
    return row
