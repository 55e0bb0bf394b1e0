"""ONNX export of a variant's sampling path: whole forward(z), or the RVAE's one-row decoder step.

Exporter: torch.onnx.export(dynamo=True) (torch.export + onnxscript). It exports all three
families here with a dynamic batch axis; the TorchScript exporter is deprecated since torch 2.9
and prints a removal warning, so it is not used. The RVAE decoder is autoregressive over rows, so
(as one deploys such a decoder) two graphs are exported: `init` z -> initial state, and `step`
(previous row's probabilities, z, state) -> (this row's probabilities, next state); the wrapper in
compression.runtimes.onnx_model drives `step` row by row.
"""
from __future__ import annotations

import contextlib
import copy
import io
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from compression.api import EXECUTION_INT8_KERNEL, CompressedModel
from compression.runtimes.base import RuntimeContext
from genmodels.base import GenerativeModel
from genmodels.determinism import seeded_generator
from genmodels.models.rvae import RecurrentVAE

OPSET = 18
EXPORT_ATOL = 1e-4  # max |onnx(z) - eager(z)| on images in [0, 1] for fp32 graphs; above: raise

CHECK_LATENTS = 16  # latents the export is checked on when ctx.check_z is None
SAMPLING = "sampling"  # graph names: whole path z -> images
ROW_INIT, ROW_STEP = "init", "step"  # autoregressive decoder: z -> state; one row per call
DENOISE = "denoise"  # diffusion: the denoiser (x_t, t) -> eps, one call per sampling step


class ExportMismatch(RuntimeError):
    """The exported graph's outputs differ from eager beyond the stated tolerance."""


class RowInit(nn.Module):
    """z (B, D) -> initial decoder state: h (1, B, hid) (LSTM: and c, zeros)."""

    def __init__(self, model: RecurrentVAE) -> None:
        super().__init__()
        self.model = model

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, ...]:
        state = self.model._init_state(z)
        return tuple(state) if isinstance(state, tuple) else (state,)


