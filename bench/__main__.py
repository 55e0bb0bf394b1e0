"""`python -m bench` is the `genbench` command."""
from bench.cli import main

raise SystemExit(main())
