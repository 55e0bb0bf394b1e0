"""The `runtimes` key of a sweep file (top level, and per [[sweep]] / [[pipeline]] entry)."""
from __future__ import annotations

from typing import Any

from bench.config.validate import Errors, as_list, unknown

RUNTIMES_KEY = "runtimes"
EAGER = "eager"  # bench.results.schema.RUNTIME_EAGER: always measured, the reference of the rest


def registered_runtimes() -> list[str]:
    """Names in compression.runtimes.RUNTIMES (importing the package registers every runtime)."""
    from compression.runtimes import RUNTIMES

    return sorted(RUNTIMES)


def check_runtimes(err: Errors, value: Any, where: str) -> tuple[str, ...] | None:
    """A `runtimes` value as a tuple with eager first (listed or not), duplicates dropped, in
    the written order; None after reporting a problem (not a list of names, an unknown name)."""
    values = as_list(value)
    prefix = f"{where} " if where else ""
    if not values or not all(isinstance(v, str) for v in values):
        err(f"{prefix}{RUNTIMES_KEY} must be a non-empty list of runtime names; allowed: "
            f"{', '.join(registered_runtimes())}")
        return None
    known = registered_runtimes()
    bad = [v for v in values if v not in known]
    for name in bad:
        err(f"{prefix}{RUNTIMES_KEY}: " + unknown("runtime", name, known))
    if bad:
        return None
    return tuple(dict.fromkeys([EAGER, *values]))


def top_runtimes(err: Errors, table: dict[str, Any]) -> tuple[str, ...]:
    """The top-level `runtimes` (default: eager alone)."""
    if RUNTIMES_KEY not in table:
        return (EAGER,)
    return check_runtimes(err, table[RUNTIMES_KEY], "") or (EAGER,)


def entry_runtimes(err: Errors, entry: dict[str, Any], where: str) -> tuple[str, ...] | None:
    """Pop an entry's own `runtimes` (None: the entry has none, the top level applies)."""
    if RUNTIMES_KEY not in entry:
        return None
    return check_runtimes(err, entry.pop(RUNTIMES_KEY), where)
