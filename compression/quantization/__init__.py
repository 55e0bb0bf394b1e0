"""Quantization methods: k-bit PTQ ("quant"), QAT/LSQ ("qat"), int8 kernels, packed storage."""
# Importing the method modules runs their @register_method decorators.
from compression.quantization import kernels, ptq, qat  # noqa: F401
from compression.quantization.core import QuantizedWeight, dequantize, quantize_codes  # noqa: F401
from compression.quantization.kernels import Int8KernelConfig  # noqa: F401
from compression.quantization.ptq import QuantConfig  # noqa: F401
from compression.quantization.qat import QATConfig  # noqa: F401
from compression.quantization.storage import (  # noqa: F401
    load_compressed_state,
    save_compressed,
    save_fp32,
)
