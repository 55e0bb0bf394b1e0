"""Errors the CLI turns into one line on stderr and exit code 2 (bad input, not a crash)."""
from __future__ import annotations


class InputError(ValueError):
    """A results directory, store or argument that cannot be read as documented."""
