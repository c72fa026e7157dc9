"""Vanishing gradients: a chain of k Dense + activation layers and each layer's gradient size.

The engine's own layers (float64, CPU) with the textbook initialisation (init="auto": Xavier
before sigmoid and tanh, He before ReLU, zero biases: so the demo shows the activation's effect,
not a poor scale), a fixed random batch and an MSE loss on one output.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from nnviz.engine import MSE, Dense, ReLU, Sigmoid, Tanh

from .net import DTYPE, LabError, _cpu

CHAIN = {"sigmoid": Sigmoid, "tanh": Tanh, "relu": ReLU}
CHAIN_ACTIVATIONS = tuple(CHAIN)
MAX_DEPTH = 30


@lru_cache(maxsize=64)
def _built_chain(act: str, width: int, batch: int, seed: int):
    """MAX_DEPTH Dense + activation pairs, the head and the batch; a chain of depth k uses the
    first k pairs (the same weights for every k: building them is most of the work)."""
    B = _cpu()
    pairs = []
    shape: tuple[int, ...] = (width,)
    for l in range(MAX_DEPTH):
        dense, a = Dense(width, init="auto"), CHAIN[act]()
        rng = np.random.default_rng([seed, l])
        shape = dense.build(shape, rng, DTYPE, B, hint=a.type)
        a.build(shape, rng, DTYPE, B)
        pairs.append((dense, a))
    head = Dense(1, init="auto")
    head.build(shape, np.random.default_rng([seed, 1000]), DTYPE, B)
    rng = np.random.default_rng([seed, 2000])
    return B, pairs, head, rng.standard_normal((batch, width)), rng.standard_normal((batch, 1))


def chain_gradients(act: str, depth: int, width: int = 16, batch: int = 32, seed: int = 0) -> np.ndarray:
    """‖∂L/∂W_l‖ (Frobenius) for hidden layers l = 1..depth, first layer first."""
    if act not in CHAIN_ACTIVATIONS:
        raise LabError(f"chain activation must be one of {', '.join(CHAIN_ACTIVATIONS)}, got {act!r}")
    if not 1 <= int(depth) <= MAX_DEPTH:
        raise LabError(f"chain depth must be 1 to {MAX_DEPTH}, got {depth}")
    B, pairs, head, h, target = _built_chain(act, int(width), int(batch), int(seed))
    layers = [layer for pair in pairs[:int(depth)] for layer in pair] + [head]
    for layer in layers:
        h = layer.forward(h, train=True)
    loss = MSE(B)
    loss.forward(h, target)
    g = loss.backward()
    for layer in reversed(layers):
        g = layer.backward(g)
    return np.array([np.linalg.norm(d.grads["weight"]) for d, _ in pairs[:int(depth)]])


def layer_profile(act: str, depth: int, width: int = 16, seeds: int = 4) -> np.ndarray:
    """Per-layer gradient sizes, the geometric mean over `seeds` random chains (less noisy)."""
    logs = [np.log(chain_gradients(act, depth, width, seed=s)) for s in range(seeds)]
    return np.exp(np.mean(logs, axis=0))


def depth_sweep(act: str, depths, width: int = 16, seeds: int = 4) -> np.ndarray:
    """First-layer gradient size (geometric mean over seeds) for each depth in `depths`."""
    return np.array([layer_profile(act, k, width, seeds)[0] for k in depths])
