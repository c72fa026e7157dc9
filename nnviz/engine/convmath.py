"""Convolution-lab arithmetic, computed by the engine's own layers (Qt-free).

Every number the convolution lab shows comes from here, and every feature map
here comes from an engine ``Conv2D`` / ``ConvTranspose2D`` / ``MaxPool2D`` /
``AvgPool2D`` run through ``Sequential.forward`` -- the same kernels that train the
networks. The only arithmetic done outside the engine is the textbook output
size formulas, the parameter and connection counts, the written-out dot product
and the transposed convolution's running sum, and the tests check those written-out
sums against the engine (and PyTorch) cell by cell.

Conventions (as in the engine and PyTorch): ``Conv2D`` computes a
*cross-correlation*; the kernel is not flipped. ``flip=True`` flips the kernel
in both axes first, which turns the same layer into a true convolution.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .layers import AvgPool2D, Conv2D, ConvTranspose2D, LayerError, MaxPool2D
from .model import Sequential

__all__ = [
    "WORKED_INPUT", "POOL_INPUT", "KERNEL_PRESETS",
    "conv2d", "conv2d_multi", "pool2d", "output_size", "param_count", "padded",
    "dot_product_terms", "format_dot", "format_number", "apply_to_image", "flipped",
    "size_explanation", "pool_window", "conv_layer_summary", "LayerError",
    "TRANSPOSED_INPUT", "TRANSPOSED_KERNEL", "conv_transpose2d", "transposed_size",
    "transposed_formula", "TransposedStep", "transposed_steps",
    "CONNECTIVITY_KINDS", "connection_ids", "connectivity_count", "connectivity_formula",
    "tied_matrix", "conv1d",
]


# The course notes' worked examples: the 6x6 image of the edge-detection example and the 4x4
# pooling example (max pooling with a 2x2 window and stride 2 gives [[9, 2], [6, 3]]).
WORKED_INPUT = np.array([[3, 0, 1, 2, 7, 4],
                         [1, 5, 8, 9, 3, 1],
                         [2, 7, 2, 5, 1, 3],
                         [0, 1, 3, 1, 7, 8],
                         [4, 2, 1, 6, 2, 8],
                         [2, 4, 5, 2, 3, 9]], dtype=np.float64)
POOL_INPUT = np.array([[1, 3, 2, 1],
                       [2, 9, 1, 1],
                       [1, 3, 2, 3],
                       [5, 6, 1, 2]], dtype=np.float64)
# The transposed-convolution figure of the notes: a 3x3 input, F = 3, stride 2, padding 1 -> 5x5.
# The kernel is the bilinear one times 4, so each input value spreads into its neighbourhood.
TRANSPOSED_INPUT = np.array([[1, 2, 0],
                             [3, 1, 2],
                             [0, 2, 1]], dtype=np.float64)
TRANSPOSED_KERNEL = np.array([[1, 2, 1],
                              [2, 4, 2],
                              [1, 2, 1]], dtype=np.float64)
KERNEL_PRESETS = {
    "vertical edge": [[1, 0, -1], [1, 0, -1], [1, 0, -1]],
    "horizontal edge": [[1, 1, 1], [0, 0, 0], [-1, -1, -1]],
    "Sobel vertical": [[1, 0, -1], [2, 0, -2], [1, 0, -1]],
    "Sobel horizontal": [[1, 2, 1], [0, 0, 0], [-1, -2, -1]],
    "identity": [[0, 0, 0], [0, 1, 0], [0, 0, 0]],
    "box blur": [[1 / 9] * 3] * 3,
    "sharpen": [[0, -1, 0], [-1, 5, -1], [0, -1, 0]],
}


def _grid(a, what):
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 2 or a.size == 0:
        raise ValueError(f"{what} must be a non-empty 2-D array, got shape {a.shape}")
    return a


def flipped(kernel: Any) -> np.ndarray:
    """The kernel rotated by 180 degrees (flipped along both axes)."""
    return np.ascontiguousarray(_grid(kernel, "kernel")[::-1, ::-1])


def _forward(model, x):
    y = model.forward(x[None])
    return np.array(model.B.to_host(y), dtype=np.float64)[0]


def conv2d(grid: Any, kernel: Any, stride: int = 1, padding: int = 0, flip: bool = False) -> np.ndarray:
    """One-channel 2-D convolution of `grid` with `kernel` by an engine Conv2D layer.

    `flip=False` is the cross-correlation that deep-learning libraries compute;
    `flip=True` flips the kernel first (mathematical convolution). Raises
    ``LayerError`` (the engine's message) when the kernel does not fit.
    """
    x = _grid(grid, "input grid")
    k = _grid(kernel, "kernel")
    if flip:
        k = flipped(k)
    layer = Conv2D(1, tuple(k.shape), stride=int(stride), padding=int(padding), bias=False)
    model = Sequential([layer], input_shape=(1,) + x.shape, dtype=np.float64, name="convlab")
    w = layer.params["weight"]
    w[...] = model.B.asarray(k.reshape(w.shape), w.dtype)
    return _forward(model, x[None])[0]


def conv2d_multi(image: Any, weights: Any, stride: int = 1, padding: int = 0) -> np.ndarray:
    """Feature maps of a bank of filters (out, in, kh, kw) on `image` by an engine Conv2D.

    `image` is (H, W) or (C, H, W). A grey image is repeated over the filters'
    input channels; a colour image with a different channel count is averaged
    to grey first. Returns (out, H', W').
    """
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 4:
        raise ValueError(f"weights must be (out, in, kh, kw), got shape {w.shape}")
    x = np.asarray(image, dtype=np.float64)
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3:
        raise ValueError(f"image must be (H, W) or (C, H, W), got shape {x.shape}")
    cin = w.shape[1]
    if x.shape[0] != cin:
        x = np.repeat(x.mean(axis=0, keepdims=True), cin, axis=0)
    layer = Conv2D(w.shape[0], (w.shape[2], w.shape[3]), stride=int(stride),
                   padding=int(padding), bias=False)
    model = Sequential([layer], input_shape=x.shape, dtype=np.float64, name="convlab")
    p = layer.params["weight"]
    p[...] = model.B.asarray(w, p.dtype)
    return _forward(model, np.ascontiguousarray(x))


def pool2d(grid: Any, k: int, stride: int | None = None, mode: str = "max") -> np.ndarray:
    """Max or average pooling of `grid` by the engine's MaxPool2D / AvgPool2D."""
    x = _grid(grid, "input grid")
    cls = {"max": MaxPool2D, "avg": AvgPool2D, "average": AvgPool2D}.get(str(mode).lower())
    if cls is None:
        raise ValueError(f"mode must be 'max' or 'avg', got {mode!r}")
    layer = cls(int(k), int(stride) if stride is not None else None)
    model = Sequential([layer], input_shape=(1,) + x.shape, dtype=np.float64, name="convlab")
    return _forward(model, x[None])[0]


def output_size(n: int, f: int, p: int, s: int) -> tuple[float, int, bool, int]:
    """The output size formula (N - F + 2P) / S + 1.

    Returns ``(value, floor, fits, unused)``: the exact value, the size the
    engine uses (it floors), whether the windows tile the padded input exactly,
    and how many rows/columns at the end of the padded input no window covers.
    A kernel larger than the padded input gives floor 0 and fits False.
    """
    n, f, p, s = int(n), int(f), int(p), int(s)
    if s < 1:
        raise ValueError(f"stride must be >= 1, got {s}")
    span = n - f + 2 * p
    value = span / s + 1
    if span < 0:
        return value, 0, False, n + 2 * p
    rest = span % s
    return value, span // s + 1, rest == 0, rest


def param_count(in_ch: int, out_ch: int, k: int) -> int:
    """Weights and biases of a Conv2D layer with square k x k kernels: (k*k*in + 1) * out."""
    return (int(k) * int(k) * int(in_ch) + 1) * int(out_ch)


def padded(grid: Any, padding: int) -> np.ndarray:
    """The input surrounded by `padding` rows/columns of zeros (as the engine pads)."""
    return np.pad(_grid(grid, "input grid"), int(padding), mode="constant")


def dot_product_terms(grid: Any, kernel: Any, stride: int, padding: int, row: int, col: int,
                      flip: bool = False) -> tuple[list, float]:
    """The products summed into output cell (row, col).

    Returns ``([(input_value, weight), ...], total)`` in row-major kernel order,
    the input values read from the zero-padded input under the window.
    """
    k = _grid(kernel, "kernel")
    if flip:
        k = flipped(k)
    xp = padded(grid, padding)
    kh, kw = k.shape
    r0, c0 = int(row) * int(stride), int(col) * int(stride)
    if r0 < 0 or c0 < 0 or r0 + kh > xp.shape[0] or c0 + kw > xp.shape[1]:
        raise IndexError(f"output cell ({row}, {col}) has no window inside the padded input")
    win = xp[r0:r0 + kh, c0:c0 + kw]
    terms = [(float(win[i, j]), float(k[i, j])) for i in range(kh) for j in range(kw)]
    total = float(sum(a * b for a, b in terms))
    return terms, total


def format_number(v: float, digits: int = 2) -> str:
    """Compact number text with a real minus sign: 3, −1, 0.25, 3.75."""
    v = float(v)
    if not math.isfinite(v):
        return str(v)
    if abs(v - round(v)) < 1e-9:
        s = str(int(round(v)))
    else:
        s = f"{v:.{digits}f}".rstrip("0").rstrip(".")
        if s in ("-0", ""):
            s = "0"
    return s.replace("-", "\u2212")


def _factor(v):
    s = format_number(v)
    return f"({s})" if s.startswith("\u2212") else s


def format_dot(terms: list, total: float | None = None) -> str:
    """'3·1 + 0·0 + 1·(−1) + … = −5' for [(input, weight), ...]."""
    terms = list(terms)
    if total is None:
        total = sum(a * b for a, b in terms)
    body = " + ".join(f"{_factor(a)}\u00b7{_factor(b)}" for a, b in terms) or "0"
    return f"{body} = {format_number(total)}"


def apply_to_image(image2d: Any, kernel: Any, stride: int = 1, padding: int = 0, flip: bool = False) -> np.ndarray:
    """The kernel applied to a grey image by the engine's Conv2D (a feature map)."""
    return conv2d(image2d, kernel, stride=stride, padding=padding, flip=flip)


def size_explanation(n: int, f: int, p: int, s: int) -> tuple[str, str]:
    """Formula text and, when the stride does not fit, the warning about what the engine does."""
    value, floor, fits, unused = output_size(n, f, p, s)
    formula = (f"(N \u2212 F + 2P) / S + 1 = ({n} \u2212 {f} + 2\u00b7{p}) / {s} + 1 = "
               f"{format_number(value)}")
    if floor <= 0:
        return formula, (f"The {f}\u00d7{f} kernel is larger than the padded "
                         f"{n + 2 * p}\u00d7{n + 2 * p} input: the engine refuses this layer.")
    if fits:
        return f"{formula} \u2192 {floor}", ""
    which = ("the last row and the last column" if unused == 1
             else f"the last {unused} rows and the last {unused} columns")
    return (f"{formula} \u2192 {floor}",
            f"\u26a0 Stride {s} does not fit: {format_number(value)} is not a whole number. "
            f"The engine floors it to {floor}\u00d7{floor}: {which} of the padded "
            f"{n + 2 * p}\u00d7{n + 2 * p} input are never covered by a window and are "
            f"ignored.")


def pool_window(grid: Any, k: int, stride: int, row: int, col: int) -> list[float]:
    """The input values pooled into output cell (row, col), row-major."""
    x = _grid(grid, "input grid")
    k, s = int(k), int(stride)
    r0, c0 = int(row) * s, int(col) * s
    if r0 < 0 or c0 < 0 or r0 + k > x.shape[0] or c0 + k > x.shape[1]:
        raise IndexError(f"pooling output cell ({row}, {col}) has no window inside the input")
    return [float(v) for v in x[r0:r0 + k, c0:c0 + k].ravel()]


def conv_layer_summary(in_ch: int, out_ch: int, k: int, stride: int = 1, padding: int = 0, height: int = 32,
                       width: int = 32) -> dict:
    """Output shape and parameter count of Conv2D(out_ch, k, stride, padding) on (in_ch, H, W).

    Both come from building the engine layer; ``formula`` is (k*k*in + 1)*out for
    comparison. Raises ``LayerError`` with the engine's message when it cannot be built.
    """
    layer = Conv2D(int(out_ch), int(k), stride=int(stride), padding=int(padding))
    model = Sequential([layer], input_shape=(int(in_ch), int(height), int(width)),
                       dtype=np.float32, name="convlab")
    c, oh, ow = model.output_shape
    return {"output_shape": (int(oh), int(ow), int(c)), "params": int(model.param_count()),
            "weights": int(layer.params["weight"].size),
            "biases": int(layer.params["bias"].size),
            "formula": param_count(in_ch, out_ch, k), "notes": list(layer.notes)}


# ---- transposed convolution ---------------------------------------------------------------
def transposed_size(n: int, f: int, p: int, s: int) -> int:
    """Output size of a transposed convolution: (N - 1)*S - 2P + F (<= 0: nothing is left)."""
    return (int(n) - 1) * int(s) - 2 * int(p) + int(f)


def transposed_formula(n: int, f: int, p: int, s: int) -> str:
    return (f"(N \u2212 1)\u00b7S \u2212 2P + F = ({n} \u2212 1)\u00b7{s} \u2212 2\u00b7{p} + {f} = "
            f"{transposed_size(n, f, p, s)}")


def conv_transpose2d(grid: Any, kernel: Any, stride: int = 1, padding: int = 0) -> np.ndarray:
    """One-channel transposed convolution by an engine ConvTranspose2D layer (as PyTorch's
    conv_transpose2d: the kernel is not flipped). Raises ``LayerError`` when the padding
    crops the whole output."""
    x = _grid(grid, "input grid")
    k = _grid(kernel, "kernel")
    layer = ConvTranspose2D(1, tuple(k.shape), stride=int(stride), padding=int(padding), bias=False)
    model = Sequential([layer], input_shape=(1,) + x.shape, dtype=np.float64, name="convlab")
    w = layer.params["weight"]
    w[...] = model.B.asarray(k.reshape(w.shape), w.dtype)
    return _forward(model, x[None])[0]


@dataclass(frozen=True)
class TransposedStep:
    """One input cell's contribution. ``top``/``left`` place the scaled kernel in the
    uncropped output ((N - 1)*S + F square); ``full`` is that running sum after this step,
    ``running`` the same with the padding's P rows/columns cropped from each side."""

    row: int
    col: int
    value: float
    top: int
    left: int
    contribution: np.ndarray
    full: np.ndarray
    running: np.ndarray


def transposed_steps(grid: Any, kernel: Any, stride: int = 1, padding: int = 0) -> list[TransposedStep]:
    """The transposed convolution written out, one input cell at a time (row-major).

    Each input value scales the kernel, which is added into the output at (row*S, col*S);
    the padding crops P rows and columns from each side at the end. The last step's
    ``running`` equals :func:`conv_transpose2d` (the tests hold it to the engine and torch).
    """
    x = _grid(grid, "input grid")
    k = _grid(kernel, "kernel")
    s, p = int(stride), int(padding)
    if s < 1 or p < 0:
        raise ValueError(f"stride must be >= 1 and padding >= 0, got stride {s}, padding {p}")
    kh, kw = k.shape
    full = np.zeros(((x.shape[0] - 1) * s + kh, (x.shape[1] - 1) * s + kw))
    if full.shape[0] - 2 * p <= 0 or full.shape[1] - 2 * p <= 0:
        raise ValueError(f"padding {p} crops the whole {full.shape[0]}x{full.shape[1]} output")
    steps = []
    for r in range(x.shape[0]):
        for c in range(x.shape[1]):
            part = x[r, c] * k
            full[r * s:r * s + kh, c * s:c * s + kw] += part
            steps.append(TransposedStep(r, c, float(x[r, c]), r * s, c * s, part, full.copy(),
                                        full[p:full.shape[0] - p, p:full.shape[1] - p].copy()))
    return steps


# ---- connectivity: dense, sparse, tied (1-D) ----------------------------------------------
CONNECTIVITY_KINDS = ("dense", "sparse", "tied")


def _check_field(n: int, k: int) -> tuple[int, int]:
    n, k = int(n), int(k)
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if k < 1 or k % 2 == 0 or k > 2 * n - 1:
        raise ValueError(f"receptive field must be odd, from 1 to 2n - 1 = {2 * n - 1}, got {k}")
    return n, k


def connection_ids(n: int, k: int, kind: str) -> np.ndarray:
    """Which weight connects input j to output i: an (n, n) array of weight ids, -1 for none.

    dense: every pair its own weight; sparse: only |i - j| <= (k - 1)/2, each edge its own
    weight; tied: the same edges, the weight depending only on the offset j - i (a 1-D
    convolution with zero padding (k - 1)/2, so n outputs).
    """
    n, k = _check_field(n, k)
    i, j = np.indices((n, n))
    r = (k - 1) // 2
    near = np.abs(j - i) <= r
    if kind == "dense":
        return i * n + j
    if kind == "sparse":
        ids = np.full((n, n), -1)
        ids[near] = np.arange(int(near.sum()))
        return ids
    if kind == "tied":
        return np.where(near, j - i + r, -1)
    raise ValueError(f"kind must be one of {', '.join(CONNECTIVITY_KINDS)}, got {kind!r}")


def connectivity_count(n: int, k: int, kind: str) -> int:
    """Distinct weights (no biases): dense n*n, sparse n*k - r(r + 1) with r = (k - 1)/2
    (the edges that fall off the ends are missing: 3n - 2 for k = 3), tied k."""
    n, k = _check_field(n, k)
    if kind not in CONNECTIVITY_KINDS:
        raise ValueError(f"kind must be one of {', '.join(CONNECTIVITY_KINDS)}, got {kind!r}")
    r = (k - 1) // 2
    return {"dense": n * n, "sparse": n * k - r * (r + 1), "tied": k}[kind]


def connectivity_formula(n: int, k: int, kind: str) -> str:
    """The count written out: 'n·n = 5·5 = 25', 'n·k − r(r + 1) = 5·3 − 1·2 = 13', 'k = 3'."""
    c = connectivity_count(n, k, kind)
    r = (int(k) - 1) // 2
    if kind == "dense":
        return f"n\u00b7n = {n}\u00b7{n} = {c}"
    if kind == "sparse":
        return f"n\u00b7k \u2212 r(r + 1) = {n}\u00b7{k} \u2212 {r}\u00b7{r + 1} = {c}"
    return f"k = {c}"


def tied_matrix(weights: Any, n: int) -> np.ndarray:
    """The (n, n) dense weight matrix of a tied layer: W[i, j] = weights[j - i + r]."""
    w = np.asarray(weights, dtype=np.float64).ravel()
    ids = connection_ids(n, w.size, "tied")
    return np.where(ids >= 0, w[np.clip(ids, 0, None)], 0.0)


def conv1d(x: Any, weights: Any) -> np.ndarray:
    """1-D convolution of x with zero padding (k - 1)/2 (n outputs), by an engine Conv2D
    with a 1 x k kernel."""
    x = np.asarray(x, dtype=np.float64).ravel()
    w = np.asarray(weights, dtype=np.float64).ravel()
    _check_field(x.size, w.size)
    layer = Conv2D(1, (1, w.size), padding=(0, (w.size - 1) // 2), bias=False)
    model = Sequential([layer], input_shape=(1, 1, x.size), dtype=np.float64, name="convlab")
    p = layer.params["weight"]
    p[...] = model.B.asarray(w.reshape(p.shape), p.dtype)
    return _forward(model, x.reshape(1, 1, -1))[0, 0]
