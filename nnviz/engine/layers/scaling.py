"""InputScaling: the input preprocessing an imported model expects, applied inside the model.

The model wants (pixel - mean) / std per channel, pixels in [0, 1] (MNIST: 0.1307 / 0.3081;
[-1, 1]: 0.5 / 0.5). nnviz's datasets are standardised with their own statistics
(data_mean / data_std, Dataset.normalization), so the layer first undoes that:
y = (x * data_std + data_mean - mean) / std, one per-channel affine map.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .base import Layer, LayerError


def _floats(v, name):
    try:
        a = [float(x) for x in (v if isinstance(v, (list, tuple, np.ndarray)) else [v])]
    except (TypeError, ValueError):
        raise LayerError(f"InputScaling: {name} must be a number or a list of numbers, "
                         f"got {v!r}") from None
    if not a or not all(np.isfinite(a)):
        raise LayerError(f"InputScaling: {name} must be finite numbers, got {v!r}")
    return a


class InputScaling(Layer):
    def __init__(self, mean: Any = 0.0, std: Any = 1.0, data_mean: Any = 0.0, data_std: Any = 1.0) -> None:
        super().__init__()
        self.mean, self.std = _floats(mean, "mean"), _floats(std, "std")
        self.data_mean, self.data_std = _floats(data_mean, "data_mean"), _floats(data_std, "data_std")
        if min(self.std) <= 0 or min(self.data_std) <= 0:
            raise LayerError(f"InputScaling: std and data_std must be > 0, got {std!r}, {data_std!r}")

    def config(self) -> dict:
        c = {"type": "InputScaling", "mean": self.mean, "std": self.std}
        if self.data_mean != [0.0] or self.data_std != [1.0]:
            c.update(data_mean=self.data_mean, data_std=self.data_std)
        return c

    def affine(self, channels: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(scale, offset), float64 arrays of one value per channel: y = x * scale + offset."""
        n = channels or max(len(self.mean), len(self.std), len(self.data_mean),
                            len(self.data_std))
        m, s, dm, ds = (np.broadcast_to(np.asarray(v, np.float64), (n,)) for v in
                        (self.mean, self.std, self.data_mean, self.data_std))
        return ds / s, (dm - m) / s

    def set_data_normalization(self, normalization: dict | None) -> None:
        """Bind to a dataset's {'mean': [...], 'std': [...]} (empty: raw [0, 1] values)."""
        norm = normalization or {}
        self.data_mean = _floats(norm.get("mean", 0.0), "data_mean")
        self.data_std = _floats(norm.get("std", 1.0), "data_std")
        if self.input_shape is not None:
            self._make(self.input_shape)

    def _build(self, shape, rng, hint):
        self._make(shape)
        return shape

    def _make(self, shape):
        c = shape[0]
        for name in ("mean", "std", "data_mean", "data_std"):
            if len(getattr(self, name)) not in (1, c):
                self._fail(f"{name} has {len(getattr(self, name))} values for {c} channels")
        scale, offset = self.affine(c)
        tail = (1,) * (len(shape) - 1)
        self._scale = self.B.asarray(scale.reshape((c,) + tail), self.dtype)
        self._offset = self.B.asarray(offset.reshape((c,) + tail), self.dtype)

    def forward(self, x: Any, train: bool = False) -> Any:
        return self.B.add(self.B.mul(x, self._scale), self._offset)

    def backward(self, gy: Any, need_gx: bool = True) -> Any:
        return self.B.mul(gy, self._scale) if need_gx else None


def bind_normalization(model, normalization) -> None:
    """Bind a model's leading InputScaling (if any) to the data normalization it is fed."""
    first = model.layers[0]
    if isinstance(first, InputScaling):
        first.set_data_normalization(normalization)
