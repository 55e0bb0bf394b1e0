"""Diffusion-specific compression: timestep-aware activation quantization, sampling steps."""
# Importing the method modules runs their @register_method decorators.
from compression.diffusion import actquant, steps  # noqa: F401
from compression.diffusion.actquant import QuantWAConfig  # noqa: F401
from compression.diffusion.steps import StepsConfig  # noqa: F401
