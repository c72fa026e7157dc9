from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .base import Layer, LayerError


def build_chain(layers: list[Layer], shape: tuple[int, ...], rng_for: Callable[[Layer], Any], dtype: Any,
                backend: Any, label: str = "") -> tuple[int, ...]:
    """Build layers in order; each gets the activation that follows as init hint."""
    for i, layer in enumerate(layers):
        nxt = layers[i + 1].type if i + 1 < len(layers) else None
        if layer.index is None:
            layer.index = f"{label}{i}"
        shape = layer.build(shape, rng_for(layer), dtype, backend, hint=nxt)
    return shape


class Residual(Layer):
    """Skip connection: out = x + f(x), f a chain of layers keeping the shape."""

    def __init__(self, layers: list[Layer]) -> None:
        super().__init__()
        if not isinstance(layers, (list, tuple)) or not layers:
            raise LayerError("Residual: needs a non-empty list of layers")
        for l in layers:
            if not isinstance(l, Layer):
                raise LayerError(f"Residual: {l!r} is not a layer")
        self.layers = list(layers)

    def config(self) -> dict:
        return {"type": "Residual", "layers": [l.config() for l in self.layers]}

    @property
    def children(self) -> list[Layer]:
        return self.layers

    def build(self, input_shape: Sequence[int], rng: Any, dtype: Any, backend: Any,
              hint: str | None = None) -> tuple[int, ...]:
        self._rng = rng
        return super().build(input_shape, rng, dtype, backend, hint)

    def _build(self, shape, rng, hint):
        for i, l in enumerate(self.layers):
            l.index = f"{self.index}.{i}"
        out = build_chain(self.layers, shape, lambda l: rng, self.dtype, self.B)
        if tuple(out) != tuple(shape):
            self._fail(f"the inner layers change the shape {shape} -> {tuple(out)}; "
                       f"a skip connection needs them equal")
        for l in self.layers:
            self.notes.extend(l.notes)
        return shape

    def param_count(self) -> int:
        return sum(l.param_count() for l in self.layers)

    def forward(self, x: Any, train: bool = False) -> Any:
        y = x
        for l in self.layers:
            y = l.forward(y, train)
        return self.B.add(x, y)

    def backward(self, gy: Any, need_gx: bool = True) -> Any:
        g = gy
        for l in reversed(self.layers):
            g = l.backward(g, True)
        return self.B.add(gy, g)
