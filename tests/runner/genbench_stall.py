"""A method "stall" that stands for a long cell (a GENBENCH_PLUGINS module for interrupt tests).

Its handler blocks for `seconds`, so a test can interrupt a sweep while a cell is running,
in this process or in a spawned worker (workers import the plugins too).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import ClassVar

from compression.api import METHODS, MethodConfig, register_method

NAME = "stall"


@dataclass(frozen=True)
class StallConfig(MethodConfig):
    method: ClassVar[str] = NAME
    seconds: float = 120.0


def stall(cm, config: StallConfig, ctx):
    # Not synchronisation: the test never waits for this to end, it interrupts it.
    time.sleep(config.seconds)
    return cm


if NAME not in METHODS:
    register_method(StallConfig)(stall)
