"""Sweep configs: TOML parsed as data into a frozen, fully validated `SweepConfig` (presets included).

Schema (every key optional unless marked; unknown keys are errors):

    name = "smoke"                 # required; [A-Za-z0-9_.-]+ (used in paths, so it cannot escape)
    description = "one line"       # shown by `genbench presets`
    dataset = "mnist5k"            # a genmodels.data.DATASETS name
    data_root = "/data"            # torchvision datasets (mnist, fashion-mnist, cifar10)
    download = false
    train = "default"              # base budgets: "default" (DEFAULT_TRAIN) or "smoke" (SMOKE_TRAIN)
    seeds = [0]
    devices = ["auto"]             # cpu | cuda | auto (= cpu + cuda, cuda rows skipped if absent)
    quality_device = "cpu"         # where quality metrics run (once per cell)
    batch_sizes = [1, 64]          # latency batch sizes, each >= 1
    timeout_s = 600                # per cell; 0 disables
    [eval]                         # bench.metrics.EvalSettings fields (n_samples, kid_subsets, ...)
    [latency]                      # min_run_time (s, > 0), memory (bool: measure peak memory)
    [families.gan]                 # one table per family: genmodels.train.TrainConfig overrides
    [[sweep]]                      # method = NAME, families = [..] (optional), every other key
    method = "prune_magnitude"     #   a method field: a scalar or a list; lists expand by
    sparsity = [0.5, 0.9]          #   cartesian product inside the sweep
    [[pipeline]]                   # explicit pipeline: steps = [{method = .., field = ..}, ..],
    steps = [...]                  #   families = [..] (optional)
"""
from __future__ import annotations

import dataclasses
import itertools
import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

DEVICE_CHOICES = ("cpu", "cuda", "auto")
TRAIN_BUDGETS = ("default", "smoke")
_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
_TOP_KEYS = {
    "name", "description", "dataset", "data_root", "download", "train", "seeds", "devices",
    "quality_device", "batch_sizes", "timeout_s", "eval", "latency", "families", "sweep",
    "pipeline",
}


class ConfigError(ValueError):
    """A sweep config is malformed; the message names the file, the key and what is allowed."""


@dataclass(frozen=True)
class LatencySettings:
    """How latency and memory are measured for each (cell, device, batch size)."""

    min_run_time: float = 0.2  # seconds per torch.utils.benchmark measurement
    memory: bool = True  # peak memory (CPU: a fresh spawned process per measurement)

    def __post_init__(self) -> None:
        if not self.min_run_time > 0:
            raise ValueError(f"min_run_time must be > 0 seconds, got {self.min_run_time}")


