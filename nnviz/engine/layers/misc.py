"""Shape and regularisation layers: Flatten, Dropout, BatchNorm."""
from __future__ import annotations

from typing import Any

import numpy as np

from .base import Layer, LayerError


class Flatten(Layer):
    def _build(self, shape, rng, hint):
        return (int(np.prod(shape)),)

    def forward(self, x: Any, train: bool = False) -> Any:
        self._xshape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, gy: Any, need_gx: bool = True) -> Any:
        return gy.reshape(self._xshape)


class Dropout(Layer):
    """Inverted dropout; the mask comes from the model's seeded generator."""

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        if not 0 <= float(p) < 1:
            raise LayerError(f"Dropout: p must be in [0, 1), got {p!r}")
        self.p = float(p)
        self.rng = None  # set by Sequential
        self.last_mask = None  # the last training step's mask: eval passes keep it (the Playground shows it)

    def config(self) -> dict:
        return {"type": "Dropout", "p": self.p}

    def forward(self, x: Any, train: bool = False) -> Any:
        if not train or self.p == 0:
            self._mask = None
            return x
        self._mask = self.last_mask = self.B.dropout_mask(self.rng, x.shape, self.p, x.dtype)
        return self.B.mul(x, self._mask)

    def backward(self, gy: Any, need_gx: bool = True) -> Any:
        return gy if self._mask is None else self.B.mul(gy, self._mask)


class BatchNorm(Layer):
    """Per feature after Dense, per channel after a convolution."""

    def __init__(self, momentum: float = 0.1, eps: float = 1e-5) -> None:
        super().__init__()
        if not 0 < float(momentum) <= 1:
            raise LayerError(f"BatchNorm: momentum must be in (0, 1], got {momentum!r}")
        if not float(eps) > 0:
            raise LayerError(f"BatchNorm: eps must be > 0, got {eps!r}")
        self.momentum = float(momentum)
        self.eps = float(eps)

    def config(self) -> dict:
        c: dict = {"type": "BatchNorm"}
        if self.momentum != 0.1:
            c["momentum"] = self.momentum
        if self.eps != 1e-5:
            c["eps"] = self.eps
        return c

    def _build(self, shape, rng, hint):
        if len(shape) not in (1, 3):
            self._fail(f"expects (features,) or (channels, h, w), got {shape}")
        n = shape[0]
        B, dt = self.B, self.dtype
        self.params = {"weight": B.asarray(np.ones(n), dt), "bias": B.zeros((n,), dt)}
        self.buffers = {"running_mean": B.zeros((n,), dt),
                        "running_var": B.asarray(np.ones(n), dt)}
        return shape

    def forward(self, x: Any, train: bool = False) -> Any:
        self._train = train
        if train and x.shape[0] * int(np.prod(x.shape[2:])) < 2:
            self._fail("needs more than one value per channel in training (batch size 1 "
                       "after a Dense layer); use a larger batch or remove BatchNorm")
        return self.B.batchnorm_forward(x, self.params["weight"], self.params["bias"],
                                        self.buffers["running_mean"], self.buffers["running_var"],
                                        self.momentum, self.eps, train, self._cache)

    def backward(self, gy: Any, need_gx: bool = True) -> Any:
        gx, gg, gb = self.B.batchnorm_backward(gy, self.params["weight"], self._train,
                                               self._cache)
        self.grads["weight"], self.grads["bias"] = gg, gb
        return gx
