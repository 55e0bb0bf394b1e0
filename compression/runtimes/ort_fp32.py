"""The `onnxruntime` runtime: the variant's fp32 weights exported to ONNX, run by ONNX Runtime."""
from __future__ import annotations

from compression.api import CompressedModel
from compression.runtimes.base import Deployed, Runtime, RuntimeContext, register_runtime
from compression.runtimes.export import (
    OPSET,
    check_export,
    check_latents,
    export_dir,
    export_onnx,
    export_unavailable,
)
from compression.runtimes.onnx_model import OnnxGraphModel, graph_bytes
from compression.runtimes.ort_session import BACKENDS, ort_runner, ort_unavailable

EXPORT_NOTE = f"torch.onnx dynamo exporter, opset {OPSET}, dynamic batch axis"


@register_runtime
class OnnxRuntimeFp32(Runtime):
    """Dense fp32 graph: masked (pruned) weights export their zeros as dense tensors, simulated
    quant variants their dequantized weights; CPU provider, CUDA provider with onnxruntime-gpu."""

    name = "onnxruntime"
    devices = ("cpu", "cuda")

    def unavailable(self, cm: CompressedModel, device: str) -> str | None:
        return (super().unavailable(cm, device) or export_unavailable(cm)
                or ort_unavailable(device))

    def deploy(self, cm: CompressedModel, device: str, ctx: RuntimeContext) -> Deployed:
        kind = device.split(":")[0]
        with export_dir(ctx, self.name) as workdir:
            files = export_onnx(cm.model, workdir)
            size = sum(path.stat().st_size for path in files.values())
            model = OnnxGraphModel(cm.model, graph_bytes(files), BACKENDS[kind], ort_runner,
                                   device=device)
        err = check_export(model, cm.model, check_latents(cm.model, ctx))
        notes = [EXPORT_NOTE, f"graphs: {', '.join(sorted(files))}"]
        return Deployed(model=model, runtime=self.name, execution="ort-fp32",
                        export_max_abs_err=err, size_file_bytes=size, notes=tuple(notes))
