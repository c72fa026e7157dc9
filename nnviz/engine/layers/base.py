"""Layer base class: build() infers shapes, forward()/backward() sit together."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


class LayerError(ValueError):
    """A layer cannot be built with the given settings or input shape."""


class Layer:
    #: extra receptive-field effect (kernel, stride) for summary(); None = unchanged
    rf = None

    def __init__(self):
        self.params = {}     # name -> array, weight before bias (PyTorch order)
        self.grads = {}      # name -> array, same keys
        self.buffers = {}    # non-trainable state saved with the model (BN stats)
        self.input_shape = None
        self.output_shape = None
        self.index = None
        self.notes = []      # shown by summary(): e.g. unused border pixels
        self.B = None        # backend module, set by build()
        self._cache = {}

    # --- identity ---------------------------------------------------------
    @property
    def type(self) -> str:
        return type(self).__name__

    @property
    def label(self) -> str:
        return f"layer {self.index} ({self.type})" if self.index is not None else self.type

    def config(self) -> dict:
        """Constructor arguments: {'type': ..., **kwargs} round-trips through JSON."""
        return {"type": self.type}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items() if k != "type")
        return f"{self.type}({args})"

    # --- lifecycle ----------------------------------------------------------
    def build(self, input_shape: Sequence[int], rng: np.random.Generator, dtype: Any, backend: Any,
              hint: str | None = None) -> tuple[int, ...]:
        self.input_shape = tuple(int(s) for s in input_shape)
        self.B = backend
        self.dtype = np.dtype(dtype)
        self.notes = []
        self.output_shape = tuple(self._build(self.input_shape, rng, hint))
        if any(s <= 0 for s in self.output_shape):
            raise LayerError(f"{self.label}: output shape {self.output_shape} is empty "
                             f"for input {self.input_shape}")
        return self.output_shape

    def _build(self, shape, rng, hint):
        return shape

    def forward(self, x: Any, train: bool = False) -> Any:
        """Shape-preserving layers without work return x unchanged."""
        return x

    def backward(self, gy: Any, need_gx: bool = True) -> Any:
        return gy

    # --- helpers ------------------------------------------------------------
    def param_count(self) -> int:
        return int(sum(np.prod(p.shape) for p in self.params.values()))

    def _fail(self, msg):
        raise LayerError(f"{self.label}: {msg}")

    def _need(self, shape, ndim, what):
        if len(shape) != ndim:
            self._fail(f"expects {what}, got input shape {shape}")


def pair(v: Any, name: str) -> tuple[int, int]:
    if isinstance(v, (list, tuple)):
        if len(v) != 2:
            raise LayerError(f"{name} must be an int or a pair, got {v!r}")
        a, b = v
    else:
        a = b = v
    for x in (a, b):  # int() would truncate 2.5 to 2 and fail on "abc" with a bare ValueError
        if isinstance(x, bool) or not isinstance(x, (int, np.integer)):
            raise LayerError(f"{name} must be an int or a pair of ints, got {v!r}")
    return int(a), int(b)


def unpair(t: tuple[int, int]) -> int | list[int]:
    return t[0] if t[0] == t[1] else list(t)


def positive_int(v: Any, name: str, layer: str, minimum: int = 1) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < minimum:
        raise LayerError(f"{layer}: {name} must be an integer >= {minimum}, got {v!r}")
    return int(v)
