"""Cell notes and collapse: what ran simulated, layers emptied, outputs that ignore the latent."""
from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import TINY_TOML

from bench.cell.measure import measure_cell
from bench.cell.notes import ROW_NOTES, cell_notes, latent_std, notes_columns, notes_json
from bench.config.sweep import parse_config
from bench.results.schema import COLLAPSE_COLUMNS, COLLAPSE_STD, RESULTS_COLUMNS
from bench.run.grid import Cell
from compression.api import CompressedModel, apply_pipeline, config_from_dict
from compression.quantization.core import quantize_weight
from genmodels.models import MODELS
from genmodels.models.gan import GAN

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")


class _IgnoresZ(GAN):
    """A generator forced to ignore its latent: one image for every z."""

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return super().forward(torch.zeros_like(z))


def _model(family: str = "gan") -> torch.nn.Module:
    torch.manual_seed(0)
    return MODELS[family](image_shape=(1, 16, 16), latent_dim=4).eval()


def _samples(model: torch.nn.Module, n: int = 16) -> np.ndarray:
    return model.sample(n, torch.Generator().manual_seed(0)).numpy()


def test_latent_std_closed_forms() -> None:
    # Two images 0 and 1: every pixel has sample std sqrt(1/2); a constant stack has 0.
    two = np.stack([np.zeros((1, 3, 3)), np.ones((1, 3, 3))])
    assert latent_std(two) == pytest.approx(np.sqrt(0.5), abs=1e-15)
    assert latent_std(np.full((16, 1, 4, 4), 0.3)) == 0.0
    # One pixel varies (sample std s), the other is constant: the mean over pixels is s / 2.
    x = np.zeros((4, 2))
    x[:, 0] = [-2.0, -2.0, 2.0, 2.0]
    assert latent_std(x) == pytest.approx(np.std(x[:, 0], ddof=1) / 2, abs=1e-15)
    with pytest.raises(ValueError, match="at least 2"):
        latent_std(np.zeros((1, 1, 4, 4)))


def test_a_model_that_ignores_z_is_collapsed() -> None:
    torch.manual_seed(0)
    model = _IgnoresZ(image_shape=(1, 16, 16), latent_dim=4).eval()
    columns = notes_columns(CompressedModel(model=model), _samples(model))
    assert columns == {"latent_std": 0.0, "collapsed": True, "notes": '{"collapsed":true}'}
    healthy = _model()
    columns = notes_columns(CompressedModel(model=healthy), _samples(healthy))
    assert columns["latent_std"] > 100 * COLLAPSE_STD
    assert columns["collapsed"] is False and columns["notes"] == ""


def test_an_emptied_layer_is_listed_and_its_collapse_flagged() -> None:
    # fc pruned to 100%: BatchNorm of zeros is a constant, so is every image.
    gan = _model()
    cm = CompressedModel(model=gan)
    with torch.no_grad():
        gan.generator.fc.weight.zero_()
    columns = notes_columns(cm, _samples(gan))
    assert columns["collapsed"] is True and columns["latent_std"] == 0.0
    assert columns["notes"] == '{"collapsed":true,"layers_emptied":["generator.fc.weight"]}'


def test_int8_notes_say_what_ran_simulated_in_compact_sorted_json() -> None:
    vae = _model("vae")
    cm = apply_pipeline(vae, [config_from_dict({"method": "quant_int8_kernel"})])
    text = notes_columns(cm, _samples(cm.model))["notes"]
    notes = json.loads(text)
    assert text == json.dumps(notes, sort_keys=True, separators=(",", ":"))
    convs = sorted(n for n, m in vae.named_modules()
                   if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)))
    assert notes["simulated_int8_layers"] == convs
    assert sorted(notes["int8_kernel_layers"]) == sorted(
        f"{n} (torchao)" for n, m in vae.named_modules() if isinstance(m, torch.nn.Linear))
    # Per-channel everywhere, as the row's granularity says; histories stay out of the row.
    assert set(notes) == {"int8_kernel_layers", "simulated_int8_layers"}
    rvae = _model("rvae")
    cm = apply_pipeline(rvae, [config_from_dict({"method": "quant_int8_kernel"})])
    notes = json.loads(notes_columns(cm, _samples(cm.model))["notes"])
    assert "weight_granularity" not in notes and "int8_mode" not in notes
    assert {k: v for k, v in cm.notes.items() if k in ROW_NOTES and v} == notes
    assert any("(torch.ao dynamic)" in name for name in notes["int8_kernel_layers"])


def test_a_weight_stored_at_another_granularity_than_the_row_says_is_named() -> None:
    vae = _model("vae")
    cm = apply_pipeline(vae, [config_from_dict({"method": "quant", "bits": 8})])
    assert cell_notes(cm, collapsed=False) == {}  # every weight per-channel, as the row says
    name = sorted(cm.quantized)[0]
    cm.quantized[name] = quantize_weight(cm.quantized[name].dequantize(), 8, "affine", "tensor",
                                         "minmax", None)
    assert cell_notes(cm, collapsed=False) == {"weight_granularity": {name: "tensor"}}
    assert notes_json({}) == ""


def test_measure_cell_puts_notes_and_collapse_in_the_row() -> None:
    config = parse_config(TINY_TOML)
    torch.manual_seed(0)
    baseline = _IgnoresZ(image_shape=(1, 16, 16), latent_dim=4).eval()
    evaluator = SimpleNamespace(
        evaluate=lambda model, baseline=None: {},
        samples=lambda model, n=16: model.sample(n, torch.Generator().manual_seed(0)).numpy())
    step = {"method": "prune_magnitude", "sparsity": 0.5}
    cell = Cell("c0", "tiny16", "gan", 0, (step,))
    row = measure_cell(config, cell, [config_from_dict(dict(step))], baseline, evaluator).row
    assert row["collapsed"] is True and row["latent_std"] == 0.0
    assert row["notes"] == '{"collapsed":true}'
    assert row["sparsity"] == pytest.approx(0.5, abs=1e-3) and row["int8_mac_fraction"] is None
    assert set(COLLAPSE_COLUMNS + ["notes", "sparsity_model"]) <= set(row) <= set(RESULTS_COLUMNS)
