"""`genbench sensitivity DIR`: the tidy sensitivity.csv, its drift gate, heatmaps, CLI errors."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch
from conftest import run_cli

from bench.cell.notes import cell_notes
from bench.errors import InputError
from bench.plots.sensitivity import plot_sensitivity
from bench.run.sensitivity import (
    PRUNE_SPARSITIES,
    QUANT_BITS,
    SENSITIVITY_COLUMNS,
    SENSITIVITY_FILE,
    family_sensitivity,
    read_sensitivity,
    settings,
    with_layer,
    write_sensitivity,
)
from compression.accounting import prunable_tensors
from compression.adaptive import AdaptivePruneConfig, MixedQuantConfig
from compression.api import CompressionContext, compress
from genmodels.models import MODELS

SHAPE = (1, 16, 16)


class FakeEvaluator:
    """The two evaluator calls family_sensitivity makes; counts evaluate() calls."""

    def __init__(self) -> None:
        self.calls = 0

    def latent(self, model):
        return model.latent(100, torch.Generator().manual_seed(0))

    def evaluate(self, model, baseline):
        self.calls += 1
        return {"fid_proxy_delta": 1.0, "fid_proxy_delta_ci_low": 0.5,
                "fid_proxy_delta_ci_high": 1.5}


def tiny(family: str):
    torch.manual_seed(0)
    return MODELS[family](image_shape=SHAPE, latent_dim=4, width=0.25).eval()


@pytest.mark.parametrize("family", ["gan", "vae"])
def test_rows_cover_every_layer_and_setting_and_gate_counts(family: str) -> None:
    model = tiny(family)
    test_x = torch.rand(8, *SHAPE, generator=torch.Generator().manual_seed(1))
    everything = FakeEvaluator()
    rows = family_sensitivity(model, family, 0, everything, test_x, drift_gate=0.0)
    layers = [name for name, _, _ in prunable_tensors(model)]
    assert len(rows) == len(layers) * (len(QUANT_BITS) + len(PRUNE_SPARSITIES))
    assert everything.calls == len(rows) and all(r["evaluated"] for r in rows)
    assert {r["layer"] for r in rows} == set(layers)
    gate = sorted(r["drift_mse"] for r in rows)[len(rows) // 2]  # the median drift
    gated = FakeEvaluator()
    rows = family_sensitivity(model, family, 0, gated, test_x, drift_gate=gate)
    assert gated.calls == sum(r["drift_mse"] >= gate for r in rows) == sum(
        r["evaluated"] for r in rows)
    assert all((r.get("fid_proxy_delta") is None) != r["evaluated"] for r in rows)


def test_with_layer_changes_only_that_layer() -> None:
    model = tiny("vae")
    layer = prunable_tensors(model)[1][0]
    two_bit = next(s for s in settings() if s.label == "2-bit")
    variant = with_layer(model, layer, two_bit)
    before, after = model.state_dict(), variant.state_dict()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert changed == [layer]
    assert len(torch.unique(after[layer][0])) <= 4  # one channel: at most 2^2 levels


def test_csv_round_trip_and_foreign_file(tmp_path: Path) -> None:
    rows = [{"family": "gan", "seed": 0, "layer": "fc.weight", "params": 10,
             "setting_kind": "quant", "setting_value": 4, "setting": "4-bit",
             "drift_mse": 1e-3, "evaluated": False}]
    path = write_sensitivity(rows, tmp_path)
    assert path == tmp_path / SENSITIVITY_FILE
    frame = read_sensitivity(path)
    assert list(frame.columns) == SENSITIVITY_COLUMNS and frame["drift_mse"].iloc[0] == 1e-3
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    with pytest.raises(InputError, match="lacks columns"):
        read_sensitivity(tmp_path / "other.csv")
    with pytest.raises(InputError, match="genbench sensitivity DIR"):
        read_sensitivity(tmp_path / "absent.csv")


def test_heatmap_per_family(tmp_path: Path) -> None:
    rows = []
    for family in ("gan", "vae"):
        model = tiny(family)
        rows += family_sensitivity(model, family, 0, FakeEvaluator(), None, drift_gate=1e-6)
    paths = plot_sensitivity(pd.DataFrame(rows, columns=SENSITIVITY_COLUMNS), tmp_path)
    assert sorted(p.name for p in paths) == [
        "sensitivity_gan.png", "sensitivity_gan.svg", "sensitivity_vae.png", "sensitivity_vae.svg"]
    svg = (tmp_path / "sensitivity_vae.svg").read_text()
    assert "dec1.weight" in svg and "90% pruned" in svg and "+1.0*" in svg


def test_adaptive_choices_reach_the_row_notes() -> None:
    ctx = CompressionContext(train_x=torch.rand(16, *SHAPE), seed=0)
    mixed = compress(tiny("gan"), MixedQuantConfig(avg_bits=3.0), ctx)
    notes = cell_notes(mixed, collapsed=False)
    assert notes["bits_per_layer"] == mixed.notes["bits_per_layer"]
    selection = json.loads(json.dumps(notes["bits_selection"]))  # as the row stores it
    assert selection["chosen"] in selection["joint_drift"] and set(selection["avg_bits"]) == set(
        selection["joint_drift"])
    assert "weight_granularity" not in notes  # every weight is per channel, as the row says
    pruned = compress(tiny("gan"), AdaptivePruneConfig(sparsity=0.9), ctx)
    assert cell_notes(pruned, collapsed=False)["sparsity_allocation"] == json.loads(
        json.dumps(pruned.notes["sparsity_allocation"]))


@pytest.mark.parametrize(("args", "message"), [
    (["--drift-gate", "-1"], "--drift-gate must be"),
    ([], "no run.json naming a preset"),
    (["--preset", "default", "--families", "gan,nope"], "--families ['nope'] not in"),
])
def test_cli_bad_input_is_one_line_exit_2(tmp_path: Path, args, message) -> None:
    result = run_cli("sensitivity", str(tmp_path / "out"), *args, timeout=120)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()  # nothing half-written


def test_cli_writes_csv_and_heatmaps(tmp_path: Path, write_config, tiny_toml) -> None:
    config = write_config(tiny_toml)
    out = tmp_path / "out"
    result = run_cli("sensitivity", str(out), "--config", str(config), "--families", "gan",
                     "--drift-gate", "0.01")
    assert result.returncode == 0, result.stderr
    frame = read_sensitivity(out / SENSITIVITY_FILE)
    assert set(frame["family"]) == {"gan"} and len(frame) == 3 * 7  # fc, up1, up2 x 7
    assert (frame["evaluated"] == (frame["drift_mse"] >= 0.01)).all()
    assert (out / "plots" / "sensitivity_gan.png").is_file()
