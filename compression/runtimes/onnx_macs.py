"""MACs per compute node of an ONNX graph, and which run on int8 kernels after ORT fusion."""
from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # onnx is the optional `runtimes` extra; imported where used
    import onnx

# Ops whose MACs count; the weight input index (None: no weight, e.g. activation @ activation).
FLOAT_COMPUTE = {"Conv": 1, "ConvTranspose": 1, "Gemm": 1, "MatMul": 1, "GRU": 1, "LSTM": 1,
                 "RNN": 1, "FusedConv": 1, "FusedGemm": 1, "FusedMatMul": 1}
# ORT's int8 kernels (what QDQ fusion or dynamic quantization produces): weight input index.
INT8_COMPUTE = {"QLinearConv": 3, "QGemm": 3, "QLinearMatMul": 3, "MatMulInteger": 1,
                "ConvInteger": 1, "DynamicQuantizeMatMul": 1, "MatMulIntegerToFloat": 1,
                "QLinearConvTranspose": 3, "DynamicQuantizeLSTM": 1}


@dataclass(frozen=True)
class NodeMacs:
    op_type: str
    weight: str  # initializer feeding the weight input (through DequantizeLinear), or ""
    macs: int  # multiply-accumulates at batch 1


def _with_batch_one(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy whose symbolic dims are all 1, shapes re-inferred (batch is the only symbol).

    ORT's symbolic shape inference, not onnx's: it propagates the constant Slice / Reshape
    arguments of the row step, where onnx.shape_inference leaves the Gemm's input unknown."""
    import onnx
    from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference

    model = onnx.ModelProto.FromString(model.SerializeToString())
    del model.graph.value_info[:]
    for value in [*model.graph.input, *model.graph.output]:
        for dim in value.type.tensor_type.shape.dim:
            if not dim.HasField("dim_value"):
                dim.dim_value = 1
    return SymbolicShapeInference.infer_shapes(model, auto_merge=True)


def _shapes(model: onnx.ModelProto) -> dict[str, tuple[int, ...]]:
    shapes = {init.name: tuple(init.dims) for init in model.graph.initializer}
    for value in [*model.graph.input, *model.graph.value_info, *model.graph.output]:
        dims = value.type.tensor_type.shape.dim
        if all(d.HasField("dim_value") for d in dims):
            shapes[value.name] = tuple(d.dim_value for d in dims)
    return shapes


def weight_source(name: str, producers: dict[str, onnx.NodeProto]) -> str:
    """Follow DequantizeLinear / Transpose / Reshape back to the stored tensor's name."""
    while name in producers and producers[name].op_type in (
            "DequantizeLinear", "Transpose", "Reshape", "Identity"):
        name = producers[name].input[0]
    return name


def node_macs(model: onnx.ModelProto) -> list[NodeMacs]:
    """MACs at batch 1 of each Conv / ConvTranspose / Gemm / MatMul / GRU / LSTM node of a graph
    in standard ONNX ops (the exported or QDQ graph, before ORT's fusions).

    Conv: |Y| * Cin/g * prod(k); ConvTranspose: |X| * Cout/g * prod(k); Gemm/MatMul: |Y| * K;
    GRU/LSTM/RNN: seq * batch * (|W| + |R|) (gates x hidden x (input + hidden), all directions).
    """
    model = _with_batch_one(model)
    shapes = _shapes(model)
    producers = {out: node for node in model.graph.node for out in node.output}
    rows = []
    for node in model.graph.node:
        if node.op_type not in FLOAT_COMPUTE:
            continue
        x, w = shapes.get(node.input[0]), shapes.get(node.input[1])
        y = shapes.get(node.output[0])
        if x is None or w is None or (y is None and node.op_type not in ("GRU", "LSTM", "RNN")):
            raise ValueError(f"no static shape for {node.op_type} node {node.name!r}")
        if node.op_type == "Conv":
            macs = math.prod(y) * math.prod(w[1:])
        elif node.op_type == "ConvTranspose":
            macs = math.prod(x) * math.prod(w[1:])
        elif node.op_type == "Gemm":
            trans_a = next((a.i for a in node.attribute if a.name == "transA"), 0)
            macs = math.prod(y) * x[0 if trans_a else 1]
        elif node.op_type == "MatMul":
            macs = math.prod(y) * x[-1]
        else:  # GRU / LSTM / RNN, layout 0: X (seq, batch, input)
            r = shapes[node.input[2]]
            macs = x[0] * x[1] * (math.prod(w) + math.prod(r))
        key = weight_source(node.input[1], producers)
        rows.append(NodeMacs(node.op_type, key if key in shapes else "", int(macs)))
    return rows


def int8_weights(optimized: onnx.ModelProto) -> set[str]:
    """Names of the weights that ORT's optimized graph feeds to int8 kernels."""
    producers = {out: node for node in optimized.graph.node for out in node.output}
    return {weight_source(node.input[idx], producers) for node in optimized.graph.node
            if (idx := INT8_COMPUTE.get(node.op_type)) is not None and len(node.input) > idx}


def int8_share(graphs: Sequence[tuple[list[NodeMacs], set[str], int]]
               ) -> tuple[float, tuple[str, ...]]:
    """(MACs on int8 kernels / all MACs, op types left fp32 with counts) over graphs given as
    (node MACs, int8 weights of the optimized graph, calls per forward(z))."""
    total = int8 = 0
    fp32: Counter[str] = Counter()
    for rows, on_int8, calls in graphs:
        for row in rows:
            total += row.macs * calls
            if row.weight and row.weight in on_int8:
                int8 += row.macs * calls
            else:
                fp32[row.op_type] += 1
    fraction = int8 / total if total else 0.0
    return fraction, tuple(f"{op} x{n}" for op, n in sorted(fp32.items()))
