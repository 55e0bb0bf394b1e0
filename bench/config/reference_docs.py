"""The README's configuration and command-line reference, generated from code so it cannot drift.

`python -m bench.config.reference_docs --write README.md` rewrites the text between the markers
`<!-- BEGIN generated:NAME -->` and `<!-- END generated:NAME -->` (NAME: config, cli);
tests/runner/test_reference_docs.py fails when the README differs from what this prints.
Each key's text is the comment beside (or just above) its dataclass field, or a note below.
"""
from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import re
import sys
from pathlib import Path
from typing import Any

from bench.config.reference_notes import NOTES

BLOCKS = ("config", "cli")


def field_comment(cls: type, name: str) -> str:
    """The `# comment` beside field `name` in `cls`'s source, else the comments just above it."""
    try:
        lines = inspect.getsource(cls).splitlines()
    except (OSError, TypeError):
        return ""
    for i, line in enumerate(lines):
        if re.match(rf"\s+{name}\s*:", line):
            if "#" in line:
                return line.split("#", 1)[1].strip()
            above = []
            for prev in reversed(lines[:i]):
                if not prev.strip().startswith("#"):
                    break
                above.insert(0, prev.strip().lstrip("#").strip())
            return " ".join(above)
    return ""


def _fmt(value: Any) -> str:
    if value is dataclasses.MISSING:
        return "required"
    if isinstance(value, str):
        return f'`"{value}"`'
    if isinstance(value, bool) or value is None:  # TOML spelling; None: leave the key out
        return {None: "none", True: "`true`", False: "`false`"}[value]
    if isinstance(value, tuple | list) and all(isinstance(v, tuple) for v in value):
        return "`{" + ", ".join(f"{k} = {json.dumps(v)}" for k, v in value) + "}`"
    if isinstance(value, tuple | list):
        return f"`{json.dumps(list(value))}`"
    return f"`{value}`"


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        value = f.default_factory()  # type: ignore[misc]
        return value
    return dataclasses.MISSING


def _type(f: dataclasses.Field) -> str:
    return str(f.type).replace("tuple[int, ...]", "list[int]").replace(
        "tuple[str, ...]", "list[str]").replace("|", "\\|")


def field_table(cls: type, skip: tuple[str, ...] = (), defaults: dict | None = None,
                derived: dict[str, str] | None = None, method: str = "") -> list[str]:
    """Markdown rows `| key | type | default | meaning |` of dataclass `cls` (of `method`)."""
    rows = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for f in dataclasses.fields(cls):
        if f.name in skip or not f.init:
            continue
        default = (defaults or {}).get(f.name, _fmt(_default(f)))
        if derived and f.name in derived:
            default += f"; unwritten: {derived[f.name]}"
        text = (NOTES.get(f"{method}.{f.name}") or NOTES.get(f.name)
                or field_comment(cls, f.name))
        rows.append(f"| `{f.name}` | {_type(f)} | {default} | {text} |")
    return rows


def shipped_methods() -> dict:
    """METHODS registered by genbench itself (compression/), by name: plugin methods
    ($GENBENCH_PLUGINS, or a test's) document themselves, and must not change the README."""
    import compression.methods  # noqa: F401 - fills METHODS
    from compression.api import METHODS

    return {name: spec for name, spec in METHODS.items()
            if spec.config_cls.__module__.split(".")[0] == "compression"}


def config_reference() -> str:
    """Every TOML table and key, with types, defaults, derived defaults and meaning."""
    from bench.config.baselines import FamilyModel
    from bench.config.derive import DERIVED, EVAL
    from bench.config.steps import train_base
    from bench.config.sweep import LatencySettings, SweepConfig
    from bench.metrics import EvalSettings
    from genmodels.train import TrainConfig

    def rules(section: str) -> dict[str, str]:
        return {r.key: r.rule for r in DERIVED.get(section, ())}

    out = ["### Top level", ""]
    out += field_table(SweepConfig, skip=("source", "eval", "latency", "families", "pipelines",
                                          "pipeline_runtimes"))
    out += ["| `[eval]` | table | | sample sizes of the quality metrics, below |",
            "| `[latency]` | table | | latency and memory measurement, below |",
            "| `[families.X]` | table | required | one per model family (gan, vae, rvae), below |",
            "| `[[sweep]]` | array of tables | | method settings expanded by cartesian product |",
            "| `[[pipeline]]` | array of tables | | explicit multi-step pipelines |"]
    out += ["", "### `[eval]`: sample sizes of the quality metrics", ""]
    out += field_table(EvalSettings, derived=rules(EVAL))
    out += ["", "### `[latency]`: how latency and memory are measured", ""]
    out += field_table(LatencySettings)
    budgets = {name: train_base(name) for name in ("default", "smoke")}
    defaults = {f.name: " / ".join(
        f"{family} {_fmt(getattr(cfg, f.name))}" for family, cfg in budgets["default"].items())
        for f in dataclasses.fields(TrainConfig)}
    out += ["", "### `[families.X]`: one table per model family (TrainConfig overrides)", "",
            "An empty table keeps the budget of `train`; defaults shown are the `default` "
            f"budget's ({', '.join(budgets['default'])}).", ""]
    out += field_table(TrainConfig, defaults=defaults)
    out += field_table(FamilyModel, defaults={"model": "the table's name"},
                       method="families")[2:]  # model and width: rows of the same table
    out += ["", "### `[[sweep]]` and `[[pipeline]]`", "",
            "| table | key | meaning |", "|---|---|---|",
            "| `[[sweep]]` | `method` | a method name (below) |",
            "| `[[sweep]]` | `families` | the families it applies to (default: all) |",
            "| `[[sweep]]` | `runtimes` | runtimes of its cells, instead of the top-level "
            "list (eager always) |",
            "| `[[sweep]]` | any key of the method | a value or a list; lists expand by "
            "cartesian product |",
            "| `[[pipeline]]` | `steps` | `[{method = .., key = ..}, ..]`, applied in order |",
            "| `[[pipeline]]` | `families` | the families it applies to (default: all) |",
            "| `[[pipeline]]` | `runtimes` | as for `[[sweep]]` |"]
    out += ["", "### Methods", ""]
    methods = shipped_methods()
    for name in sorted(methods):
        cls = methods[name].config_cls
        paragraph = " ".join((inspect.getdoc(cls) or "").split("\n\n")[0].split())
        doc = re.split(r"(?<=\.)\s", paragraph, maxsplit=1)[0]
        out += [f"`{name}`: {_md(doc)}", ""]
        out += field_table(cls, derived=rules(name), method=name)
        out += [""]
    return "\n".join(out).rstrip() + "\n"


