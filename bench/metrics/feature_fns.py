"""The feature network as functions of images: features for FID-proxy & co, logits for classes."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

FEATURE_BATCH = 500  # images per feature-net call; features do not depend on it (eval mode)


def make_feature_fn(
    net: nn.Module, batch_size: int = FEATURE_BATCH
) -> Callable[[torch.Tensor], np.ndarray]:
    """Wrap a feature network (with `.features(x)` if it has one, else its forward) into
    images (B, C, H, W) -> float64 features (B, d), batched, in eval mode, on the net's device.
    A classifier (a net with `.features` and `.n_classes`, whose forward gives class logits, as
    genmodels.features.FeatureNet) also gets `.logits` on the returned function, images ->
    float64 logits (B, K), which QualityEvaluator uses for the class statistics of samples."""

    def batched(extract: Callable[[torch.Tensor], torch.Tensor]) -> Callable:
        @torch.no_grad()
        def apply(x: torch.Tensor) -> np.ndarray:
            net.eval()
            device = next(net.parameters()).device
            chunks = torch.split(x, batch_size)
            return torch.cat([extract(c.to(device)).double().cpu() for c in chunks]).numpy()

        return apply

    feature_fn = batched(getattr(net, "features", net))
    if hasattr(net, "features") and hasattr(net, "n_classes"):
        feature_fn.logits = batched(net)  # type: ignore[attr-defined]
    return feature_fn
