"""Runtimes a compressed variant can be deployed on; importing this package fills RUNTIMES.

One module per runtime, each registering itself with @register_runtime; every module of this
package is imported here, so a new runtime is one new file.
"""
import importlib
import pkgutil

from compression.runtimes.base import (  # noqa: F401
    RUNTIMES,
    Deployed,
    Runtime,
    RuntimeContext,
    get_runtime,
    register_runtime,
)

for _info in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_info.name}")
