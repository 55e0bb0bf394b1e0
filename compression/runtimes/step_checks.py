"""Export check of driven graphs (RVAE row step, diffusion denoiser): each call on eager inputs."""
from __future__ import annotations

import copy

import torch
from torch import nn

from compression.runtimes.graphs import (
    DENOISE,
    ROW_INIT,
    ROW_STEP,
    DenoiseStep,
    RowInit,
    RowStep,
    is_denoiser_driven,
)
from compression.runtimes.int8_calibration import calibration_feeds
from genmodels.base import GenerativeModel


def graph_call_error(deployed: nn.Module, reference: GenerativeModel, z: torch.Tensor) -> float:
    """max |graph(inputs) - eager(inputs)| over every graph call forward(z) makes, each call fed
    the inputs eager itself meets (the rows' states, the sampler's x_t): the export's own error,
    without the recurrence or the sampler amplifying it."""
    model = copy.deepcopy(reference).cpu().eval()
    modules = ({DENOISE: DenoiseStep(model)} if is_denoiser_driven(model)
               else {ROW_INIT: RowInit(model), ROW_STEP: RowStep(model)})
    runners = deployed.runners()
    worst = 0.0
    with torch.no_grad():
        for name, feeds in calibration_feeds(model, z.detach().float().cpu()).items():
            for feed in feeds:
                outs = runners[name](feed)
                refs = modules[name](*(torch.from_numpy(v) for v in feed.values()))
                refs = refs if isinstance(refs, tuple) else (refs,)
                for out, ref in zip(outs, refs, strict=True):
                    worst = max(worst, float((torch.from_numpy(out) - ref).abs().max()))
    return worst