@dataclass(frozen=True)
class SweepConfig:
    """A resolved, validated sweep. `pipelines` holds every compression pipeline of the grid as
    (families or None for all, steps as method dicts); the baseline is implicit."""

    name: str
    source: str = "<config>"
    description: str = ""
    dataset: str = "mnist5k"
    data_root: str | None = None
    download: bool = False
    train: str = "default"
    seeds: tuple[int, ...] = (0,)
    devices: tuple[str, ...] = ("auto",)
    quality_device: str = "cpu"
    batch_sizes: tuple[int, ...] = (1, 64)
    timeout_s: float = 600.0
    eval: dict[str, Any] = field(default_factory=dict)
    latency: LatencySettings = LatencySettings()
    families: dict[str, dict[str, Any]] = field(default_factory=dict)
    pipelines: tuple[tuple[tuple[str, ...] | None, tuple[dict[str, Any], ...]], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready resolved config (run.json)."""
        out = dataclasses.asdict(self)
        out["pipelines"] = [{"families": list(f) if f else None, "steps": list(s)}
                            for f, s in self.pipelines]
        return out


def load_config(path: str | Path) -> SweepConfig:
    """Read and validate a TOML sweep file (parsed as data only: tomllib)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config file ({exc.__class__.__name__}: {exc})") from exc
    return parse_config(text, str(path))


def parse_config(text: str, source: str = "<config>") -> SweepConfig:
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML ({exc})") from exc
    return config_from_table(table, source)


def preset_names() -> list[str]:
    files = resources.files("bench.presets").iterdir()
    return sorted(p.name[:-5] for p in files if p.name.endswith(".toml"))


def load_preset(name: str) -> SweepConfig:
    names = preset_names()
    if name not in names:
        raise ConfigError(f"unknown preset {name!r}; allowed: {', '.join(names)}")
    text = resources.files("bench.presets").joinpath(f"{name}.toml").read_text(encoding="utf-8")
    return parse_config(text, f"preset {name}")


def config_from_table(table: dict[str, Any], source: str = "<config>") -> SweepConfig:
    """Validate a parsed TOML table; every problem is a ConfigError naming `source`."""
    err = _Errors(source)
    unknown = sorted(set(table) - _TOP_KEYS)
    if unknown:
        err(f"unknown key {unknown[0]!r}; allowed: {', '.join(sorted(_TOP_KEYS))}")
    name = _typed(err, table, "name", str, required=True)
    if not _NAME_RE.match(name) or name in (".", ".."):
        err(f"name {name!r} must match [A-Za-z0-9_.-]+ (it is used in paths)")
    dataset = _typed(err, table, "dataset", str, "mnist5k")
    from genmodels.data import DATASETS

    if dataset not in DATASETS:
        err(f"unknown dataset {dataset!r}; allowed: {', '.join(sorted(DATASETS))}")
    train = _typed(err, table, "train", str, "default")
    if train not in TRAIN_BUDGETS:
        err(f"train = {train!r}; allowed: {', '.join(TRAIN_BUDGETS)}")
    seeds = _int_list(err, table, "seeds", [0], minimum=0)
    devices = _str_list(err, table, "devices", ["auto"], DEVICE_CHOICES)
    quality_device = _typed(err, table, "quality_device", str, "cpu")
    if quality_device not in DEVICE_CHOICES:
        err(f"quality_device = {quality_device!r}; allowed: {', '.join(DEVICE_CHOICES)}")
    batch_sizes = _int_list(err, table, "batch_sizes", [1, 64], minimum=1)
    timeout_s = _typed(err, table, "timeout_s", (int, float), 600)
    if timeout_s < 0:
        err(f"timeout_s = {timeout_s}; allowed: seconds >= 0 (0 disables the timeout)")
    data_root = table.get("data_root")
    if data_root is not None:
        _typed(err, table, "data_root", str)
    families = _families(err, table, train)
    eval_table = _typed(err, table, "eval", dict, {})
    _build_eval(err, eval_table)
    latency = _build(err, LatencySettings, _typed(err, table, "latency", dict, {}), "[latency]")
    pipelines = _sweeps(err, table, families) + _pipelines(err, table, families)
    if not pipelines:
        err("no [[sweep]] or [[pipeline]] entries: nothing to compress; add at least one")
    return SweepConfig(
        name=name, source=source, description=_typed(err, table, "description", str, ""),
        dataset=dataset, data_root=data_root, download=_typed(err, table, "download", bool, False),
        train=train, seeds=tuple(seeds), devices=tuple(devices), quality_device=quality_device,
        batch_sizes=tuple(batch_sizes), timeout_s=float(timeout_s), eval=dict(eval_table),
        latency=latency, families=families, pipelines=tuple(pipelines),
    )


class _Errors:
    def __init__(self, source: str) -> None:
        self.source = source

    def __call__(self, message: str) -> None:
        raise ConfigError(f"{self.source}: {message}")


def _type_name(kind: Any) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = {int: "integer", float: "number", str: "string", bool: "true/false", dict: "table",
             list: "list"}
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _is(value: Any, kind: Any) -> bool:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool):  # bool is an int subclass in Python, never in a config
        return bool in kinds
    if float in kinds and isinstance(value, int):
        return True
    return isinstance(value, kinds)


def _typed(err: _Errors, table: dict, key: str, kind: Any, default: Any = None,
           required: bool = False) -> Any:
    if key not in table:
        if required:
            err(f"missing required key {key!r}")
        return default
    value = table[key]
    if not _is(value, kind):
        err(f"{key} = {value!r} has the wrong type; expected {_type_name(kind)}")
    return value


