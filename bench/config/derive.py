"""Derived defaults: an unwritten key whose default contradicts the user's own values follows them.

A default is a guess made without the rest of the file; where the user's values rule it out
(`n_samples = 500` with the default `kid_subset_size = 1000`), the key takes the value derived
from them instead of failing. A value the user DID write that contradicts another is still an
error naming both. Each rule is documented in the README's configuration reference, generated
from `DERIVED` (bench.config.reference_docs).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

EVAL = "[eval]"  # the section name of the EvalSettings rules; method rules use the method name


@dataclass(frozen=True)
class Derived:
    """`key`, when not written, becomes `value(written, default)` unless that returns None."""

    key: str
    rule: str  # what the README says
    value: Callable[[dict[str, Any], Any], Any]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _kid_subset(written: dict[str, Any], default: Any) -> Any:
    n_samples = written.get("n_samples")
    return min(default, n_samples) if _is_int(n_samples) and _is_int(default) else None


def _naive_granularity(written: dict[str, Any], default: Any) -> Any:
    return "tensor" if written.get("rounding") == "naive" else None


def _affine_estimator(written: dict[str, Any], default: Any) -> Any:
    return "ste" if written.get("scheme") == "affine" else None


DERIVED: dict[str, tuple[Derived, ...]] = {
    EVAL: (Derived("kid_subset_size", "min(default, n_samples): a KID subset cannot be larger "
                   "than the sample set", _kid_subset),),
    "quant": (Derived("granularity", '"tensor" when rounding = "naive" (per-tensor by '
                      "definition)", _naive_granularity),),
    "qat": (Derived("estimator", '"ste" when scheme = "affine" (LSQ learns a symmetric step)',
                    _affine_estimator),),
}


def derive(section: str, cls: type, written: dict[str, Any]) -> dict[str, Any]:
    """`written` plus the derived value of every unwritten key of `section` whose default the
    written values contradict (a derived value equal to the default is left out)."""
    defaults = {f.name: f.default for f in dataclasses.fields(cls)}
    out = dict(written)
    for rule in DERIVED.get(section, ()):
        if rule.key in written or rule.key not in defaults:
            continue
        value = rule.value(written, defaults[rule.key])
        if value is not None and value != defaults[rule.key]:
            out[rule.key] = value
    return out
