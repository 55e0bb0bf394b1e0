"""The grid: expand a SweepConfig into cells, each keyed by a hash of its config and its code.

A cell id hashes the cell's pipeline (resolved configs), dataset, family, seed, training budget
and measurement settings, the torch version and `code_fingerprint()`: the sha256 of the source
of every module that decides a cell's numbers, read from the installed files (no git needed; an
editable install reads the checkout). Those are every `.py` file of the `compression`,
`genmodels` and `bench` packages (models, data, training, compression methods, metrics/,
cell/, run/runner.py, run/executors.py, run/grid.py, results/schema.py, config/, ...)
and every file of their `assets/` folders (the shipped feature net's weights), except those in
`NOT_MEASURING`, which only orchestrate, store, read or present results (bench/compare/,
bench/history/, bench/report/, bench/tables/, plots/, run/sweep.py, results/store.py,
results/loading.py, cli.py, ...) or are configs whose
content each cell hashes anyway (presets/). So editing a plot keeps every result, and editing a
metric or a method makes resume redo the cells (asv's per-benchmark code `version`, computed
instead of bumped by hand). A new module counts as measuring until it is listed in
NOT_MEASURING: the safe error is redoing work. Plugin modules ($GENBENCH_PLUGINS) are not
fingerprinted: put a version in their config if they change.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.config.sweep import SweepConfig, baseline_model, train_config
from bench.config.validate import canonical
from bench.results.schema import RUNTIME_EAGER, SCHEMA_VERSION
from genmodels.cache import config_hash

if TYPE_CHECKING:
    from compression.api import MethodConfig

FINGERPRINTED_PACKAGES = ("bench", "compression", "genmodels")
NOT_MEASURING = (
    # Whole role packages that only read, compare or present results, and the presets.
    "bench/compare", "bench/history", "bench/plots", "bench/presets", "bench/report",
    "bench/tables",
    "bench/__main__.py", "bench/cli.py", "bench/errors.py",
    "bench/cell/extend.py",  # merges a resumed cell's new runtime rows into its record
    "bench/config/reference_docs.py", "bench/config/reference_notes.py",
    "bench/results/annotations.py", "bench/results/deployment.py",
    "bench/results/environment.py", "bench/results/families.py",
    "bench/results/loading.py", "bench/results/labels.py", "bench/results/store.py",
    "bench/run/cli.py", "bench/run/invocations.py", "bench/run/progress.py",
    "bench/run/sensitivity.py", "bench/run/sweep.py", "bench/run/takeover.py",
)
# Data shipped inside a package (e.g. genmodels/assets/: the feature net's weights) decides
# numbers as much as code does.
ASSETS_DIR = "assets"
BASELINE = "baseline"
CELL_ID_LENGTH = 12


def _package_dir(package: str, root: Path | None) -> Path:
    if root is not None:
        return Path(root) / package
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(f"package {package!r} is not importable; install genbench "
                         "(pip install -e .) to fingerprint its code")
    return Path(next(iter(spec.submodule_search_locations)))


def measuring_sources(root: str | Path | None = None) -> list[tuple[str, Path]]:
    """(name relative to the packages' parent, path) of every fingerprinted file, sorted.

    root: a directory holding the three packages (default: where they are imported from).
    """
    found = []
    for package in FINGERPRINTED_PACKAGES:
        base = _package_dir(package, None if root is None else Path(root))
        for path in base.rglob("*"):
            relative = path.relative_to(base)
            name = f"{package}/{relative.as_posix()}"
            shipped = relative.parts[0] == ASSETS_DIR and not path.name.startswith(".")
            if (path.suffix == ".py" or shipped) and path.is_file() and not any(
                    name == x or name.startswith(x + "/") for x in NOT_MEASURING):
                found.append((name, path))
    return sorted(found)


def code_fingerprint(root: str | Path | None = None) -> str:
    """sha256 over (name, NUL, bytes, NUL) of measuring_sources(root), hex.

    The default (root None) is computed once per process: the code a process runs is what it
    imported, and a worker compares its own with the client's (see runner.run_cell).
    """
    if root is None:
        return _installed_fingerprint()
    return _digest(measuring_sources(root))


@functools.cache
def _installed_fingerprint() -> str:
    return _digest(measuring_sources())


def _digest(sources: list[tuple[str, Path]]) -> str:
    digest = hashlib.sha256()
    for name, path in sources:
        digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


@dataclass(frozen=True)
class Cell:
    """One grid cell: (dataset, family, pipeline, seed); `steps` are method dicts, () = baseline."""

    cell_id: str
    dataset: str
    family: str
    seed: int
    steps: tuple[dict[str, Any], ...]
    code: str = ""  # code_fingerprint() of the client that made the id; a worker checks it
    # Runtimes to deploy and time (eager first). Not part of the id: resume measures a runtime
    # added later without redoing the cell (bench.cell.extend).
    runtimes: tuple[str, ...] = (RUNTIME_EAGER,)
    eager: bool = True  # False: eager rows stored already, measure only `runtimes` (resume)

    @property
    def method(self) -> str:
        return "+".join(step["method"] for step in self.steps) or BASELINE

    @property
    def train_key(self) -> tuple[str, str, int]:
        """The baseline this cell needs: shared by every cell with the same key."""
        return (self.dataset, self.family, self.seed)

    def to_dict(self) -> dict[str, Any]:
        return {"cell_id": self.cell_id, "dataset": self.dataset, "family": self.family,
                "seed": self.seed, "steps": [dict(s) for s in self.steps], "code": self.code,
                "runtimes": list(self.runtimes), "eager": self.eager}

    @classmethod
    def from_dict(cls, table: dict[str, Any]) -> Cell:
        return cls(table["cell_id"], table["dataset"], table["family"], int(table["seed"]),
                   tuple(dict(s) for s in table["steps"]), str(table.get("code", "")),
                   tuple(table.get("runtimes") or (RUNTIME_EAGER,)),
                   bool(table.get("eager", True)))


def measurement_settings(config: SweepConfig) -> dict[str, Any]:
    """Everything besides the pipeline that changes a cell's numbers (hashed into its id)."""
    from bench.metrics import EvalSettings

    return {
        "eval": dataclasses.asdict(EvalSettings(**config.eval)),
        "devices": list(config.devices),
        "quality_device": config.quality_device,
        "batch_sizes": list(config.batch_sizes),
        "latency": config.latency.identity(),  # the idle wait is not part of a cell
        "features": config.features,  # another yardstick (feature net) gives other numbers
    }


def step_settings(config: MethodConfig) -> dict[str, Any]:
    """One pipeline step as stored: its method and every field of its resolved config
    (defaults filled in), so `compression.api.config_from_dict` rebuilds the same config.

    Canonical, so that spellings of one config hash alike: a default written out or left out
    gives the same fields, an integer in a float field is that float (`lr = 1` is 1.0). Filled
    in rather than defaults dropped: a changed default then changes the key even for plugin
    methods, whose code is not fingerprinted, and the stored JSON replays without the code's
    defaults of the day."""
    return {"method": config.method, **canonical(type(config), dataclasses.asdict(config))}


def pipeline_json(configs: list[MethodConfig]) -> str:
    """The `pipeline_json` column: every step's full settings, in order, keys sorted ('[]' for
    the baseline). Unlike the merged setting columns, two different pipelines never share it."""
    return json.dumps([step_settings(c) for c in configs], sort_keys=True, default=str)


def resolved_steps(steps: tuple[dict, ...]) -> list[dict[str, Any]]:
    """Method dicts as full configs: a default given explicitly or left out is the same step."""
    from compression.api import config_from_dict

    return [step_settings(config_from_dict(dict(step))) for step in steps]


def cell_id(config: SweepConfig, family: str, seed: int, steps: tuple[dict, ...],
            code: str | None = None) -> str:
    """Hash of everything that decides the cell's numbers; code: code_fingerprint() (default)."""
    import torch

    payload = {
        "code": code_fingerprint() if code is None else code,
        "schema": SCHEMA_VERSION,
        "torch": torch.__version__,
        "dataset": config.dataset,
        "family": family,
        "seed": seed,
        "steps": resolved_steps(steps),
        "train": dataclasses.asdict(train_config(config, family)),
        "baseline": dataclasses.asdict(baseline_model(config, family)),  # model and width
        "measure": measurement_settings(config),
    }
    return config_hash(payload, length=CELL_ID_LENGTH)


def expand(config: SweepConfig) -> list[Cell]:
    """All cells in run order: per seed and family, the baseline first, then every pipeline.

    Identical pipelines (e.g. a sweep and an explicit pipeline that coincide, defaults given or
    not) collapse into one cell, since they have the same id, measuring the runtimes of both.
    A baseline measures every runtime of its family's cells: each runtime's fp32 reference.
    """
    code = code_fingerprint()
    cells: dict[str, Cell] = {}
    for seed in config.seeds:
        for family in config.families:
            pipelines = [(None, (), config.runtimes)] + [
                (f, s, config.runtimes_of(i)) for i, (f, s) in enumerate(config.pipelines)]
            ids = []
            for families, steps, runtimes in pipelines:
                if families is not None and family not in families:
                    continue
                cid = cell_id(config, family, seed, steps, code)
                ids.append(cid)
                cell = cells.setdefault(cid, Cell(cid, config.dataset, family, seed,
                                                  tuple(steps), code, runtimes))
                cells[cid] = dataclasses.replace(
                    cell, runtimes=tuple(dict.fromkeys(cell.runtimes + runtimes)))
            every = tuple(dict.fromkeys(r for i in ids for r in cells[i].runtimes))
            cells[ids[0]] = dataclasses.replace(cells[ids[0]], runtimes=every)  # the baseline
    return list(cells.values())


def train_keys(cells: list[Cell]) -> list[tuple[str, str, int]]:
    """The distinct baselines to train, in first-use order."""
    return list(dict.fromkeys(cell.train_key for cell in cells))
