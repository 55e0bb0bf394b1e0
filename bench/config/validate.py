"""Validation helpers of sweep configs: collected errors, typed lookups, dataclass building."""
from __future__ import annotations

import dataclasses
import difflib
import typing
from collections.abc import Iterable
from typing import Any

MAX_SHOWN = 5  # problems listed per file; beyond that one line says how many more


class ConfigError(ValueError):
    """A sweep config is malformed: one line per problem, each naming the file, the key and what
    is allowed. `problems` holds every line (the message shows the first MAX_SHOWN)."""

    def __init__(self, problems: list[str] | str) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        shown = self.problems[:MAX_SHOWN]
        more = len(self.problems) - len(shown)
        if more:
            shown.append(f"... and {more} more problem{'s' if more > 1 else ''}")
        super().__init__("\n".join(shown))


class Errors:
    """Collects a file's problems (prefixed with its source) so that all are reported at once:
    call it per problem, then `raise_if_any()` where later checks need the earlier ones clean."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[str] = []

    def __call__(self, message: str) -> None:
        line = f"{self.source}: {message}"
        if line not in self.problems:  # a sweep's combinations can repeat one problem
            self.problems.append(line)

    def raise_if_any(self) -> None:
        if self.problems:
            raise ConfigError(self.problems)


def did_you_mean(word: Any, choices: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for a near miss of `word` among `choices` (difflib), else ''."""
    if not isinstance(word, str):
        return ""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def unknown(kind: str, word: Any, choices: Iterable[str]) -> str:
    """"unknown KIND 'word' (did you mean ..?); allowed: a, b" (choices sorted)."""
    choices = sorted(choices)
    return f"unknown {kind} {word!r}{did_you_mean(word, choices)}; allowed: {', '.join(choices)}"


def check_keys(err: Errors, table: dict, allowed: Iterable[str], where: str = "") -> None:
    """One problem per key of `table` not in `allowed`."""
    allowed = list(allowed)
    prefix = f"{where} " if where else ""
    for key in sorted(set(table) - set(allowed)):
        err(prefix + unknown("key", key, allowed))


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
    """table[key] if it has type `kind`; a missing or wrong-typed value is a problem (unless
    optional and missing) and gives `default`, so that later checks can go on."""
    if key not in table:
        if required:
            err(f"missing required key {key!r}")
        return default
    value = table[key]
    if not _is(value, kind):
        err(f"{key} = {value!r} has the wrong type; expected {_type_name(kind)}")
        return default
    return value


def as_list(value: Any) -> list:
    """A scalar where a list of one is meant (`seeds = 0`) is that list."""
    return value if isinstance(value, list) else [value]


def int_list(err: Errors, table: dict, key: str, default: list, minimum: int) -> list[int]:
    values = as_list(table.get(key, default))
    if not values:
        err(f"{key} is empty; give at least one integer >= {minimum}")
    for v in values:
        if not _is(v, int):
            err(f"{key} = {table[key]!r} has the wrong type; expected integer or list of integers")
            return list(default)
        if v < minimum:
            err(f"{key} contains {v!r}; allowed: integers >= {minimum}")
    if len(set(values)) != len(values):
        err(f"{key} contains duplicates: {values}")
    return list(values)


def str_list(err: Errors, table: dict, key: str, default: list, allowed: tuple) -> list[str]:
    values = as_list(table.get(key, default))
    if not values:
        err(f"{key} is empty; allowed values: {', '.join(allowed)}")
    for v in values:
        if v not in allowed:
            err(f"{key} contains {v!r}{did_you_mean(v, allowed)}; allowed: {', '.join(allowed)}")
    return list(values)


def _scalar_kinds(hint: Any) -> tuple:
    args = typing.get_args(hint)
    return tuple(a for a in args if a in (int, float, str, bool)) if args else (
        (hint,) if hint in (int, float, str, bool) else ())


def field_kinds(cls: type) -> dict[str, tuple]:
    """{field: scalar types it accepts} of dataclass `cls` ({} if its hints do not resolve)."""
    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # noqa: BLE001 - unresolvable annotations: leave it to __post_init__
        return {}
    return {f.name: _scalar_kinds(hints.get(f.name)) for f in dataclasses.fields(cls)}


def check_field_types(cls: type, table: dict[str, Any], where: str) -> list[str]:
    """One message per wrong-typed int/float/str/bool field of dataclass `cls` in `table`."""
    kinds = field_kinds(cls)
    return [f"{where} {key} = {value!r} has the wrong type; expected {_type_name(kinds[key])}"
            for key, value in table.items()
            if kinds.get(key) and value is not None and not _is(value, kinds[key])]


def canonical(cls: type, table: dict[str, Any]) -> dict[str, Any]:
    """`table` with an integer given for a float-only field as that float (`lr = 1` is 1.0), so
    that the two spellings build, print and hash alike (cell ids hash the resolved fields)."""
    kinds = field_kinds(cls)
    return {key: float(value) if kinds.get(key) == (float,) and type(value) is int else value
            for key, value in table.items()}


def build(err: Errors, cls: type, table: dict[str, Any], where: str) -> Any:
    """`cls(**table)` with unknown keys, wrong types and range errors reported to `err`;
    None when it cannot be built."""
    allowed = [f.name for f in dataclasses.fields(cls) if f.init]
    check_keys(err, table, allowed, where)
    wrong = check_field_types(cls, table, where)
    for message in wrong:
        err(message)
    if wrong or set(table) - set(allowed):
        return None
    try:
        return cls(**canonical(cls, table))
    except (TypeError, ValueError) as exc:
        err(f"{where} {exc}")
        return None


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
    err.raise_if_any()


def _available_memory_bytes() -> int:
    import os

    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 0
