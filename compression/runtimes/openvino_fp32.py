"""The `openvino` runtime: the exported ONNX graph converted by OpenVINO and compiled for its CPU.

fp32 on purpose: INFERENCE_PRECISION_HINT "f32", since OpenVINO would otherwise run bf16 on CPUs
that report BF16 (this one does), which changes outputs and is not the fp32 baseline.
"""
from __future__ import annotations

import importlib.util
import io

import numpy as np

from compression.api import CompressedModel
from compression.runtimes.base import Deployed, Runtime, RuntimeContext, register_runtime
from compression.runtimes.export import (
    check_export,
    check_latents,
    export_dir,
    export_onnx,
    export_unavailable,
)
from compression.runtimes.onnx_model import GraphRunner, OnnxGraphModel, graph_bytes
from compression.runtimes.ort_fp32 import EXPORT_NOTE

BACKEND = "openvino-cpu"


def openvino_runner(backend: str, blob: bytes, threads: int) -> GraphRunner:
    """OpenVINO's ONNX frontend reads the graph's bytes; compiled for CPU, fp32, `threads`."""
    import openvino as ov

    compiled = ov.Core().compile_model(
        ov.convert_model(io.BytesIO(blob)), "CPU",
        {"INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": "f32"})
    outputs = list(compiled.outputs)

    def run(feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        result = compiled(feeds)
        return [np.asarray(result[port]) for port in outputs]

    return run


@register_runtime
class OpenVinoRuntime(Runtime):
    name = "openvino"
    devices = ("cpu",)

    def unavailable(self, cm: CompressedModel, device: str) -> str | None:
        if importlib.util.find_spec("openvino") is None:
            return "openvino is not installed (pip install openvino)"
        return super().unavailable(cm, device) or export_unavailable(cm)

    def deploy(self, cm: CompressedModel, device: str, ctx: RuntimeContext) -> Deployed:
        import openvino as ov

        with export_dir(ctx, self.name) as workdir:
            files = export_onnx(cm.model, workdir)
            size = sum(path.stat().st_size for path in files.values())
            model = OnnxGraphModel(cm.model, graph_bytes(files), BACKEND, openvino_runner)
        err = check_export(model, cm.model, check_latents(cm.model, ctx))
        version = ov.__version__.split("-")[0]
        notes = (EXPORT_NOTE, f"OpenVINO {version} ONNX frontend, CPU plugin, f32 hint")
        return Deployed(model=model, runtime=self.name, execution="openvino-fp32",
                        export_max_abs_err=err, size_file_bytes=size, notes=notes)
