"""Executing the grid's tasks: train a baseline, build the feature net, and measure one cell.

The three task functions are top-level and take/return plain picklable objects, so the same code
runs in-process, in a spawned process pool and on Dask workers. Workers never write results:
they return a `CellOutcome` and the client stores it.
"""
from __future__ import annotations

import copy
import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.config.sweep import SweepConfig, baseline_model, train_config
from bench.results.schema import (
    QUALITY_COLUMNS,
    RUNTIME_EAGER,
    SETTING_COLUMNS,
    STATUS_FAILED,
    STATUS_OK,
)
from bench.run.grid import Cell, pipeline_json
from bench.run.limits import CellTimeout, time_limit

CUDA_ABSENT = "CUDA is not available on this machine"


@dataclass
class TrainOutcome:
    key: tuple[str, str, int]
    model: Any = None  # GenerativeModel in eval mode, or None when training failed
    info: dict[str, Any] = field(default_factory=dict)
    error: str = ""


@dataclass
class FeatureOutcome:
    net: Any = None
    info: dict[str, Any] = field(default_factory=dict)
    floors: dict[str, float] = field(default_factory=dict)  # metric -> mean real-vs-real value
    floors_spread: dict[str, float] = field(default_factory=dict)  # metric -> std over subsets
    floor_method: str = ""  # how the floor was measured (one sentence, for run.json)
    error: str = ""


@dataclass
class CellOutcome:
    record: dict[str, Any]
    samples: np.ndarray | None = None


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or exc.__class__.__name__
    return f"{exc.__class__.__name__}: {text}"[:500]


# Per-process caches: a pool or Dask worker loads the dataset and builds the evaluator once.
_DATASETS: dict[tuple, Any] = {}
_EVALUATORS: dict[tuple, Any] = {}


def load_dataset(config: SweepConfig) -> Any:
    key = (config.dataset, config.data_root, config.download)
    if key not in _DATASETS:
        from genmodels.data import load_dataset as load

        _DATASETS[key] = load(config.dataset, root=config.data_root, download=config.download)
    return _DATASETS[key]


def evaluator(config: SweepConfig, features: FeatureOutcome) -> Any:
    from bench.metrics import EvalSettings, QualityEvaluator, make_feature_fn

    # Keyed by the net's identity in its info (its cache key), not id(): a pool or Dask task gets
    # a fresh unpickled copy of the same net each time.
    key = (config.dataset, config.data_root, json.dumps(config.eval, sort_keys=True),
           features.info.get("key") or json.dumps(features.info, sort_keys=True, default=str))
    if key not in _EVALUATORS:
        dataset = load_dataset(config)
        # The floor compares real images that are not test images (the training split) with
        # the test set, at the cells' n_samples.
        _EVALUATORS[key] = QualityEvaluator(make_feature_fn(features.net), dataset.test_x,
                                            EvalSettings(**config.eval), floor_x=dataset.train_x)
    return _EVALUATORS[key]


def feature_task(config: SweepConfig) -> FeatureOutcome:
    """The dataset's feature net (shipped, or trained when config.features = "retrain" or none
    is shipped); the real-vs-real floors with it."""
    try:
        from genmodels.yardstick import load_feature_net

        net, info = load_feature_net(load_dataset(config), config.features, seed=0,
                                     progress=False)
        outcome = FeatureOutcome(net=net, info=dict(info))
        quality = evaluator(config, outcome)
        outcome.floors, outcome.floors_spread = quality.floor(), quality.floor_spread()
        outcome.floor_method = quality.floor_method()
        return outcome
    except Exception as exc:  # noqa: BLE001 - becomes the reason of every cell's failure
        return FeatureOutcome(error=one_line(exc))


def train_task(config: SweepConfig, key: tuple[str, str, int]) -> TrainOutcome:
    """Train (or load) one baseline; divergence and every other error become `error`."""
    _, family, seed = key
    try:
        from genmodels.train import train_model

        baseline = baseline_model(config, family)  # [families.gan_w2]: model gan, width 2
        trained = train_model(baseline.model, load_dataset(config), train_config(config, family),
                              seed, width=baseline.width, progress=False)
        return TrainOutcome(key, trained.model.eval(), dict(trained.info))
    except Exception as exc:  # noqa: BLE001
        return TrainOutcome(key, error=one_line(exc))


def resolved_devices(config: SweepConfig) -> list[str]:
    """`auto` = cpu and cuda; cuda then yields `skipped` rows when absent (never omitted)."""
    return list(dict.fromkeys(d for dev in config.devices
                              for d in (("cpu", "cuda") if dev == "auto" else (dev,))))


def quality_device(config: SweepConfig) -> str:
    if config.quality_device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return config.quality_device


