"""Compression methods (pruning, quantization, distillation): trained model in, compressed out."""
from compression.api import (  # noqa: F401
    METHODS,
    CompressedModel,
    CompressionContext,
    MethodConfig,
    apply_pipeline,
    compress,
    config_from_dict,
)
