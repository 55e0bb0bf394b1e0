"""The grid: expand a SweepConfig into cells, each keyed by a hash of its resolved config."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import bench
from bench.config import SweepConfig, train_config
from bench.schema import SCHEMA_VERSION
from genmodels.cache import config_hash

# Bump when a change in genbench changes what a cell measures: it invalidates every cell_id, as
# asv's per-benchmark `version` does (results of different code never mix in one directory).
CODE_VERSION = f"{bench.__version__}+schema{SCHEMA_VERSION}"
BASELINE = "baseline"
CELL_ID_LENGTH = 12


@dataclass(frozen=True)
class Cell:
    """One grid cell: (dataset, family, pipeline, seed); `steps` are method dicts, () = baseline."""

    cell_id: str
    dataset: str
    family: str
    seed: int
    steps: tuple[dict[str, Any], ...]

    @property
    def method(self) -> str:
        return "+".join(step["method"] for step in self.steps) or BASELINE

    @property
    def train_key(self) -> tuple[str, str, int]:
        """The baseline this cell needs: shared by every cell with the same key."""
        return (self.dataset, self.family, self.seed)

    def to_dict(self) -> dict[str, Any]:
        return {"cell_id": self.cell_id, "dataset": self.dataset, "family": self.family,
                "seed": self.seed, "steps": [dict(s) for s in self.steps]}

    @classmethod
    def from_dict(cls, table: dict[str, Any]) -> Cell:
        return cls(table["cell_id"], table["dataset"], table["family"], int(table["seed"]),
                   tuple(dict(s) for s in table["steps"]))


def measurement_settings(config: SweepConfig) -> dict[str, Any]:
    """Everything besides the pipeline that changes a cell's numbers (hashed into its id)."""
    from bench.metrics import EvalSettings

    return {
        "eval": dataclasses.asdict(EvalSettings(**config.eval)),
        "devices": list(config.devices),
        "quality_device": config.quality_device,
        "batch_sizes": list(config.batch_sizes),
        "latency": dataclasses.asdict(config.latency),
    }


def cell_id(config: SweepConfig, family: str, seed: int, steps: tuple[dict, ...]) -> str:
    payload = {
        "code_version": CODE_VERSION,
        "dataset": config.dataset,
        "family": family,
        "seed": seed,
        "steps": list(steps),
        "train": dataclasses.asdict(train_config(config, family)),
        "measure": measurement_settings(config),
    }
    return config_hash(payload, length=CELL_ID_LENGTH)


def expand(config: SweepConfig) -> list[Cell]:
    """All cells in run order: per seed and family, the baseline first, then every pipeline.

    Identical pipelines (e.g. a sweep and an explicit pipeline that coincide) collapse into one
    cell, since they have the same id.
    """
    cells: dict[str, Cell] = {}
    for seed in config.seeds:
        for family in config.families:
            pipelines = [(None, ())] + list(config.pipelines)
            for families, steps in pipelines:
                if families is not None and family not in families:
                    continue
                cid = cell_id(config, family, seed, steps)
                cells.setdefault(cid, Cell(cid, config.dataset, family, seed, tuple(steps)))
    return list(cells.values())


def train_keys(cells: list[Cell]) -> list[tuple[str, str, int]]:
    """The distinct baselines to train, in first-use order."""
    return list(dict.fromkeys(cell.train_key for cell in cells))