def settings_columns(settings: dict[str, Any]) -> dict[str, Any]:
    """Split merged method settings into the schema's setting columns and settings_json."""
    row = {k: settings[k] for k in SETTING_COLUMNS if k in settings}
    rest = {k: v for k, v in settings.items() if k not in SETTING_COLUMNS and k != "method"}
    row["settings_json"] = json.dumps(rest, sort_keys=True, default=str) if rest else ""
    return row


def run_cell(config: SweepConfig, cell: Cell, trained: TrainOutcome,
             features: FeatureOutcome) -> CellOutcome:
    """Measure one cell; any exception (NaN, divergence, OOM, timeout) is a failed record."""
    from bench.cell.measure import measure_cell
    from bench.results.environment import provenance

    started = time.time()
    row: dict[str, Any] = {"cell_id": cell.cell_id, "dataset": cell.dataset,
                           "family": cell.family, "method": cell.method, "seed": cell.seed,
                           "runtime": RUNTIME_EAGER}
    # runtimes: what this record measured; extends: it holds only those runtimes' rows, to be
    # merged into the stored record of the cell (bench.cell.extend).
    record: dict[str, Any] = {"cell_id": cell.cell_id, "cell": cell.to_dict(),
                              "latency": [], "latency_samples": [], "runtime_results": [],
                              "runtimes": list(cell.runtimes), "extends": not cell.eager,
                              "provenance": provenance()}
    samples = None
    try:
        with time_limit(config.timeout_s):
            configs = _method_configs(cell, row)
            code = record["provenance"]["code_fingerprint"]
            if cell.code and cell.code != code:
                # Its id names the client's code; numbers of other code must not carry it.
                raise RuntimeError(f"this worker's code (fingerprint {code[:12]}) differs from "
                                   f"the code that made the cell id ({cell.code[:12]}): the "
                                   "source changed during the run, or the worker has another "
                                   "install; rerun with the same code everywhere")
            if trained.error:
                raise RuntimeError(f"baseline training failed: {trained.error}")
            if features.error:
                raise RuntimeError(f"feature network failed: {features.error}")
            measured = measure_cell(config, cell, configs, trained.model,
                                    evaluator(config, features))
        identity = dict(row)  # the cell's columns, shared by its runtime rows
        row.update(measured.row)
        extra = measured.runtimes
        record["latency"] = measured.latency + extra.latency
        record["latency_samples"] = measured.latency_samples + extra.latency_samples
        record["runtime_results"] = [{**identity, **r} for r in extra.results]
        record["deployments"] = extra.deployments
        samples = measured.samples
        row.update(status=STATUS_OK, error="")
    except (Exception, CellTimeout) as exc:  # noqa: BLE001 - the sweep goes on, reason recorded
        row.update({k: None for k in QUALITY_COLUMNS})
        row.update(status=STATUS_FAILED, error=one_line(exc))
        record["latency"], record["latency_samples"], samples = [], [], None
        record["runtime_results"] = []
    record.update(result=row, seconds=time.time() - started, train_info=trained.info,
                  feature_net=feature_summary(features.info), floors=features.floors,
                  floors_spread=features.floors_spread, floor_method=features.floor_method)
    return CellOutcome(record, samples)


def feature_summary(info: dict[str, Any]) -> dict[str, Any]:
    """The run.json `feature_net` block: which net, how well it classifies, its feature size."""
    return {"id": info.get("feature_net_id"), "test_accuracy": info.get("test_accuracy"),
            "feature_dim": info.get("feature_dim")}


def _method_configs(cell: Cell, row: dict[str, Any]) -> list[Any]:
    from compression.api import config_from_dict

    configs = [config_from_dict(dict(step)) for step in cell.steps]
    # The merged columns are for display (a later step overwrites an earlier one's lr);
    # pipeline_json keeps every step and is what readers key cells on.
    merged: dict[str, Any] = {}
    for cfg in configs:
        merged.update(cfg.settings())
    row.update(settings_columns(merged))
    row["pipeline_json"] = pipeline_json(configs)
    return configs


def file_bytes(save: Any, obj: Any) -> int:
    """Bytes of the file `save(obj, path)` really writes (a temp dir, deleted afterwards)."""
    with tempfile.TemporaryDirectory(prefix="genbench-size-") as tmp:
        path = Path(tmp) / "model.safetensors"
        save(obj, path)
        return path.stat().st_size


def on_device(model: torch.nn.Module, device: str) -> torch.nn.Module:
    # GenerativeModel.device also answers for a model left with no nn.Parameter (torch.ao int8).
    first = next(model.parameters(), None)
    current = getattr(model, "device", first.device if first is not None else torch.device("cpu"))
    return model if current.type == device else copy.deepcopy(model).to(device)

