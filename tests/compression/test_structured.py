"""Structured pruning: exact shrink in params/MACs, equality with the channel-zeroed original."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from compression.accounting import count_macs, count_params
from compression.api import EXECUTION_SHRUNK, compress
from compression.structured import (
    StructuredPruneConfig,
    channel_l1,
    channels_to_keep,
    plan,
    zero_channels,
)
from genmodels.models import MODELS

SPARSITIES = [0.25, 0.5, 0.75]


def _model(make_model, variant: str) -> nn.Module:
    if variant == "rvae-lstm":  # the recurrent VAE's LSTM cell
        torch.manual_seed(0)
        return MODELS["rvae"](image_shape=(1, 28, 28), latent_dim=8, width=0.25, cell="lstm").eval()
    model = make_model(variant)
    with torch.no_grad():  # non-trivial BatchNorm statistics and affine, so the norms matter
        gen = torch.Generator().manual_seed(1)
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.copy_(torch.randn(m.num_features, generator=gen))
                m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.weight.copy_(torch.randn(m.num_features, generator=gen))
                m.bias.copy_(torch.randn(m.num_features, generator=gen))
    return model


VARIANTS = sorted(MODELS) + ["rvae-lstm"]


@pytest.mark.parametrize("sparsity", SPARSITIES)
@pytest.mark.parametrize("variant", VARIANTS)
def test_shrunk_equals_zeroed_original(variant: str, sparsity: float, make_model, ctx) -> None:
    model = _model(make_model, variant)
    cm = compress(model, StructuredPruneConfig(sparsity=sparsity), ctx)
    assert cm.execution == EXECUTION_SHRUNK and type(cm.model) is type(model)
    zeroed = copy.deepcopy(model)
    for group, keep in plan(zeroed, sparsity):
        zero_channels(zeroed, group, keep)
    z = model.latent(6, torch.Generator().manual_seed(0))
    with torch.no_grad():
        shrunk_out, zeroed_out, original = cm.model(z), zeroed(z), model(z)
        assert torch.allclose(shrunk_out, zeroed_out, atol=1e-5), (
            (shrunk_out - zeroed_out).abs().max()
        )
        assert not torch.allclose(original, zeroed_out, atol=1e-3)  # channels really removed
        if model.is_vae:  # the encoder's posterior too
            for a, b in zip(
                cm.model.encode(ctx.train_x[:6]), zeroed.encode(ctx.train_x[:6]), strict=True
            ):
                assert torch.allclose(a, b, atol=1e-5)
    if model.family == "gan":  # the discriminator is never pruned
        assert all(
            torch.equal(a, b)
            for a, b in zip(
                model.discriminator.state_dict().values(),
                cm.model.discriminator.state_dict().values(),
                strict=True,
            )
        )


def _kept(n: int, sparsity: float) -> int:
    return n - round(sparsity * n)


def _expected(model: nn.Module, sparsity: float) -> tuple[int, int]:
    """(params of deployable(), MACs of one forward(z)) from the kept channel counts."""
    lat, (c, h, w) = model.latent_dim, model.image_shape
    if model.family == "gan":
        g, s = model.generator, model.generator.s
        k0, k1 = _kept(g.c0, sparsity), _kept(g.up1.out_channels, sparsity)
        params = lat * k0 * s * s + 2 * k0 * s * s + k0 * k1 * 16 + 2 * k1 + k1 * c * 16 + c
        macs = lat * k0 * s * s + s * s * k0 * k1 * 16 + (2 * s) ** 2 * k1 * c * 16
        return params, macs
    if model.family == "vae":
        s = model.s
        k1, k2 = _kept(model.enc1.out_channels, sparsity), _kept(model.c2, sparsity)
        params = (
            (c * k1 * 16 + k1)
            + (k1 * k2 * 16 + k2)
            + (k2 * s * s * 2 * lat + 2 * lat)
            + (lat * k2 * s * s + k2 * s * s)
            + (k2 * k1 * 16 + k1)
            + (k1 * c * 16 + c)
        )
        macs = lat * k2 * s * s + s * s * k2 * k1 * 16 + (2 * s) ** 2 * k1 * c * 16
        return params, macs
    if model.family == "ddpm":
        return _expected_ddpm(model, sparsity)
    hid, row, gates = _kept(model.encoder_rnn.hidden_size, sparsity), w * c, 3
    rnn = lambda i: gates * hid * (i + hid) + 2 * gates * hid  # noqa: E731
    params = (
        rnn(row)
        + (hid * 2 * lat + 2 * lat)
        + (lat * hid + hid)
        + rnn(row + lat)
        + (hid * row + row)
    )
    macs = lat * hid + h * gates * hid * (row + lat + hid) + h * hid * row
    return params, macs


def _expected_ddpm(model: nn.Module, sparsity: float) -> tuple[int, int]:
    """UNet params and MACs of `steps` calls; each residual block's hidden channels h -> kept
    (the tiny UNet's GroupNorms have one channel per group, so channels are the pruning unit)."""
    u, c, n, steps = model.unet, model.image_shape[0], model.image_shape[1], model.steps
    c0, c1, t = u.conv_in.out_channels, u.down_conv1.out_channels, u.temb_dim
    assert u.down0.norm2.num_groups == u.down0.norm2.num_channels  # one channel per group
    params = 2 * (t * t + t) + (c * c0 * 9 + c0) + (c0 * c0 * 9 + c0) + (c1 * c1 * 9 + c1)
    params += 2 * c1 + (c1 * 3 * c1 + 3 * c1) + (c1 * c1 + c1)  # attention
    params += (c1 * c1 * 16 + c1) + (c1 * c0 * 16 + c0) + 2 * c0 + (c0 * c * 9 + c)
    macs = 2 * t * t + n * n * c0 * c * 9 + (n // 2) ** 2 * c0 * c0 * 9
    macs += (n // 4) ** 2 * (c1 * c1 * 9 + 4 * c1 * c1) + (n // 4) ** 2 * c1 * c1 * 16
    macs += (n // 2) ** 2 * c1 * c0 * 16 + n * n * c * c0 * 9
    # (block, cin, cout, side): conv1 cin->h, temb t->h, conv2 h->cout, 1x1 skip if cin != cout.
    for block, cin, cout, side in [(u.down0, c0, c0, n), (u.down1, c0, c1, n // 2),
                                   (u.mid, c1, c1, n // 4), (u.up1, 2 * c1, c1, n // 2),
                                   (u.up0, 2 * c0, c0, n)]:
        h = _kept(block.conv1.out_channels, sparsity)
        skip = cin * cout + cout if cin != cout else 0
        params += 2 * cin + (cin * h * 9 + h) + (t * h + h) + 2 * h + (h * cout * 9 + cout) + skip
        macs += side * side * (cin * h * 9 + h * cout * 9 + (skip and cin * cout)) + t * h
    return params, steps * macs


@pytest.mark.parametrize("sparsity", [0.0, *SPARSITIES])
def test_params_and_macs_closed_form(family: str, sparsity: float, make_model, ctx) -> None:
    model = make_model(family)
    cm = compress(model, StructuredPruneConfig(sparsity=sparsity), ctx)
    z = model.latent(1, torch.Generator().manual_seed(0))
    params, macs = _expected(model, sparsity)
    assert count_params(cm.model) == params
    assert count_macs(cm.model, z) == (macs, macs)
    assert count_params(model) == _expected(model, 0.0)[0]  # the formula describes the original
    if sparsity == 0.0:
        assert all(
            torch.equal(a, b)
            for a, b in zip(
                model.state_dict().values(), cm.model.state_dict().values(), strict=True
            )
        )


def test_finetune_after_shrinking(family: str, make_model, ctx) -> None:
    cm = compress(
        make_model(family), StructuredPruneConfig(sparsity=0.5, finetune_steps=3, lr=1e-3), ctx
    )
    assert len(cm.notes["finetune_losses"]) == 3
    kept = cm.notes["kept_channels"]
    assert kept and all(k == _kept(n, 0.5) for k, n in kept.values())
    out = cm.model(cm.model.latent(2, torch.Generator().manual_seed(0)))
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("family", sorted(MODELS))
def test_teacher_matching_pulls_the_shrunk_model_towards_the_original(family, make_model, ctx):
    # Same shrunk start, same batches: with matching to the unshrunk model the first loss has an
    # extra sum-of-squares term (> 0 once channels are gone), and after fine-tuning the output
    # drift to the original is smaller than without it.
    model = make_model(family)
    z = model.latent(32, torch.Generator().manual_seed(1))

    def run(weight: float):
        cfg = StructuredPruneConfig(sparsity=0.5, finetune_steps=30, lr=1e-2, teacher_weight=weight)
        cm = compress(model, cfg, ctx)
        with torch.no_grad():
            drift = float(((cm.model(z) - model(z)) ** 2).mean())
        return cm.notes["finetune_losses"][0], drift

    (plain_loss, plain_drift), (matched_loss, matched_drift) = run(0.0), run(10.0)
    assert matched_loss > plain_loss
    assert matched_drift < plain_drift
    with pytest.raises(ValueError, match="teacher_weight"):
        StructuredPruneConfig(sparsity=0.5, teacher_weight=-1.0)


def test_channels_to_keep_ranks_by_l1() -> None:
    assert channels_to_keep(torch.tensor([3.0, 1.0, 2.0, 5.0]), 0.5).tolist() == [0, 3]
    assert channels_to_keep(torch.ones(4), 0.5).tolist() == [0, 1]  # ties: lower index kept
    assert channels_to_keep(torch.tensor([1.0, 2.0]), 0.9).tolist() == [1]  # at least one


def test_channel_l1_axes() -> None:
    convt = nn.ConvTranspose2d(2, 3, 2, bias=False)  # weight (in=2, out=3, 2, 2)
    with torch.no_grad():
        convt.weight.copy_(torch.arange(3.0).view(1, 3, 1, 1).expand(2, 3, 2, 2))
    assert channel_l1(convt).tolist() == [0.0, 8.0, 16.0]  # output axis is dim 1
    linear = nn.Linear(2, 6, bias=False)
    with torch.no_grad():
        linear.weight.copy_(torch.tensor([[1.0, 1.0]] * 3 + [[-2.0, 0.0]] * 3))
    assert channel_l1(linear, block=3).tolist() == [6.0, 6.0]
    gru = nn.GRU(2, 2, bias=False)
    with torch.no_grad():
        gru.weight_ih_l0.copy_(torch.tensor([[1.0, 0.0], [0.0, 0.0]] * 3))
        gru.weight_hh_l0.zero_()
    assert channel_l1(gru).tolist() == [3.0, 0.0]  # unit 0: one per gate block


@pytest.mark.parametrize("sparsity", [-0.1, 1.0])
def test_invalid_sparsity(sparsity: float) -> None:
    with pytest.raises(ValueError, match="sparsity"):
        StructuredPruneConfig(sparsity=sparsity)
