"""Weight initialisation, chosen per layer (`init` in the layer's JSON).

The default, "torch", is PyTorch's default for Linear and Conv layers: weights
kaiming_uniform(a=sqrt(5)), i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and biases
U(-1/sqrt(fan_in), 1/sqrt(fan_in)); so nnviz and a course's PyTorch notebook start from the
same distribution. fan_in is PyTorch's: weight.shape[1] * kernel area, which for a
transposed convolution (weight (in, out, kh, kw)) is out_channels * kh * kw.
"auto" looks at the activation that follows: He before ReLU-like units (they zero half
their input), Xavier otherwise, including the logits layer, as Keras does.
"he", "xavier" and "uniform" (PyTorch's weight bound, zero biases) are fixed choices;
every choice but "torch" starts the biases at zero."""
from __future__ import annotations

import contextvars
from contextlib import contextmanager
from typing import Any

import numpy as np

from .base import LayerError

DEFAULT = "torch"
KINDS = ("torch", "auto", "he", "xavier", "uniform")

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
    if init not in KINDS:
        raise LayerError(f"{label}: init must be one of {', '.join(repr(k) for k in KINDS)}, "
                         f"got {init!r}")
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
    elif kind in ("torch", "uniform"):   # kaiming_uniform(a=sqrt(5)): bound 1/sqrt(fan_in)
        bound = 1.0 / np.sqrt(fan_in)
        w = rng.uniform(-bound, bound, size=shape)
    else:
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        w = rng.uniform(-limit, limit, size=shape)
    return np.ascontiguousarray(w, dtype=dtype)


def bias(rng: np.random.Generator, n: int, fan_in: int, kind: str, dtype: Any) -> np.ndarray:
    """PyTorch's U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for "torch", zeros otherwise."""
    if kind == "torch":
        bound = 1.0 / np.sqrt(fan_in) if fan_in > 0 else 0.0
        return np.ascontiguousarray(rng.uniform(-bound, bound, size=n), dtype=dtype)
    return np.zeros(n, dtype)
