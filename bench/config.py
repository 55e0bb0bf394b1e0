"""Sweep configs: TOML parsed as data into a frozen, validated `SweepConfig` (presets included).

Schema (every key optional unless marked; unknown keys are errors):

    name = "smoke"                 # required; [A-Za-z0-9_.-]+ (used in paths, so it cannot escape)
    description = "one line"       # shown by `genbench presets`
    dataset = "mnist5k"            # a genmodels.data.DATASETS name
    data_root = "/data"            # torchvision datasets (mnist, fashion-mnist, cifar10)
    download = false
    train = "default"              # base budgets: "default" (DEFAULT_TRAIN) | "smoke" (SMOKE_TRAIN)
    seeds = [0]
    devices = ["auto"]             # cpu | cuda | auto (= cpu + cuda, cuda rows skipped if absent)
    quality_device = "cpu"         # where quality metrics run (once per cell)
    batch_sizes = [1, 64]          # latency batch sizes, each >= 1
    timeout_s = 600                # per cell; 0 disables
    features = "shipped"           # feature net of FID-proxy/KID/P/R/D/C: "shipped" (the frozen
                                   #   weights of genmodels/assets, same on every machine; a
                                   #   dataset without one trains) | "retrain" (train here)
    [eval]                         # bench.metrics.EvalSettings fields (n_samples, kid_subsets, ...)
    [latency]                      # min_run_time (s, > 0), memory (bool: measure peak memory),
                                   #   max_rel_iqr = 0.1, max_attempts = 3 (re-measure above it,
                                   #   then status "unstable"), wait_idle = false,
                                   #   wait_idle_timeout_s = 60, idle_busy_cores = 0.25
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

from bench.validate import (  # noqa: F401 - ConfigError and check_machine are part of this API
    ConfigError,
    Errors,
    build,
    check_field_types,
    check_machine,
    int_list,
    str_list,
    typed,
)

DEVICE_CHOICES = ("cpu", "cuda", "auto")
TRAIN_BUDGETS = ("default", "smoke")
_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
_TOP_KEYS = {
    "name", "description", "dataset", "data_root", "download", "train", "seeds", "devices",
    "quality_device", "batch_sizes", "timeout_s", "eval", "latency", "families", "sweep",
    "pipeline", "features",
}


@dataclass(frozen=True)
class LatencySettings:
    """How latency and memory are measured for each (cell, device, batch size)."""

    min_run_time: float = 0.2  # seconds per torch.utils.benchmark measurement
    memory: bool = True  # peak memory (CPU: a fresh spawned process per measurement)
    # Stability gate: a measurement whose blocks have IQR / median above max_rel_iqr (on either
    # side of the speedup) is taken again, max_attempts in all; still above: status "unstable".
    # 0.1 is the spread at which torch.utils.benchmark's Measurement warns.
    max_rel_iqr: float = 0.10
    max_attempts: int = 3
    # Before each measurement, wait (at most wait_idle_timeout_s) until other processes keep at
    # most idle_busy_cores cores busy (pyperf and asv advise an idle machine). Only *when* the
    # numbers are taken changes: these three fields are left out of cell ids (identity()).
    wait_idle: bool = False
    wait_idle_timeout_s: float = 60.0
    idle_busy_cores: float = 0.25

    def __post_init__(self) -> None:
        if not self.min_run_time > 0:
            raise ValueError(f"min_run_time must be > 0 seconds, got {self.min_run_time}")
        if not self.max_rel_iqr > 0:
            raise ValueError(f"max_rel_iqr must be > 0 (0.1 = 10%), got {self.max_rel_iqr}")
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts}")
        if not self.wait_idle_timeout_s >= 0:
            raise ValueError(f"wait_idle_timeout_s must be >= 0 s, got {self.wait_idle_timeout_s}")
        if not self.idle_busy_cores >= 0:
            raise ValueError(f"idle_busy_cores must be >= 0 cores, got {self.idle_busy_cores}")

    def identity(self) -> dict[str, Any]:
        """The fields that change a row's numbers (hashed into cell ids): all but the idle wait."""
        fields = dataclasses.asdict(self)
        for name in ("wait_idle", "wait_idle_timeout_s", "idle_busy_cores"):
            del fields[name]
        return fields


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
    features: str = "shipped"  # genmodels.yardstick.FEATURE_SOURCES
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
        raise ConfigError(
            f"{path}: cannot read config file ({exc.__class__.__name__}: {exc})") from exc
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
    err = Errors(source)
    unknown = sorted(set(table) - _TOP_KEYS)
    if unknown:
        err(f"unknown key {unknown[0]!r}; allowed: {', '.join(sorted(_TOP_KEYS))}")
    name = typed(err, table, "name", str, required=True)
    if not _NAME_RE.match(name) or name in (".", ".."):
        err(f"name {name!r} must match [A-Za-z0-9_.-]+ (it is used in paths)")
    dataset = typed(err, table, "dataset", str, "mnist5k")
    from genmodels.data import DATASETS

    if dataset not in DATASETS:
        err(f"unknown dataset {dataset!r}; allowed: {', '.join(sorted(DATASETS))}")
    train = typed(err, table, "train", str, "default")
    if train not in TRAIN_BUDGETS:
        err(f"train = {train!r}; allowed: {', '.join(TRAIN_BUDGETS)}")
    seeds = int_list(err, table, "seeds", [0], minimum=0)
    devices = str_list(err, table, "devices", ["auto"], DEVICE_CHOICES)
    quality_device = typed(err, table, "quality_device", str, "cpu")
    if quality_device not in DEVICE_CHOICES:
        err(f"quality_device = {quality_device!r}; allowed: {', '.join(DEVICE_CHOICES)}")
    batch_sizes = int_list(err, table, "batch_sizes", [1, 64], minimum=1)
    timeout_s = typed(err, table, "timeout_s", (int, float), 600)
    if timeout_s < 0:
        err(f"timeout_s = {timeout_s}; allowed: seconds >= 0 (0 disables the timeout)")
    data_root = table.get("data_root")
    if data_root is not None:
        typed(err, table, "data_root", str)
    features = typed(err, table, "features", str, "shipped")
    from genmodels.yardstick import FEATURE_SOURCES

    if features not in FEATURE_SOURCES:
        err(f"features = {features!r}; allowed: {', '.join(FEATURE_SOURCES)}")
    families = _families(err, table, train)
    eval_table = typed(err, table, "eval", dict, {})
    _build_eval(err, eval_table)
    latency = build(err, LatencySettings, typed(err, table, "latency", dict, {}), "[latency]")
    pipelines = _sweeps(err, table, families) + _pipelines(err, table, families)
    if not pipelines:
        err("no [[sweep]] or [[pipeline]] entries: nothing to compress; add at least one")
    return SweepConfig(
        name=name, source=source, description=typed(err, table, "description", str, ""),
        dataset=dataset, data_root=data_root, download=typed(err, table, "download", bool, False),
        train=train, seeds=tuple(seeds), devices=tuple(devices), quality_device=quality_device,
        batch_sizes=tuple(batch_sizes), timeout_s=float(timeout_s), features=features,
        eval=dict(eval_table),
        latency=latency, families=families, pipelines=tuple(pipelines),
    )


