"""What the weight-quantizer and kernel tests compare: one output per model (see one_call)."""
from __future__ import annotations

import torch

from genmodels.base import GenerativeModel


def one_call(model: GenerativeModel, z: torch.Tensor) -> torch.Tensor:
    """The model's output for tests of weight quantizers and kernels: forward(z), except for a
    sampler that iterates (ddpm), whose untrained tiny model clips to {0, 1} after its steps, so
    that a 1e-3 change of one denoiser call can flip a pixel; there, one denoiser call at t=500
    on z as the image."""
    if not hasattr(model, "ddim_sample"):
        return model(z)
    x = z.reshape(len(z), *model.image_shape)
    return model.unet(x, torch.full((len(z),), 500, dtype=torch.long, device=x.device))
