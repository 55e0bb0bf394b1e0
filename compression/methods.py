"""Imports every method module so that their `@register_method` decorators fill `METHODS`."""
# Each new method module is added here once; tests iterate METHODS, so it is tested by registering.
import compression.adaptive  # noqa: F401
import compression.diffusion  # noqa: F401
import compression.distillation  # noqa: F401
import compression.pruning  # noqa: F401
import compression.quantization  # noqa: F401
import compression.semistructured  # noqa: F401
