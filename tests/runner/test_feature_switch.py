"""The `features` sweep key and `--retrain-features`: which feature net scores a run."""
from __future__ import annotations

import pytest
from conftest import TINY_TOML

import bench.run.runner as runner
import genmodels.yardstick as yardstick
from bench.cli import build_parser
from bench.config.sweep import ConfigError, parse_config
from bench.run.cli import sweep_config
from bench.run.grid import expand


def _with(line: str) -> str:
    """TINY_TOML with one more top-level line (before its first table)."""
    return TINY_TOML.replace("timeout_s = 120\n", f"timeout_s = 120\n{line}\n", 1)


def _ids(text: str) -> list[str]:
    return [c.cell_id for c in expand(parse_config(text))]


def test_shipped_is_the_default_and_retrain_changes_every_cell_id():
    assert parse_config(TINY_TOML).features == "shipped"
    assert _ids(_with('features = "shipped"')) == _ids(TINY_TOML)
    default, retrained = _ids(TINY_TOML), _ids(_with('features = "retrain"'))
    assert len(retrained) == len(default) and not set(retrained) & set(default)
    assert parse_config(_with('features = "retrain"')).to_dict()["features"] == "retrain"


@pytest.mark.parametrize("value,fragment", [
    ('"frozen"', "allowed: shipped, retrain"),
    ("1", "wrong type"),
])
def test_a_bad_features_value_is_a_config_error(value, fragment):
    with pytest.raises(ConfigError, match=fragment):
        parse_config(_with(f"features = {value}"))


@pytest.mark.parametrize("argv,expected", [
    ([], "shipped"),
    (["--retrain-features"], "retrain"),
])
def test_retrain_features_flag_overrides_the_config(argv, expected):
    args = build_parser().parse_args(["run", "--preset", "smoke", *argv])
    assert sweep_config(args).features == expected


@pytest.mark.parametrize("features", ["shipped", "retrain"])
def test_feature_task_asks_for_the_configured_net(features, monkeypatch):
    asked = []

    def fake_load(dataset, source, **kwargs):
        asked.append(source)
        raise RuntimeError("stop here")

    monkeypatch.setattr(yardstick, "load_feature_net", fake_load)
    config = parse_config(_with(f'features = "{features}"'))
    outcome = runner.feature_task(config)
    assert asked == [features] and "stop here" in outcome.error
