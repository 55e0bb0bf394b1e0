"""Config without friction: derived defaults, named combinations, canonical cell keys, every
problem of a file at once with "did you mean", and scalars where a list of one is meant."""
from __future__ import annotations

import pytest
from conftest import TINY_TOML

from bench.cli import main
from bench.config.sweep import ConfigError, load_preset, parse_config
from bench.config.validate import MAX_SHOWN
from bench.metrics import EvalSettings
from bench.run.grid import expand
from genmodels.train import SMOKE_TRAIN


def _edit(old: str, new: str, text: str = TINY_TOML) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def _ids(text: str) -> list[str]:
    return [c.cell_id for c in expand(parse_config(text))]


def _quant(extra: str) -> str:
    """TINY_TOML plus a one-step quant sweep with `extra` lines."""
    return TINY_TOML + f'\n[[sweep]]\nmethod = "quant"\n{extra}\n'


def _errors(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "f.toml")
    return str(info.value).splitlines()


# --- 1. derived defaults --------------------------------------------------------------------

UNWRITTEN_SUBSET = _edit("kid_subset_size = 16\n", "")


def test_unwritten_kid_subset_size_follows_n_samples(tmp_path, capsys):
    config = parse_config(UNWRITTEN_SUBSET)
    assert EvalSettings(**config.eval).kid_subset_size == 32  # min(1000, n_samples = 32)
    # Same cell as writing the derived value: the key hashes the resolved settings.
    assert _ids(UNWRITTEN_SUBSET) == _ids(_edit("kid_subset_size = 16", "kid_subset_size = 32"))
    path = tmp_path / "sweep.toml"
    path.write_text(UNWRITTEN_SUBSET)
    assert main(["validate", str(path)]) == 0, capsys.readouterr().err  # with the data checks


def test_a_large_n_samples_keeps_the_default_subset():
    text = _edit("n_samples = 32\n", "n_samples = 5000\n", UNWRITTEN_SUBSET)
    assert EvalSettings(**parse_config(text).eval).kid_subset_size == 1000


@pytest.mark.parametrize("written", ["n_samples = 32", ""])
def test_written_kid_subset_above_n_samples_names_both(written):
    text = _edit("kid_subset_size = 16", "kid_subset_size = 2000")
    text = _edit("n_samples = 32\n", f"{written}\n", text)
    (line,) = _errors(text)
    n = 32 if written else 1000
    assert f"kid_subset_size = 2000 exceeds n_samples = {n}" in line and "f.toml" in line
    assert ("(the default)" in line) == (not written)


def test_naive_rounding_derives_tensor_granularity():
    derived = parse_config(_quant('bits = 4\nrounding = "naive"')).pipelines[-1][1][0]
    assert derived == {"method": "quant", "bits": 4, "rounding": "naive",
                       "granularity": "tensor"}
    assert _ids(_quant('bits = 4\nrounding = "naive"')) == _ids(
        _quant('bits = 4\nrounding = "naive"\ngranularity = "tensor"'))


def test_written_contradiction_is_still_an_error_naming_both():
    (line,) = _errors(_quant('bits = 4\nrounding = "naive"\ngranularity = "channel"'))
    assert "naive" in line and "granularity" in line


def test_affine_qat_derives_the_ste_estimator():
    text = TINY_TOML + '\n[[sweep]]\nmethod = "qat"\nscheme = "affine"\n'
    assert parse_config(text).pipelines[-1][1][0]["estimator"] == "ste"
    (line,) = _errors(text.replace('scheme = "affine"', 'scheme = "affine"\nestimator = "lsq"'))
    assert "lsq" in line and "symmetric" in line


# --- 2. invalid combinations of a sweep are named -------------------------------------------

def test_invalid_combination_of_a_sweep_is_named():
    lines = _errors(_quant('bits = [8, 4]\nrounding = ["naive", "mse"]\ngranularity = "channel"'))
    assert len(lines) == 2  # bits 8 and 4 with naive; both mse combinations are valid
    for bits, line in zip((8, 4), lines, strict=True):
        assert (f"[sweep 3] combination quant with bits={bits}, rounding='naive', "
                f"granularity='channel': rounding='naive' is per-tensor") in line, line


# --- 3. canonical cell keys -----------------------------------------------------------------

@pytest.mark.parametrize("omitted,explicit", [
    (_quant("bits = 4"), _quant('bits = 4\nrounding = "mse"')),  # a default written out
    (_quant("bits = 4"), _quant('bits = 4\nrounding = ["mse"]\nscheme = "affine"')),
    (TINY_TOML, _edit("min_run_time = 0.005", "min_run_time = 0.005\nmax_attempts = 3")),
    (TINY_TOML, _edit("kid_subsets = 2", "kid_subsets = 2\nbootstrap = 200")),
    (TINY_TOML, _edit("[families.vae]", f"beta2 = {SMOKE_TRAIN['gan'].beta2}\n[families.vae]")),
])
def test_a_default_written_out_is_the_omitted_cell(omitted, explicit):
    assert omitted != explicit and _ids(omitted) == _ids(explicit)


