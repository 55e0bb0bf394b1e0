"""ONNX export of a variant's sampling path (graphs: runtimes.graphs) and its check against eager.

Exporter: torch.onnx.export(dynamo=True) (torch.export + onnxscript). It exports every family
here with a dynamic batch axis; the TorchScript exporter is deprecated since torch 2.9 and prints
a removal warning, so it is not used.
"""
from __future__ import annotations

import contextlib
import copy
import io
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from compression.api import EXECUTION_INT8_KERNEL, CompressedModel
from compression.runtimes.base import RuntimeContext
from compression.runtimes.graphs import (
    DENOISE,
    ROW_INIT,
    ROW_STEP,
    SAMPLING,
    DenoiseStep,
    RowInit,
    RowStep,
    is_denoiser_driven,
    is_row_driven,
    state_names,
)
from genmodels.base import GenerativeModel
from genmodels.determinism import seeded_generator

OPSET = 18
EXPORT_ATOL = 1e-4  # max |onnx(z) - eager(z)| on images in [0, 1] for fp32 graphs; above: raise
DRIVEN_ATOL = 1e-2  # end-to-end bound of driven graphs (row step, denoiser): see check_export

CHECK_LATENTS = 16  # latents the export is checked on when ctx.check_z is None


class ExportMismatch(RuntimeError):
    """The exported graph's outputs differ from eager beyond the stated tolerance."""


def export_onnx(model: GenerativeModel, workdir: Path, example_batch: int = 2,
                cell_as_gemm: bool = False) -> dict[str, Path]:
    """Export `model`'s sampling path under `workdir`; returns graph name -> .onnx file.

    Runs on a CPU copy in eval mode. Every graph has a dynamic batch axis (state tensors: axis 1).
    cell_as_gemm: the row step's recurrent cell as Gemm + gate ops (see RowStep).
    """
    model = copy.deepcopy(model).cpu().eval()
    workdir.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(example_batch, model.latent_dim, generator=gen)
    batch = torch.export.Dim("batch", min=1)
    if is_denoiser_driven(model):
        path = workdir / f"{DENOISE}.onnx"
        x, t = z.reshape(-1, *model.image_shape), torch.full((example_batch,), 7)
        _export(DenoiseStep(model), (x, t), path, ["x", "t"], ["eps"], ({0: batch}, {0: batch}))
        return {DENOISE: path}
    if not is_row_driven(model):
        path = workdir / f"{SAMPLING}.onnx"
        _export(model, (z,), path, ["z"], ["images"], ({0: batch},))
        return {SAMPLING: path}
    states = state_names(model)
    init_path, step_path = workdir / f"{ROW_INIT}.onnx", workdir / f"{ROW_STEP}.onnx"
    _export(RowInit(model), (z,), init_path, ["z"], list(states), ({0: batch},))
    with torch.no_grad():
        state = RowInit(model)(z)
    prev = torch.zeros(example_batch, model.row_dim)
    _export(RowStep(model, cell_as_gemm), (prev, z, *state), step_path, ["prev", "z", *states],
            ["probs", *(f"{s}_next" for s in states)],
            {"prev": {0: batch}, "z": {0: batch}, **{s: {1: batch} for s in states}})
    return {ROW_INIT: init_path, ROW_STEP: step_path}


def _export(module: nn.Module, args: tuple, path: Path, inputs: Sequence[str],
            outputs: Sequence[str], dynamic_shapes: tuple | dict) -> None:
    # The dynamo exporter prints progress lines and warns about GRU's flat weights being
    # re-assigned during tracing (harmless here): keep both out of the benchmark's output.
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), _sdpa_4d():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, args, str(path), dynamo=True, opset_version=OPSET,
                          input_names=list(inputs), output_names=list(outputs),
                          dynamic_shapes=dynamic_shapes, external_data=False, verbose=False)


