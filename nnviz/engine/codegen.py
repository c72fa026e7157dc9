"""Show as code: the PyTorch and Keras source that builds the same network (Qt-free).

A student carries the network from the app into a lab notebook. The PyTorch text is an
``nn.Sequential`` written the way the course notes write it; the Keras text is a
``keras.Sequential`` (channels_first, so the shapes read as in nnviz). Residual blocks have
no one-line equivalent in either, so they become a small named module / functional block.
"""
from __future__ import annotations

import numpy as np

from .layers import Layer
from .model import Sequential

__all__ = ["pytorch_code", "keras_code"]


def _pair(v: tuple[int, int]) -> str:
    return str(v[0]) if v[0] == v[1] else f"({v[0]}, {v[1]})"


def _torch_layer(layer: Layer) -> str:
    t, cin = layer.type, layer.input_shape
    bias = "" if getattr(layer, "use_bias", True) else ", bias=False"
    if t == "Dense":
        return f"nn.Linear({cin[0]}, {layer.out_features}{bias})"
    if t in ("Conv2D", "ConvTranspose2D"):
        name = "nn.Conv2d" if t == "Conv2D" else "nn.ConvTranspose2d"
        args = f"{cin[0]}, {layer.out_channels}, kernel_size={_pair(layer.kernel_size)}"
        if layer.stride != (1, 1):
            args += f", stride={_pair(layer.stride)}"
        if layer.padding != (0, 0):
            args += f", padding={_pair(layer.padding)}"
        return f"{name}({args}{bias})"
    if t in ("MaxPool2D", "AvgPool2D"):
        name = "nn.MaxPool2d" if t == "MaxPool2D" else "nn.AvgPool2d"
        k, s = layer.kernel_size, layer.stride
        return f"{name}({_pair(k)})" if k == s else f"{name}({_pair(k)}, stride={_pair(s)})"
    if t == "GlobalAvgPool2D":
        return "nn.AdaptiveAvgPool2d(1), nn.Flatten()"
    if t == "BatchNorm":
        name = "nn.BatchNorm1d" if len(cin) == 1 else "nn.BatchNorm2d"
        extra = "" if (layer.momentum, layer.eps) == (0.1, 1e-5) else \
            f", eps={layer.eps}, momentum={layer.momentum}"
        return f"{name}({cin[0]}{extra})"
    if t == "Dropout":
        return f"nn.Dropout(p={layer.p})"
    if t == "LeakyReLU":
        return f"nn.LeakyReLU({layer.alpha})"
    if t == "InputScaling":
        scale, offset = (np.asarray(v, dtype=float).tolist() for v in layer.affine(cin[0]))
        return f"InputScaling({scale}, {offset}, {len(cin)})"
    simple = {"Flatten": "nn.Flatten()", "ReLU": "nn.ReLU()", "Sigmoid": "nn.Sigmoid()",
              "Tanh": "nn.Tanh()", "Abs": "Abs()"}
    if t in simple:
        return simple[t]
    raise ValueError(f"{layer.label}: no PyTorch equivalent written for {t}")


_TORCH_HELPERS = {
    "Abs": ("class Abs(nn.Module):\n"
            "    def forward(self, x):\n"
            "        return x.abs()\n"),
    "InputScaling": ("class InputScaling(nn.Module):\n"
                     "    \"\"\"The preprocessing the model expects: x * scale + offset per channel.\"\"\"\n"
                     "    def __init__(self, scale, offset, ndim):\n"
                     "        super().__init__()\n"
                     "        shape = (-1,) + (1,) * (ndim - 1)\n"
                     "        self.register_buffer('scale', torch.tensor(scale).reshape(shape))\n"
                     "        self.register_buffer('offset', torch.tensor(offset).reshape(shape))\n\n"
                     "    def forward(self, x):\n"
                     "        return x * self.scale + self.offset\n"),
    "Residual": ("class Residual(nn.Module):\n"
                 "    \"\"\"out = x + f(x): the skip connection.\"\"\"\n"
                 "    def __init__(self, *layers):\n"
                 "        super().__init__()\n"
                 "        self.f = nn.Sequential(*layers)\n\n"
                 "    def forward(self, x):\n"
                 "        return x + self.f(x)\n"),
}


def _torch_lines(layers: list[Layer], indent: str, used: set[str]) -> list[str]:
    out = []
    for layer in layers:
        if layer.type == "Residual":
            used.add("Residual")
            out.append(f"{indent}Residual(")
            out += _torch_lines(layer.layers, indent + "    ", used)
            out.append(f"{indent}),")
            continue
        if layer.type in ("Abs", "InputScaling"):
            used.add(layer.type)
        out.append(f"{indent}{_torch_layer(layer)},")
    return out


