"""genbench's benchmark layer: configs, grid, metrics, storage, plots, tables, compare, CLI."""
__version__ = "0.1.0"
