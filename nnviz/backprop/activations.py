"""Activation functions and their derivatives, from the engine's activation layers (Qt-free).

f(x) is the layer's forward; f'(x) is its backward with an all-ones upstream gradient, the
factor backprop multiplies by at that unit. Saturation: where |f'| falls below a fraction of
its largest value (the gradient all but vanishes); "dead" where it is exactly zero.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from nnviz.engine import Abs, LeakyReLU, ReLU, Sigmoid, Tanh

from .net import DTYPE, LabError, _cpu

FUNCTIONS = {"sigmoid": "sigmoid", "tanh": "tanh", "relu": "ReLU", "leaky_relu": "leaky ReLU",
             "abs": "absolute value"}
DEFAULT_SLOPE = 0.01      # leaky ReLU's slope alpha for x < 0
X_RANGE = (-6.0, 6.0)     # the plotted interval (sigmoid saturates beyond |x| ~ 4.4)
THRESHOLD = 0.05          # saturated: |f'| < 5 % of its maximum
MAX_CHAIN = 30

NOTES = {
    "sigmoid": "\u03c3(x) = 1/(1 + e\u207b\u02e3). Its derivative \u03c3\u2032 = \u03c3(1 \u2212 \u03c3) is at most "
               "0.25 (at x = 0), so a chain of n sigmoid layers multiplies the gradient by at most "
               "0.25\u207f, and far less once units saturate (|x| \u2273 4.4). The outputs lie in (0, 1): not "
               "zero-centred, so the next layer's weight gradients all share one sign. That is why sigmoid "
               "is not recommended for hidden layers (it is fine for a probability at the output).",
    "tanh": "tanh(x) = 2\u03c3(2x) \u2212 1: zero-centred, and tanh\u2032(0) = 1, so it passes gradients "
            "better than sigmoid near 0. It still saturates: for |x| \u2273 2.2 the derivative is below "
            "5 % of its maximum and the unit hardly learns.",
    "relu": "ReLU(x) = max(0, x). No saturation for x > 0: the derivative is exactly 1, so gradients pass "
            "through any number of layers unchanged. For x < 0 the derivative is 0: a unit whose inputs "
            "keep it there gets no gradient at all and stops learning (a \u201cdead\u201d unit).",
    "leaky_relu": "Leaky ReLU: x for x > 0, \u03b1x for x < 0. The small slope \u03b1 on the negative side "
                  "fixes the dead region: the gradient there is \u03b1, small but never zero, so a unit can "
                  "recover.",
    "abs": "|x|: derivative \u22121 for x < 0 and +1 for x > 0, so it never saturates and never dies; "
           "used in the notes' examples. Like ReLU, its derivative jumps at 0 (the engine uses 0 there).",
}


def _layer(name: str, slope: float):
    return {"sigmoid": Sigmoid, "tanh": Tanh, "relu": ReLU, "abs": Abs}[name]() if name != "leaky_relu" \
        else LeakyReLU(slope)


def check(name: Any, slope: Any = DEFAULT_SLOPE) -> tuple[str, float]:
    """(name, slope) or LabError naming the field."""
    if name not in FUNCTIONS:
        raise LabError(f"state.function: expected one of {', '.join(FUNCTIONS)}, got {name!r}")
    if isinstance(slope, bool) or not isinstance(slope, (int, float)) or not 0 <= slope < 1:
        raise LabError(f"state.slope: expected a number from 0 to below 1 (leaky ReLU's \u03b1), got {slope!r}")
    return name, float(slope)


def evaluate(name: str, x, slope: float = DEFAULT_SLOPE) -> tuple[np.ndarray, np.ndarray]:
    """(f(x), f'(x)) for an array x: the engine layer's forward, then its backward of ones."""
    name, slope = check(name, slope)
    x = np.ascontiguousarray(np.atleast_1d(np.asarray(x, dtype=DTYPE)).reshape(1, -1))
    layer = _layer(name, slope)
    layer.build(x.shape[1:], np.random.default_rng(0), DTYPE, _cpu())
    f = np.array(layer.forward(x, train=True), copy=True)
    df = np.array(layer.backward(np.ones_like(x)), copy=True)
    return f[0], df[0]


@dataclass
class Region:
    lo: float
    hi: float
    kind: str        # "dead" (f' = 0), "saturated" (|f'| -> 0), "small slope" (f' = alpha, constant)


def regions(xs: np.ndarray, df: np.ndarray, threshold: float = THRESHOLD) -> list[Region]:
    """Runs of the grid xs where |f'| < threshold * max|f'|, each with its kind."""
    small = np.abs(df) < threshold * np.abs(df).max()
    out = []
    edges = np.flatnonzero(np.diff(np.r_[0, small.astype(np.int8), 0]))
    for a, b in zip(edges[::2], edges[1::2]):
        if b - a < 2:         # a kink (|x| at 0), not a region
            continue
        run = df[a:b]
        kind = "dead" if not run.any() else "small slope" if np.ptp(run) == 0 else "saturated"
        out.append(Region(float(xs[a]), float(xs[b - 1]), kind))
    return out


def chain_derivative(name: str, x: float, n: int, slope: float = DEFAULT_SLOPE) -> float:
    """d out / d x through n layers of one unit each (weight 1, bias 0): the engine's layers
    forward z_{k+1} = f(z_k), then backward: the product of f'(z_k) along the chain."""
    name, slope = check(name, slope)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= MAX_CHAIN:
        raise LabError(f"state.chain: expected a whole number from 1 to {MAX_CHAIN}, got {n!r}")
    B = _cpu()
    layers = [_layer(name, slope) for _ in range(int(n))]
    h = np.array([[float(x)]], dtype=DTYPE)
    for layer in layers:
        layer.build((1,), np.random.default_rng(0), DTYPE, B)
        h = layer.forward(h, train=True)
    g = np.ones_like(h)
    for layer in reversed(layers):
        g = layer.backward(g)
    return float(g[0, 0])


def grid(n: int = 1201) -> np.ndarray:
    return np.linspace(*X_RANGE, n)


def state_numbers(state: dict[str, Any]) -> dict[str, Any]:
    """The numbers a lesson caption may state for the activation page, to 6 significant digits:
    f and df at state.x, max_df = max |f'| over the plotted range and x_max_df where it is, chain_df
    through state.chain layers, saturated_from (the smallest x > 0 of a saturated region)."""
    name, slope = check(state.get("function", "sigmoid"), state.get("slope", DEFAULT_SLOPE))
    x = state.get("x", 0.0)
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not X_RANGE[0] <= x <= X_RANGE[1]:
        raise LabError(f"state.x: expected a number from {X_RANGE[0]:g} to {X_RANGE[1]:g}, got {x!r}")
    f, df = evaluate(name, [x], slope)
    out = {"f": _r(f[0]), "df": _r(df[0]),
           "chain_df": _r(chain_derivative(name, x, state.get("chain", 1), slope))}
    out.update(_curve_numbers(name, slope))
    return out


def _r(v: Any) -> float:
    return float(f"{float(v):.6g}")


@lru_cache(maxsize=32)
def _curve_numbers(name: str, slope: float) -> dict[str, float]:
    """What the whole curve gives (cached: the page asks again at every move of x)."""
    xs = grid()
    _, dfs = evaluate(name, xs, slope)
    i = int(np.argmax(np.abs(dfs)))
    out = {"max_df": _r(abs(dfs[i])), "x_max_df": _r(xs[i])}
    right = [g.lo for g in regions(xs, dfs) if g.kind == "saturated" and g.lo > 0]
    if right:
        out["saturated_from"] = round(right[0], 2)
    return out
