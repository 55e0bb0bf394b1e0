"""AdaRound of a diffusion UNet's weights on layer inputs recorded along DDIM trajectories."""
from __future__ import annotations

import torch
from torch import nn

from compression.accounting import prunable_tensors
from compression.api import CompressedModel
from compression.quantization.adaround import AdaRoundSettings, adaround
from compression.quantization.core import QuantizedWeight

# Inputs kept per layer for the held-out check of the layer error (the first ones recorded are
# not held out from training; the check reports how much the rounding lowered the error on them).
CHECK_INPUTS = 64


@torch.no_grad()
def record_layer_inputs(model: nn.Module, layers: dict[str, nn.Module], n_samples: int,
                        generator: torch.Generator) -> dict[str, torch.Tensor]:
    """{layer: (n_samples * steps, ...) inputs} of each layer at every UNet call of DDIM
    trajectories from n_samples latents: calibration data spread uniformly over the timesteps,
    as Q-Diffusion's (arXiv:2302.04304, Sec. 4.2) for its BRECQ/AdaRound weight step."""
    store: dict[str, list[torch.Tensor]] = {name: [] for name in layers}

    def keep(name: str):
        def hook(module: nn.Module, args: tuple) -> None:
            store[name].append(args[0].detach().clone())
        return hook

    handles = [m.register_forward_pre_hook(keep(n)) for n, m in layers.items()]
    was_training = model.training
    model.eval()
    try:
        model(model.latent(n_samples, generator))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return {name: torch.cat(kept) for name, kept in store.items() if kept}


def _layer_error(module: nn.Module, param: str, weight: torch.Tensor,
                 reference: torch.Tensor, x: torch.Tensor) -> float:
    """Mean squared output error of `module` with `weight` as `param` against `reference`."""
    with torch.no_grad():
        out = torch.func.functional_call(module, {param: weight}, (x,))
        return float((out - reference).pow(2).mean())


def adaround_weights(cm: CompressedModel, fp_weights: dict[str, torch.Tensor],
                     inputs: dict[str, torch.Tensor], settings: AdaRoundSettings,
                     generator: torch.Generator) -> dict[str, float]:
    """Re-choose the codes of every quantized weight of cm by AdaRound on `inputs` (recorded on
    the fp32 model: each layer is reconstructed on its own, from fp32 inputs); the weights take
    the new dequantized values. Returns the summary stored in notes: the share of codes that
    differ from nearest rounding and the mean output error relative to nearest rounding's, both
    on the first CHECK_INPUTS inputs of each layer."""
    changed = total = 0
    ratios = []
    for name, module, pname in prunable_tensors(cm.model):
        layer = name.rsplit(".", 1)[0]
        nearest: QuantizedWeight = cm.quantized[name]
        if layer not in inputs:  # never called along the trajectory: nothing to match
            continue
        weight = getattr(module, pname)
        fp = fp_weights[name].to(weight.device)
        qw = adaround(module, fp, nearest, inputs[layer], settings, generator, pname)
        x = inputs[layer][:CHECK_INPUTS]
        with torch.no_grad():
            reference = torch.func.functional_call(module, {pname: fp}, (x,))
            before = _layer_error(module, pname, nearest.dequantize().to(fp), reference, x)
            after = _layer_error(module, pname, qw.dequantize().to(fp), reference, x)
            weight.copy_(qw.dequantize().to(weight.device, weight.dtype))
        ratios.append(after / before if before > 0 else 1.0)
        changed += int((qw.codes != nearest.codes).sum())
        total += qw.codes.numel()
        cm.quantized[name] = qw
    return {"codes_changed": changed / max(total, 1),
            "layer_error_vs_nearest": sum(ratios) / max(len(ratios), 1),
            "layers": len(ratios)}
