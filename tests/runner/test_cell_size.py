"""Size columns of a cell: every executed weight counts, sparsity is the target's, int8 MACs."""
from __future__ import annotations

import pytest
import torch

from bench.cell.size import size_columns
from bench.results.schema import SIZE_COLUMNS
from compression.accounting import count_nonzero, count_params, prunable_tensors
from compression.api import CompressedModel, apply_pipeline, config_from_dict
from genmodels.models import MODELS

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")


def _model(family: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return MODELS[family](image_shape=(1, 16, 16), latent_dim=4).eval()


def _columns(model, *steps: dict) -> dict:
    cm = apply_pipeline(model, [config_from_dict(dict(step)) for step in steps])
    return size_columns(cm, model)


@pytest.mark.parametrize("scope", ["global", "layer"])
def test_sparsity_is_the_prunable_weights_and_equals_the_target(scope) -> None:
    # The target applies to the prunable weights; biases and BatchNorm are never pruned, so the
    # whole-model figure (what `sparsity` used to be: 0.859 at 0.9 on the reference GAN) is lower.
    gan = _model("gan")
    weights = [getattr(m, p).numel() for _, m, p in prunable_tensors(gan)]
    row = _columns(gan, {"method": "prune_magnitude", "sparsity": 0.9, "scope": scope})
    # round(s * n) zeros: globally once, per layer once per tensor
    slack = 0.5 / sum(weights) if scope == "global" else 0.5 * len(weights) / sum(weights)
    assert abs(row["sparsity"] - 0.9) <= slack + 1e-12
    assert row["sparsity_model"] == 1 - row["nonzero_params"] / row["params"]
    assert row["sparsity_model"] < 0.9 - 0.01
    assert set(SIZE_COLUMNS) == set(row)


def test_sparsity_with_include_bias_covers_the_biases_too() -> None:
    vae = _model("vae")
    row = _columns(vae, {"method": "prune_magnitude", "sparsity": 0.5, "include_bias": True})
    n = sum(getattr(m, p).numel() for _, m, p in prunable_tensors(vae, include_bias=True))
    assert abs(row["sparsity"] - 0.5) <= 0.5 / n + 1e-12


def test_int8_rows_count_every_param_and_their_int8_mac_share() -> None:
    rvae = _model("rvae")
    base = size_columns(CompressedModel(model=rvae), rvae)
    row = _columns(rvae, {"method": "quant_int8_kernel", "mode": "dynamic"})
    assert row["params"] == base["params"] == count_params(rvae)
    assert row["nonzero_params"] <= base["nonzero_params"] == count_nonzero(rvae)
    assert row["bits_per_weight"] == 8.0 and base["bits_per_weight"] == 32.0
    assert row["macs"] == base["macs"]
    assert row["int8_mac_fraction"] == 1.0  # GRUs on torch.ao, Linears on torchao: all int8
    weight_only = _columns(rvae, {"method": "quant_int8_kernel", "mode": "weight_only"})
    assert 0 < weight_only["int8_mac_fraction"] < 1  # the GRUs ran simulated
    assert base["int8_mac_fraction"] is None
    assert _columns(rvae, {"method": "quant", "bits": 8})["int8_mac_fraction"] is None
