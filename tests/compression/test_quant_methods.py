"""PTQ ("quant") and QAT ("qat") on every registered family: what is quantized, and how well."""
from __future__ import annotations

import pytest
import torch
from probes import one_call

from bench.results.schema import SETTING_COLUMNS
from compression import compress, config_from_dict
from compression.accounting import bits_per_weight, prunable_tensors
from compression.api import EXECUTION_SIMULATED, CompressionContext
from compression.quantization.ptq import ActivationFakeQuant, QuantConfig
from compression.quantization.qat import QATConfig

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _family_loss(model, ctx: CompressionContext) -> float:
    """The family's own objective on fixed batches and fixed noise (lower is better)."""
    gen = torch.Generator().manual_seed(123)
    with torch.no_grad():
        return sum(float(model.finetune_loss(x, gen)) for x in ctx.train_x.split(32)) / 2


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_ptq_quantizes_every_prunable_weight_only(make_model, family, bits) -> None:
    model = make_model(family)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cm = compress(model, QuantConfig(bits=bits))
    names = [name for name, _, _ in prunable_tensors(cm.model)]
    assert sorted(cm.quantized) == sorted(names)
    assert cm.execution == EXECUTION_SIMULATED and bits_per_weight(cm) == bits
    state = cm.model.state_dict()
    for name, qw in cm.quantized.items():
        assert torch.equal(state[name], qw.dequantize())
        assert qw.codes.unique().numel() <= 2**bits
    for name, tensor in before.items():  # biases, norms, the GAN's discriminator: untouched
        if name not in cm.quantized:
            assert torch.equal(state[name], tensor), name
    assert all(torch.equal(model.state_dict()[k], v) for k, v in before.items())  # input intact


@pytest.mark.parametrize("kwargs,match", [
    ({"bits": 1}, "2..8"), ({"bits": 9}, "2..8"), ({"bits": 4, "scheme": "log"}, "scheme"),
    ({"bits": 4, "rounding": "naive"}, "granularity='tensor'"),
    ({"bits": 4, "granularity": "row"}, "granularity"),
    ({"bits": 4, "group_size": 0}, "group_size"),
    ({"bits": 4, "activation_bits": 16}, "2..8"),
])
def test_quant_config_rejects_bad_input(kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        QuantConfig(**kwargs)


def test_config_from_dict_and_settings() -> None:
    cfg = config_from_dict({"method": "quant", "bits": 4, "granularity": "group"})
    assert cfg == QuantConfig(bits=4, granularity="group")
    settings = cfg.settings()
    assert {k: settings[k] for k in ("bits", "granularity", "rounding")} == {
        "bits": 4, "granularity": "group", "rounding": "mse"}
    assert {"bits", "granularity", "rounding"} <= set(SETTING_COLUMNS)
    assert QATConfig().settings()["finetune_steps"] == 200
    with pytest.raises(ValueError, match="unknown key"):
        config_from_dict({"method": "quant", "bitz": 4})


@pytest.mark.parametrize("scheme", ["affine", "symmetric"])
def test_sparse_weights_stay_sparse(make_model, family, scheme) -> None:
    model = make_model(family)
    with torch.no_grad():
        for _, module, pname in prunable_tensors(model):
            weight = getattr(module, pname)
            weight[weight.abs() < weight.abs().median()] = 0.0
    zeros = {n: getattr(m, p) == 0 for n, m, p in prunable_tensors(model)}
    cm = compress(model, QuantConfig(bits=4, scheme=scheme))
    for name, module, pname in prunable_tensors(cm.model):
        assert bool((getattr(module, pname)[zeros[name]] == 0).all()), name


def test_mse_rounding_beats_naive_at_4_bits(make_model, family) -> None:
    model = make_model(family)
    z = model.latent(32, torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = one_call(model, z)
        drift = {r: float((one_call(compress(model, QuantConfig(bits=4, granularity=g,
                                                                rounding=r)).model, z)
                           - ref).pow(2).mean())
                 for r, g in [("naive", "tensor"), ("mse", "channel")]}
    assert drift["mse"] < drift["naive"]


def test_activation_fake_quant_error_bound() -> None:
    hook = ActivationFakeQuant(-1.0, 3.0, 8)
    x = torch.linspace(-1.0, 3.0, 1000)
    (x_hat,) = hook(None, (x,))
    assert float((x - x_hat).abs().max()) <= hook.scale / 2 + 1e-6
    assert x_hat.unique().numel() <= 256


def test_activation_quantization_calibrates_and_runs(make_model, family, ctx) -> None:
    model = make_model(family)
    z = model.latent(16, torch.Generator().manual_seed(0))
    w8 = compress(model, QuantConfig(bits=8))
    drift = {}
    for abits in (8, 4):
        cm = compress(model, QuantConfig(bits=8, activation_bits=abits), ctx)
        assert set(cm.notes["activation_ranges"]) <= {n.rsplit(".", 1)[0] for n in cm.quantized}
        assert all(lo <= 0 <= hi or lo < hi for lo, hi in cm.notes["activation_ranges"].values())
        with torch.no_grad():
            drift[abits] = float((cm.model(z) - w8.model(z)).pow(2).mean())
    assert 0 < drift[8] < drift[4]


def test_qat_at_2_bits_beats_ptq_on_the_family_loss(make_model, family, ctx) -> None:
    model = make_model(family)
    ptq = compress(model, QuantConfig(bits=2, scheme="symmetric"))
    qat = compress(model, QATConfig(bits=2, steps=20, lr=1e-3, batch_size=32), ctx)
    assert sorted(qat.quantized) == sorted(ptq.quantized)
    assert _family_loss(qat.model, ctx) < _family_loss(ptq.model, ctx)
    state = qat.model.state_dict()
    for name, qw in qat.quantized.items():  # storage is real: weights are exactly the codes
        assert qw.bits == 2 and int(qw.codes.max()) < 4
        assert torch.equal(state[name], qw.dequantize())
    # No fake-quant left in the shipped part (the SN-GAN's discriminator keeps spectral norm).
    assert not any("parametrizations" in k for k in qat.model.deployable().state_dict())


@pytest.mark.parametrize("estimator", ["lsq", "ste"])
def test_qat_estimators_learn(make_model, ctx, estimator) -> None:
    # The loss on all training images with fixed eps, after 0 vs 5 steps (the first and last
    # batch losses differ by their batches more than by 5 steps of learning: seed-dependent).
    def loss(steps: int) -> float:
        config = QATConfig(bits=2, estimator=estimator, steps=steps, lr=1e-3, batch_size=32)
        model = compress(make_model("vae"), config, ctx).model
        with torch.no_grad():
            return float(model.finetune_loss(ctx.train_x, torch.Generator().manual_seed(0)))

    assert loss(5) < loss(0)


def test_qat_config_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="symmetric"):
        QATConfig(estimator="lsq", scheme="affine")
    with pytest.raises(ValueError, match="2..8"):
        QATConfig(bits=1)
