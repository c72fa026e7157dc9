"""An nnviz Sequential as an ONNX graph (opset 13; docs/model-format.md, "ONNX").

Every nnviz layer has an ONNX form: GlobalAvgPool2D is GlobalAveragePool + Flatten,
Residual is its inner layers + Add, InputScaling is Sub (mean) + Div (std). Weights keep
nnviz's (PyTorch's) layouts, which are ONNX's; Dense is a Gemm with transB = 1.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..engine.layers import (
    Abs,
    AvgPool2D,
    BatchNorm,
    Conv2D,
    ConvTranspose2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAvgPool2D,
    InputScaling,
    LeakyReLU,
    MaxPool2D,
    ReLU,
    Residual,
    Sigmoid,
    Tanh,
)

if TYPE_CHECKING:
    import onnx

    from ..engine import Sequential

OPSET = 13
IR_VERSION = 7            # the IR that goes with opset 13: readable by older runtimes too
INPUT, OUTPUT = "input", "logits"
_SIMPLE = {ReLU: "Relu", Sigmoid: "Sigmoid", Tanh: "Tanh", Abs: "Abs", Flatten: "Flatten"}


class GraphWriter:
    def __init__(self, model: Sequential):
        self.model = model
        self.state = model.state()       # host float arrays by "index.key"
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []

    def build(self, metadata: dict | None = None) -> onnx.ModelProto:
        from onnx import TensorProto, helper

        from .. import __version__
        x = INPUT
        for layer in self.model.layers:
            x = self._layer(layer, x)
        self.nodes[-1].output[0] = OUTPUT     # the last node writes the graph output
        inp = helper.make_tensor_value_info(INPUT, TensorProto.FLOAT,
                                            ["N", *self.model.input_shape])
        out = helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT,
                                            ["N", *self.model.output_shape])
        graph = helper.make_graph(self.nodes, self.model.name, [inp], [out], self.inits)
        mp = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                               producer_name="nnviz", producer_version=str(__version__))
        mp.ir_version = IR_VERSION
        for k, v in (metadata or {}).items():
            mp.metadata_props.add(key=str(k), value=str(v))
        return mp

    def _init(self, name, a):
        from onnx import numpy_helper
        self.inits.append(numpy_helper.from_array(np.array(a, dtype=np.float32, order="C"), name))
        return name

    def _node(self, layer, op, inputs, suffix="", **attrs):
        from onnx import helper
        name = f"{layer.index}{suffix}_{op}"
        out = f"{name}_out"
        self.nodes.append(helper.make_node(op, inputs, [out], name=name, **attrs))
        return out

    def _params(self, layer, *keys):
        return [self._init(f"{layer.index}.{k}", self.state[f"{layer.index}.{k}"])
                for k in keys if f"{layer.index}.{k}" in self.state]

    def _layer(self, layer, x):
        t = type(layer)
        if t in _SIMPLE:
            return self._node(layer, _SIMPLE[t], [x])
        if t is LeakyReLU:
            return self._node(layer, "LeakyRelu", [x], alpha=layer.alpha)
        if t is Dense:
            return self._node(layer, "Gemm", [x, *self._params(layer, "weight", "bias")],
                              transB=1)
        if t in (Conv2D, ConvTranspose2D):
            ph, pw = layer.padding
            return self._node(layer, "Conv" if t is Conv2D else "ConvTranspose",
                              [x, *self._params(layer, "weight", "bias")],
                              kernel_shape=list(layer.kernel_size), strides=list(layer.stride),
                              pads=[ph, pw, ph, pw])
        if t in (MaxPool2D, AvgPool2D):
            return self._node(layer, "MaxPool" if t is MaxPool2D else "AveragePool", [x],
                              kernel_shape=list(layer.kernel_size), strides=list(layer.stride))
        if t is GlobalAvgPool2D:
            y = self._node(layer, "GlobalAveragePool", [x])
            return self._node(layer, "Flatten", [y], axis=1)
        if t is BatchNorm:
            return self._node(layer, "BatchNormalization",
                              [x, *self._params(layer, "weight", "bias", "running_mean",
                                                "running_var")],
                              epsilon=layer.eps, momentum=1.0 - layer.momentum)
        if t is Dropout:
            ratio = self._init(f"{layer.index}.ratio", np.array(layer.p, dtype=np.float32))
            return self._node(layer, "Dropout", [x, ratio])
        if t is InputScaling:
            # the file's input is what the scaling expects ([0, 1] pixels), as in a PyTorch
            # model that normalises inside forward(); nnviz's dataset binding stays outside
            c = layer.input_shape[0]
            tail = (1,) * (len(layer.input_shape) - 1)
            mean, std = (np.broadcast_to(np.asarray(v, np.float64), (c,)).reshape((c,) + tail)
                         for v in (layer.mean, layer.std))
            y = self._node(layer, "Sub", [x, self._init(f"{layer.index}.mean", mean)])
            return self._node(layer, "Div", [y, self._init(f"{layer.index}.std", std)])
        if t is Residual:
            y = x
            for inner in layer.layers:
                y = self._layer(inner, y)
            return self._node(layer, "Add", [x, y])
        raise ValueError(f"{layer.label}: no ONNX form for layer type {layer.type}")
