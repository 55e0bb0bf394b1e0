"""The README's configuration and CLI reference: generated from the code, and complete."""
from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import REPO

import compression.methods  # noqa: F401 - fills METHODS
from bench.cli import build_parser
from bench.config import reference_docs
from bench.config.sweep import _TOP_KEYS, LatencySettings, parse_config
from bench.metrics import EvalSettings
from genmodels.train import TrainConfig

README = (REPO / "README.md").read_text(encoding="utf-8")
FIX = "run `python -m bench.config.reference_docs --write README.md` and commit the README"


def _block(name: str) -> str:
    begin, end = f"<!-- BEGIN generated:{name} -->", f"<!-- END generated:{name} -->"
    return README.split(begin, 1)[1].split(end, 1)[0]


@pytest.mark.parametrize("name", reference_docs.BLOCKS)
def test_readme_blocks_are_what_the_code_generates(name):
    assert reference_docs.replace_blocks(README, (name,)) == README, f"{name} is stale: {FIX}"


def _keys() -> list[tuple[str, str]]:
    """(table, key) of every key a sweep file may hold."""
    keys = [("top", k) for k in _TOP_KEYS]
    for table, cls in (("[eval]", EvalSettings), ("[latency]", LatencySettings),
                       ("[families.X]", TrainConfig)):
        keys += [(table, f.name) for f in dataclasses.fields(cls)]
    for method, spec in reference_docs.shipped_methods().items():
        keys += [(method, method)] + [(method, f.name) for f in dataclasses.fields(spec.config_cls)]
    return keys


def test_readme_documents_every_config_key():
    block = _block("config")
    missing = [(table, key) for table, key in _keys() if f"`{key}`" not in block
               and f"`[{key}]`" not in block and f"`[[{key}]]`" not in block
               and f"`[{key}.X]`" not in block]
    assert not missing, f"undocumented: {missing}; {FIX}"


def test_every_method_has_its_own_table_with_its_defaults():
    block = _block("config")
    for method, spec in reference_docs.shipped_methods().items():
        section = block.split(f"`{method}`: ", 1)[1].split("\n\n", 2)[1]
        for f in dataclasses.fields(spec.config_cls):
            assert f"| `{f.name}` |" in section, (method, f.name)
    assert '| `rounding` | str | `"mse"` |' in block  # a default, TOML-spelled


def _options(parser: argparse.ArgumentParser, command: str = "genbench"):
    for action in parser._actions:  # noqa: SLF001 - argparse has no public walk
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            for name, sub in action.choices.items():
                yield from _options(sub, f"{command} {name}")
        elif not isinstance(action, argparse._HelpAction):  # noqa: SLF001 - -h everywhere
            for flag in action.option_strings:
                yield command, flag


def test_readme_lists_every_cli_option_of_every_subcommand():
    section = README.split("## Command line", 1)[1].split("\n## ", 1)[0]
    options = list(_options(build_parser()))
    assert ("genbench validate", "--no-data") in options and len(options) > 20
    missing = [(c, f) for c, f in options if f"`{f}" not in section]
    assert not missing, f"undocumented options: {missing}; {FIX}"
    for command in {c for c, _ in options}:
        assert f"`{command}`" in section, command


def test_readme_points_to_the_presets_as_templates():
    assert "bench/presets/*.toml" in README


@dataclass(frozen=True)
class _Commented:
    # the first line above
    # and the second
    above: int = 1
    beside: float = 2.0  # the comment beside
    bare: str = "x"


@pytest.mark.parametrize("name,text", [
    ("above", "the first line above and the second"), ("beside", "the comment beside"),
    ("bare", ""),
])
def test_field_comment_reads_the_comment_beside_or_above(name, text):
    assert reference_docs.field_comment(_Commented, name) == text


def test_field_table_rows_have_type_default_and_derived_rule():
    rows = reference_docs.field_table(_Commented, derived={"bare": "follows above"})
    assert rows[2:] == [
        "| `above` | int | `1` | the first line above and the second |",
        "| `beside` | float | `2.0` | the comment beside |",
        '| `bare` | str | `"x"`; unwritten: follows above |  |',
    ]


def test_missing_markers_are_an_error():
    with pytest.raises(ValueError, match="generated:config"):
        reference_docs.replace_blocks("no markers here")


def test_the_readme_example_sweep_is_valid():
    section = README.split("## Sweeps: presets and TOML", 1)[1]
    example = section.split("```toml\n", 1)[1].split("```", 1)[0]
    config = parse_config(example, "README example")
    assert config.name == "my-sweep" and set(config.families) == {"gan", "vae"}
    assert EvalSettings(**config.eval).kid_subset_size == 500  # derived, as its comment says


def test_a_plugin_method_does_not_change_the_readme(monkeypatch):
    # A test (or $GENBENCH_PLUGINS) that registers its own method must not make the README's
    # generated block stale for the rest of the session: only compression/'s methods are listed.
    from compression.api import METHODS

    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    import genbench_stall  # noqa: F401 - registers the "stall" method

    assert "stall" in METHODS and "stall" not in reference_docs.shipped_methods()
    assert reference_docs.replace_blocks(README, ("config",)) == README
