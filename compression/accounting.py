"""Counting what a (compressed) model costs: prunable tensors, parameters, nonzeros, MACs, bits."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from genmodels.base import GenerativeModel

# Layers whose weights are pruned and quantized; BatchNorm/LayerNorm are kept (they are tiny and
# folding-sensitive), as are biases unless asked for.
PRUNABLE_LAYERS = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear, nn.GRU, nn.LSTM)
_RNN_GATES = {nn.GRU: 3, nn.LSTM: 4, nn.RNN: 1}
_RNN_GATES_BY_MODE = {"GRU": 3, "LSTM": 4}
try:  # torch.ao's dynamic int8 modules (deprecated, still shipped): count their MACs too.
    from torch.ao.nn.quantized import dynamic as _ao_dynamic

    _INT8_RNNS: tuple[type, ...] = (_ao_dynamic.GRU, _ao_dynamic.LSTM)
    _INT8_LINEARS: tuple[type, ...] = (_ao_dynamic.Linear,)
except ImportError:  # a torch without torch.ao
    _INT8_RNNS, _INT8_LINEARS = (), ()
_COUNTED_LAYERS = PRUNABLE_LAYERS + _INT8_RNNS + _INT8_LINEARS

PrunableTensor = tuple[str, nn.Module, str]


def _scope(model: nn.Module) -> tuple[nn.Module, nn.Module]:
    """(root whose names are used, deployable sub-module whose tensors count)."""
    if isinstance(model, GenerativeModel):
        return model, model.deployable()
    return model, model


def prunable_tensors(model: nn.Module, include_bias: bool = False) -> list[PrunableTensor]:
    """[(qualified_name, module, param_name)] of the weights of Conv2d, ConvTranspose2d, Linear and
    GRU/LSTM (weight_ih_l*, weight_hh_l*) inside `model.deployable()` (the module itself if it is
    not a GenerativeModel). Names are state_dict keys of `model`. Norm layers are never included;
    biases (incl. RNN bias_ih/bias_hh) only with include_bias=True."""
    root, scope = _scope(model)
    inside = {id(m) for m in scope.modules()}
    found: list[PrunableTensor] = []
    for prefix, module in root.named_modules():
        if id(module) not in inside or not isinstance(module, PRUNABLE_LAYERS):
            continue
        for pname, param in module.named_parameters(recurse=False):
            is_weight = pname == "weight" or pname.startswith(("weight_ih", "weight_hh"))
            is_bias = pname == "bias" or pname.startswith(("bias_ih", "bias_hh"))
            if param is not None and (is_weight or (include_bias and is_bias)):
                found.append((f"{prefix}.{pname}" if prefix else pname, module, pname))
    return found


def count_params(model: nn.Module) -> int:
    """Number of parameters of `model.deployable()` (what is shipped)."""
    return sum(p.numel() for p in _scope(model)[1].parameters())


def _nonzero(tensor: torch.Tensor) -> int:
    """Nonzero entries; tensor subclasses without count_nonzero (torchao's Int8Tensor weights)
    are counted on their dequantized values (a zero weight quantizes to code 0 -> 0.0)."""
    try:
        return int(torch.count_nonzero(tensor))
    except (NotImplementedError, RuntimeError, TypeError):
        return int(torch.count_nonzero(tensor.dequantize()))


def count_nonzero(model: nn.Module) -> int:
    """Number of nonzero parameters of `model.deployable()`."""
    return sum(_nonzero(p) for p in _scope(model)[1].parameters())


def weight_sparsity(model: nn.Module) -> float:
    """Fraction of zeros over the prunable weights (what pruning targets): 1 - nnz / n."""
    tensors = [getattr(m, p) for _, m, p in prunable_tensors(model)]
    total = sum(t.numel() for t in tensors)
    return 1.0 - sum(_nonzero(t) for t in tensors) / max(total, 1)


def _density(weight: torch.Tensor) -> float:
    return _nonzero(weight) / max(weight.numel(), 1)


def _layer_macs(module: nn.Module, inputs: tuple, output: Any) -> tuple[int, float]:
    """(dense, effective) multiply-accumulates of one call; effective scales by weight density."""
    x = inputs[0]
    if isinstance(module, nn.Conv2d):
        # out elements (B*Cout*Hout*Wout) x (Cin/groups * kH * kW)
        per_out = (
            module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
        )
        dense = output.numel() * per_out
        return dense, dense * _density(module.weight)
    if isinstance(module, nn.ConvTranspose2d):
        # every input pixel scatters a (Cout/groups, kH, kW) patch: B*Hin*Win * Cin * Cout/g * kH*kW
        spatial = x.numel() // module.in_channels
        dense = (
            spatial
            * module.in_channels
            * module.out_channels
            // module.groups
            * module.kernel_size[0]
            * module.kernel_size[1]
        )
        return dense, dense * _density(module.weight)
    if isinstance(module, nn.Linear):
        rows = x.numel() // module.in_features
        dense = rows * module.in_features * module.out_features
        return dense, dense * _density(module.weight)
    if isinstance(module, (nn.GRU, nn.LSTM, *_INT8_RNNS)):
        return _rnn_macs(module, x)
    if isinstance(module, _INT8_LINEARS):
        # torch.ao dynamic int8 Linear: packed weights, same MACs as the float layer.
        dense = x.numel() // module.in_features * module.in_features * module.out_features
        return dense, float(dense)
    return 0, 0.0


def _rnn_macs(rnn: nn.Module, x: torch.Tensor) -> tuple[int, float]:
    """Per time step and direction: gates*hidden*input (ih) + gates*hidden*hidden (hh).
    Works for nn.GRU/LSTM and torch.ao's dynamic int8 GRU/LSTM (same sizes, packed weights:
    their density is taken as 1)."""
    if isinstance(x, nn.utils.rnn.PackedSequence):
        steps_x_batch = int(x.batch_sizes.sum())
    else:
        steps_x_batch = x.shape[0] * x.shape[1] if x.dim() == 3 else x.shape[0]  # unbatched (T, I)
    gates = _RNN_GATES.get(type(rnn)) or _RNN_GATES_BY_MODE[rnn.mode]
    hidden = rnn.hidden_size
    directions = 2 if rnn.bidirectional else 1
    dense, effective = 0, 0.0
    for layer in range(rnn.num_layers):
        in_size = rnn.input_size if layer == 0 else hidden * directions
        for suffix in ["", "_reverse"][:directions]:
            w_ih = getattr(rnn, f"weight_ih_l{layer}{suffix}", None)
            w_hh = getattr(rnn, f"weight_hh_l{layer}{suffix}", None)
            ih = steps_x_batch * gates * hidden * in_size
            hh = steps_x_batch * gates * hidden * hidden
            dense += ih + hh
            effective += ih * _density_or_one(w_ih) + hh * _density_or_one(w_hh)
    return dense, effective


def _density_or_one(weight: torch.Tensor | None) -> float:
    return 1.0 if weight is None else _density(weight)


@torch.no_grad()
def count_macs(model: nn.Module, z: torch.Tensor) -> tuple[int, int]:
    """(dense, effective) MACs of one `model(z)` over the whole batch of z (pass one z for
    per-sample MACs), counted with forward hooks on Conv2d, ConvTranspose2d, Linear, GRU, LSTM
    inside deployable(); every call counts (an RNN run stepwise in a loop is counted per step).
    Biases, norms and activations are not counted (the usual MAC convention). `effective` scales
    each layer by its weight density nnz/n: what a perfect sparse kernel would execute."""
    _, scope = _scope(model)
    totals = [0, 0.0]

    def hook(module: nn.Module, inputs: tuple, output: Any) -> None:
        dense, effective = _layer_macs(module, inputs, output)
        totals[0] += dense
        totals[1] += effective

    handles = [
        m.register_forward_hook(hook) for m in scope.modules() if isinstance(m, _COUNTED_LAYERS)
    ]
    was_training = model.training
    try:
        model.eval()
        model(z)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return int(totals[0]), int(round(totals[1]))


def bits_per_weight(cm: Any) -> float:
    """Stored bits of the prunable weights / their count: 32 for fp32; a quantized tensor reports
    its own nominal code width (`cm.quantized[name].bits`, keyed by the same qualified name as
    `prunable_tensors`). Scale/zero-point overhead is NOT included here: it is in the packed bytes
    counted by the storage module (compression.quantization)."""
    bits, count = 0.0, 0
    for name, module, pname in prunable_tensors(cm.model):
        weight = getattr(module, pname)
        q = cm.quantized.get(name)
        bits += weight.numel() * (q.bits if q is not None else weight.element_size() * 8)
        count += weight.numel()
    return bits / max(count, 1)
