"""ONNX Runtime sessions: providers per device, thread count, and what blocks a device."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from compression.runtimes.onnx_model import GraphRunner

PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}
BACKENDS = {"cpu": "ort-cpu", "cuda": "ort-cuda"}


def ort_unavailable(device: str) -> str | None:
    """None when ONNX Runtime can run on `device` here, else why not (one line)."""
    if importlib.util.find_spec("onnxruntime") is None:
        return "onnxruntime is not installed (pip install onnxruntime)"
    if importlib.util.find_spec("onnx") is None:
        return "onnx is not installed (pip install onnx), needed to export the graph"
    import onnxruntime as ort

    kind = device.split(":")[0]
    if kind not in PROVIDERS:
        return f"onnxruntime runs on {'/'.join(PROVIDERS)}, not {device!r}"
    if PROVIDERS[kind] not in ort.get_available_providers():
        return (f"onnxruntime has no {PROVIDERS[kind]} here (available: "
                f"{', '.join(ort.get_available_providers())}; install onnxruntime-gpu and a GPU)")
    return None


def session_options(threads: int, optimized_path: Path | None = None):
    """All graph optimisations, `threads` intra-op threads (the torch thread count: same budget
    as eager), one inter-op thread; optionally save the optimized graph (to see fused kernels)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3  # errors only: ORT warns about unused initializers otherwise
    if optimized_path is not None:
        opts.optimized_model_filepath = str(optimized_path)
    return opts


def ort_runner(backend: str, blob: bytes, threads: int) -> GraphRunner:
    """A session of the graph `blob` on the backend's provider; feeds -> outputs in order."""
    import onnxruntime as ort

    device = "cuda" if backend == BACKENDS["cuda"] else "cpu"
    session = ort.InferenceSession(blob, sess_options=session_options(threads),
                                   providers=[PROVIDERS[device]])
    names = [o.name for o in session.get_outputs()]

    def run(feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        return session.run(names, feeds)

    return run


def save_optimized(onnx_path: Path, optimized_path: Path, threads: int) -> Path:
    """Build a CPU session once so ORT writes its optimized (fused) graph to `optimized_path`."""
    import onnxruntime as ort

    ort.InferenceSession(str(onnx_path), sess_options=session_options(threads, optimized_path),
                         providers=[PROVIDERS["cpu"]])
    return optimized_path
