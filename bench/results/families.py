"""The one order of model families in every plot, table and report (and of methods in legends)."""
from __future__ import annotations

from collections.abc import Iterable

# The reference families in the order the README introduces them; a family not listed here
# (a new registration) follows them alphabetically, so adding one never reorders the others.
FAMILY_ORDER = ("gan", "vae", "rvae", "ddpm")


def ordered_families(families: Iterable[str]) -> list[str]:
    """The distinct names of `families` in FAMILY_ORDER, unknown ones after it, alphabetically."""
    names = {str(f) for f in families}
    known = [f for f in FAMILY_ORDER if f in names]
    return known + sorted(names - set(FAMILY_ORDER))


def ordered_methods(methods: Iterable[str]) -> list[str]:
    """The distinct methods, baseline first, then in first-seen order: every plot of a run gives a
    method the same marker and colour because it takes them from this order over the whole run."""
    seen = list(dict.fromkeys(str(m) for m in methods))
    return [m for m in seen if m == "baseline"] + [m for m in seen if m != "baseline"]