@pytest.mark.parametrize("as_int,as_float", [
    (_edit("min_run_time = 0.005", "min_run_time = 1"),
     _edit("min_run_time = 0.005", "min_run_time = 1.0")),
    (_edit("latent_dim = 4\n[families.vae]", "latent_dim = 4\nlr = 1\n[families.vae]"),
     _edit("latent_dim = 4\n[families.vae]", "latent_dim = 4\nlr = 1.0\n[families.vae]")),
    (TINY_TOML + '\n[[sweep]]\nmethod = "prune_threshold"\nthreshold = 0\n',
     TINY_TOML + '\n[[sweep]]\nmethod = "prune_threshold"\nthreshold = 0.0\n'),
])
def test_an_integer_in_a_number_field_is_the_same_cell_as_its_float(as_int, as_float):
    assert _ids(as_int) == _ids(as_float)


def test_explicit_default_and_omitted_collapse_into_one_cell():
    both = _quant("bits = 4") + '\n[[sweep]]\nmethod = "quant"\nbits = 4\nrounding = "mse"\n'
    assert len(_ids(both)) == len(_ids(_quant("bits = 4")))


# --- 4. every problem at once, did you mean, scalars ----------------------------------------

def test_every_problem_of_a_file_is_reported_each_on_its_own_line(tmp_path, capsys):
    text = (_edit("seeds = [0]", "seed = [0]")
            .replace('dataset = "tiny16"', 'dataset = "mnits"')
            .replace("sparsity = [0.5]", "sparsty = [0.5]")
            .replace("n_samples = 32", "n_sample = 32"))
    path = tmp_path / "bad.toml"
    path.write_text(text)
    assert main(["validate", str(path), "--no-data"]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 4, lines
    assert all(line.startswith(f"genbench: error: {path}: ") for line in lines), lines
    for fragment in ("unknown key 'seed' (did you mean 'seeds'?)",
                     "unknown dataset 'mnits' (did you mean 'mnist'?)",
                     "unknown key 'sparsty' (did you mean 'sparsity'?)",
                     "unknown key 'n_sample' (did you mean 'n_samples'?)"):
        assert sum(fragment in line for line in lines) == 1, (fragment, lines)


def test_more_problems_than_shown_are_counted():
    text = "".join(f"bogus_{i} = 1\n" for i in range(MAX_SHOWN + 3)) + TINY_TOML
    lines = _errors(text)
    assert len(lines) == MAX_SHOWN + 1 and lines[-1] == "... and 3 more problems"


@pytest.mark.parametrize("text,fragment", [
    (_edit('method = "quant"', 'method = "qaunt"'),
     "unknown method 'qaunt' (did you mean 'quant'?)"),
    (_edit("[families.vae]", "[families.vea]"), "unknown family 'vea' (did you mean 'vae'?)"),
    (_edit('devices = ["auto"]', 'devices = ["cuad"]'), "'cuad' (did you mean 'cuda'?)"),
    (_edit("memory = false", "memroy = false"), "unknown key 'memroy' (did you mean 'memory'?)"),
    (TINY_TOML + '\n[[sweep]]\nmethod = "quant"\nfamilies = ["gam"]\n',
     "family 'gam' is not configured (did you mean 'gan'?)"),
    (_edit('train = "smoke"', 'train = "smok"'), "train = 'smok' (did you mean 'smoke'?)"),
    (_edit('timeout_s = 120', 'timeout_s = 120\nfeatures = "shiped"'),
     "features = 'shiped' (did you mean 'shipped'?)"),
])
def test_near_misses_suggest_the_intended_name(text, fragment):
    assert any(fragment in line for line in _errors(text)), _errors(text)


def test_an_unknown_preset_suggests_a_near_one():
    with pytest.raises(ConfigError, match=r"unknown preset 'smok' \(did you mean 'smoke'\?\)"):
        load_preset("smok")


@pytest.mark.parametrize("scalar,listed", [
    ("seeds = 0", "seeds = [0]"),
    ("batch_sizes = 2", "batch_sizes = [2]"),
    ('devices = "auto"', 'devices = ["auto"]'),
    ("bits = 8", "bits = [8]"),
])
def test_a_scalar_is_a_list_of_one(scalar, listed):
    assert _ids(_edit(listed, scalar)) == _ids(TINY_TOML)


def test_a_scalar_family_filter_is_a_list_of_one():
    text = TINY_TOML + '\n[[sweep]]\nmethod = "quant"\nbits = 4\nfamilies = "vae"\n'
    cells = [c for c in expand(parse_config(text)) if c.steps and c.steps[0].get("bits") == 4]
    assert [c.family for c in cells] == ["vae"]


def test_a_single_sweep_table_is_a_list_of_one():
    text = TINY_TOML.replace("[[sweep]]", "[sweep]", 1).split("[[sweep]]")[0]
    assert [s for _, (s,) in parse_config(text).pipelines] == [
        {"method": "prune_magnitude", "sparsity": 0.5}]


def test_step_settings_are_canonical_for_configs_built_in_code():
    from bench.run.grid import pipeline_json, step_settings
    from compression.pruning import ThresholdPruneConfig

    assert step_settings(ThresholdPruneConfig(threshold=0)) == step_settings(
        ThresholdPruneConfig(threshold=0.0))
    assert pipeline_json([ThresholdPruneConfig(threshold=0)]) == pipeline_json(
        [ThresholdPruneConfig(threshold=0.0)])


@pytest.mark.parametrize("entry,fragment", [
    ("sparsity = 0.5", "[sweep 3] missing key 'method'"),
    ('method = "prune_magnitude"', "[sweep 3] method 'prune_magnitude': missing key 'sparsity'"),
])
def test_a_missing_method_or_required_key_is_named(entry, fragment):
    (line,) = _errors(TINY_TOML + f"\n[[sweep]]\n{entry}\n")
    assert fragment in line, line