def _build_eval(err: Errors, table: dict[str, Any]) -> None:
    from bench.metrics import EvalSettings

    build(err, EvalSettings, table, "[eval]")


def train_base(train: str) -> dict[str, Any]:
    from genmodels.train import DEFAULT_TRAIN, SMOKE_TRAIN

    return SMOKE_TRAIN if train == "smoke" else DEFAULT_TRAIN


def train_config(config: SweepConfig, family: str) -> Any:
    """The TrainConfig of `family`: the preset budget with the config's overrides."""
    return dataclasses.replace(train_base(config.train)[family], **config.families[family])


def _families(err: Errors, table: dict, train: str) -> dict[str, dict[str, Any]]:
    from genmodels.models import MODELS

    families = typed(err, table, "families", dict, None)
    if not families:
        err(f"no [families.NAME] tables; allowed families: {', '.join(sorted(MODELS))}")
    base = train_base(train)
    for name, overrides in families.items():
        if name not in MODELS:
            err(f"unknown family {name!r}; allowed: {', '.join(sorted(MODELS))}")
        if not isinstance(overrides, dict):
            err(f"families.{name} must be a table of TrainConfig overrides")
        build(err, type(base[name]), {**dataclasses.asdict(base[name]), **overrides},
               f"[families.{name}]")
    return {k: dict(v) for k, v in families.items()}


def _family_filter(err: Errors, entry: dict, where: str, families: dict) -> tuple[str, ...] | None:
    chosen = entry.pop("families", None)
    if chosen is None:
        return None
    if not isinstance(chosen, list) or not chosen:
        err(f"{where} families must be a non-empty list of names")
    for name in chosen:
        if name not in families:
            err(f"{where} family {name!r} is not configured; allowed: {', '.join(families)}")
    return tuple(chosen)


def _check_method(err: Errors, step: dict, where: str) -> dict[str, Any]:
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


def _entries(err: Errors, table: dict, key: str, families: dict):
    """Yield (where, entry without `families`, chosen families) for each [[key]] table."""
    for i, entry in enumerate(typed(err, table, key, list, []), start=1):
        where = f"[{key} {i}]"
        if not isinstance(entry, dict):
            err(f"{where} must be a table")
        entry = dict(entry)
        yield where, entry, _family_filter(err, entry, where, families)


def _sweeps(err: Errors, table: dict, families: dict) -> list:
    out = []
    for where, entry, chosen in _entries(err, table, "sweep", families):
        axes = {k: (v if isinstance(v, list) else [v]) for k, v in entry.items() if k != "method"}
        for key, values in axes.items():
            if not values:
                err(f"{where} {key} is an empty list: the sweep would have no cells")
        for combo in itertools.product(*axes.values()):
            step = {"method": entry.get("method"), **dict(zip(axes, combo, strict=True))}
            out.append((chosen, (_check_method(err, step, where),)))
    return out


def _pipelines(err: Errors, table: dict, families: dict) -> list:
    out = []
    for where, entry, chosen in _entries(err, table, "pipeline", families):
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