def pytorch_code(model: Sequential) -> str:
    """PyTorch source building ``model``'s architecture as ``model = nn.Sequential(...)``."""
    used: set[str] = set()
    body = _torch_lines(model.layers, "    ", used)
    head = ["import torch", "from torch import nn", ""]
    for name in ("InputScaling", "Abs", "Residual"):
        if name in used:
            head += [_TORCH_HELPERS[name]]
    shape = ", ".join(str(s) for s in model.input_shape)
    return "\n".join(head + ["model = nn.Sequential("] + body + [
        ")",
        f"# input: a batch of shape (N, {shape}); output: (N, {model.output_shape[0]}) logits",
        "print(sum(p.numel() for p in model.parameters()), 'parameters')",
        ""])


def _keras_layer(layer: Layer) -> str:
    t = layer.type
    cf = 'data_format="channels_first"'
    bias = "" if getattr(layer, "use_bias", True) else ", use_bias=False"
    if t == "Dense":
        return f"layers.Dense({layer.out_features}{bias})"
    if t in ("Conv2D", "ConvTranspose2D"):
        name = "layers.Conv2D" if t == "Conv2D" else "layers.Conv2DTranspose"
        args = f"{layer.out_channels}, {_pair(layer.kernel_size)}"
        if layer.stride != (1, 1):
            args += f", strides={_pair(layer.stride)}"
        return f"{name}({args}{bias}, {cf})"
    if t in ("MaxPool2D", "AvgPool2D"):
        name = "layers.MaxPooling2D" if t == "MaxPool2D" else "layers.AveragePooling2D"
        k, s = layer.kernel_size, layer.stride
        args = _pair(k) if k == s else f"{_pair(k)}, strides={_pair(s)}"
        return f"{name}({args}, {cf})"
    if t == "GlobalAvgPool2D":
        return f"layers.GlobalAveragePooling2D({cf})"
    if t == "BatchNorm":
        axis = 1 if len(layer.input_shape) == 3 else -1
        return f"layers.BatchNormalization(axis={axis}, momentum={1 - layer.momentum:g}, epsilon={layer.eps:g})"
    if t == "Dropout":
        return f"layers.Dropout({layer.p})"
    if t == "Flatten":
        # nnviz flattens channel x height x width: a plain reshape, not Keras' channels_first Flatten
        return f"layers.Reshape(({layer.output_shape[0]},))"
    if t == "LeakyReLU":
        return f"layers.LeakyReLU(negative_slope={layer.alpha})"
    if t == "InputScaling":
        # per channel, broadcast over the spatial axes (channels_first)
        def shaped(v):
            return str(np.asarray(v, dtype=float).reshape((-1,) + (1,) * (len(layer.input_shape) - 1)).tolist())
        scale, offset = layer.affine(layer.input_shape[0])
        return f"layers.Rescaling(scale={shaped(scale)}, offset={shaped(offset)})"
    acts = {"ReLU": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh"}
    if t in acts:
        return f'layers.Activation("{acts[t]}")'
    raise ValueError(f"{layer.label}: Keras has no {t} layer; export it as ONNX instead")


def _keras_lines(layers: list[Layer], x: str) -> list[str]:
    out = []
    for layer in layers:
        if layer.type == "Residual":
            out.append(f"skip = {x}")
            out += _keras_lines(layer.layers, x)
            out.append(f"{x} = layers.Add()([skip, {x}])")
            continue
        pad = getattr(layer, "padding", (0, 0)) if layer.type in ("Conv2D", "ConvTranspose2D") else (0, 0)
        cf = 'data_format="channels_first"'
        if layer.type == "Conv2D" and pad != (0, 0):
            out.append(f"{x} = layers.ZeroPadding2D({_pair(pad)}, {cf})({x})")
        out.append(f"{x} = {_keras_layer(layer)}({x})")
        if layer.type == "ConvTranspose2D" and pad != (0, 0):
            # a transposed convolution's padding crops its output
            out.append(f"{x} = layers.Cropping2D({_pair(pad)}, {cf})({x})")
    return out


def keras_code(model: Sequential) -> str:
    """Keras 3 source building ``model``'s architecture (functional API, channels_first)."""
    shape = ", ".join(str(s) for s in model.input_shape)
    lines = ["import keras", "from keras import layers", "",
             f"inputs = keras.Input(shape=({shape},))",
             "x = inputs"]
    lines += _keras_lines(model.layers, "x")
    lines += [f'model = keras.Model(inputs, x, name="{model.name}")',
              "model.summary()", ""]
    return "\n".join(lines)
