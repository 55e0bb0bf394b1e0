"""Real int8 execution ("quant_int8_kernel"): torchao for Linear, torch.ao dynamic for RNNs."""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from compression.accounting import INT8_LINEARS, INT8_RNNS, prunable_tensors
from compression.api import (
    EXECUTION_INT8_KERNEL,
    EXECUTION_SIMULATED,
    CompressedModel,
    CompressionContext,
    MethodConfig,
    register_method,
)
from compression.quantization.core import QuantizedWeight, quantize_weight
from compression.quantization.ptq import channel_axis

BACKENDS = ("auto", "torchao", "torch.ao-dynamic")
MODES = ("dynamic", "weight_only")
# torchao 0.18's Int8Tensor implements linear only: aten.convolution raises NotImplementedError
# for Conv2d and ConvTranspose2d (checked on torch 2.14.1), and quantize_ needs a `weight`
# attribute, so GRU/LSTM are out too. torch.ao dynamic covers Linear, GRU and LSTM on CPU.
RNN_TYPES = (nn.GRU, nn.LSTM)


@dataclass(frozen=True)
class Int8KernelConfig(MethodConfig):
    """Run what PyTorch can on int8 kernels; every other prunable weight gets simulated int8
    (symmetric per-channel min-max) so the whole model is W8 and stored as 8-bit codes.

    backend "auto": torchao for Linear, torch.ao dynamic for GRU/LSTM (mode "dynamic", CPU).
    mode "dynamic": int8 weights and dynamically quantized int8 activations (W8A8-dynamic);
    "weight_only": int8 weights, fp32 activations (torch.ao has no such mode).

    settings() (the cell's identity, stable) says granularity "channel", and every int8 weight
    is: torchao keeps one scale per output row, torch.ao dynamic gets per_channel_dynamic_qconfig
    for Linear and GRU/LSTM alike (torch.ao's default_dynamic_qconfig would be per-tensor), and
    the simulated layers are per-channel min-max. (A cell's notes name any stored weight whose
    codes say another granularity than its row: bench.cell.notes, `weight_granularity`.)
    """

    method: ClassVar[str] = "quant_int8_kernel"
    backend: str = "auto"
    mode: str = "dynamic"

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}; got {self.backend!r}")
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}; got {self.mode!r}")
        if self.backend == "torch.ao-dynamic" and self.mode != "dynamic":
            raise ValueError("backend 'torch.ao-dynamic' only has mode='dynamic'")

    @classmethod
    def example(cls) -> Int8KernelConfig:
        return cls()

    def settings(self) -> dict[str, Any]:
        return {"bits": 8, "granularity": "channel", "rounding": "minmax",
                "backend": self.backend, "mode": self.mode}


def _torchao_linear(scope: nn.Module, mode: str) -> None:
    from torchao.quantization import (
        Int8DynamicActivationInt8WeightConfig,
        Int8WeightOnlyConfig,
        quantize_,
    )

    config = (Int8DynamicActivationInt8WeightConfig() if mode == "dynamic"
              else Int8WeightOnlyConfig())
    quantize_(scope, config, filter_fn=lambda m, fqn: isinstance(m, nn.Linear))


def _torchao_codes(weight: torch.Tensor) -> QuantizedWeight:
    """torchao Int8Tensor (qdata int8 -128..127, scale (out, 1), symmetric per row) as codes."""
    codes = (weight.qdata.to(torch.int16) + 128).to(torch.uint8)
    scale = weight.scale.float().reshape(codes.shape[0], 1).clone()
    return QuantizedWeight(codes, scale, torch.full_like(scale, 128, dtype=torch.uint8), 8, 0,
                           None, "symmetric")


def _torch_ao_codes(qweight: torch.Tensor) -> QuantizedWeight:
    """A torch.ao qint8 tensor (per-tensor or per-channel affine) as uint8 codes + 128."""
    codes = (qweight.int_repr().to(torch.int16) + 128).to(torch.uint8)
    if qweight.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric):
        scale = qweight.q_per_channel_scales().float()[:, None]
        zp = qweight.q_per_channel_zero_points()[:, None] + 128
        axis = int(qweight.q_per_channel_axis())
    else:
        scale = torch.tensor([[qweight.q_scale()]], dtype=torch.float32)
        zp, axis = torch.tensor([[qweight.q_zero_point() + 128]]), None
    scheme = "symmetric" if bool((zp == 128).all()) else "affine"
    return QuantizedWeight(codes, scale, zp.to(torch.uint8), 8, axis, None, scheme)


