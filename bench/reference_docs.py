"""The README's configuration and command-line reference, generated from code so it cannot drift.

`python -m bench.reference_docs --write README.md` rewrites the text between the markers
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

BLOCKS = ("config", "cli")
# Keys whose field carries no comment in the code.
NOTES = {
    "name": "required; `[A-Za-z0-9_.-]+`; names the output directory `results/<name>`",
    "source": "",
    "description": "one line, shown by `genbench presets`",
    "dataset": "a registered dataset: mnist5k (embedded), mnist, fashion-mnist, cifar10, ...",
    "data_root": "root of the torchvision datasets (mnist, fashion-mnist, cifar10)",
    "download": "let torchvision download a missing dataset",
    "train": "base training budgets: `default` or `smoke`; `[families.X]` overrides them",
    "seeds": "training seeds; a scalar is a list of one",
    "devices": "latency devices: cpu, cuda, auto (cpu + cuda, cuda rows skipped without a GPU)",
    "quality_device": "where the quality metrics run (once per cell): cpu, cuda or auto",
    "batch_sizes": "latency batch sizes, each >= 1",
    "timeout_s": "seconds per cell; 0 disables the timeout (not part of cell ids)",
    "features": "feature net of FID-proxy/KID/P/R/D/C: `shipped` (frozen weights in "
                "genmodels/assets) or `retrain` (train here)",
    "eval": "table `[eval]`, below", "latency": "table `[latency]`, below",
    "families": "tables `[families.X]`, below", "pipelines": "`[[sweep]]` and `[[pipeline]]`",
    "n_samples": "generated images per metric evaluation (and real test images compared)",
    "kid_subsets": "KID subsets averaged", "kid_subset_size": "images per KID subset",
    "pr_k": "k of the k-NN precision/recall manifolds (arXiv 1904.06991)",
    "dc_k": "k of density/coverage (arXiv 2002.09797)",
    "iwae_k": "importance samples of the VAE IWAE bound (arXiv 1509.00519)",
    "n_recon": "test images reconstructed (VAE reconstruction error)",
    "seed": "seed of the sampling and the bootstrap",
    "epochs": "passes over the training set", "batch_size": "minibatch size",
    "lr": "learning rate (Adam)", "latent_dim": "latent dimension of the model",
    "beta1": "Adam beta1", "beta2": "Adam beta2",
    "model_kwargs": "family-specific constructor arguments, e.g. `{cell = \"lstm\"}`",
    "max_attempts": "measurements of a row at most (see max_rel_iqr)",
    "wait_idle_timeout_s": "longest idle wait per measurement (`--wait-idle-timeout`)",
    "idle_busy_cores": "cores other processes may keep busy on an \"idle\" machine",
    # method fields
    "sparsity": "fraction of weights (structured: channels / hidden units) removed, in [0, 1)",
    "threshold": "zero every weight with \\|w\\| < threshold (>= 0)",
    "scope": "ranking scope: `layer`, `global` or `lamp` (arXiv 2010.07611)",
    "iterations": "prune in this many steps (Zhu & Gupta schedule, arXiv 1710.01878)",
    "finetune_steps": "fine-tuning steps after pruning, masks fixed (0: none)",
    "include_bias": "prune biases too",
    "teacher_weight": "weight of matching the uncompressed model's outputs while fine-tuning",
    "width": "student width as a fraction of the teacher's, in (0, 1]",
    "steps": "training steps",
    "alpha_output": "weight of the output-matching loss", "alpha_latent": "weight of the "
    "latent-matching loss", "alpha_task": "weight of the family's own training loss",
    "bits": "weight bits, 2..8",
    "scheme": "`affine` (zero point) or `symmetric`",
    "granularity": "one scale per `tensor`, `channel` or `group`",
    "group_size": "weights per scale when granularity = `group`",
    "rounding": "range choice: `naive` (per-tensor min-max), `minmax`, `mse` (clip ratio that "
                "minimises the error)",
    "activation_bits": "fake-quantize each layer's input to this many bits (none: fp32)",
    "estimator": "gradient estimator: `ste` or `lsq` (arXiv 1902.08153)",
    "distill_weight": "weight of matching the fp32 model's outputs",
    "backend": "`auto`, `torchao` or `torch.ao-dynamic`", "mode": "`dynamic` or `weight_only`",
    "avg_bits": "average bits per weight; per-layer widths chosen by sensitivity",
}


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
                derived: dict[str, str] | None = None) -> list[str]:
    """Markdown rows `| key | type | default | meaning |` of dataclass `cls`."""
    rows = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for f in dataclasses.fields(cls):
        if f.name in skip or not f.init:
            continue
        default = (defaults or {}).get(f.name, _fmt(_default(f)))
        if derived and f.name in derived:
            default += f"; unwritten: {derived[f.name]}"
        text = NOTES.get(f.name) or field_comment(cls, f.name)
        rows.append(f"| `{f.name}` | {_type(f)} | {default} | {text} |")
    return rows


def config_reference() -> str:
    """Every TOML table and key, with types, defaults, derived defaults and meaning."""
    import compression.methods  # noqa: F401 - fills METHODS
    from bench.config import LatencySettings, SweepConfig
    from bench.config_derive import DERIVED, EVAL
    from bench.config_steps import train_base
    from bench.metrics import EvalSettings
    from compression.api import METHODS
    from genmodels.train import TrainConfig

    def rules(section: str) -> dict[str, str]:
        return {r.key: r.rule for r in DERIVED.get(section, ())}

    out = ["### Top level", ""]
    out += field_table(SweepConfig, skip=("source", "eval", "latency", "families", "pipelines"))
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
    out += ["", "### `[[sweep]]` and `[[pipeline]]`", "",
            "| table | key | meaning |", "|---|---|---|",
            "| `[[sweep]]` | `method` | a method name (below) |",
            "| `[[sweep]]` | `families` | the families it applies to (default: all) |",
            "| `[[sweep]]` | any key of the method | a value or a list; lists expand by "
            "cartesian product |",
            "| `[[pipeline]]` | `steps` | `[{method = .., key = ..}, ..]`, applied in order |",
            "| `[[pipeline]]` | `families` | the families it applies to (default: all) |"]
    out += ["", "### Methods", ""]
    for name in sorted(METHODS):
        cls = METHODS[name].config_cls
        paragraph = " ".join((inspect.getdoc(cls) or "").split("\n\n")[0].split())
        doc = re.split(r"(?<=\.)\s", paragraph, maxsplit=1)[0]
        out += [f"`{name}`: {doc}", ""]
        out += field_table(cls, derived=rules(name))
        out += [""]
    return "\n".join(out).rstrip() + "\n"


def _subcommands(parser: argparse.ArgumentParser, prefix: str):
    for action in parser._actions:  # noqa: SLF001 - argparse has no public walk
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            for name, sub in action.choices.items():
                yield f"{prefix} {name}", sub
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
        if "%(" in text:  # argparse's own expansion (%(default)s, %(prog)s)
            text = text % {**vars(action), "prog": parser.prog}
        rows.append((flags, " ".join(text.split())))
    return rows


def cli_reference() -> str:
    """Every subcommand and every option, with its help text, from the argparse parser."""
    from bench.cli import build_parser

    parser = build_parser()
    out = []
    for command, sub in [("genbench", parser), *_subcommands(parser, "genbench")]:
        rows = option_rows(sub)
        if not rows and command != "genbench":
            out += [f"`{command}`: no options.", ""]
            continue
        out += [f"`{command}`", "", "| option | meaning |", "|---|---|"]
        out += [f"| `{flags}` | {text.replace('|', '/')} |" for flags, text in rows]
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
                  f"bench.reference_docs --write {args.check}", file=sys.stderr)
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
