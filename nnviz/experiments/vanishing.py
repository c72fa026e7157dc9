"""Lesson 12, vanishing gradients and skip connections: a deep plain network and the same
network with a skip connection around every hidden layer, trained side by side.

The gradient reaching layer l of the plain net is a product of one Jacobian per layer above
it; with tanh (|f'| <= 1) and PyTorch's default initialisation (weights U(+-1/sqrt(fan_in)),
smaller than Xavier) every factor shrinks it, so the first layers get almost nothing and the
loss stalls at chance. A residual block computes x + f(x): its Jacobian is I + f'(x), so the
gradient has a path through the identities -- the "fast lane" -- and reaches the first layer.
"""
from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from nnviz.data import Dataset, make_toy
from nnviz.data.toy import TOY_NAMES
from nnviz.engine import Dense, Layer, Residual, Sequential, Sigmoid, Tanh

from .base import TRAINING_OPTIONS, Arm, Experiment, Option

ACTIVATIONS = {"tanh": Tanh, "sigmoid": Sigmoid}


def deep_net(depth: int, width: int, activation: str, residual: bool, classes: int = 2,
             seed: int = 0) -> Sequential:
    """`depth` hidden layers Dense(width) + activation, then Dense(classes), on 2 inputs.

    With residual=True every hidden layer but the first (which changes the width from 2)
    is wrapped in a skip connection: x + f(x).
    """
    act = ACTIVATIONS[activation]
    layers: list[Layer] = [Dense(width), act()]
    for _ in range(depth - 1):
        block: list[Layer] = [Dense(width), act()]
        layers += [Residual(block)] if residual else block
    layers.append(Dense(classes))
    return Sequential(layers, input_shape=(2,), seed=seed, name="residual" if residual else "plain")


def twin_nets(depth: int, width: int, activation: str, classes: int = 2,
              seed: int = 0) -> tuple[Sequential, Sequential]:
    """The plain net and the residual net, starting from the same weights (the residual
    blocks draw theirs from another stream, so the plain net's are copied over)."""
    plain = deep_net(depth, width, activation, False, classes, seed)
    res = deep_net(depth, width, activation, True, classes, seed)
    for a, b in zip(dense_layers(plain), dense_layers(res)):
        for k, v in a.params.items():
            b.params[k][...] = v
    return plain, res


def dense_layers(model: Sequential) -> list[Dense]:
    """The Dense layers in order, inside skip connections too (the same list for both nets)."""
    out: list[Dense] = []

    def walk(layers: list[Layer]) -> None:
        for l in layers:
            if isinstance(l, Dense):
                out.append(l)
            walk(getattr(l, "children", []))
    walk(model.layers)
    return out


def layer_grad_norms(model: Sequential) -> np.ndarray:
    """L2 norm of the latest weight gradient of each Dense layer, first layer first."""
    B = model.B
    return np.array([float(np.sqrt(B.sq_norm(l.grads["weight"]))) if "weight" in l.grads else 0.0
                     for l in dense_layers(model)])


class VanishingGradients(Experiment):
    name = "vanishing"
    title = "Vanishing gradients and skip connections"
    caption = ("A deep plain net (orange) and the same layers, each wrapped in a skip connection x + f(x) "
               "(blue); dashed: test. Below, each layer's weight-gradient norm on a log scale. In the plain "
               "net the gradient shrinks layer by layer on its way back, so the first layers hardly learn "
               "and the loss stalls; the skip connections are a fast lane for the gradient.")
    diagnostic = "grad_norms"
    OPTIONS: ClassVar[dict[str, Option]] = {
        **TRAINING_OPTIONS, "depth": ("int", 1, 60), "width": ("int", 2, 64),
        "activation": ("choice", tuple(ACTIVATIONS), None), "dataset": ("choice", TOY_NAMES, None),
        "n_points": ("int", 40, 5000), "noise": ("float", 0.0, 0.5)}
    DEFAULTS: ClassVar[dict[str, Any]] = {
        "depth": 20, "width": 16, "activation": "tanh", "dataset": "circle", "n_points": 400, "noise": 0.1,
        "lr": 0.1, "optimizer": "sgd", "batch_size": 32, "seed": 0}

    def dataset(self) -> Dataset:
        o = self.options
        return make_toy(o["dataset"], n=o["n_points"], noise=o["noise"], seed=self.seed)

    def arms(self, data: Dataset) -> list[Arm]:
        o = self.options
        plain, res = twin_nets(o["depth"], o["width"], o["activation"], data.num_classes, self.seed)
        return [Arm("plain", "plain", plain, self.trainer(plain, data)),
                Arm("residual", "residual", res, self.trainer(res, data))]

    def probe(self, arm: Arm) -> dict[str, np.ndarray]:
        g = layer_grad_norms(arm.model)
        return {"layer_grad_norms": g, "first_layer_grad_norm": np.float64(g[0])}

    def metrics(self, run: Any) -> dict[str, Any]:
        out = super().metrics(run)
        plain, res = (run.probes[k]["first_layer_grad_norm"] for k in ("plain", "residual"))
        out["first_layer_grad_norm_plain"] = float(plain)
        out["first_layer_grad_norm_residual"] = float(res)
        out["first_layer_grad_ratio"] = float(res / plain) if plain > 0 else float("inf")
        return out
