from __future__ import annotations

from typing import Any

from . import init as _init
from .base import Layer, positive_int


class Dense(Layer):
    """y = x W^T + b, weight (out, in) as in PyTorch."""

    def __init__(self, out_features: int, bias: bool = True, init: str = _init.DEFAULT) -> None:
        super().__init__()
        self.out_features = positive_int(out_features, "out_features", "Dense")
        self.use_bias = bool(bias)
        self.init = init

    def config(self) -> dict:
        c = {"type": "Dense", "out_features": self.out_features}
        if not self.use_bias:
            c["bias"] = False
        if self.init != _init.DEFAULT:
            c["init"] = self.init
        return c

    def _build(self, shape, rng, hint):
        if len(shape) != 1:
            self._fail(f"expects a flat input (features,), got {shape}: add Flatten before it")
        fan_in = shape[0]
        kind = _init.choose(self.init, hint, self.label)
        w = _init.weights(rng, (self.out_features, fan_in), fan_in, self.out_features,
                          kind, self.dtype)
        self.params = {"weight": self.B.asarray(w, self.dtype)}
        if self.use_bias:
            b = _init.bias(rng, self.out_features, fan_in, kind, self.dtype)
            self.params["bias"] = self.B.asarray(b, self.dtype)
        return (self.out_features,)

    def forward(self, x: Any, train: bool = False) -> Any:
        self._x = x
        return self.B.dense_forward(x, self.params["weight"], self.params.get("bias"))

    def backward(self, gy: Any, need_gx: bool = True) -> Any:
        gx, gw, gb = self.B.dense_backward(self._x, self.params["weight"], gy, need_gx)
        self.grads["weight"] = gw
        if self.use_bias:
            self.grads["bias"] = gb
        return gx
