"""genbench's benchmark layer: configs, the grid, metrics, storage, plots, tables, comparison, CLI."""
__version__ = "0.1.0"
