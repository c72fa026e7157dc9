"""He and Xavier initialisation. `auto` looks at the activation that follows."""
import numpy as np

from .base import LayerError

_SATURATING = {"Tanh", "Sigmoid"}


def choose(init, hint, label):
    if init == "auto":
        return "xavier" if hint in _SATURATING else "he"
    if init not in ("he", "xavier"):
        raise LayerError(f"{label}: init must be 'auto', 'he' or 'xavier', got {init!r}")
    return init


def weights(rng, shape, fan_in, fan_out, kind, dtype):
    if kind == "he":
        w = rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)
    else:
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        w = rng.uniform(-limit, limit, size=shape)
    return np.ascontiguousarray(w, dtype=dtype)
