"""Per-process setup shared by the CLI and every pool or Dask worker: quiet import-time torch
logs and the user's plugin modules ($GENBENCH_PLUGINS)."""
from __future__ import annotations

PLUGINS_ENV = "GENBENCH_PLUGINS"
# Loggers whose import-time notes are noise here: importing torchao makes torch log "No CUDA
# runtime is found, using CUDA_HOME=..." on CPU machines, and a pytree deprecation note.
NOISY_LOGGERS = ("torch.utils.cpp_extension", "torch.utils._pytree")


def quiet_torch_logs() -> None:
    """Silence NOISY_LOGGERS below ERROR in this process. Called by the CLI and by every pool
    and Dask worker before it imports the methods (a logger's level set before its module is
    imported holds: the module gets the same logger object)."""
    import logging

    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)


def load_plugins() -> list[str]:
    """Import the modules named in $GENBENCH_PLUGINS (comma-separated): the extension point for
    user datasets, models and methods, which register themselves on import. Called by the CLI
    and by every pool/Dask worker, so spawned processes see the same registries."""
    import importlib
    import os

    names = [n.strip() for n in os.environ.get(PLUGINS_ENV, "").split(",") if n.strip()]
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise ValueError(f"${PLUGINS_ENV}: cannot import plugin {name!r} ({exc})") from exc
    return names