def _int_list(err: _Errors, table: dict, key: str, default: list, minimum: int) -> list[int]:
    values = _typed(err, table, key, list, default)
    if not values:
        err(f"{key} is empty; give at least one integer >= {minimum}")
    for v in values:
        if not _is(v, int) or v < minimum:
            err(f"{key} contains {v!r}; allowed: integers >= {minimum}")
    if len(set(values)) != len(values):
        err(f"{key} contains duplicates: {values}")
    return list(values)


def _str_list(err: _Errors, table: dict, key: str, default: list, allowed: tuple) -> list[str]:
    values = _typed(err, table, key, list, default)
    if not values:
        err(f"{key} is empty; allowed values: {', '.join(allowed)}")
    for v in values:
        if v not in allowed:
            err(f"{key} contains {v!r}; allowed: {', '.join(allowed)}")
    return list(values)


def check_field_types(cls: type, table: dict[str, Any], where: str) -> str | None:
    """First wrong-typed field of dataclass `cls` in `table` (int/float/str/bool fields), or None."""
    import typing

    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # noqa: BLE001 - unresolvable annotations: leave it to __post_init__
        return None
    for key, value in table.items():
        hint = hints.get(key)
        kinds = tuple(a for a in typing.get_args(hint) if a in (int, float, str, bool)) \
            if typing.get_args(hint) else ((hint,) if hint in (int, float, str, bool) else ())
        if kinds and value is not None and not _is(value, kinds):
            return f"{where} {key} = {value!r} has the wrong type; expected {_type_name(kinds)}"
    return None


def _build(err: _Errors, cls: type, table: dict[str, Any], where: str) -> Any:
    """`cls(**table)` with unknown keys, wrong types and range errors reported as ConfigError."""
    allowed = [f.name for f in dataclasses.fields(cls) if f.init]
    unknown = sorted(set(table) - set(allowed))
    if unknown:
        err(f"{where} unknown key {unknown[0]!r}; allowed: {', '.join(allowed)}")
    wrong = check_field_types(cls, table, where)
    if wrong:
        err(wrong)
    try:
        return cls(**table)
    except (TypeError, ValueError) as exc:
        err(f"{where} {exc}")


def _build_eval(err: _Errors, table: dict[str, Any]) -> None:
    from bench.metrics import EvalSettings

    _build(err, EvalSettings, table, "[eval]")


def train_base(train: str) -> dict[str, Any]:
    from genmodels.train import DEFAULT_TRAIN, SMOKE_TRAIN

    return SMOKE_TRAIN if train == "smoke" else DEFAULT_TRAIN


def train_config(config: SweepConfig, family: str) -> Any:
    """The TrainConfig of `family`: the preset budget with the config's overrides."""
    return dataclasses.replace(train_base(config.train)[family], **config.families[family])


def _families(err: _Errors, table: dict, train: str) -> dict[str, dict[str, Any]]:
    from genmodels.models import MODELS

    families = _typed(err, table, "families", dict, None)
    if not families:
        err(f"no [families.NAME] tables; allowed families: {', '.join(sorted(MODELS))}")
    base = train_base(train)
    for name, overrides in families.items():
        if name not in MODELS:
            err(f"unknown family {name!r}; allowed: {', '.join(sorted(MODELS))}")
        if not isinstance(overrides, dict):
            err(f"families.{name} must be a table of TrainConfig overrides")
        _build(err, type(base[name]), {**dataclasses.asdict(base[name]), **overrides},
               f"[families.{name}]")
    return {k: dict(v) for k, v in families.items()}


def _family_filter(err: _Errors, entry: dict, where: str, families: dict) -> tuple[str, ...] | None:
    chosen = entry.pop("families", None)
    if chosen is None:
        return None
    if not isinstance(chosen, list) or not chosen:
        err(f"{where} families must be a non-empty list of names")
    for name in chosen:
        if name not in families:
            err(f"{where} family {name!r} is not configured; allowed: {', '.join(families)}")
    return tuple(chosen)


