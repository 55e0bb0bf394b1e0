"""Int8-kernel cells' accounting: per-channel torch.ao RNN weights, MACs run on int8 kernels."""
from __future__ import annotations

import pytest
import torch

from compression import compress
from compression.accounting import (
    int8_mac_fraction,
    is_int8_kernel,
    macs_by_layer,
    prunable_tensors,
    total_macs,
)
from compression.quantization.kernels import Int8KernelConfig

pytest.importorskip("torchao")
pytest.importorskip("torch.ao.quantization")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")


@pytest.mark.parametrize("backend", ["auto", "torch.ao-dynamic"])
def test_torch_ao_rnn_weights_are_per_channel_as_the_row_says(make_model, backend) -> None:
    # settings() says granularity "channel"; torch.ao's default dynamic qconfig gave GRU/LSTM
    # one scale per tensor. Every stored int8 weight must have one scale per output row.
    model = make_model("rvae")
    cm = compress(model, Int8KernelConfig(backend=backend))
    assert cm.settings()["granularity"] == "channel"
    for name in ("encoder_rnn", "decoder_rnn"):
        packed = cm.model.get_submodule(name).get_weight()
        assert packed and all(w.qscheme() == torch.per_channel_affine for w in packed.values())
        for pname, weight in packed.items():
            stored = cm.quantized[f"{name}.{pname}"]
            assert stored.axis == 0 and stored.scale.shape == (weight.shape[0], 1)
            # the stored codes are the kernel's weights, bit for bit
            assert torch.equal(stored.dequantize(), weight.dequantize())
    assert sorted(cm.quantized) == sorted(n for n, _, _ in prunable_tensors(model))
    assert all(q.axis is not None and q.group_size is None for q in cm.quantized.values())


@pytest.mark.parametrize("mode", ["dynamic", "weight_only"])
def test_gan_int8_mac_fraction_is_the_linear_share(make_model, mode) -> None:
    # Only the generator's fc Linear has an int8 kernel (torchao); both ConvTranspose2d stay
    # simulated. Per sample: fc = D * C0*s*s, up1 = s*s * C0*C1*16, up2 = (2s)^2 * C1*C*16.
    gan = make_model("gan")
    g = gan.generator
    c0, c1, s, channels = g.up1.in_channels, g.up1.out_channels, g.s, g.up2.out_channels
    fc = gan.latent_dim * c0 * s * s
    up1 = s * s * c0 * c1 * 16
    up2 = (2 * s) ** 2 * c1 * channels * 16
    cm = compress(gan, Int8KernelConfig(mode=mode))
    z = gan.latent(3, torch.Generator().manual_seed(0))
    layers = macs_by_layer(cm.model, z)
    assert {k: v[0] for k, v in layers.items()} == {
        "generator.fc": 3 * fc, "generator.up1": 3 * up1, "generator.up2": 3 * up2}
    assert int8_mac_fraction(cm.model, layers) == pytest.approx(fc / (fc + up1 + up2), abs=1e-15)
    assert [is_int8_kernel(m) for m in (g.fc, g.up1, g.up2)] == [False] * 3  # the float model
    assert [is_int8_kernel(cm.model.get_submodule(f"generator.{n}"))
            for n in ("fc", "up1", "up2")] == [True, False, False]


def test_int8_mac_fraction_bounds(make_model) -> None:
    # rvae with torch.ao dynamic for Linear and GRU: every MAC of forward(z) runs on int8.
    rvae = make_model("rvae")
    cm = compress(rvae, Int8KernelConfig(backend="torch.ao-dynamic"))
    z = rvae.latent(2, torch.Generator().manual_seed(0))
    layers = macs_by_layer(cm.model, z)
    assert int8_mac_fraction(cm.model, layers) == 1.0
    assert total_macs(layers)[0] == total_macs(macs_by_layer(rvae, z))[0]
    float_layers = macs_by_layer(rvae, z)
    assert int8_mac_fraction(rvae, float_layers) == 0.0
    assert int8_mac_fraction(rvae, {}) is None  # no MACs: no fraction
