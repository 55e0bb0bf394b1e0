"""Adaptive compression: per-layer sensitivity and budgeted per-layer bits / sparsities."""
# Importing the methods module runs its @register_method decorators.
from compression.adaptive import methods  # noqa: F401
from compression.adaptive.methods import AdaptivePruneConfig, MixedQuantConfig  # noqa: F401