class RowStep(nn.Module):
    """One free-running decoder row, exactly RecurrentVAE.decode's loop body followed by the
    sigmoid of forward: (prev (B, W*C), z (B, D), *state) -> (probs (B, W*C), *next_state).

    cell_as_gemm: write the GRU/LSTM cell's equations out (two Linear + gates) instead of calling
    the RNN module, so the graph holds Gemm ops, not one ONNX GRU/LSTM op: ORT quantizes no GRU,
    but it runs Gemm on int8 kernels. Same maths as torch.nn.GRU / nn.LSTM (their docs' gates).
    """

    def __init__(self, model: RecurrentVAE, cell_as_gemm: bool = False) -> None:
        super().__init__()
        self.model, self.cell_as_gemm = model, cell_as_gemm

    def forward(self, prev: torch.Tensor, z: torch.Tensor, h: torch.Tensor,
                c: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        x = torch.cat([prev, z], dim=1)  # (B, W*C + D)
        if self.cell_as_gemm:
            out, nxt = _cell_step(self.model.decoder_rnn, x, h[0], None if c is None else c[0])
        else:
            rnn_state = h if c is None else (h, c)
            out, nxt = self.model.decoder_rnn(x.unsqueeze(1), rnn_state)
            out = out[:, 0]
        probs = torch.sigmoid(self.model.dec_out(out))
        return (probs, *(nxt if isinstance(nxt, tuple) else (nxt,)))


def _cell_step(rnn: nn.Module, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor | None
               ) -> tuple[torch.Tensor, torch.Tensor | tuple[torch.Tensor, torch.Tensor]]:
    """One step of a single-layer nn.GRU / nn.LSTM from its weights: (B, in), (B, hid) -> output
    (B, hid) and the next state shaped as the module returns it ((1, B, hid) each).
    GRU: r, u = sigmoid(gi_r + gh_r), sigmoid(gi_u + gh_u); n = tanh(gi_n + r * gh_n);
    h' = (1 - u) * n + u * h.  LSTM: i, f, g, o gates; c' = f * c + i * g; h' = o * tanh(c')."""
    gi = F.linear(x, rnn.weight_ih_l0, rnn.bias_ih_l0)
    gh = F.linear(h, rnn.weight_hh_l0, rnn.bias_hh_l0)
    if isinstance(rnn, nn.GRU):
        i_r, i_u, i_n = gi.chunk(3, dim=1)
        h_r, h_u, h_n = gh.chunk(3, dim=1)
        reset, update = torch.sigmoid(i_r + h_r), torch.sigmoid(i_u + h_u)
        new = torch.tanh(i_n + reset * h_n)
        h_next = (1 - update) * new + update * h
        return h_next, h_next.unsqueeze(0)
    i, f, g, o = (gi + gh).chunk(4, dim=1)
    c_next = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    h_next = torch.sigmoid(o) * torch.tanh(c_next)
    return h_next, (h_next.unsqueeze(0), c_next.unsqueeze(0))


class DenoiseStep(nn.Module):
    """The diffusion model's denoiser: (x_t (B, C, H, W), t (B,) int64) -> eps (B, C, H, W)."""

    def __init__(self, model: GenerativeModel) -> None:
        super().__init__()
        self.unet = model.unet

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.unet(x, t)


def is_denoiser_driven(model: GenerativeModel) -> bool:
    """True for diffusion models (a `unet` called once per step by `ddim_sample`): the sampler's
    loop stays in Python and only the denoiser is exported (duck-typed: genmodels' DDPM)."""
    return hasattr(model, "ddim_sample") and isinstance(getattr(model, "unet", None), nn.Module)


def graph_calls(model: GenerativeModel, graph: str) -> int:
    """How many times forward(z) runs `graph`."""
    if graph == ROW_STEP:
        return model.n_rows
    return model.steps if graph == DENOISE else 1


def is_row_driven(model: GenerativeModel) -> bool:
    """True when the sampling path is exported as a row step (autoregressive decoder)."""
    return isinstance(model, RecurrentVAE)


def state_names(model: GenerativeModel) -> tuple[str, ...]:
    return ("h", "c") if getattr(model, "cell", "") == "lstm" else ("h",)


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

    Diffusion: the tolerance applies to the denoiser's eps at the sampler's first, middle and
    last timesteps. The end-to-end error is returned but not held to it: DDIM's first step
    x0 = (x_T - sqrt(1 - a_T) eps) / sqrt(a_T) multiplies any eps rounding by
    sqrt((1 - a_T) / a_T) (~2,000 for the cosine schedule at T = 1000: 1e-6 -> 2e-3).
    """
    err = max_abs_error(deployed, reference, z)
    if is_denoiser_driven(reference) and isinstance(getattr(deployed, "runners", None),
                                                     Callable):
        err_eps = _denoiser_error(deployed, reference, z)
        if not err_eps <= atol:
            raise ExportMismatch(f"exported denoiser differs from eager by {err_eps:.3g} > "
                                 f"{atol:g} (max abs of eps); not deploying it")
        return err
    if not err <= atol:  # NaN fails too
        raise ExportMismatch(f"exported graph differs from eager by {err:.3g} > {atol:g} "
                             f"(max abs on images in [0, 1]); not deploying it")
    return err


def _denoiser_error(deployed: nn.Module, reference: GenerativeModel, z: torch.Tensor) -> float:
    denoise = deployed.runners()[DENOISE]
    x = z.reshape(-1, *reference.image_shape).float().cpu()
    ts = reference.ddim_timesteps(reference.steps)
    worst = 0.0
    with torch.no_grad():
        for t in sorted({ts[0], ts[len(ts) // 2], ts[-1]}):
            t_batch = torch.full((x.shape[0],), t, dtype=torch.long)
            eps = torch.from_numpy(denoise({"x": x.numpy(), "t": t_batch.numpy()})[0])
            ref = reference.unet(x.to(_device_of(reference)), t_batch.to(_device_of(reference)))
            worst = max(worst, float((eps - ref.float().cpu()).abs().max()))
    return worst


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
