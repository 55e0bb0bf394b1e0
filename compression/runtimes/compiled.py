"""The `compiled` runtime: torch.compile (default mode, inductor backend) of the variant's forward.

Compiled once at deploy and warmed up there, so latency measures steady-state kernels, not
compilation: a batch of 1 (dynamo specialises size 1) and a batch marked dynamic (one graph for
every other batch size). The RVAE's free-running 28-row loop is compiled whole: dynamo unrolls it
with 2 graph breaks in total (measured with torch._dynamo.explain, torch 2.14), not one per row,
so compiling only the step would not remove them.
"""
from __future__ import annotations

import copy
import resource
import time
from typing import Any

import torch

from compression.api import CompressedModel
from compression.runtimes.base import Deployed, Runtime, RuntimeContext, register_runtime
from compression.runtimes.export import check_latents
from genmodels.base import GenerativeModel

WARMUP_BATCH = 8  # the batch marked dynamic at warm-up


class CompiledModel(GenerativeModel):
    """forward(z) = torch.compile(inner)(z); everything else is the inner model's."""

    def __init__(self, inner: GenerativeModel) -> None:
        super().__init__(inner.image_shape, inner.latent_dim, inner.width)
        self.family = inner.family  # instance attribute shadows the ClassVar: same family
        self.is_vae = False  # only the sampling path is deployed
        self.inner = inner
        self._compiled: Any = None

    def compiled(self) -> Any:
        if self._compiled is None:
            self._compiled = torch.compile(self.inner, backend="inductor")
        return self._compiled

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_compiled"] = None  # compiled callables are not picklable: recompiled lazily
        return state

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.compiled()(z)


def warm_up(model: CompiledModel, device: str) -> float:
    """Compile for batch 1 and for a dynamic batch; returns CPU seconds spent by this process
    and its finished children (inductor's compile-worker pool outlives the call: not counted)."""
    start = _cpu_seconds()
    with torch.no_grad():
        for batch in (1, WARMUP_BATCH):
            z = torch.randn(batch, model.latent_dim, device=device)
            if batch > 1:
                torch._dynamo.mark_dynamic(z, 0)
            model(z)
    return _cpu_seconds() - start


def _cpu_seconds() -> float:
    own, kids = (resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


@register_runtime
class CompiledRuntime(Runtime):
    name = "compiled"
    devices = ("cpu", "cuda")

    def deploy(self, cm: CompressedModel, device: str, ctx: RuntimeContext) -> Deployed:
        inner = copy.deepcopy(cm.model).to(device).eval()
        model = CompiledModel(inner)
        wall = time.perf_counter()
        cpu = warm_up(model, device)
        wall = time.perf_counter() - wall
        z = check_latents(inner, ctx).to(device)
        with torch.no_grad():
            err = float((model(z) - cm.model(z.to(cm.model.device)).to(device)).abs().max())
        notes = (f"torch.compile inductor, default mode; compile + warm-up {wall:.1f} s wall, "
                 f"{cpu:.1f} CPU s in this process (batch 1 and a dynamic batch)",)
        return Deployed(model=model, runtime=self.name, execution="inductor",
                        export_max_abs_err=err, notes=notes)
