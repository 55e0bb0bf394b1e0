"""N:M (2:4) semi-structured pruning: exact structure, magnitude optimality, GEMM layout, bytes."""

from __future__ import annotations

import itertools
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from compression.accounting import prunable_tensors
from compression.api import EXECUTION_MASKED, compress, config_from_dict
from compression.pruning import MagnitudePruneConfig
from compression.quantization.ptq import QuantConfig
from compression.semistructured import (
    NMPruneConfig,
    from_gemm_view,
    gemm_view,
    is_nm_sparse,
    layer_nm_mask,
    nm_mask,
    parse_pattern,
)
from compression.sparse_accounting import csr_bytes, nm_packed_bytes, semi_structured_bytes


@pytest.mark.parametrize("n,m", [(2, 4), (1, 4), (1, 2), (3, 8)])
def test_nm_mask_keeps_exactly_n_of_every_m(n: int, m: int) -> None:
    w = torch.randn(5, 4 * m, generator=torch.Generator().manual_seed(n * 10 + m))
    keep = nm_mask(w, n, m)
    assert (keep.view(5, -1, m).sum(dim=2) == n).all()
    assert 1 - keep.float().mean().item() == pytest.approx(1 - n / m, abs=0)


@pytest.mark.parametrize("n,m", [(2, 4), (1, 4), (1, 2)])
@pytest.mark.parametrize("seed", range(3))
def test_nm_mask_is_the_magnitude_optimal_nm_mask(n: int, m: int, seed: int) -> None:
    """Brute force over every mask of a 2x8 matrix: among those with at most n kept per group,
    ours keeps the largest sum of |w| (and exactly n per group)."""
    w = torch.randn(2, 8, generator=torch.Generator().manual_seed(seed))
    masks = torch.tensor(list(itertools.product([0, 1], repeat=16)), dtype=torch.bool)
    masks = masks.view(-1, 2, 8)
    valid = (masks.view(-1, 2, 8 // m, m).sum(dim=3) <= n).all(dim=(1, 2))
    best = (masks[valid] * w.abs()).sum(dim=(1, 2)).max()
    ours = nm_mask(w, n, m)
    assert torch.isclose((ours * w.abs()).sum(), best, rtol=0, atol=1e-6)


def test_nm_mask_tail_group_and_ties() -> None:
    w = torch.tensor([[1.0, 1.0, 1.0, 1.0, 3.0, -5.0], [0.1, -4.0, 2.0, 0.2, 7.0, 0.0]])
    keep = nm_mask(w, 2, 4)
    # Ties keep the lower index; the tail of 2 (zero-padded group) keeps both of its entries.
    assert keep.tolist() == [[True, True, False, False, True, True],
                             [False, True, True, False, True, True]]
    assert nm_mask(torch.arange(1.0, 6.0).view(1, 5), 2, 4).tolist() == [[0, 0, 1, 1, 1]]


@pytest.mark.parametrize("pattern", ["4:2", "2-4", "0:4", "2:2", "2:32", 24])
def test_bad_pattern_is_an_error(pattern) -> None:
    with pytest.raises(ValueError, match="pattern"):
        NMPruneConfig(pattern=pattern)


def test_config_from_toml_table_and_settings() -> None:
    cfg = config_from_dict({"method": "prune_nm", "pattern": "2:4", "finetune_steps": 3})
    assert isinstance(cfg, NMPruneConfig) and parse_pattern(cfg.pattern) == (2, 4)
    assert cfg.settings()["sparsity_target"] == 0.5 and cfg.settings()["pattern"] == "2:4"
    with pytest.raises(ValueError, match="sparsity"):
        config_from_dict({"method": "prune_nm", "sparsity": 0.5})


def test_conv_gemm_view_is_the_convolution_matrix() -> None:
    """conv2d(x, W) == view(W) @ unfold(x): the groups run along the GEMM's reduction."""
    conv = nn.Conv2d(3, 5, 4, stride=2, padding=1)
    x = torch.randn(2, 3, 8, 8)
    cols = F.unfold(x, 4, stride=2, padding=1)  # (B, 3*4*4, L)
    out = (gemm_view(conv, conv.weight) @ cols).view(2, 5, 4, 4)
    assert torch.allclose(out, F.conv2d(x, conv.weight, stride=2, padding=1), atol=1e-5)


def test_conv_transpose_gemm_view_is_the_convolution_matrix() -> None:
    """conv_transpose2d(x, W) == col2im(view(W) @ x): ConvT reduces over its input channels."""
    convt = nn.ConvTranspose2d(8, 3, 4, stride=2, padding=1, bias=False)
    x = torch.randn(2, 8, 5, 5)
    cols = gemm_view(convt, convt.weight) @ x.flatten(2)  # (B, 3*4*4, 25)
    out = F.fold(cols, (10, 10), 4, stride=2, padding=1)
    assert torch.allclose(out, convt(x), atol=1e-5)


@pytest.mark.parametrize(
    "module", [nn.Linear(8, 6), nn.Conv2d(4, 6, 3), nn.ConvTranspose2d(8, 6, 4), nn.GRU(8, 4)]
)
def test_gemm_view_round_trips(module: nn.Module) -> None:
    weight = next(module.parameters())
    assert torch.equal(from_gemm_view(module, gemm_view(module, weight), weight.shape), weight)
    mask = layer_nm_mask(module, weight, 2, 4)
    assert mask.shape == weight.shape and is_nm_sparse(module, weight * mask, 2, 4)


def test_prune_nm_on_every_family(family: str, make_model, ctx) -> None:
    model = make_model(family, width=0.5)
    cm = compress(model, NMPruneConfig(), ctx)
    assert cm.execution == EXECUTION_MASKED and cm.notes["nm_pattern"] == "2:4"
    before = dict(model.named_parameters())
    for name, module, pname in prunable_tensors(cm.model):
        weight = getattr(module, pname)
        assert is_nm_sparse(module, weight, 2, 4), name
        if gemm_view(module, weight).shape[1] % 4 == 0:  # no tail group: exactly 50%
            assert cm.notes["sparsity_per_layer"][name] == 0.5
        kept = weight != 0
        assert torch.equal(weight[kept], before[name][kept])  # kept weights bit-identical
    assert all(torch.equal(p, before[k]) for k, p in cm.model.named_parameters()
               if "bias" in k)


def test_finetuning_keeps_the_2_4_structure(make_model, ctx) -> None:
    cm = compress(make_model("vae", width=0.5), NMPruneConfig(finetune_steps=2, lr=1e-2), ctx)
    assert len(cm.notes["finetune_losses"]) == 2
    assert all(is_nm_sparse(m, getattr(m, p), 2, 4) for _, m, p in prunable_tensors(cm.model))


def test_semi_structured_bytes_known_answers() -> None:
    # 64x64 fp32 at 2:4: 2048 kept values x 4 B + 2048 x 2 bits = 8192 + 512.
    assert semi_structured_bytes(64, 64, 2, 4) == 8704
    assert semi_structured_bytes(64, 64, 2, 4, value_bits=16) == 4096 + 512
    assert semi_structured_bytes(1, 6, 2, 4) == 4 * 4 + 1  # tail group padded: 4 kept, 8 bits
    assert semi_structured_bytes(4, 8, 1, 8, value_bits=8) == 4 + 2  # 3-bit index x 4, rounded up


def test_csr_bytes_match_torch_csr_tensors() -> None:
    w = torch.randn(7, 9) * (torch.rand(7, 9) < 0.2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "Sparse CSR tensor support is in beta"
        csr = w.to_sparse_csr()
    parts = csr.values(), csr.col_indices(), csr.crow_indices()
    stored = sum(t.numel() * t.element_size() for t in parts)
    assert csr_bytes(int(csr.values().numel()), 7) == stored


def test_nm_packed_bytes_of_a_pruned_model(make_model, ctx) -> None:
    model = make_model("gan", width=0.5)
    cm = compress(model, NMPruneConfig(), ctx)
    expected = {name: semi_structured_bytes(*gemm_view(m, getattr(m, p)).shape, 2, 4)
                for name, m, p in prunable_tensors(cm.model)}
    assert nm_packed_bytes(cm) == expected
    assert nm_packed_bytes(compress(model, MagnitudePruneConfig(sparsity=0.5), ctx)) == {}
    quantized = compress(cm, QuantConfig(bits=8), ctx)  # codes are packed dense: left out
    assert quantized.quantized
    assert nm_packed_bytes(quantized) == {k: v for k, v in expected.items()
                                          if k not in quantized.quantized}
