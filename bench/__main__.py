"""`python -m bench` is the `genbench` command."""
from bench.cli import entry

entry()