def _torch_ao_dynamic(scope: nn.Module, types: set[type]) -> str:
    """quantize_dynamic in place (deprecated in torch 2.x, still shipped): returns the warning."""
    try:
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic
    except ImportError as exc:  # removed in a later torch: the caller records it
        raise RuntimeError(f"torch.ao dynamic quantization is unavailable: {exc}") from exc
    # Per-channel for GRU/LSTM too (torch.ao packs per-channel qint8 for them as for Linear): one
    # scale per gate row, like torchao's, so the cell's "channel" granularity is true. Measured on
    # the default rvae: same latency; weight SQNR equal at init, 38 -> 48 dB with unequal rows.
    spec = dict.fromkeys(types, per_channel_dynamic_qconfig)
    # fork_rng: quantize_dynamic builds each int8 GRU/LSTM with a random init (then overwritten),
    # which would otherwise advance the caller's global RNG.
    with warnings.catch_warnings(record=True) as caught, torch.random.fork_rng(devices=[]):
        warnings.simplefilter("always")
        quantize_dynamic(scope, spec, dtype=torch.qint8, inplace=True)
    # First sentence of each distinct warning: the rest (URLs, C++ source lines) swamps the row.
    return "; ".join(sorted({str(w.message).split(". ")[0].splitlines()[0].strip().rstrip(".")
                             for w in caught}))


@register_method(Int8KernelConfig)
def quantize_int8_kernel(cm: CompressedModel, config: Int8KernelConfig, ctx: CompressionContext
                         ) -> CompressedModel:
    model = cm.model
    scope = model.deployable()
    targets = prunable_tensors(model)
    on_cpu = model.device.type == "cpu"
    ao_types: set[type] = set()
    if config.mode == "dynamic" and on_cpu and config.backend in ("auto", "torch.ao-dynamic"):
        ao_types = {type(m) for _, m, _ in targets if isinstance(m, RNN_TYPES)}
        if config.backend == "torch.ao-dynamic":
            ao_types |= {nn.Linear}
    use_torchao_linear = config.backend in ("auto", "torchao")
    kernel_names: list[str] = []
    for name, module, pname in targets:  # simulated int8 for what gets no kernel
        if (isinstance(module, nn.Linear) and use_torchao_linear) or type(module) in ao_types:
            continue
        weight = getattr(module, pname)
        qw = quantize_weight(weight, 8, "symmetric", "channel", "minmax", channel_axis(module))
        with torch.no_grad():
            weight.copy_(qw.dequantize().to(weight.device, weight.dtype))
        cm.quantized[name] = qw
    module_names = {id(m): name.rsplit(".", 1)[0] for name, m, _ in targets}
    if use_torchao_linear:
        _torchao_linear(scope, config.mode)
        for name, module, _ in targets:
            if isinstance(module, nn.Linear):
                cm.quantized[name] = _torchao_codes(module.weight)
                kernel_names.append(f"{module_names[id(module)]} (torchao)")
    if ao_types:
        cm.notes["torch_ao_warning"] = _torch_ao_dynamic(scope, ao_types)
        inside = {id(m) for m in scope.modules()}  # not e.g. a GAN's discriminator
        for prefix, module in model.named_modules():
            if id(module) not in inside:
                continue
            if isinstance(module, INT8_RNNS):  # DynamicQuantizedGRU/LSTM
                for pname, qweight in module.get_weight().items():
                    cm.quantized[f"{prefix}.{pname}"] = _torch_ao_codes(qweight)
            elif isinstance(module, INT8_LINEARS):  # DynamicQuantizedLinear
                cm.quantized[f"{prefix}.weight"] = _torch_ao_codes(module.weight())
            else:
                continue
            kernel_names.append(f"{prefix} (torch.ao dynamic)")
    simulated = sorted({module_names[id(m)] for n, m, _ in targets
                        if not any(k.startswith(module_names[id(m)] + " ") for k in kernel_names)})
    cm.notes["int8_kernel_layers"] = kernel_names
    cm.notes["simulated_int8_layers"] = simulated
    cm.notes["int8_mode"] = config.mode
    cm.execution = EXECUTION_INT8_KERNEL if kernel_names else EXECUTION_SIMULATED
    return cm
