"""Shared plumbing: a layer-by-layer forward/backward on the engine's own layers.

The explanations walk `model.layers` themselves (the Sequential's fused fast path keeps
no pre-activation maps and its backward hooks see no gradients), calling each layer's
`forward(x, train=False)` and `backward(g)`: the engine's explicit backprop, nothing else.
The walk overwrites the layers' cached inputs and `grads`, as a training step does; use a
copy of a model that is training in another thread (`clone_model`).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from nnviz.engine import ACTIVATIONS, Conv2D, Sequential, model_from_spec

Cancel = Callable[[], bool]


class ExplainError(ValueError):
    """An explanation cannot be made with these settings (names the parameter)."""


def clone_model(model: Sequential) -> Sequential:
    """A model with the same architecture and a host copy of the weights."""
    twin = model_from_spec(model.to_spec(), seed=model.seed)
    twin.load_state(model.state())
    return twin


def as_batch(model: Sequential, x: np.ndarray) -> np.ndarray:
    """One input (C, H, W) or a batch (N, C, H, W) -> a batch in the model's dtype."""
    x = np.asarray(x, model.dtype)
    if x.shape == tuple(model.input_shape):
        x = x[None]
    if x.ndim != len(model.input_shape) + 1 or tuple(x.shape[1:]) != tuple(model.input_shape):
        raise ExplainError(f"{model.name}: input has shape {x.shape}; expected "
                           f"{tuple(model.input_shape)} or (N, *{tuple(model.input_shape)})")
    return np.ascontiguousarray(x)


def conv_layers(model: Sequential) -> list[int]:
    """Indices of the top-level Conv2D layers."""
    return [i for i, l in enumerate(model.layers) if type(l) is Conv2D]


def default_cam_layer(model: Sequential) -> int:
    """The last convolution whose maps are larger than 1x1 (LeNet-5's C5 is 1x1: one number
    per filter, so a Grad-CAM there would be a flat square); else the last convolution."""
    convs = conv_layers(model)
    if not convs:
        raise ExplainError(f"{model.name}: Grad-CAM needs a Conv2D layer; the model has none")
    big = [i for i in convs if np.prod(model.layers[i].output_shape[1:]) > 1]
    return (big or convs)[-1]


def block_end(model: Sequential, i: int) -> int:
    """The conv layer i, or the activation right after it: Grad-CAM uses the maps a layer
    passes on (after its non-linearity)."""
    if i + 1 < len(model.layers) and model.layers[i + 1].type in ACTIVATIONS:
        return i + 1
    return i


def check_layer(model: Sequential, layer: int, what: str) -> int:
    convs = conv_layers(model)
    if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)) or layer not in convs:
        raise ExplainError(f"{what}: layer {layer!r} is not a Conv2D of {model.name}; "
                           f"its convolutions are layers {convs}")
    return int(layer)


def class_targets(model: Sequential, logits: np.ndarray, target) -> np.ndarray:
    """Per-sample class: None = the predicted class, an int, or one int per sample."""
    n, k = logits.shape
    classes = max(k, 2)
    if target is None:
        t = (logits[:, 0] > 0).astype(np.int64) if k == 1 else logits.argmax(axis=1)
    else:
        t = np.broadcast_to(np.asarray(target, np.int64), (n,)).copy()
    if t.size and (t.min() < 0 or t.max() >= classes):
        raise ExplainError(f"class {target!r} is out of range: {model.name} has {classes} classes")
    return t


def one_hot_logit_grad(logits: np.ndarray, t: np.ndarray) -> np.ndarray:
    """d logit_t / d logits; a single-logit (binary) model's class 0 is -logit."""
    n, k = logits.shape
    g = np.zeros((n, k), np.float32)
    if k == 1:
        g[:, 0] = np.where(t == 1, 1.0, -1.0)
    else:
        g[np.arange(n), t] = 1.0
    return g


def logits_of(logits: np.ndarray, t: np.ndarray) -> np.ndarray:
    if logits.shape[1] == 1:
        return np.where(t == 1, logits[:, 0], -logits[:, 0])
    return logits[np.arange(len(t)), t]


def softmax(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, np.float64)
    if z.shape[1] == 1:
        p = 1 / (1 + np.exp(-z))
        return np.concatenate([1 - p, p], axis=1)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def walk_forward(model: Sequential, x: np.ndarray, stop: int | None = None,
                 keep: Sequence[int] = ()) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """Eval-mode forward through layers 0..stop (all by default); returns the last output
    (a device array) and host copies of the outputs of the layers in `keep`."""
    B = model.B
    h = B.asarray(x, model.dtype)
    kept = {}
    last = len(model.layers) - 1 if stop is None else stop
    for i in range(last + 1):
        h = model.layers[i].forward(h, False)
        if i in keep:
            kept[i] = np.array(B.to_host(h), copy=True)
    return h, kept


def walk_backward(model: Sequential, grad: np.ndarray, start: int | None = None,
                  keep: Sequence[int] = ()) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """Backward from d/d(output of layer `start`) down to the input; returns d/d input and
    host copies of d/d(output of layer i) for i in `keep`."""
    B = model.B
    g = B.asarray(grad, model.dtype)
    kept = {}
    first = len(model.layers) - 1 if start is None else start
    for i in range(first, -1, -1):
        if i in keep:
            kept[i] = np.array(B.to_host(g), copy=True)
        g = model.layers[i].backward(g, True)
    return np.array(B.to_host(g), copy=True), kept


def is_cancelled(cancel: Cancel | None) -> bool:
    return bool(cancel is not None and cancel())


def require_image_model(model: Sequential, what: str) -> None:
    if len(model.input_shape) != 3:
        raise ExplainError(f"{what} needs an image model (C, H, W input); "
                           f"{model.name} takes {tuple(model.input_shape)}")

