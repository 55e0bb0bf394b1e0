"""One shared `register(table, name)` decorator for every registry in genbench."""
from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def register(table: dict[str, T], name: str) -> Callable[[T], T]:
    """Decorator that stores the decorated object in `table[name]`; refuses duplicate names."""

    def decorator(obj: T) -> T:
        if name in table:
            raise ValueError(f"{name!r} is already registered ({table[name]!r}); pick another name")
        table[name] = obj
        return obj

    return decorator
