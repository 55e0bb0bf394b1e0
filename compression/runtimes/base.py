"""The runtime interface: where a compressed variant is deployed (eager, compiled, ORT, ...)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch

from compression.api import CompressedModel
from genmodels.base import GenerativeModel
from genmodels.registry import register


@dataclass(frozen=True)
class RuntimeContext:
    """What a runtime may need to deploy a variant: calibration/check data, a seed, a workdir."""

    calib_x: torch.Tensor | None = None  # (N, C, H, W) training images in [0,1] (VAE encoders)
    calib_z: torch.Tensor | None = None  # (N, latent_dim) latents calibrating the sampling path
    check_z: torch.Tensor | None = None  # latents on which export is checked against eager
    seed: int = 0
    workdir: Path | None = None  # where exported files may be written (temp dir)


@dataclass
class Deployed:
    """A variant as one runtime runs it, plus what the runtime did to it.

    `model` is runnable like any variant: forward(z) -> images in [0, 1]; same `family`,
    `image_shape`, `latent_dim`, `latent()`, `sample()`. For ORT it is an nn.Module wrapper
    around the session without nn.Parameters, so `device` reports cpu / the session's device.
    """

    model: GenerativeModel
    runtime: str  # registry name, e.g. "onnxruntime_int8"
    execution: str  # what ran, e.g. "ort-fp32", "ort-int8-qdq", "inductor", "sparse-csr"
    int8_mac_fraction: float | None = None  # MACs on int8 kernels / all MACs of forward(z)
    fp32_ops: tuple[str, ...] = ()  # op types (with counts, e.g. "GRU x1") left in fp32
    export_max_abs_err: float | None = None  # max |deployed(z) - eager(z)| on ctx.check_z
    size_file_bytes: int | None = None  # bytes of the deployed artefact (e.g. the .onnx file)
    changes_outputs: bool = False  # outputs differ beyond export tolerance by design (int8)
    notes: tuple[str, ...] = ()


class Runtime:
    """One way of running a variant. Subclasses register themselves with @register_runtime."""

    name: ClassVar[str] = ""
    devices: ClassVar[tuple[str, ...]] = ("cpu",)

    def unavailable(self, cm: CompressedModel, device: str) -> str | None:
        """None when this runtime can run `cm` on `device`, else a one-line reason."""
        if _device_type(device) not in self.devices:
            return f"runtime {self.name!r} runs on {'/'.join(self.devices)}, not {device!r}"
        if _device_type(device) == "cuda" and not torch.cuda.is_available():
            return f"runtime {self.name!r} on cuda needs a GPU; torch.cuda.is_available() is False"
        return None

    def deploy(self, cm: CompressedModel, device: str, ctx: RuntimeContext) -> Deployed:
        raise NotImplementedError


def _device_type(device: str | torch.device) -> str:
    return torch.device(device).type


RUNTIMES: dict[str, Runtime] = {}


def register_runtime(cls: type[Runtime]) -> type[Runtime]:
    """Class decorator: store one instance of `cls` in RUNTIMES under `cls.name`."""
    register(RUNTIMES, cls.name)(cls())
    return cls


def get_runtime(name: str) -> Runtime:
    """The registered runtime `name`; an unknown name raises ValueError listing the known ones."""
    _ensure_runtimes_loaded()
    if name not in RUNTIMES:
        raise ValueError(f"unknown runtime {name!r}; known: {', '.join(sorted(RUNTIMES))}")
    return RUNTIMES[name]


def _ensure_runtimes_loaded() -> None:
    # Importing the package imports every runtime module, whose decorators fill RUNTIMES.
    import compression.runtimes  # noqa: F401
