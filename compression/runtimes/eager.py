"""The `eager` runtime: the variant as PyTorch runs it, unchanged (the reference of every other)."""
from __future__ import annotations

from compression.api import CompressedModel
from compression.runtimes.base import Deployed, Runtime, RuntimeContext, register_runtime


@register_runtime
class EagerRuntime(Runtime):
    name = "eager"
    devices = ("cpu", "cuda")

    def unavailable(self, cm: CompressedModel, device: str) -> str | None:
        reason = super().unavailable(cm, device)
        if reason is None and device != "cpu" and cm.execution == "int8-kernel":
            return "int8-kernel variants (torchao / torch.ao dynamic) run on CPU only"
        return reason

    def deploy(self, cm: CompressedModel, device: str, ctx: RuntimeContext) -> Deployed:
        return Deployed(model=cm.model, runtime=self.name, execution=cm.execution)
