"""Calibration inputs for ORT static quantization, and the quantize_static call itself."""
from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from compression.runtimes.graphs import (
    DENOISE,
    ROW_INIT,
    ROW_STEP,
    SAMPLING,
    RowInit,
    RowStep,
    is_denoiser_driven,
    is_row_driven,
    state_names,
)
from genmodels.base import GenerativeModel

CALIBRATION_BATCH = 64

Feeds = list[dict[str, np.ndarray]]


def calibration_feeds(model: GenerativeModel, calib_z: torch.Tensor) -> dict[str, Feeds]:
    """Graph name -> the input batches its activations are calibrated on.

    Whole path: batches of calib_z. Row step: the (prev, z, state) inputs of every row while eager
    runs free from calib_z, so every row's activation range is seen, not only the first.
    """
    batches = calib_z.split(CALIBRATION_BATCH)
    if is_denoiser_driven(model):
        return {DENOISE: _denoiser_feeds(model, batches[0])}
    if not is_row_driven(model):
        return {SAMPLING: [{"z": z.numpy()} for z in batches]}
    init_feeds: Feeds = []
    step_feeds: Feeds = []
    names = state_names(model)
    init, step = RowInit(model), RowStep(model, cell_as_gemm=True)
    with torch.no_grad():
        for z in batches:
            init_feeds.append({"z": z.numpy()})
            state = init(z)
            prev = z.new_zeros(z.shape[0], model.row_dim)
            for _ in range(model.n_rows):
                step_feeds.append({"prev": prev.numpy(), "z": z.numpy(),
                                   **{n: s.numpy() for n, s in zip(names, state, strict=True)}})
                prev, *state = step(prev, z, *state)
    return {ROW_INIT: init_feeds, ROW_STEP: step_feeds}


def _denoiser_feeds(model: GenerativeModel, z: torch.Tensor) -> Feeds:
    """The denoiser's (x_t, t) inputs at every sampling step while eager samples from z (one
    batch: the steps, not the latents, are what spreads the activation ranges)."""
    feeds: Feeds = []

    def record(module: torch.nn.Module, args: tuple) -> None:
        x, t = args
        feeds.append({"x": x.detach().cpu().numpy(), "t": t.detach().cpu().numpy()})

    handle = model.unet.register_forward_pre_hook(record)
    try:
        with torch.no_grad():
            model(z)
    finally:
        handle.remove()
    return feeds


def quantize_graph(src: Path, dst: Path, feeds: Feeds, reduce_range: bool, method: str) -> None:
    """Static QDQ quantization of `src` into `dst`: per-channel int8 weights, uint8 activations,
    activation ranges from `feeds` by `method` (MinMax, Percentile or Entropy)."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter(feeds)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.batches, None)

    # ORT's recommended pre-processing: symbolic shape inference + graph clean-up, so the
    # quantizer sees every shape (needed for per-channel axes).
    pre = dst.with_name(dst.stem + ".pre.onnx")
    # Both print progress (histogram calibrators) and log per-channel notes for rank-1 weights
    # (BatchNorm scales, quantized per tensor as they should be): keep them out of the output.
    with contextlib.redirect_stdout(io.StringIO()), _quiet_root_logger():
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=False)
        quantize_static(str(pre), str(dst), Reader(), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        per_channel=True, reduce_range=reduce_range,
                        calibrate_method=getattr(CalibrationMethod, method))


@contextlib.contextmanager
def _quiet_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)
