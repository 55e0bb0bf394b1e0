"""Compression methods (pruning, quantization, distillation) that turn a trained model into a compressed one."""
from compression.api import (  # noqa: F401
    METHODS,
    CompressedModel,
    CompressionContext,
    MethodConfig,
    apply_pipeline,
    compress,
    config_from_dict,
)
