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
try:  # torch.ao's dynamic int8 modules (deprecated, still shipped): their weights and MACs count.
    from torch.ao.nn.quantized import dynamic as _ao_dynamic

    INT8_RNNS: tuple[type, ...] = (_ao_dynamic.GRU, _ao_dynamic.LSTM)
    INT8_LINEARS: tuple[type, ...] = (_ao_dynamic.Linear,)
except ImportError:  # a torch without torch.ao
    INT8_RNNS, INT8_LINEARS = (), ()
_COUNTED_LAYERS = PRUNABLE_LAYERS + INT8_RNNS + INT8_LINEARS

PrunableTensor = tuple[str, nn.Module, str]


def _scope(model: nn.Module) -> tuple[nn.Module, nn.Module]:
    """(root whose names are used, deployable sub-module whose tensors count)."""
    if isinstance(model, GenerativeModel):
        return model, model.deployable()
    return model, model


def _scoped_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(name in the root, module) of every module inside deployable()."""
    root, scope = _scope(model)
    inside = {id(m) for m in scope.modules()}
    return [(name, m) for name, m in root.named_modules() if id(m) in inside]


def prunable_tensors(model: nn.Module, include_bias: bool = False) -> list[PrunableTensor]:
    """[(qualified_name, module, param_name)] of the weights of Conv2d, ConvTranspose2d, Linear and
    GRU/LSTM (weight_ih_l*, weight_hh_l*) inside `model.deployable()` (the module itself if it is
    not a GenerativeModel). Names are state_dict keys of `model`. Norm layers are never included;
    biases (incl. RNN bias_ih/bias_hh) only with include_bias=True."""
    found: list[PrunableTensor] = []
    for prefix, module in _scoped_modules(model):
        if not isinstance(module, PRUNABLE_LAYERS):
            continue
        for pname, param in module.named_parameters(recurse=False):
            is_weight = pname == "weight" or pname.startswith(("weight_ih", "weight_hh"))
            is_bias = pname == "bias" or pname.startswith(("bias_ih", "bias_hh"))
            if param is not None and (is_weight or (include_bias and is_bias)):
                found.append((f"{prefix}.{pname}" if prefix else pname, module, pname))
    return found


def _packed_tensors(module: nn.Module) -> dict[str, torch.Tensor]:
    """Tensors a torch.ao dynamic int8 module keeps in packed params instead of nn.Parameters:
    quantized weights (qint8) and fp32 biases, named as the float module named them."""
    if isinstance(module, INT8_RNNS):  # weight_ih_l0, weight_hh_l0, bias_ih_l0, ...
        return {**module.get_weight(), **module.get_bias()}
    if isinstance(module, INT8_LINEARS):
        bias = module.bias()
        return {"weight": module.weight(), **({"bias": bias} if bias is not None else {})}
    return {}


def deployed_tensors(model: nn.Module) -> list[tuple[str, torch.Tensor]]:
    """[(qualified_name, tensor)] of every parameter that `model.deployable()` executes, whatever
    holds it: nn.Parameters (torchao's int8 tensor subclasses included) and the packed weights
    and biases of torch.ao dynamic int8 modules (GRU/LSTM/Linear), which are not Parameters.
    Buffers (BatchNorm running statistics) are not parameters and are not listed."""
    found: list[tuple[str, torch.Tensor]] = []
    for prefix, module in _scoped_modules(model):
        tensors = dict(module.named_parameters(recurse=False))
        tensors.update(_packed_tensors(module))
        found += [(f"{prefix}.{k}" if prefix else k, t) for k, t in tensors.items()]
    return found


def weight_tensors(model: nn.Module, include_bias: bool = False) -> list[tuple[str, torch.Tensor]]:
    """[(qualified_name, tensor)] of the prunable weights (see `prunable_tensors`) in any form:
    float layers' Parameters, torchao int8 subclasses, torch.ao dynamic modules' packed weights.
    Read-only accounting view; to modify weights use `prunable_tensors` (float models)."""
    found = [(name, getattr(m, p)) for name, m, p in prunable_tensors(model, include_bias)]
    for prefix, module in _scoped_modules(model):
        found += [(f"{prefix}.{k}" if prefix else k, t) for k, t in _packed_tensors(module).items()
                  if k.startswith("weight") or include_bias]
    return found


def count_params(model: nn.Module) -> int:
    """Number of parameters of `model.deployable()` (what is shipped), packed ones included."""
    return sum(t.numel() for _, t in deployed_tensors(model))


def _nonzero(tensor: torch.Tensor) -> int:
    """Nonzero entries. Quantized tensors (torch.ao qint8, torchao's Int8Tensor) have no
    count_nonzero: they are counted on their dequantized values, and a zero weight quantizes to
    the zero point, which dequantizes to exactly 0.0."""
    try:
        return int(torch.count_nonzero(tensor))
    except (NotImplementedError, RuntimeError, TypeError):
        return int(torch.count_nonzero(tensor.dequantize()))


def count_nonzero(model: nn.Module) -> int:
    """Number of nonzero parameters of `model.deployable()`, packed ones included."""
    return sum(_nonzero(t) for _, t in deployed_tensors(model))


def weight_sparsity(model: nn.Module, include_bias: bool = False) -> float:
    """Fraction of zeros over the prunable weights (what a sparsity target applies to; biases
    too with include_bias=True, as pruning with include_bias targets them): 1 - nnz / n."""
    tensors = [t for _, t in weight_tensors(model, include_bias)]
    total = sum(t.numel() for t in tensors)
    return 1.0 - sum(_nonzero(t) for t in tensors) / total if total else 0.0


def layers_emptied(model: nn.Module) -> list[str]:
    """Names of the prunable weights that are entirely zero (a layer pruned to 100%: its output
    is its bias alone, whatever its input)."""
    return [name for name, t in weight_tensors(model) if t.numel() and _nonzero(t) == 0]


def _density(weight: torch.Tensor) -> float:
    return _nonzero(weight) / max(weight.numel(), 1)


def is_int8_kernel(module: nn.Module) -> bool:
    """Does `module` execute on an int8 kernel: a torch.ao dynamic int8 module, or a layer whose
    weight is a torchao int8 tensor subclass (int8 `qdata`)? Simulated (fake-quant) layers hold
    plain fp32 weights and are not."""
    if isinstance(module, INT8_RNNS + INT8_LINEARS):
        return True
    qdata = getattr(getattr(module, "weight", None), "qdata", None)
    return isinstance(qdata, torch.Tensor) and qdata.dtype == torch.int8


def _layer_macs(module: nn.Module, inputs: tuple, output: Any) -> tuple[int, float]:
    """(dense, effective) multiply-accumulates of one call; effective scales by weight density."""
    x = inputs[0]
    if isinstance(module, nn.Conv2d):
        # out elements (B*Cout*Hout*Wout) x (Cin/groups * kH * kW)
        kh, kw = module.kernel_size
        dense = output.numel() * (module.in_channels // module.groups * kh * kw)
        return dense, dense * _density(module.weight)
    if isinstance(module, nn.ConvTranspose2d):
        # every input pixel scatters a (Cout/groups, kH, kW) patch: B*Hin*Win * Cin * Cout/g * kH*kW
        spatial, (kh, kw) = x.numel() // module.in_channels, module.kernel_size
        dense = spatial * module.in_channels * module.out_channels // module.groups * kh * kw
        return dense, dense * _density(module.weight)
    if isinstance(module, (nn.Linear, *INT8_LINEARS)):
        # torch.ao's dynamic int8 Linear: packed weight, same MACs as the float layer.
        weight = module.weight() if isinstance(module, INT8_LINEARS) else module.weight
        dense = x.numel() // module.in_features * module.in_features * module.out_features
        return dense, dense * _density(weight)
    if isinstance(module, (nn.GRU, nn.LSTM, *INT8_RNNS)):
        return _rnn_macs(module, x)
    return 0, 0.0


def _rnn_macs(rnn: nn.Module, x: torch.Tensor) -> tuple[int, float]:
    """Per time step and direction: gates*hidden*input (ih) + gates*hidden*hidden (hh).
    Works for nn.GRU/LSTM and torch.ao's dynamic int8 GRU/LSTM (same sizes, packed weights)."""
    if isinstance(x, nn.utils.rnn.PackedSequence):
        steps_x_batch = int(x.batch_sizes.sum())
    else:
        steps_x_batch = x.shape[0] * x.shape[1] if x.dim() == 3 else x.shape[0]  # unbatched (T, I)
    gates = _RNN_GATES.get(type(rnn)) or _RNN_GATES_BY_MODE[rnn.mode]
    hidden = rnn.hidden_size
    directions = 2 if rnn.bidirectional else 1
    packed = _packed_tensors(rnn)
    dense, effective = 0, 0.0
    for layer in range(rnn.num_layers):
        in_size = rnn.input_size if layer == 0 else hidden * directions
        for suffix in ["", "_reverse"][:directions]:
            w_ih, w_hh = (packed.get(n) if packed else getattr(rnn, n)
                          for n in (f"weight_ih_l{layer}{suffix}", f"weight_hh_l{layer}{suffix}"))
            ih = steps_x_batch * gates * hidden * in_size
            hh = steps_x_batch * gates * hidden * hidden
            dense += ih + hh
            effective += ih * _density(w_ih) + hh * _density(w_hh)
    return dense, effective


@torch.no_grad()
def macs_by_layer(model: nn.Module, z: torch.Tensor) -> dict[str, tuple[int, float]]:
    """{module name: (dense, effective)} MACs of one `model(z)`, summed over every call of each
    Conv2d, ConvTranspose2d, Linear, GRU, LSTM (and their torch.ao int8 forms) inside
    deployable(); layers never called are absent. See `count_macs`."""
    totals: dict[str, list] = {}

    def hook_for(name: str):
        def hook(module: nn.Module, inputs: tuple, output: Any) -> None:
            dense, effective = _layer_macs(module, inputs, output)
            total = totals.setdefault(name, [0, 0.0])
            total[0] += dense
            total[1] += effective

        return hook

    handles = [m.register_forward_hook(hook_for(name)) for name, m in _scoped_modules(model)
               if isinstance(m, _COUNTED_LAYERS)]
    was_training = model.training
    try:
        model.eval()
        model(z)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return {name: (int(dense), float(effective)) for name, (dense, effective) in totals.items()}


def count_macs(model: nn.Module, z: torch.Tensor) -> tuple[int, int]:
    """(dense, effective) MACs of one `model(z)` over the whole batch of z (pass one z for
    per-sample MACs), counted with forward hooks on Conv2d, ConvTranspose2d, Linear, GRU, LSTM
    inside deployable(); every call counts (an RNN run stepwise in a loop is counted per step).
    Biases, norms and activations are not counted (the usual MAC convention). `effective` scales
    each layer by its weight density nnz/n: what a perfect sparse kernel would execute."""
    return total_macs(macs_by_layer(model, z))


def total_macs(layers: dict[str, tuple[int, float]]) -> tuple[int, int]:
    """(dense, effective rounded) sums of `macs_by_layer`'s per-layer MACs."""
    return sum(d for d, _ in layers.values()), int(round(sum(e for _, e in layers.values())))


def int8_mac_fraction(model: nn.Module, layers: dict[str, tuple[int, float]]) -> float | None:
    """Dense MACs of the layers that ran on int8 kernels (`is_int8_kernel`) / all dense MACs,
    from `layers = macs_by_layer(model, z)`; None when the model executes no MACs."""
    total = sum(dense for dense, _ in layers.values())
    if not total:
        return None
    modules = dict(_scope(model)[0].named_modules())
    return sum(dense for name, (dense, _) in layers.items()
               if is_int8_kernel(modules[name])) / total


def bits_per_weight(cm: Any) -> float:
    """Stored bits of the prunable weights (every form, see `weight_tensors`) / their count: 32
    for fp32; a quantized tensor reports its own nominal code width (`cm.quantized[name].bits`,
    keyed by the same qualified name as `prunable_tensors`). Scale/zero-point overhead is NOT
    included here: it is in the packed bytes counted by the storage module."""
    bits, count = 0.0, 0
    for name, weight in weight_tensors(cm.model):
        q = cm.quantized.get(name)
        bits += weight.numel() * (q.bits if q is not None else weight.element_size() * 8)
        count += weight.numel()
    return bits / max(count, 1)
