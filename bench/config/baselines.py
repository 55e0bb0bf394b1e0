"""What a [families.X] table trains besides its budget: the registered model and its width.

`[families.gan] width = 2.0` trains the GAN at twice the reference channels (and hidden units);
a table of another name is a further baseline of a registered model, so one sweep can hold
several widths: `[families.gan_w2]` with `model = "gan"` and `width = 2.0`. Its name is the
`family` of its cells everywhere (tables, plots, files); the trained checkpoint is keyed by the
model, the width and the budget (genmodels.train.checkpoint_key), so a table at width 1 with
the default budget reuses the default preset's checkpoint.
"""
from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from bench.config.validate import Errors, did_you_mean, unknown

BASELINE_KEYS = ("model", "width")  # the keys of [families.X] that are not TrainConfig fields
# A family name that is not a registered model names files (tables/<family>.md, ...).
_FAMILY_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
RESERVED_NAMES = ("deployment",)  # tables/deployment.md is the runtimes' table


@dataclass(frozen=True)
class FamilyModel:
    """The baseline of one [families.X] table."""

    model: str  # a registered model family (default: the table's name)
    width: float = 1.0  # channels and hidden units times this (1 = the reference model)

    def __post_init__(self) -> None:
        width = self.width
        if isinstance(width, bool) or not isinstance(width, int | float) \
                or not (math.isfinite(width) and width > 0):
            raise ValueError(f"width = {width!r}; allowed: a number > 0 (1 = the reference "
                             "model; 2 doubles its channels and hidden units)")
        object.__setattr__(self, "width", float(width))

    def stored(self, name: str) -> dict[str, Any]:
        """The keys kept in config.families[name] (run.json): defaults left out, so a run that
        does not use them records and compares as runs of older code did."""
        out: dict[str, Any] = {}
        if self.model != name:
            out["model"] = self.model
        if self.width != 1.0:
            out["width"] = self.width
        return out


def family_model(families: dict[str, dict[str, Any]], family: str) -> FamilyModel:
    """The FamilyModel of `family` in a resolved config's `families`."""
    table = families[family]
    return FamilyModel(str(table.get("model", family)), table.get("width", 1.0))


def train_overrides(table: dict[str, Any]) -> dict[str, Any]:
    """The TrainConfig overrides of a [families.X] table (its other keys removed)."""
    return {k: v for k, v in table.items() if k not in BASELINE_KEYS}


def check_family(err: Errors, name: str, table: dict[str, Any],
                 models: Iterable[str]) -> FamilyModel | None:
    """The FamilyModel of [families.`name`], or None after reporting its problems to `err`."""
    models = sorted(models)
    model = table.get("model", name)
    if "model" not in table and name not in models:
        err(unknown("family", name, models) + "; a table of another name names its model: "
            f"[families.{name}] model = \"gan\"")
        return None
    if not isinstance(model, str) or model not in models:
        err(f"[families.{name}] model = {model!r}{did_you_mean(str(model), models)}; allowed: "
            f"{', '.join(models)}")
        return None
    if not _FAMILY_NAME_RE.match(name) or name in RESERVED_NAMES:
        err(f"[families.{name}] the name must match [A-Za-z0-9_.-]+ and not be "
            f"{' or '.join(RESERVED_NAMES)} (it names files)")
        return None
    try:
        return FamilyModel(model, table.get("width", 1.0))
    except ValueError as exc:
        err(f"[families.{name}] {exc}")
        return None
