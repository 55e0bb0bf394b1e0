"""Sweep configs: TOML parsed as data into a frozen, validated `SweepConfig` (presets included).

Every table and key, with types, defaults and derived defaults, is in the README's
"Configuration reference" (generated from the dataclasses here, in bench.metrics, genmodels.train
and compression by bench.config.reference_docs). Unknown keys are errors; every problem of a file is
reported at once (bench.config.validate); a scalar is accepted where a list of one is meant
(`seeds = 0`); an unwritten key whose default contradicts written values is derived from them
(bench.config.derive). The [families.X], [[sweep]] and [[pipeline]] tables: bench.config.steps.
"""
from __future__ import annotations

import dataclasses
import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from bench.config.baselines import FamilyModel, family_model, train_overrides
from bench.config.derive import EVAL, derive
from bench.config.runtimes import top_runtimes
from bench.config.steps import families as _families
from bench.config.steps import pipelines as _pipelines
from bench.config.steps import sweeps as _sweeps
from bench.config.steps import train_base
from bench.config.validate import (  # noqa: F401 - ConfigError and check_machine are part of this API
    ConfigError,
    Errors,
    build,
    check_keys,
    check_machine,
    did_you_mean,
    int_list,
    str_list,
    typed,
    unknown,
)

DEVICE_CHOICES = ("cpu", "cuda", "auto")
TRAIN_BUDGETS = ("default", "smoke")
_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
_TOP_KEYS = {
    "name", "description", "dataset", "data_root", "download", "train", "seeds", "devices",
    "quality_device", "batch_sizes", "timeout_s", "eval", "latency", "families", "sweep",
    "pipeline", "features", "runtimes",
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
    runtimes: tuple[str, ...] = ("eager",)
    timeout_s: float = 600.0
    features: str = "shipped"  # genmodels.yardstick.FEATURE_SOURCES
    eval: dict[str, Any] = field(default_factory=dict)
    latency: LatencySettings = LatencySettings()
    families: dict[str, dict[str, Any]] = field(default_factory=dict)
    pipelines: tuple[tuple[tuple[str, ...] | None, tuple[dict[str, Any], ...]], ...] = ()
    # The runtimes of each pipeline (aligned with `pipelines`) where its [[sweep]] or
    # [[pipeline]] entry lists its own; () when none does. Not part of cell ids.
    pipeline_runtimes: tuple[tuple[str, ...] | None, ...] = ()

    def runtimes_of(self, index: int) -> tuple[str, ...]:
        """What the cells of pipeline `index` measure: its entry's runtimes, else the top's."""
        own = self.pipeline_runtimes[index] if self.pipeline_runtimes else None
        return self.runtimes if own is None else own

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready resolved config (run.json)."""
        out = dataclasses.asdict(self)
        out["pipelines"] = [{"families": list(f) if f else None, "steps": list(s)}
                            for f, s in self.pipelines]
        for index, entry in enumerate(out["pipelines"]):
            if self.pipeline_runtimes and self.pipeline_runtimes[index] is not None:
                entry["runtimes"] = list(self.pipeline_runtimes[index])
        del out["pipeline_runtimes"]
        return out


def load_config(path: str | Path) -> SweepConfig:
    """Read and validate a TOML sweep file (parsed as data only: tomllib)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            [f"{path}: cannot read config file ({exc.__class__.__name__}: {exc})"]) from exc
    return parse_config(text, str(path))


def parse_config(text: str, source: str = "<config>") -> SweepConfig:
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{source}: not valid TOML ({exc})"]) from exc
    return config_from_table(table, source)


def preset_names() -> list[str]:
    files = resources.files("bench.presets").iterdir()
    return sorted(p.name[:-5] for p in files if p.name.endswith(".toml"))


def load_preset(name: str) -> SweepConfig:
    names = preset_names()
    if name not in names:
        raise ConfigError([unknown("preset", name, names)])
    text = resources.files("bench.presets").joinpath(f"{name}.toml").read_text(encoding="utf-8")
    return parse_config(text, f"preset {name}")


