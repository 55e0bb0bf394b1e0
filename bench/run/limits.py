"""The time limit of one grid cell: CellTimeout raised by a SIGALRM interval timer."""
from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any


class CellTimeout(BaseException):
    """The cell ran past the config's timeout_s. A BaseException (like KeyboardInterrupt) so
    that the `except Exception` handlers inside a cell (a failed latency row, an unmeasured
    peak memory) cannot swallow it and let a timed-out cell end as ok."""


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise CellTimeout after `seconds` (SIGALRM; main thread only, elsewhere not enforced:
    a thread cannot be interrupted safely, e.g. Dask's in-process workers)."""
    usable = seconds > 0 and threading.current_thread() is threading.main_thread() \
        and hasattr(signal, "setitimer")
    if not usable:
        yield
        return

    fired = False

    def on_alarm(signum: int, frame: Any) -> None:
        nonlocal fired
        fired = True
        raise CellTimeout(f"timeout after {seconds:g} s")

    # Why the interval and the flag: an exception raised while Python runs a finalizer
    # (__del__, a weakref callback during garbage collection) is printed and dropped, so one
    # alarm can be lost; the timer keeps firing until the block ends, and a block that ends
    # normally after an alarm still fails.
    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds, max(seconds, 0.05))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    if fired:
        raise CellTimeout(f"timeout after {seconds:g} s")