@contextlib.contextmanager
def _sdpa_4d() -> Iterator[None]:
    """While exporting, give 3-D scaled_dot_product_attention inputs (B, L, E) a heads axis:
    the exporter translates only 4-D SDPA (torch 2.14), and one head is the same maths."""
    original = F.scaled_dot_product_attention

    def four_d(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *args, **kwargs
               ) -> torch.Tensor:
        if q.dim() == 3:
            return original(q[:, None], k[:, None], v[:, None], *args, **kwargs)[:, 0]
        return original(q, k, v, *args, **kwargs)

    F.scaled_dot_product_attention = four_d
    try:
        yield
    finally:
        F.scaled_dot_product_attention = original


def max_abs_error(deployed: nn.Module, reference: nn.Module, z: torch.Tensor) -> float:
    """max |deployed(z) - reference(z)| over all pixels, on CPU."""
    with torch.no_grad():
        ref = reference(z.to(_device_of(reference))).float().cpu()
        out = deployed(z).float().cpu()
    return float((out - ref).abs().max())


def check_export(deployed: nn.Module, reference: nn.Module, z: torch.Tensor,
                 atol: float = EXPORT_ATOL) -> float:
    """The max abs error of `deployed` against eager `reference` on z; ExportMismatch above atol.

    Driven graphs (RVAE row step, diffusion denoiser): atol applies to each graph call fed eager's
    own inputs, and the end-to-end error only has to stay under DRIVEN_ATOL (a driver bug gives
    O(0.1)): the loop amplifies rounding. DDIM's first step x0 = (x_T - sqrt(1 - a_T) eps) /
    sqrt(a_T) multiplies eps rounding by sqrt((1 - a_T) / a_T) (~2,000 for the cosine schedule at
    T = 1000: 1e-6 -> 2e-3); the RVAE feeds each row back 28 times (trained: 1.2e-4 measured).
    """
    err = max_abs_error(deployed, reference, z)
    if is_row_driven(reference) or is_denoiser_driven(reference):
        from compression.runtimes.step_checks import graph_call_error

        call_err = graph_call_error(deployed, reference, z)
        if not call_err <= atol:
            raise ExportMismatch(f"exported step graph differs from eager by {call_err:.3g} > "
                                 f"{atol:g} (max abs per call); not deploying it")
        atol = DRIVEN_ATOL
    if not err <= atol:  # NaN fails too
        raise ExportMismatch(f"exported graph differs from eager by {err:.3g} > {atol:g} "
                             f"(max abs on images in [0, 1]); not deploying it")
    return err


def _device_of(module: nn.Module) -> torch.device:
    first = next(module.parameters(), None)
    return first.device if first is not None else torch.device("cpu")


def export_unavailable(cm: CompressedModel) -> str | None:
    """None when `cm` can be exported to ONNX, else why not (one line)."""
    if cm.execution == EXECUTION_INT8_KERNEL:
        return ("int8-kernel variants hold torchao / torch.ao int8 tensors, which torch.onnx "
                "cannot export; the onnxruntime_int8 runtime quantizes the fp32 variant instead")
    return None


def check_latents(model: GenerativeModel, ctx: RuntimeContext) -> torch.Tensor:
    """ctx.check_z, or CHECK_LATENTS latents drawn from a generator seeded by ctx.seed (CPU)."""
    if ctx.check_z is not None:
        return ctx.check_z.detach().float().cpu()
    gen = seeded_generator(ctx.seed, "runtime-export-check")
    return torch.randn(CHECK_LATENTS, model.latent_dim, generator=gen)


@contextlib.contextmanager
def export_dir(ctx: RuntimeContext, runtime: str) -> Iterator[Path]:
    """ctx.workdir/<runtime> (kept), or a temporary directory removed afterwards: the deployed
    model keeps its graphs in memory, so nothing needs the files once it is built."""
    if ctx.workdir is not None:
        path = Path(ctx.workdir) / runtime
        path.mkdir(parents=True, exist_ok=True)
        yield path
        return
    with tempfile.TemporaryDirectory(prefix=f"genbench-{runtime}-") as tmp:
        yield Path(tmp)