def _check_method(err: _Errors, step: dict, where: str) -> dict[str, Any]:
    import compression.methods  # noqa: F401 - fills METHODS through the decorators
    from compression.api import METHODS, config_from_dict

    method = step.get("method")
    if method not in METHODS:
        err(f"{where} unknown method {method!r}; allowed: {', '.join(sorted(METHODS))}")
    fields = {k: v for k, v in step.items() if k != "method"}
    cls = METHODS[method].config_cls
    allowed = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(fields) - set(allowed))
    if unknown:
        err(f"{where} unknown key {unknown[0]!r} for method {method!r}; "
            f"allowed: {', '.join(allowed)}")
    wrong = check_field_types(cls, fields, where)
    if wrong:
        err(wrong)
    try:
        config_from_dict(dict(step))
    except (TypeError, ValueError) as exc:
        err(f"{where} method {method!r}: {exc}")
    return dict(step)


def _sweeps(err: _Errors, table: dict, families: dict) -> list:
    out = []
    entries = _typed(err, table, "sweep", list, [])
    for i, entry in enumerate(entries, start=1):
        where = f"[sweep {i}]"
        if not isinstance(entry, dict):
            err(f"{where} must be a table")
        entry = dict(entry)
        chosen = _family_filter(err, entry, where, families)
        axes = {k: (v if isinstance(v, list) else [v]) for k, v in entry.items() if k != "method"}
        for key, values in axes.items():
            if not values:
                err(f"{where} {key} is an empty list: the sweep would have no cells")
        for combo in itertools.product(*axes.values()):
            step = {"method": entry.get("method"), **dict(zip(axes, combo, strict=True))}
            out.append((chosen, (_check_method(err, step, where),)))
    return out


def _pipelines(err: _Errors, table: dict, families: dict) -> list:
    out = []
    entries = _typed(err, table, "pipeline", list, [])
    for i, entry in enumerate(entries, start=1):
        where = f"[pipeline {i}]"
        if not isinstance(entry, dict):
            err(f"{where} must be a table")
        entry = dict(entry)
        chosen = _family_filter(err, entry, where, families)
        extra = sorted(set(entry) - {"steps"})
        if extra:
            err(f"{where} unknown key {extra[0]!r}; allowed: steps, families")
        steps = entry.get("steps")
        if not isinstance(steps, list) or not steps:
            err(f"{where} steps must be a non-empty list of {{method = ..}} tables")
        checked = []
        for j, step in enumerate(steps, start=1):
            if not isinstance(step, dict):
                err(f"{where} step {j} must be a table {{method = .., ...}}")
            checked.append(_check_method(err, step, f"{where} step {j}"))
        out.append((chosen, tuple(checked)))
    return out


def check_machine(config: SweepConfig, dataset: Any) -> None:
    """Checks against this machine and the loaded dataset, before any output is written."""
    import torch

    err = _Errors(config.source)
    wants_cuda = "cuda" in config.devices or config.quality_device == "cuda"
    if wants_cuda and not torch.cuda.is_available():
        err("cuda was requested explicitly but CUDA is not available on this machine; "
            "use devices = [\"auto\"] (cuda rows are then skipped) or [\"cpu\"]")
    from bench.metrics import EvalSettings

    settings = EvalSettings(**config.eval)
    n_test = len(dataset.test_x)
    for key in ("n_samples", "n_recon"):
        value = getattr(settings, key, None)
        if value is not None and value > n_test:
            err(f"[eval] {key} = {value} exceeds the {n_test} test images of {dataset.name!r}")
    subset = getattr(settings, "kid_subset_size", None)
    if subset is not None and subset > settings.n_samples:
        err(f"[eval] kid_subset_size = {subset} exceeds n_samples = {settings.n_samples}")
    # A crude memory bound: one float32 image batch times a generous activation factor of 64.
    per_image = 4 * 64 * int(torch.tensor(dataset.test_x.shape[1:]).prod())
    limit = _available_memory_bytes()
    for batch in config.batch_sizes:
        if limit and batch * per_image > limit:
            err(f"batch_sizes contains {batch}: about {batch * per_image >> 20} MiB of "
                f"activations, more than the {limit >> 20} MiB of memory available")


def _available_memory_bytes() -> int:
    import os

    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 0
