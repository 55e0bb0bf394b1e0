"""Config parsing: presets, cartesian expansion, every bad input -> one line, exit 2, no output."""
from __future__ import annotations

import dataclasses

import pytest
from conftest import TINY_TOML

from bench.cli import main
from bench.config.sweep import ConfigError, load_preset, parse_config, preset_names
from bench.run.grid import expand


def _edit(old: str, new: str) -> str:
    assert old in TINY_TOML, old
    return TINY_TOML.replace(old, new, 1)


# (case id, config text, a fragment the one-line message must contain)
BAD_CONFIGS = [
    ("unknown-family", _edit("[families.vae]", "[families.vea]"), "unknown family 'vea'"),
    ("unknown-method", _edit('method = "quant"', 'method = "quantize"'),
     "unknown method 'quantize'"),
    ("unknown-dataset", _edit('dataset = "tiny16"', 'dataset = "mnits"'),
     "unknown dataset 'mnits'"),
    ("misspelled-method-key", _edit("sparsity = [0.5]", "sparsty = [0.5]"),
     "unknown key 'sparsty'"),
    ("misspelled-top-key", _edit("seeds = [0]", "seed = [0]"), "unknown key 'seed'"),
    ("misspelled-eval-key", _edit("n_samples = 32", "n_sample = 32"), "unknown key 'n_sample'"),
    ("misspelled-train-key", _edit("max_steps = 2\nlatent_dim = 4\n[families.vae]",
                                   "max_step = 2\nlatent_dim = 4\n[families.vae]"),
     "unknown key 'max_step'"),
    ("wrong-type-seeds", _edit("seeds = [0]", 'seeds = "0"'), "wrong type"),
    ("wrong-type-bits", _edit("bits = [8]", 'bits = ["8"]'), "wrong type"),
    ("wrong-type-timeout", _edit("timeout_s = 120", 'timeout_s = "long"'), "wrong type"),
    ("bits-too-high", _edit("bits = [8]", "bits = [9]"), "bits"),
    ("bits-too-low", _edit("bits = [8]", "bits = [1]"), "bits"),
    ("sparsity-one", _edit("sparsity = [0.5]", "sparsity = [1.0]"), "sparsity"),
    ("sparsity-negative", _edit("sparsity = [0.5]", "sparsity = [-0.1]"), "sparsity"),
    ("negative-threshold",
     TINY_TOML + '\n[[sweep]]\nmethod = "prune_threshold"\nthreshold = -0.1\n', "threshold"),
    ("width-zero", TINY_TOML + '\n[[sweep]]\nmethod = "distill"\nwidth = [0.0]\n', "width"),
    ("width-above-one", TINY_TOML + '\n[[sweep]]\nmethod = "distill"\nwidth = [1.5]\n', "width"),
    ("empty-sweep-list", _edit("sparsity = [0.5]", "sparsity = []"), "empty"),
    ("no-sweeps", TINY_TOML.split("[[sweep]]")[0], "nothing to compress"),
    ("batch-size-zero", _edit("batch_sizes = [2]", "batch_sizes = [0]"), "batch_sizes"),
    ("not-toml", "name = [unclosed\n", "not valid TOML"),
    ("name-escapes", _edit('name = "tiny"', 'name = "../../etc"'), "name"),
    ("bad-device", _edit('devices = ["auto"]', 'devices = ["tpu"]'), "devices"),
    ("eval-too-small", _edit("n_samples = 32", "n_samples = 0"), "n_samples"),
]
# Only detectable against the data / machine: checked by `run` before any output exists.
BAD_AT_RUN = [
    ("samples-exceed-test-set", _edit("n_samples = 32", "n_samples = 100000"), "exceeds"),
    ("cuda-explicit", _edit('devices = ["auto"]', 'devices = ["cuda"]'), "CUDA"),
]


