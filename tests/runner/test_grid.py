"""Cell ids: stable, distinct, and a function of everything that changes a cell's numbers."""
from __future__ import annotations

import ast
import shutil

import pytest
from conftest import REPO, TINY_TOML

import bench.run.grid as grid
from bench.config.sweep import parse_config
from bench.run.grid import NOT_MEASURING, code_fingerprint, expand, measuring_sources, train_keys


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


def test_a_default_given_explicitly_is_the_same_cell():
    # scope = "global" is prune_magnitude's default: ids hash the resolved config.
    explicit = TINY_TOML.replace('method = "prune_magnitude"\nsparsity = [0.5]',
                                 'method = "prune_magnitude"\nsparsity = [0.5]\nscope = ["global"]')
    assert explicit != TINY_TOML and _ids(explicit) == _ids(TINY_TOML)


@pytest.fixture(scope="module")
def source_copy(tmp_path_factory):
    """The three packages copied out of the checkout: no .git, no install."""
    root = tmp_path_factory.mktemp("src")
    for package in grid.FINGERPRINTED_PACKAGES:
        shutil.copytree(REPO / package, root / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    return root


def test_fingerprint_reads_the_source_files_without_git(source_copy):
    assert not (source_copy / ".git").exists()
    # Fresh values, not the per-process cache: the checkout may be edited while tests run.
    assert grid._installed_fingerprint.__wrapped__() == code_fingerprint(REPO)
    assert code_fingerprint(source_copy) == code_fingerprint(REPO)
    names = [name for name, _ in measuring_sources(source_copy)]
    assert "compression/api.py" in names and "bench/metrics/quality.py" in names
    assert "bench/run/runner.py" in names and "bench/plots/pareto.py" not in names


def _ids_of_copy(root, monkeypatch) -> list[str]:
    monkeypatch.setattr(grid, "code_fingerprint", lambda: grid._digest(measuring_sources(root)))
    return _ids(TINY_TOML)


@pytest.mark.parametrize("edited,changes", [
    ("compression/pruning.py", True),
    ("compression/quantization/ptq.py", True),
    ("genmodels/train.py", True),
    ("bench/metrics/quality.py", True),
    ("bench/run/runner.py", True),
    ("bench/results/schema.py", True),
    ("bench/plots/pareto.py", False),
    ("bench/tables/build.py", False),
    ("bench/report/html.py", False),
    ("bench/cli.py", False),
    ("bench/run/sweep.py", False),
    ("bench/presets/default.toml", False),  # a preset's cells hash their own config
])
def test_editing_a_source_file_changes_ids_only_if_it_measures(edited, changes, tmp_path,
                                                               source_copy, monkeypatch):
    root = tmp_path / "src"
    shutil.copytree(source_copy, root)
    before = _ids_of_copy(root, monkeypatch)
    with (root / edited).open("a") as handle:
        handle.write("\n# an edit\n")
    after = _ids_of_copy(root, monkeypatch)
    assert len(after) == len(before) == 6
    assert (set(after).isdisjoint(before)) if changes else (after == before)


def test_a_new_module_counts_as_measuring(tmp_path, source_copy, monkeypatch):
    root = tmp_path / "src"
    shutil.copytree(source_copy, root)
    before = _ids_of_copy(root, monkeypatch)
    (root / "bench" / "plots" / "new_plot.py").write_text('"""A new plot."""\n')
    assert _ids_of_copy(root, monkeypatch) == before
    (root / "bench" / "new_metric.py").write_text('"""A new metric."""\n')
    assert set(_ids_of_copy(root, monkeypatch)).isdisjoint(before)


def test_shipped_assets_count_as_code(tmp_path, source_copy, monkeypatch):
    root = tmp_path / "src"
    shutil.copytree(source_copy, root)
    before = _ids_of_copy(root, monkeypatch)
    assets = root / "genmodels" / grid.ASSETS_DIR
    assets.mkdir(exist_ok=True)
    (assets / ".editor-swap").write_bytes(b"x")  # hidden files are nobody's numbers
    assert _ids_of_copy(root, monkeypatch) == before
    (assets / "feature_net_other.safetensors").write_bytes(b"other weights")
    assert set(_ids_of_copy(root, monkeypatch)).isdisjoint(before)


def test_not_measuring_names_existing_modules():
    for name in NOT_MEASURING:
        assert (REPO / name).exists(), f"{name} in NOT_MEASURING no longer exists"


# Metadata a measuring module may read without its numbers depending on it.
ALLOWED_IMPORTS = {"bench.results.environment", "bench.errors"}


def test_measuring_modules_do_not_import_reporting_ones():
    # Otherwise a "reporting" edit could change numbers while the ids stay.
    excluded = {name.removesuffix(".py").replace("/", ".") for name in NOT_MEASURING}
    for name, path in measuring_sources():
        if path.suffix != ".py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                modules = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                modules = [a.name for a in node.names]
            else:
                continue
            bad = {x for x in excluded for m in modules if m == x or m.startswith(x + ".")}
            assert not bad - ALLOWED_IMPORTS, f"{name} imports {bad}"
