"""Cell ids: stable, distinct, and a function of everything that changes a cell's numbers."""
from __future__ import annotations

import pytest
from conftest import TINY_TOML

from bench.config import parse_config
from bench.grid import CODE_VERSION, expand, train_keys


def _ids(text: str) -> list[str]:
    return [c.cell_id for c in expand(parse_config(text))]


def test_ids_are_stable_and_distinct():
    assert _ids(TINY_TOML) == _ids(TINY_TOML)
    assert len(set(_ids(TINY_TOML))) == len(_ids(TINY_TOML)) == 6


@pytest.mark.parametrize("old,new", [
    ("n_samples = 32", "n_samples = 33"),            # eval settings
    ("batch_sizes = [2]", "batch_sizes = [3]"),      # latency settings
    ("max_steps = 2", "max_steps = 3"),              # gan training budget
])
def test_measurement_or_training_changes_change_ids(old, new):
    before, after = _ids(TINY_TOML), _ids(TINY_TOML.replace(old, new, 1))
    changed = set(before) - set(after)
    assert changed and len(after) == len(before)


def test_gan_budget_change_leaves_vae_ids_alone():
    config = parse_config(TINY_TOML)
    edited = parse_config(TINY_TOML.replace("max_steps = 2", "max_steps = 3", 1))
    vae = lambda cfg: [c.cell_id for c in expand(cfg) if c.family == "vae"]  # noqa: E731
    assert vae(config) == vae(edited)


def test_cosmetic_changes_keep_ids():
    # Name, description and timeout do not change what a cell measures: resume survives them.
    text = (TINY_TOML.replace('name = "tiny"', 'name = "tiny2"')
            .replace("timeout_s = 120", "timeout_s = 60"))
    assert _ids(text) == _ids(TINY_TOML)


def test_identical_pipelines_collapse():
    dup = TINY_TOML + ('\n[[pipeline]]\nsteps = [{method = "quant", bits = 8, '
                       'granularity = "tensor", rounding = "naive"}]\n')
    assert _ids(dup) == _ids(TINY_TOML)


def test_one_training_per_family_and_seed_whatever_the_sweep():
    more = TINY_TOML.replace("seeds = [0]", "seeds = [0, 1]").replace(
        "sparsity = [0.5]", "sparsity = [0.1, 0.3, 0.5, 0.7, 0.9]")
    cells = expand(parse_config(more))
    assert len(cells) == 2 * 2 * (1 + 5 + 1)
    assert sorted(train_keys(cells)) == sorted(
        ("tiny16", f, s) for f in ("gan", "vae") for s in (0, 1))


def test_code_version_names_the_schema():
    assert "schema" in CODE_VERSION
