"""ddpm under the shrinking methods: structured pruning of the UNet's blocks, distillation."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from compression.accounting import count_macs, macs_by_layer
from compression.api import EXECUTION_SHRUNK, CompressionContext, compress
from compression.channel_groups import DDPM_BLOCKS
from compression.distillation import DistillConfig
from compression.structured import StructuredPruneConfig, plan, zero_channels
from genmodels.models import build_model


def _ddpm(width: float = 1.0) -> nn.Module:
    torch.manual_seed(0)
    model = build_model("ddpm", width=width, steps=3).eval()
    with torch.no_grad():  # non-trivial GroupNorm affine, so the kept groups' scales matter
        gen = torch.Generator().manual_seed(1)
        for m in model.modules():
            if isinstance(m, nn.GroupNorm):
                m.weight.copy_(torch.randn(m.num_channels, generator=gen))
                m.bias.copy_(torch.randn(m.num_channels, generator=gen))
    return model


@pytest.fixture
def ctx() -> CompressionContext:
    return CompressionContext(train_x=torch.rand(32, 1, 28, 28, generator=torch.Generator()
                                                 .manual_seed(0)), seed=0)


@pytest.mark.parametrize("sparsity", [0.3, 0.5])
def test_structured_pruning_removes_whole_groups_and_equals_the_zeroed_model(sparsity, ctx):
    model = _ddpm()
    cm = compress(model, StructuredPruneConfig(sparsity=sparsity), ctx)
    assert cm.execution == EXECUTION_SHRUNK
    zeroed = copy.deepcopy(model)
    for group, keep in plan(zeroed, sparsity):
        zero_channels(zeroed, group, keep)
    z = model.latent(3, torch.Generator().manual_seed(2))
    with torch.no_grad():
        shrunk, masked, original = cm.model(z), zeroed(z), model(z)
    assert shrunk.shape == original.shape == (3, 1, 28, 28)
    torch.testing.assert_close(shrunk, masked, atol=1e-5, rtol=0)
    assert not torch.allclose(original, masked, atol=1e-3)
    for name in DDPM_BLOCKS:
        before = model.unet.get_submodule(name)
        after = cm.model.unet.get_submodule(name)
        groups = before.norm2.num_groups
        kept = groups - round(sparsity * groups)
        per_group = before.norm2.num_channels // groups
        assert (after.norm2.num_groups, after.conv1.out_channels) == (kept, kept * per_group)
        assert after.conv2.in_channels == after.temb.out_features == kept * per_group


def test_structured_pruning_shrinks_exactly_the_block_layers_macs(ctx) -> None:
    # conv1 (outputs), temb (outputs) and conv2 (inputs) of every block scale by kept / total;
    # every other layer keeps its MACs.
    model = _ddpm()
    z = model.latent(1, torch.Generator().manual_seed(0))
    cm = compress(model, StructuredPruneConfig(sparsity=0.3), ctx)
    before, after = macs_by_layer(model, z), macs_by_layer(cm.model, z)
    for layer, (dense, _) in before.items():
        block, _, leaf = layer.removeprefix("unet.").rpartition(".")
        if block in DDPM_BLOCKS and leaf in ("conv1", "temb", "conv2"):
            norm = model.unet.get_submodule(block).norm2
            ratio = cm.model.unet.get_submodule(block).norm2.num_groups / norm.num_groups
            assert after[layer][0] == round(dense * ratio), layer
        else:
            assert after[layer][0] == dense, layer
    assert count_macs(cm.model, z)[0] < 0.85 * count_macs(model, z)[0]


def test_distillation_into_half_width_runs_and_pulls_the_student_in(ctx) -> None:
    teacher = _ddpm()
    cm = compress(teacher, DistillConfig(width=0.5, steps=12, lr=2e-3), ctx)
    student = cm.model
    assert student.width == 0.5 and student.steps == teacher.steps
    assert student.unet.conv_in.out_channels == teacher.unet.conv_in.out_channels // 2
    drift = cm.notes["output_drift_history"]
    losses = cm.notes["distill_losses"]
    assert drift[-1] < drift[0] and sum(losses[-3:]) < sum(losses[:3])
