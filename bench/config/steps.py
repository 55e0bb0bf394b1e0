"""The grid tables of a sweep file: [families.X], [[sweep]] (cartesian) and [[pipeline]] entries."""
from __future__ import annotations

import dataclasses
import itertools
from typing import Any

from bench.config.baselines import BASELINE_KEYS, check_family, train_overrides
from bench.config.derive import derive
from bench.config.runtimes import entry_runtimes
from bench.config.validate import (
    Errors,
    as_list,
    build,
    canonical,
    check_field_types,
    check_keys,
    did_you_mean,
    typed,
    unknown,
)

# A pipeline's or sweep's own keys besides the method fields.
PIPELINE_KEYS = ("steps", "families", "runtimes")
SWEEP_KEYS = ("method", "families", "runtimes")


def train_base(train: str) -> dict[str, Any]:
    from genmodels.train import DEFAULT_TRAIN, SMOKE_TRAIN

    return SMOKE_TRAIN if train == "smoke" else DEFAULT_TRAIN


def families(err: Errors, table: dict, train: str) -> dict[str, dict[str, Any]]:
    """{family: TrainConfig overrides} of the [families.X] tables, each checked by building it."""
    from genmodels.models import MODELS

    chosen = typed(err, table, "families", dict, None)
    if not chosen:
        if chosen is not None or "families" not in table:  # not when its type was the problem
            err(f"no [families.NAME] tables; allowed families: {', '.join(sorted(MODELS))}")
        return {}
    base = train_base(train)
    out = {}
    for name, overrides in chosen.items():
        if not isinstance(overrides, dict):
            err(f"families.{name} must be a table of TrainConfig overrides")
            continue
        # model and width: which registered model, how wide (bench.config.baselines).
        baseline = check_family(err, name, overrides, [m for m in MODELS if m in base])
        if baseline is None:
            continue
        cls = type(base[baseline.model])
        check_keys(err, overrides, [f.name for f in dataclasses.fields(cls)] + list(BASELINE_KEYS),
                   f"[families.{name}]")
        train = {k: v for k, v in train_overrides(overrides).items()
                 if k in {f.name for f in dataclasses.fields(cls)}}
        build(err, cls, {**dataclasses.asdict(base[baseline.model]), **train},
              f"[families.{name}]")
        out[name] = {**canonical(cls, train), **baseline.stored(name)}
    return out


def _family_filter(err: Errors, entry: dict, where: str, families: dict) -> tuple[str, ...] | None:
    chosen = entry.pop("families", None)
    if chosen is None:
        return None
    chosen = as_list(chosen)  # `families = "vae"` is a list of one
    if not chosen or not all(isinstance(name, str) for name in chosen):
        err(f"{where} families must be a non-empty list of family names")
        return None
    for name in chosen:
        if name not in families:
            err(f"{where} family {name!r} is not configured{did_you_mean(name, families)}; "
                f"configured: {', '.join(families)}")
    return tuple(chosen)


def method_class(err: Errors, method: Any, where: str) -> type | None:
    """The config class of `method`, or None after reporting an unknown method."""
    import compression.methods  # noqa: F401 - fills METHODS through the decorators
    from compression.api import METHODS

    if method is None:
        err(f"{where} missing key 'method'; allowed methods: {', '.join(sorted(METHODS))}")
        return None
    if method not in METHODS:
        err(f"{where} " + unknown("method", method, METHODS))
        return None
    return METHODS[method].config_cls


def _describe(method: str, fields: dict[str, Any]) -> str:
    settings = ", ".join(f"{k}={v!r}" for k, v in fields.items())
    return f"{method} with {settings}" if settings else method


