"""Activation maximisation: gradient ascent on the input, from seeded noise, towards the
image that excites a filter (its mean pre-activation) or a class (its logit) most.

Regularisation keeps the images readable: L2 decay pulls pixels back to 0 (the data mean
for normalised inputs), a small Gaussian blur every few steps removes high-frequency
noise, and a random shift (jitter) of a pixel or two each step stops the ascent from
exploiting exact pixel positions.  Every filter of a layer is one image of one batch.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from nnviz.engine import Sequential

from .core import (
    Cancel,
    ExplainError,
    check_layer,
    is_cancelled,
    logits_of,
    one_hot_logit_grad,
    require_image_model,
    walk_backward,
    walk_forward,
)

Progress = Callable[[int, int, np.ndarray], None]


@dataclass
class Maximization:
    images: np.ndarray           # (F, C, H, W) one image per unit, in input units
    units: list[int]             # the filter (or class) of each image
    layer: int | None            # the Conv2D layer, None for classes
    trace: np.ndarray            # (steps done, F) objective at each step (jittered input)
    start: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (F,) on the noise
    final: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (F,) on the result
    box: tuple[int, int, int, int] = (0, 0, 0, 0)   # rows r0:r1, cols c0:c1 the unit sees
    steps: int = 0
    cancelled: bool = False


def gaussian_blur(x: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur over the last two axes (edges repeated)."""
    r = max(1, int(np.ceil(2 * sigma)))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k = (k / k.sum()).astype(x.dtype)
    for axis in (-2, -1):
        pad = [(0, 0)] * x.ndim
        pad[axis] = (r, r)
        xp = np.pad(x, pad, mode="edge")
        n = x.shape[axis]
        x = sum(k[i] * np.take(xp, np.arange(i, i + n), axis=axis) for i in range(2 * r + 1))
    return x


def _objective(model: Sequential, x: np.ndarray, layer: int | None, units: np.ndarray,
               centre: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(objective per image, d objective / d x) by one forward and one backward."""
    n = len(x)
    out, _ = walk_forward(model, x, stop=layer)
    y = np.array(model.B.to_host(out), np.float32)
    if layer is None:
        logits = y.reshape(n, -1)
        value = logits_of(logits, units)
        g = one_hot_logit_grad(logits, units).reshape(y.shape)
    elif centre:
        r, c = y.shape[2] // 2, y.shape[3] // 2
        value = y[np.arange(n), units, r, c]
        g = np.zeros_like(y)
        g[np.arange(n), units, r, c] = 1.0
    else:
        hw = y.shape[2] * y.shape[3]
        value = y[np.arange(n), units].reshape(n, -1).mean(axis=1)
        g = np.zeros_like(y)
        g[np.arange(n), units] = 1.0 / hw
    gx, _ = walk_backward(model, g, start=len(model.layers) - 1 if layer is None else layer)
    return value, gx.reshape(x.shape)


def _support(g: np.ndarray) -> tuple[int, int, int, int]:
    """Bounding box (r0, r1, c0, c1) of the pixels with a non-zero gradient."""
    seen = np.abs(g).sum(axis=(0, 1)) > 0
    rows, cols = np.flatnonzero(seen.any(axis=1)), np.flatnonzero(seen.any(axis=0))
    if not rows.size:
        return 0, g.shape[2], 0, g.shape[3]
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def receptive_box(model: Sequential, layer: int | None, seed: int = 0
                  ) -> tuple[int, int, int, int]:
    """The input rows/cols that the centre neuron of Conv2D `layer` sees (None: all)."""
    if layer is None:
        return 0, model.input_shape[1], 0, model.input_shape[2]
    x = np.random.default_rng(seed).normal(0, 0.1, (1, *model.input_shape)).astype(np.float32)
    units = np.arange(model.layers[layer].output_shape[0])[:1]
    return _support(_objective(model, x, layer, units)[1])


def maximize(model: Sequential, layer: int | None = None, units: Sequence[int] | None = None,
             steps: int = 200, lr: float = 0.1, l2: float = 0.01, blur_sigma: float = 0.5,
             blur_every: int = 4, jitter: int = 1, seed: int = 0, init_scale: float = 0.1,
             bounds: tuple[float, float] | None = None, progress: Progress | None = None,
             cancel: Cancel | None = None) -> Maximization:
    """Images that excite filters `units` of Conv2D `layer` (None: classes) most.

    A filter's objective is its pre-activation at the centre of its map (one neuron: the
    mean over the map would favour a flat image for most first-layer filters); `box` is
    that neuron's receptive field, where the picture is.  units defaults to every filter
    of the layer (every class).  Each step moves the input
    by `lr` times the gradient scaled to unit RMS per image.  bounds: clip the pixels (in
    input units).  progress(step, steps, images) after each step; cancel() -> True stops
    early (the result so far comes back with cancelled=True).  Same seed, same images.
    Overwrites the model's layer caches and `grads` (use clone_model on a training model).
    """
    require_image_model(model, "activation maximisation")
    if layer is not None:
        layer = check_layer(model, layer, "activation maximisation")
        n_units = model.layers[layer].output_shape[0]
        what = f"layer {layer} has {n_units} filters"
    else:
        n_units = max(2, int(np.prod(model.output_shape)))
        what = f"{model.name} has {n_units} classes"
    unit = np.arange(n_units) if units is None else np.asarray(units, np.int64).reshape(-1)
    if unit.size == 0 or unit.min() < 0 or unit.max() >= n_units:
        raise ExplainError(f"activation maximisation: units {unit.tolist()} out of range; {what}")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ExplainError(f"activation maximisation: steps must be an integer >= 1, got {steps!r}")
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, init_scale, (len(unit), *model.input_shape)).astype(np.float32)
    trace = []
    start, g0 = _objective(model, x, layer, unit)
    box = _support(g0)
    done, cancelled = 0, False
    for step in range(int(steps)):
        if is_cancelled(cancel):
            cancelled = True
            break
        shift = tuple(int(s) for s in rng.integers(-jitter, jitter + 1, 2)) if jitter else (0, 0)
        xs = np.roll(x, shift, axis=(2, 3)) if jitter else x
        value, g = _objective(model, xs, layer, unit)
        if jitter:
            g = np.roll(g, (-shift[0], -shift[1]), axis=(2, 3))
        rms = np.sqrt((g.astype(np.float64) ** 2).reshape(len(x), -1).mean(axis=1)) + 1e-12
        x = x + (lr / rms).astype(np.float32)[:, None, None, None] * g
        if l2:
            x *= np.float32(1.0 - l2)
        if blur_sigma and blur_every and (step + 1) % blur_every == 0:
            x = gaussian_blur(x, blur_sigma)
        if bounds is not None:
            np.clip(x, bounds[0], bounds[1], out=x)
        trace.append(value)
        done = step + 1
        if progress is not None:
            progress(done, int(steps), x)
    final, _ = _objective(model, x, layer, unit)
    return Maximization(images=x, units=[int(u) for u in unit], layer=layer,
                        trace=np.asarray(trace, np.float32).reshape(done, len(unit)),
                        start=start, final=final, steps=done, cancelled=cancelled, box=box)
