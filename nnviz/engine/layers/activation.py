"""Elementwise activations: y = f(x), dx = f'(x) * dy."""
from __future__ import annotations

from typing import Any

from .base import Layer, LayerError


class _Activation(Layer):
    def forward(self, x, train=False):
        self._x = x
        self._y = self._f(x)
        return self._y

    def backward(self, gy, need_gx=True):
        return self._df(self._x, self._y, gy)


class ReLU(_Activation):
    def adopt(self, y: Any) -> None:
        """Take y = relu(x) computed by the layer before (fused); backward needs only y."""
        self._x = self._y = y

    def _f(self, x):
        return self.B.relu_forward(x)

    def _df(self, x, y, gy):
        return self.B.relu_backward(x, y, gy)


class LeakyReLU(_Activation):
    def __init__(self, alpha: float = 0.01) -> None:
        super().__init__()
        if not 0 <= float(alpha) < 1:
            raise LayerError(f"LeakyReLU: alpha must be in [0, 1), got {alpha!r}")
        self.alpha = float(alpha)

    def config(self) -> dict:
        return {"type": "LeakyReLU", "alpha": self.alpha}

    def _f(self, x):
        return self.B.leaky_relu_forward(x, self.alpha)

    def _df(self, x, y, gy):
        return self.B.leaky_relu_backward(x, y, gy, self.alpha)


class Sigmoid(_Activation):
    def _f(self, x):
        return self.B.sigmoid_forward(x)

    def _df(self, x, y, gy):
        return self.B.sigmoid_backward(x, y, gy)


class Tanh(_Activation):
    def _f(self, x):
        return self.B.tanh_forward(x)

    def _df(self, x, y, gy):
        return self.B.tanh_backward(x, y, gy)


class Abs(_Activation):
    def _f(self, x):
        return self.B.abs_forward(x)

    def _df(self, x, y, gy):
        return self.B.abs_backward(x, y, gy)


ACTIVATIONS = ("ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Abs")