@pytest.mark.parametrize("case,text,fragment", BAD_CONFIGS, ids=[c[0] for c in BAD_CONFIGS])
def test_bad_config_is_one_line_exit_2_and_writes_nothing(case, text, fragment, tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    out = tmp_path / "out"
    for argv in (["validate", str(path), "--no-data"],
                 ["run", "--config", str(path), "--out", str(out)]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err, err
        assert fragment in err and str(path) in err, err
    assert not out.exists()


@pytest.mark.parametrize("case,text,fragment", BAD_AT_RUN, ids=[c[0] for c in BAD_AT_RUN])
def test_bad_against_machine_or_data_is_refused_before_output(case, text, fragment, tmp_path,
                                                              capsys):
    import torch

    if case == "cuda-explicit" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA: explicit cuda is valid here")
    path = tmp_path / "bad.toml"
    path.write_text(text)
    out = tmp_path / "out"
    assert main(["run", "--config", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and fragment in err, err
    assert not out.exists()


@pytest.mark.parametrize("argv,fragment", [
    (["run", "--preset", "nope", "--out", "X"], "unknown preset 'nope'"),
    (["run", "--out", "X"], "exactly one of --preset"),
    (["run", "--preset", "smoke", "--workers", "0", "--out", "X"], "--workers"),
    (["run", "--preset", "smoke", "--executor", "spark"], "invalid choice"),
    (["validate", "/nonexistent/sweep.toml"], "cannot read config file"),
    (["frobnicate"], "invalid choice"),
])
def test_bad_arguments_exit_2_one_line(argv, fragment, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a wrongly created default output dir would land here
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and fragment in err, err
    assert list(tmp_path.iterdir()) == []


def test_missing_data_root_is_exit_2(tmp_path, capsys):
    text = _edit('dataset = "tiny16"', f'dataset = "mnist"\ndata_root = "{tmp_path / "nowhere"}"')
    path = tmp_path / "mnist.toml"
    path.write_text(text)
    assert main(["run", "--config", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nowhere" in err, err
    assert not (tmp_path / "out").exists()


def test_debug_shows_the_traceback(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(_edit("sparsity = [0.5]", "sparsty = [0.5]"))
    with pytest.raises(ConfigError, match="sparsty"):
        main(["validate", str(path), "--no-data", "--debug"])


def test_sweep_lists_expand_by_cartesian_product():
    text = _edit("sparsity = [0.5]", 'sparsity = [0.5, 0.7, 0.9]\nscope = ["global", "layer"]')
    config = parse_config(text)
    magnitude = [s for _, (s,) in config.pipelines if s["method"] == "prune_magnitude"]
    assert len(magnitude) == 6
    assert {(s["sparsity"], s["scope"]) for s in magnitude} == {
        (a, b) for a in (0.5, 0.7, 0.9) for b in ("global", "layer")}
    # 2 families x (baseline + 6 magnitude + 1 quant)
    assert len(expand(config)) == 2 * 8


def test_family_filter_restricts_a_sweep():
    text = TINY_TOML + '\n[[sweep]]\nmethod = "quant"\nbits = [4]\nfamilies = ["vae"]\n'
    cells = expand(parse_config(text))
    four_bit = [c for c in cells if c.steps and c.steps[0].get("bits") == 4]
    assert [c.family for c in four_bit] == ["vae"]


@pytest.mark.parametrize("name", preset_names())
def test_presets_parse_and_expand(name):
    config = load_preset(name)
    assert config.name == name and config.description
    cells = expand(config)
    n_families, n_seeds = len(config.families), len(config.seeds)
    baselines = [c for c in cells if c.method == "baseline"]
    assert len(baselines) == n_families * n_seeds
    assert len({c.cell_id for c in cells}) == len(cells)
    assert len(cells) >= n_families * n_seeds * 3  # baseline + >= 1 pruning + >= 1 quantization


def test_default_preset_has_the_issue_list():
    config = load_preset("default")
    steps = [s for _, s in config.pipelines]
    methods = [tuple(x["method"] for x in s) for s in steps]
    assert methods.count(("prune_threshold",)) >= 3
    assert {s[0]["sparsity"] for s in steps if s[0]["method"] == "prune_magnitude"} >= {0.5, 0.9}
    quant = {(s[0]["bits"], s[0]["granularity"], s[0]["rounding"]) for s in steps
             if s[0]["method"] == "quant" and len(s) == 1}
    wanted = {(b, g, r) for b in (8, 4, 2) for g, r in (("tensor", "naive"), ("channel", "mse"))}
    assert wanted <= quant
    assert {s[0]["width"] for s in steps if s[0]["method"] == "distill"} == {0.5, 0.25}
    assert ("prune_threshold", "quant") in methods
    assert len(config.seeds) == 1 and set(config.families) == {"gan", "vae", "rvae"}


def test_presets_cli_lists_every_preset(capsys):
    assert main(["presets"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[0] for line in lines] == preset_names()


def test_config_is_frozen_and_round_trips_to_json():
    import json

    config = parse_config(TINY_TOML)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.name = "other"  # type: ignore[misc]
    assert json.loads(json.dumps(config.to_dict()))["name"] == "tiny"
