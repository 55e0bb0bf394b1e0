"""Baselines at other widths: `[families.X] width`, further tables of a model (`model = ..`),
their training budget, cell ids and checkpoint keys, and the shipped scaling preset."""
from __future__ import annotations

import dataclasses

import pytest
from conftest import TINY_TOML

from bench.cli import main
from bench.config.baselines import FamilyModel
from bench.config.steps import train_base
from bench.config.sweep import baseline_model, load_preset, parse_config, train_config
from bench.run.grid import cell_id, expand

WIDE = TINY_TOML.replace("[families.vae]", """[families.gan_w2]
model = "gan"
width = 2
epochs = 1
max_steps = 1
latent_dim = 4
[families.vae]""", 1)


def test_a_further_table_of_a_model_at_another_width() -> None:
    config = parse_config(WIDE)
    assert list(config.families) == ["gan", "gan_w2", "vae"]
    # width written as an integer is that float; the stored table keeps model and width (run.json).
    assert config.families["gan_w2"] == {"epochs": 1, "max_steps": 1, "latent_dim": 4,
                                         "model": "gan", "width": 2.0}
    assert baseline_model(config, "gan_w2") == FamilyModel("gan", 2.0)
    assert baseline_model(config, "gan") == FamilyModel("gan", 1.0)
    expected = dataclasses.replace(train_base("smoke")["gan"], epochs=1, max_steps=1,
                                   latent_dim=4)
    assert train_config(config, "gan_w2") == expected  # the gan budget, model/width stripped
    families = [cell.family for cell in expand(config)]
    assert families.count("gan_w2") == families.count("gan") == 3  # baseline + 2 sweeps


def test_width_is_part_of_the_cell_id_and_defaults_are_not() -> None:
    plain = parse_config(TINY_TOML)
    same = parse_config(TINY_TOML.replace("[families.gan]", '[families.gan]\nwidth = 1.0\n'
                                          'model = "gan"', 1))
    wide = parse_config(TINY_TOML.replace("[families.gan]", "[families.gan]\nwidth = 2.0", 1))
    assert same.families == plain.families  # defaults written out are not stored
    ids = [cell_id(c, "gan", 0, (), code="x") for c in (plain, same, wide)]
    assert ids[0] == ids[1] != ids[2]


BAD = [
    ("width = 0", "width = 0; allowed: a number > 0"),
    ("width = -2.0", "width = -2.0; allowed: a number > 0"),
    ('width = "2"', "width = '2'; allowed: a number > 0"),
    ("width = true", "width = True; allowed: a number > 0"),
    ("widht = 2.0", "unknown key 'widht' (did you mean 'width'?)"),
    ('model = "gna"', "model = 'gna' (did you mean 'gan'?)"),
]


@pytest.mark.parametrize(("line", "fragment"), BAD, ids=[b[0] for b in BAD])
def test_bad_width_or_model_is_one_line_exit_2(line: str, fragment: str, write_config,
                                               capsys) -> None:
    path = write_config(TINY_TOML.replace("[families.gan]", f"[families.gan]\n{line}", 1))
    assert main(["validate", str(path), "--no-data"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and fragment in err and "[families.gan]" in err, err


@pytest.mark.parametrize(("table", "fragment"), [
    ("[families.gan_w2]\nwidth = 2.0",  # no model named
     'a table of another name names its model: [families.gan_w2] model = "gan"'),
    ('[families.deployment]\nmodel = "gan"', "not be deployment"),  # tables/deployment.md
])
def test_further_tables_need_a_model_and_a_free_name(table: str, fragment: str, write_config,
                                                     capsys) -> None:
    path = write_config(TINY_TOML + "\n" + table + "\n")
    assert main(["validate", str(path), "--no-data"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and fragment in err, err


def test_baseline_trained_at_its_model_and_width(tmp_path, monkeypatch) -> None:
    """train_task builds the registered model at the table's width, and its checkpoint key is
    genmodels' key for (model, width): a width-1 table of another name shares the checkpoint."""
    from bench.run.runner import load_dataset, train_task
    from genmodels.train import checkpoint_key

    monkeypatch.setenv("GENBENCH_CACHE", str(tmp_path / "cache"))
    config = parse_config(WIDE)
    trained = train_task(config, (config.dataset, "gan_w2", 0))
    assert trained.error is None or trained.error == "", trained.error
    assert (trained.model.family, trained.model.width) == ("gan", 2.0)
    dataset = load_dataset(config)
    assert trained.info["key"] == checkpoint_key("gan", dataset, train_config(config, "gan_w2"),
                                                 0, 2.0)
    # The generator's first layer is twice as wide as at width 1.
    narrow = train_task(config, (config.dataset, "gan", 0)).model
    count = sum(p.numel() for p in trained.model.generator.parameters())
    assert count > 2 * sum(p.numel() for p in narrow.generator.parameters())


def test_scaling_preset_validates_and_expands() -> None:
    config = load_preset("scaling")
    widths = {name: baseline_model(config, name) for name in config.families}
    assert sorted((b.model, b.width) for b in widths.values()) == sorted(
        (m, w) for m in ("gan", "vae", "rvae") for w in (1.0, 2.0, 4.0))
    assert config.seeds == (0,) and config.batch_sizes == (1, 64)
    assert set(config.runtimes) == {"eager", "compiled", "onnxruntime", "onnxruntime_int8"}
    assert config.eval["n_samples"] == 500
    cells = expand(config)
    assert len(cells) == 9 * 3  # per family and width: the baseline and two structured cells
    # Width 1 trains the default budget: its checkpoints are the default preset's.
    default = load_preset("default")
    assert train_config(config, "gan") == train_config(default, "gan")