def config_from_table(table: dict[str, Any], source: str = "<config>") -> SweepConfig:
    """Validate a parsed TOML table; all its problems (up to validate.MAX_SHOWN shown) are one
    ConfigError, each line naming `source`."""
    err = Errors(source)
    check_keys(err, table, _TOP_KEYS)
    name = typed(err, table, "name", str, "", required=True)
    if isinstance(table.get("name"), str) and (not _NAME_RE.match(name) or name in (".", "..")):
        err(f"name {name!r} must match [A-Za-z0-9_.-]+ (it is used in paths)")
    dataset = typed(err, table, "dataset", str, "mnist5k")
    from genmodels.data import DATASETS

    if dataset not in DATASETS:
        err(unknown("dataset", dataset, DATASETS))
    train = typed(err, table, "train", str, "default")
    if train not in TRAIN_BUDGETS:
        err(f"train = {train!r}{did_you_mean(train, TRAIN_BUDGETS)}; allowed: "
            f"{', '.join(TRAIN_BUDGETS)}")
        train = "default"  # so that [families.X] can still be checked
    seeds = int_list(err, table, "seeds", [0], minimum=0)
    devices = str_list(err, table, "devices", ["auto"], DEVICE_CHOICES)
    quality_device = typed(err, table, "quality_device", str, "cpu")
    if quality_device not in DEVICE_CHOICES:
        err(f"quality_device = {quality_device!r}{did_you_mean(quality_device, DEVICE_CHOICES)}; "
            f"allowed: {', '.join(DEVICE_CHOICES)}")
    batch_sizes = int_list(err, table, "batch_sizes", [1, 64], minimum=1)
    timeout_s = typed(err, table, "timeout_s", (int, float), 600)
    if timeout_s < 0:
        err(f"timeout_s = {timeout_s}; allowed: seconds >= 0 (0 disables the timeout)")
    data_root = typed(err, table, "data_root", str, None)
    features = typed(err, table, "features", str, "shipped")
    from genmodels.yardstick import FEATURE_SOURCES

    if features not in FEATURE_SOURCES:
        err(f"features = {features!r}{did_you_mean(features, FEATURE_SOURCES)}; allowed: "
            f"{', '.join(FEATURE_SOURCES)}")
    families = _families(err, table, train)
    eval_table = _build_eval(err, typed(err, table, "eval", dict, {}))
    latency = build(err, LatencySettings, typed(err, table, "latency", dict, {}), "[latency]")
    runtimes = top_runtimes(err, table)
    entries = _sweeps(err, table, families) + _pipelines(err, table, families)
    pipelines = [(chosen, steps) for chosen, steps, _ in entries]
    own_runtimes = tuple(own for _, _, own in entries)
    if not pipelines and not err.problems:
        err("no [[sweep]] or [[pipeline]] entries: nothing to compress; add at least one")
    description = typed(err, table, "description", str, "")
    download = typed(err, table, "download", bool, False)
    err.raise_if_any()
    return SweepConfig(
        name=name, source=source, description=description,
        dataset=dataset, data_root=data_root, download=download,
        train=train, seeds=tuple(seeds), devices=tuple(devices), quality_device=quality_device,
        batch_sizes=tuple(batch_sizes), timeout_s=float(timeout_s), features=features,
        eval=eval_table, latency=latency, families=families, pipelines=tuple(pipelines),
        runtimes=runtimes,
        pipeline_runtimes=own_runtimes if any(r is not None for r in own_runtimes) else (),
    )


def _build_eval(err: Errors, written: dict[str, Any]) -> dict[str, Any]:
    """The [eval] table with its derived defaults; a written kid_subset_size above n_samples
    (written or default) is an error naming both."""
    from bench.metrics import EvalSettings

    table = derive(EVAL, EvalSettings, written)
    settings = build(err, EvalSettings, table, "[eval]")
    if settings is not None and settings.kid_subset_size > settings.n_samples:
        n_from = "" if "n_samples" in written else " (the default)"
        err(f"[eval] kid_subset_size = {settings.kid_subset_size} exceeds n_samples = "
            f"{settings.n_samples}{n_from}; lower kid_subset_size, or leave it out to derive "
            "min(default, n_samples)")
    return table


def train_config(config: SweepConfig, family: str) -> Any:
    """The TrainConfig of `family`: its model's preset budget with the config's overrides."""
    table = config.families[family]
    return dataclasses.replace(train_base(config.train)[family_model(config.families, family)
                                                        .model], **train_overrides(table))


def baseline_model(config: SweepConfig, family: str) -> FamilyModel:
    """The registered model and width `family`'s baseline is trained at."""
    return family_model(config.families, family)