def _md(text: str) -> str:
    """Plain text safe in a Markdown table cell: no column break, tag or emphasis."""
    for char in "|<>*":
        text = text.replace(char, "\\" + char)
    return text


def _subcommands(parser: argparse.ArgumentParser, prefix: str):
    """(command, its parser, its one-line help) of every subcommand, depth first."""
    for action in parser._actions:  # noqa: SLF001 - argparse has no public walk
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            helps = {a.dest: a.help or "" for a in action._choices_actions}  # noqa: SLF001
            for name, sub in action.choices.items():
                yield f"{prefix} {name}", sub, " ".join(helps.get(name, "").split())
                yield from _subcommands(sub, f"{prefix} {name}")


def option_rows(parser: argparse.ArgumentParser) -> list[tuple[str, str]]:
    """(flags, help) of every argument of `parser` itself (not of its subcommands)."""
    rows = []
    for action in parser._actions:  # noqa: SLF001
        if isinstance(action, argparse._SubParsersAction | argparse._HelpAction):  # noqa: SLF001
            continue
        flags = ", ".join(action.option_strings) or action.dest.upper()
        if action.choices and not isinstance(action.choices, dict):
            flags += " {" + "|".join(map(str, action.choices)) + "}"
        text = action.help or ""
        if "%" in text:  # argparse's own expansion (%(default)s, %(prog)s, %%)
            text = text % {**vars(action), "prog": parser.prog}
        rows.append((flags, " ".join(text.split())))
    return rows


def cli_reference() -> str:
    """Every subcommand and every option, with its help text, from the argparse parser."""
    from bench.cli import build_parser

    parser = build_parser()
    commands = list(_subcommands(parser, "genbench"))
    out = ["| command | what it does |", "|---|---|"]
    out += [f"| `{command}` | {_md(text)} |" for command, _, text in commands]
    out += [""]
    for command, sub, _ in [("genbench", parser, ""), *commands]:
        rows = option_rows(sub)
        if not rows:
            continue  # a command group (genbench history): its subcommands have the options
        out += [f"`{command}`", "", "| option | meaning |", "|---|---|"]
        out += [f"| `{flags}` | {_md(text)} |" for flags, text in rows]
        out += [""]
    return "\n".join(out).rstrip() + "\n"


def render(name: str) -> str:
    return {"config": config_reference, "cli": cli_reference}[name]()


def replace_blocks(text: str, names: tuple[str, ...] = BLOCKS) -> str:
    """`text` with the generated blocks `names` rewritten from the code."""
    for name in names:
        begin, end = f"<!-- BEGIN generated:{name} -->", f"<!-- END generated:{name} -->"
        if begin not in text or end not in text:
            raise ValueError(f"README lacks the markers {begin} ... {end}")
        head, rest = text.split(begin, 1)
        text = f"{head}{begin}\n{render(name)}{end}{rest.split(end, 1)[1]}"
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--write", metavar="README", help="rewrite the blocks of this file")
    parser.add_argument("--check", metavar="README",
                        help="exit 1 (naming the blocks) if this file's blocks are stale")
    parser.add_argument("block", nargs="?", choices=BLOCKS, help="print one block")
    args = parser.parse_args(argv)
    if args.check:
        text = Path(args.check).read_text(encoding="utf-8")
        stale = [name for name in BLOCKS if replace_blocks(text, (name,)) != text]
        for name in stale:
            print(f"{args.check}: block generated:{name} is stale; run python -m "
                  f"bench.config.reference_docs --write {args.check}", file=sys.stderr)
        return 1 if stale else 0
    if args.write:
        path = Path(args.write)
        path.write_text(replace_blocks(path.read_text(encoding="utf-8")), encoding="utf-8")
        return 0
    for name in [args.block] if args.block else BLOCKS:
        sys.stdout.write(render(name))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
