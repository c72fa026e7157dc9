"""He and Xavier initialisation. `auto` looks at the activation that follows:
He before ReLU-like units (they zero half their input), Xavier otherwise,
including the logits layer, as Keras does."""
from __future__ import annotations

import contextvars
from contextlib import contextmanager
from typing import Any

import numpy as np

from .base import LayerError

# Loading a file: no weight larger than the file could hold is allocated (a spec that
# declares Dense(10**6) is refused before the gigabytes are taken, not after).
_MAX_VALUES = contextvars.ContextVar("nnviz_max_weight_values", default=None)


@contextmanager
def weight_limit(values):
    """Within the block, a weight array of more than `values` numbers raises LayerError."""
    token = _MAX_VALUES.set(int(values))
    try:
        yield
    finally:
        _MAX_VALUES.reset(token)

_RECTIFIERS = {"ReLU", "LeakyReLU", "Abs"}


def choose(init: str, hint: str | None, label: str) -> str:
    if init == "auto":
        return "he" if hint in _RECTIFIERS else "xavier"
    if init not in ("he", "xavier", "uniform"):
        raise LayerError(f"{label}: init must be 'auto', 'he', 'xavier' or 'uniform', got {init!r}")
    return init


def weights(rng: np.random.Generator, shape: tuple[int, ...], fan_in: int, fan_out: int, kind: str,
            dtype: Any) -> np.ndarray:
    limit = _MAX_VALUES.get()
    if limit is not None:
        n = 1
        for d in shape:
            n *= int(d)
        if n > limit:
            raise LayerError(f"a weight of shape {tuple(shape)} has {n:,} values, more than the "
                             f"{limit:,} the file can hold")
    if kind == "he":
        w = rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)
    elif kind == "uniform":   # PyTorch's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
        bound = 1.0 / np.sqrt(fan_in)
        w = rng.uniform(-bound, bound, size=shape)
    else:
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        w = rng.uniform(-limit, limit, size=shape)
    return np.ascontiguousarray(w, dtype=dtype)
