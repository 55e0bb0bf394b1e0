"""The `eager` runtime: the variant as PyTorch runs it, unchanged (the reference of every other)."""
from __future__ import annotations

from compression.api import CompressedModel
from compression.runtimes.base import Deployed, Runtime, RuntimeContext, register_runtime


@register_runtime
class EagerRuntime(Runtime):
    name = "eager"
    devices = ("cpu", "cuda")

    def deploy(self, cm: CompressedModel, device: str, ctx: RuntimeContext) -> Deployed:
        return Deployed(model=cm.model, runtime=self.name, execution=cm.execution)
