"""Accounting against hand-computed closed forms: prunable tensors, params, MACs, bits."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from compression.accounting import (
    bits_per_weight,
    count_macs,
    count_nonzero,
    count_params,
    deployed_tensors,
    prunable_tensors,
    weight_sparsity,
    weight_tensors,
)
from compression.api import (
    EXECUTION_DENSE,
    EXECUTION_INT8_KERNEL,
    EXECUTION_MASKED,
    EXECUTION_SHRUNK,
    EXECUTION_SIMULATED,
    CompressedModel,
    MethodConfig,
    apply_pipeline,
)
from compression.channel_groups import CHANNEL_GROUPS
from compression.distillation import DistillConfig
from compression.pruning import MagnitudePruneConfig
from compression.quantization import Int8KernelConfig, QuantConfig
from compression.structured import StructuredPruneConfig


@pytest.mark.parametrize(
    ("layer", "x_shape", "expected"),
    [
        # Cout*Hout*Wout * Cin*kH*kW = 4*5*5 * 3*3*3
        (nn.Conv2d(3, 4, 3, padding=1), (1, 3, 5, 5), 4 * 25 * 27),
        # stride 2: Hout = 3 -> 4*3*3 * 3*9, batch 2
        (nn.Conv2d(3, 4, 3, stride=2, padding=1), (2, 3, 5, 5), 2 * 4 * 9 * 27),
        # groups 2: Cin/groups = 2
        (nn.Conv2d(4, 6, 3, padding=1, groups=2), (1, 4, 5, 5), 6 * 25 * 2 * 9),
        # transposed: Hin*Win * Cin * Cout * kH*kW = 25 * 2 * 3 * 16
        (nn.ConvTranspose2d(2, 3, 4, 2, 1), (1, 2, 5, 5), 25 * 2 * 3 * 16),
        (nn.ConvTranspose2d(2, 3, 4, 2, 1), (3, 2, 5, 5), 3 * 25 * 2 * 3 * 16),
        (nn.Linear(6, 7), (2, 6), 2 * 6 * 7),
        (nn.Linear(6, 7), (2, 5, 6), 10 * 6 * 7),
        # per step: gates * hidden * (input + hidden); B*T = 2*6
        (nn.GRU(4, 5, batch_first=True), (2, 6, 4), 12 * 3 * 5 * (4 + 5)),
        (nn.LSTM(4, 5, batch_first=True), (2, 6, 4), 12 * 4 * 5 * (4 + 5)),
        (nn.GRU(4, 5), (6, 2, 4), 12 * 3 * 5 * (4 + 5)),
        (nn.GRU(4, 5), (6, 4), 6 * 3 * 5 * (4 + 5)),  # unbatched
        # 2 layers, bidirectional: layer 1 reads 2*hidden
        (
            nn.LSTM(4, 5, num_layers=2, bidirectional=True, batch_first=True),
            (2, 6, 4),
            2 * 12 * 4 * 5 * (4 + 5) + 2 * 12 * 4 * 5 * (10 + 5),
        ),
    ],
)
def test_macs_closed_forms(layer: nn.Module, x_shape: tuple, expected: int) -> None:
    assert count_macs(layer, torch.randn(x_shape)) == (expected, expected)


class _Stepwise(nn.Module):
    """An RNN called once per time step in a Python loop (as autoregressive decoders do)."""

    def __init__(self, cell: type[nn.Module]) -> None:
        super().__init__()
        self.rnn = cell(4, 5, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, outs = None, []
        for t in range(x.shape[1]):
            out, h = self.rnn(x[:, t : t + 1], h)
            outs.append(out)
        return torch.cat(outs, 1)


@pytest.mark.parametrize(("cell", "gates"), [(nn.GRU, 3), (nn.LSTM, 4)])
def test_macs_rnn_stepwise_equals_sequence(cell: type[nn.Module], gates: int) -> None:
    stepwise = _Stepwise(cell)
    expected = 2 * 6 * gates * 5 * (4 + 5)
    assert count_macs(stepwise, torch.randn(2, 6, 4)) == (expected, expected)
    assert count_macs(stepwise.rnn, torch.randn(2, 6, 4)) == (expected, expected)


def test_effective_macs_scale_with_density() -> None:
    model = nn.Sequential(nn.Linear(8, 10), nn.ReLU(), nn.Linear(10, 4))
    with torch.no_grad():
        model[0].weight[:, :4] = 0  # density 1/2
        model[2].weight[:1] = 0  # density 3/4
    dense, effective = count_macs(model, torch.randn(1, 8))
    assert dense == 80 + 40
    assert effective == 40 + 30


def test_rnn_effective_macs_per_matrix() -> None:
    gru = nn.GRU(4, 5)
    with torch.no_grad():
        gru.weight_hh_l0.zero_()  # only the input projections remain
    dense, effective = count_macs(gru, torch.randn(6, 1, 4))
    assert (dense, effective) == (6 * 15 * 9, 6 * 15 * 4)


class _TinyGAN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.generator = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3), nn.GRU(3, 4))
        self.discriminator = nn.Linear(4, 1)


def test_prunable_tensors_names_and_scope(make_model) -> None:
    # Weights of Linear/Conv/ConvT/RNN inside deployable(); no norms, no discriminator.
    seq = _TinyGAN().generator
    names = [name for name, _, _ in prunable_tensors(seq)]
    assert names == ["0.weight", "2.weight_ih_l0", "2.weight_hh_l0"]
    with_bias = [name for name, _, _ in prunable_tensors(seq, include_bias=True)]
    assert sorted(with_bias) == sorted(names + ["0.bias", "2.bias_ih_l0", "2.bias_hh_l0"])
    gan = make_model("gan")
    found = prunable_tensors(gan)
    state = gan.state_dict()
    assert found and all(name in state for name, _, _ in found)
    assert not any("discriminator" in name for name, _, _ in found)
    deploy_ids = {id(p) for p in gan.deployable().parameters()}
    assert all(id(getattr(m, p)) in deploy_ids for _, m, p in found)


def test_count_params_and_nonzero_over_deployable(make_model) -> None:
    gan = make_model("gan")
    expected = sum(p.numel() for p in gan.deployable().parameters())
    nonzero = sum(int((p != 0).sum()) for p in gan.deployable().parameters())  # BN bias is 0
    assert count_params(gan) == expected
    assert count_nonzero(gan) == nonzero
    assert count_params(gan) < sum(p.numel() for p in gan.parameters())  # D excluded
    name, module, pname = prunable_tensors(gan)[0]
    with torch.no_grad():
        getattr(module, pname).view(-1)[:7] = 0
    assert count_nonzero(gan) == nonzero - 7
    n_weights = sum(getattr(m, p).numel() for _, m, p in prunable_tensors(gan))
    assert weight_sparsity(gan) == pytest.approx(7 / n_weights)


def test_bits_per_weight(make_model) -> None:
    vae = make_model("vae")
    cm = CompressedModel(model=vae)
    assert bits_per_weight(cm) == 32.0
    tensors = prunable_tensors(vae)
    sizes = [getattr(m, p).numel() for _, m, p in tensors]
    cm.quantized = {tensors[0][0]: SimpleNamespace(bits=4)}
    expected = (4 * sizes[0] + 32 * sum(sizes[1:])) / sum(sizes)
    assert bits_per_weight(cm) == pytest.approx(expected)


# One variant per execution kind that removes nothing (int8-kernel: every backend and mode), as
# a function of the model's width (a distilled student's width is absolute: the teacher's).
NO_OP_VARIANTS: dict[str, tuple[str, Callable[[float], list[MethodConfig]]]] = {
    "baseline": (EXECUTION_DENSE, lambda w: []),
    "prune_magnitude-0": (EXECUTION_MASKED, lambda w: [MagnitudePruneConfig(sparsity=0.0)]),
    "quant-8": (EXECUTION_SIMULATED, lambda w: [QuantConfig(bits=8)]),
    **{f"int8-{b}-{m}": (EXECUTION_INT8_KERNEL,
                         lambda w, b=b, m=m: [Int8KernelConfig(backend=b, mode=m)])
       for b, m in [("auto", "dynamic"), ("auto", "weight_only"), ("torchao", "dynamic"),
                    ("torchao", "weight_only"), ("torch.ao-dynamic", "dynamic")]},
    "prune_structured-0": (EXECUTION_SHRUNK, lambda w: [StructuredPruneConfig(sparsity=0.0)]),
    # distill widths are fractions of the teacher: 1.0 is a student of the same size.
    "distill-same-width": (EXECUTION_SHRUNK, lambda w: [DistillConfig(width=1.0, steps=0)]),
}


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")
@pytest.mark.parametrize("variant", sorted(NO_OP_VARIANTS))
def test_a_variant_that_removes_nothing_counts_every_baseline_param(
        make_model, family, variant) -> None:
    # torch.ao dynamic GRU/LSTM/Linear hold no nn.Parameter and torchao's Linear weights are
    # tensor subclasses: their weights must still count (the rvae int8 row showed 9,916 of
    # 137,404 params).
    if variant == "prune_structured-0" and family not in CHANNEL_GROUPS:
        pytest.skip(f"no structured pruning for {family}")
    execution, steps = NO_OP_VARIANTS[variant]
    model = make_model(family)
    cm = apply_pipeline(model, steps(model.width))
    assert cm.execution == execution
    assert count_params(cm.model) == count_params(model)
    shapes = sorted((n, tuple(t.shape)) for n, t in weight_tensors(cm.model))
    assert shapes == sorted((n, tuple(t.shape)) for n, t in weight_tensors(model))
    expected_bits = 8.0 if execution in (EXECUTION_SIMULATED, EXECUTION_INT8_KERNEL) else 32.0
    assert bits_per_weight(cm) == expected_bits
    if execution in (EXECUTION_DENSE, EXECUTION_MASKED):  # nothing rounded: same nonzeros
        assert count_nonzero(cm.model) == count_nonzero(model)


class _RNNHead(nn.Module):
    def __init__(self, cell: type[nn.Module]) -> None:
        super().__init__()
        self.rnn, self.fc = cell(4, 5), nn.Linear(5, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.rnn(x)[0])


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")
@pytest.mark.parametrize(("cell", "gates"), [(nn.GRU, 3), (nn.LSTM, 4)])
def test_packed_torch_ao_weights_are_counted_by_name_and_zeros(cell: type[nn.Module],
                                                               gates: int) -> None:
    ao = pytest.importorskip("torch.ao.quantization")
    model = _RNNHead(cell)
    with torch.no_grad():
        for name, param in model.named_parameters():  # |w| in [0.5, 1]: none rounds to 0
            if "weight" in name:
                param.copy_(param.sign() * (0.5 + 0.5 * torch.rand_like(param)))
        model.rnn.weight_hh_l0.view(-1)[:7] = 0  # a zero quantizes to the zero point: stays 0
        model.fc.weight[0] = 0  # 5 more
    before = {n: tuple(p.shape) for n, p in model.named_parameters()}
    n_weights = sum(p.numel() for n, p in model.named_parameters() if ".weight" in n)
    quantized = ao.quantize_dynamic(model, {cell, nn.Linear}, dtype=torch.qint8, inplace=False)
    assert not list(quantized.parameters())  # nothing left for .parameters() to see
    assert {n: tuple(t.shape) for n, t in deployed_tensors(quantized)} == before
    assert count_params(quantized) == sum(p.numel() for p in model.parameters())
    assert count_nonzero(quantized) == count_nonzero(model)
    assert weight_sparsity(quantized) == weight_sparsity(model) == pytest.approx(12 / n_weights)
    x = torch.randn(6, 1, 4)
    assert count_macs(quantized, x)[0] == count_macs(model, x)[0] == 6 * (gates * 5 * 9 + 15)