def check_step(err: Errors, step: dict, where: str, combos: int = 1) -> dict[str, Any] | None:
    """One method step {method, **fields}: keys, types, derived defaults, then the config's own
    checks; the resolved step (derived keys added, numbers canonical) or None. `combos` > 1: the
    step is one of that many combinations of a sweep, and the message names it."""
    method = step.get("method")
    cls = method_class(err, method, where)
    if cls is None:
        return None
    fields = {k: v for k, v in step.items() if k != "method"}
    check_keys(err, fields, [f.name for f in dataclasses.fields(cls)],
               f"{where} method {method!r}:")
    wrong = check_field_types(cls, fields, where)
    for message in wrong:
        err(message)
    if wrong or set(fields) - {f.name for f in dataclasses.fields(cls)}:
        return None
    resolved = canonical(cls, derive(method, cls, fields))
    required = [f.name for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING
                and f.default_factory is dataclasses.MISSING and f.name not in resolved]
    if required:
        err(f"{where} method {method!r}: missing key {required[0]!r} (it has no default)")
        return None
    try:
        cls(**resolved)
    except (TypeError, ValueError) as exc:
        what = f"combination {_describe(method, fields)}" if combos > 1 else f"method {method!r}"
        err(f"{where} {what}: {exc}")
        return None
    return {"method": method, **resolved}


def _entries(err: Errors, table: dict, key: str, families: dict):
    """Yield (where, entry without `families` and `runtimes`, chosen families, its own
    runtimes or None) for each [[key]] table."""
    entries = typed(err, table, key, (list, dict), [])  # [sweep] for [[sweep]]: a list of one
    for i, entry in enumerate(as_list(entries), start=1):
        where = f"[{key} {i}]"
        if not isinstance(entry, dict):
            err(f"{where} must be a table")
            continue
        entry = dict(entry)
        chosen = _family_filter(err, entry, where, families)
        yield where, entry, chosen, entry_runtimes(err, entry, where)


def sweeps(err: Errors, table: dict, families: dict) -> list:
    """[[sweep]] entries: every list of method fields expands by cartesian product; each
    pipeline as (families, steps, the entry's runtimes or None)."""
    out = []
    for where, entry, chosen, runtimes in _entries(err, table, "sweep", families):
        method = entry.get("method")
        axes = {k: as_list(v) for k, v in entry.items() if k != "method"}
        empty = [key for key, values in axes.items() if not values]
        for key in empty:
            err(f"{where} {key} is an empty list: the sweep would have no cells")
        cls = method_class(err, method, where)
        if cls is None or empty:
            continue
        # Keys and types once per sweep (not once per combination): each value of each axis.
        check_keys(err, axes, [f.name for f in dataclasses.fields(cls)],
                   f"{where} method {method!r}:")
        wrong = [m for key, values in axes.items() for v in values
                 for m in check_field_types(cls, {key: v}, where)]
        for message in wrong:
            err(message)
        if wrong or set(axes) - {f.name for f in dataclasses.fields(cls)}:
            continue
        combos = list(itertools.product(*axes.values()))
        for combo in combos:
            step = check_step(err, {"method": method, **dict(zip(axes, combo, strict=True))},
                              where, len(combos))
            if step is not None:
                out.append((chosen, (step,), runtimes))
    return out


def pipelines(err: Errors, table: dict, families: dict) -> list:
    """[[pipeline]] entries: explicit steps applied in order; as sweeps() returns them."""
    out = []
    for where, entry, chosen, runtimes in _entries(err, table, "pipeline", families):
        check_keys(err, entry, PIPELINE_KEYS, where)
        steps = as_list(entry.get("steps", []))
        if not steps:
            err(f"{where} steps must be a non-empty list of {{method = ..}} tables")
            continue
        checked = []
        for j, step in enumerate(steps, start=1):
            if not isinstance(step, dict):
                err(f"{where} step {j} must be a table {{method = .., ...}}")
                continue
            checked.append(check_step(err, step, f"{where} step {j}"))
        if checked and all(step is not None for step in checked):
            out.append((chosen, tuple(checked), runtimes))
    return out
