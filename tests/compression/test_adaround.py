"""AdaRound (compression.quantization.adaround) and its use by quant_wa (weight_rounding)."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from compression.api import CompressionContext, compress, config_from_dict
from compression.diffusion import QuantWAConfig
from compression.quantization.adaround import (
    AdaRoundSettings,
    adaround,
    beta_at,
    initial_v,
    rectified_sigmoid,
    rounding_regularizer,
)
from compression.quantization.core import quantize_weight


def test_initial_v_starts_at_the_unrounded_weight() -> None:
    rest = torch.linspace(0.001, 0.999, 101)
    assert torch.allclose(rectified_sigmoid(initial_v(rest)), rest, atol=1e-5)
    # The stretch lets h reach 0 and 1 exactly for finite V.
    assert rectified_sigmoid(torch.tensor([-10.0, 10.0])).tolist() == [0.0, 1.0]


def test_regularizer_is_zero_at_binary_h_and_one_per_weight_at_one_half() -> None:
    assert float(rounding_regularizer(torch.tensor([0.0, 1.0, 1.0]), 2.0)) == 0.0
    for beta in (2.0, 20.0):
        assert float(rounding_regularizer(torch.full((7,), 0.5), beta)) == pytest.approx(7.0)


def test_beta_is_off_in_the_warmup_then_anneals_linearly() -> None:
    s = AdaRoundSettings(iters=100, warmup=0.2, beta_start=20.0, beta_end=2.0)
    assert beta_at(0, s) is None and beta_at(19, s) is None
    assert beta_at(20, s) == pytest.approx(20.0)
    assert beta_at(60, s) == pytest.approx(11.0)
    assert beta_at(100, s) == pytest.approx(2.0)


def _layer_problem():
    """A Linear layer and strongly correlated inputs, so rounding errors can cancel."""
    gen = torch.Generator().manual_seed(0)
    layer = nn.Linear(32, 8)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(8, 32, generator=gen) * 0.2)
    basis = torch.randn(4, 32, generator=gen)
    x = torch.randn(512, 4, generator=gen) @ basis + 0.05 * torch.randn(512, 32, generator=gen)
    return layer, x


def _error(layer: nn.Linear, weight: torch.Tensor, x: torch.Tensor) -> float:
    with torch.no_grad():
        return float((nn.functional.linear(x, weight, layer.bias) - layer(x)).pow(2).mean())


def test_adaround_lowers_the_layer_error_and_moves_each_code_at_most_one_step() -> None:
    layer, x = _layer_problem()
    w = layer.weight.detach().clone()
    nearest = quantize_weight(w, 3, "affine", "channel", "mse")
    learned = adaround(layer, w, nearest, x, AdaRoundSettings(iters=600),
                       torch.Generator().manual_seed(1))
    assert torch.equal(learned.scale, nearest.scale)
    assert torch.equal(learned.zero_point, nearest.zero_point)
    assert learned.codes.dtype == torch.uint8 and int(learned.codes.max()) <= 7
    # Every code is floor(w/s) + zp or one more: nearest rounding's or its neighbour.
    step = (learned.codes.int() - nearest.codes.int()).abs()
    assert int(step.max()) == 1  # some weights did flip
    assert _error(layer, learned.dequantize(), x) < 0.7 * _error(layer, nearest.dequantize(), x)


def test_adaround_is_deterministic_given_the_generator() -> None:
    layer, x = _layer_problem()
    w = layer.weight.detach().clone()
    nearest = quantize_weight(w, 4, "affine", "channel", "mse")
    runs = [adaround(layer, w, nearest, x, AdaRoundSettings(iters=50),
                     torch.Generator().manual_seed(3)).codes for _ in range(2)]
    assert torch.equal(*runs)


def _ddpm():
    from genmodels.models.diffusion import DDPM

    torch.manual_seed(0)
    return DDPM(width=0.5, steps=3).eval()


def test_quant_wa_adaround_rechooses_codes_within_one_step_of_nearest() -> None:
    model, ctx = _ddpm(), CompressionContext(seed=0)
    base = dict(w_bits=4, a_bits=8, calibration_samples=2)
    nearest = compress(model, QuantWAConfig(**base), ctx)
    learned = compress(model, QuantWAConfig(**base, weight_rounding="adaround",
                                            adaround_iters=20, adaround_samples=2), ctx)
    notes = learned.notes["adaround"]
    assert notes["layers"] == len(learned.quantized) and 0 < notes["codes_changed"] < 1
    for name, qw in learned.quantized.items():
        assert int((qw.codes.int() - nearest.quantized[name].codes.int()).abs().max()) <= 1
    # The model carries the new codes' values.
    for name, module in learned.model.named_modules():
        if f"{name}.weight" in learned.quantized:
            assert torch.equal(module.weight, learned.quantized[f"{name}.weight"].dequantize())


def test_weight_rounding_in_settings_and_refused_when_unknown() -> None:
    config = QuantWAConfig(weight_rounding="adaround", adaround_iters=5)
    settings = config.settings()
    assert settings["weight_rounding"] == "adaround" and settings["adaround_iters"] == 5
    assert "adaround_iters" not in QuantWAConfig().settings()
    with pytest.raises(ValueError, match="weight_rounding must be one of"):
        config_from_dict({"method": "quant_wa", "weight_rounding": "stochastic"})
    with pytest.raises(ValueError, match="adaround_iters and adaround_samples must be >= 1"):
        QuantWAConfig(adaround_iters=0)
