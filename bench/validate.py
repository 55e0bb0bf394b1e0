"""Validation helpers of sweep configs: typed lookups, dataclass building, machine/data checks."""
from __future__ import annotations

import dataclasses
from typing import Any


class ConfigError(ValueError):
    """A sweep config is malformed; the message names the file, the key and what is allowed."""


class Errors:
    """Raises ConfigError prefixed with the config's source (file name or preset)."""

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


def typed(err: Errors, table: dict, key: str, kind: Any, default: Any = None,
           required: bool = False) -> Any:
    if key not in table:
        if required:
            err(f"missing required key {key!r}")
        return default
    value = table[key]
    if not _is(value, kind):
        err(f"{key} = {value!r} has the wrong type; expected {_type_name(kind)}")
    return value


def int_list(err: Errors, table: dict, key: str, default: list, minimum: int) -> list[int]:
    values = typed(err, table, key, list, default)
    if not values:
        err(f"{key} is empty; give at least one integer >= {minimum}")
    for v in values:
        if not _is(v, int) or v < minimum:
            err(f"{key} contains {v!r}; allowed: integers >= {minimum}")
    if len(set(values)) != len(values):
        err(f"{key} contains duplicates: {values}")
    return list(values)


def str_list(err: Errors, table: dict, key: str, default: list, allowed: tuple) -> list[str]:
    values = typed(err, table, key, list, default)
    if not values:
        err(f"{key} is empty; allowed values: {', '.join(allowed)}")
    for v in values:
        if v not in allowed:
            err(f"{key} contains {v!r}; allowed: {', '.join(allowed)}")
    return list(values)


def check_field_types(cls: type, table: dict[str, Any], where: str) -> str | None:
    """First wrong-typed int/float/str/bool field of dataclass `cls` in `table`, or None."""
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


def build(err: Errors, cls: type, table: dict[str, Any], where: str) -> Any:
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


def check_machine(config: Any, dataset: Any) -> None:
    """Checks against this machine and the loaded dataset, before any output is written."""
    import torch

    err = Errors(config.source)
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
