"""What a BatchNorm layer sees and does on one training batch, per channel (Qt-free).

``batchnorm_stats(model, x, index)`` runs the batch through the layers before BatchNorm
layer ``index`` and through that layer in training mode, as the next training step
would, and returns per channel: the batch mean and variance over (N, H, W) (over N after
a Dense layer), the running mean and variance before and after this batch's update, and
histograms of the values entering the layer, after normalisation (x̂, before γ and β) and
leaving it (γ·x̂ + β).  The model is left as it was: running statistics are restored and
dropout draws from a copy of the model's generator, so training goes on exactly as if
nothing had looked.  The layer's caches are overwritten (as any forward pass does); call
it between training steps.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nnviz.engine import BatchNorm, LayerError, Sequential


@dataclass
class ChannelHistograms:
    edges: np.ndarray           # (C, bins + 1): each channel on its own min..max
    counts: np.ndarray          # (C, bins) int64


@dataclass
class BatchNormStats:
    layer: int                  # the layer's index in the model
    label: str                  # e.g. "1 BatchNorm"
    input_shape: tuple          # per sample: (C, H, W) or (features,)
    batch: int                  # N
    per_channel: int            # values per channel: N*H*W (N after a Dense layer)
    momentum: float
    eps: float
    mean: np.ndarray            # (C,) batch mean over (N, H, W)
    var: np.ndarray             # (C,) biased batch variance: what the normalisation divides by
    running_mean: np.ndarray    # (C,) before this batch
    running_var: np.ndarray
    running_mean_next: np.ndarray   # (C,) after this batch's update, as the engine computes it
    running_var_next: np.ndarray
    gamma: np.ndarray
    beta: np.ndarray
    hist_in: ChannelHistograms
    hist_norm: ChannelHistograms
    hist_out: ChannelHistograms
    norm_mean: np.ndarray = field(default_factory=lambda: np.zeros(0))   # of x̂: ~0
    norm_var: np.ndarray = field(default_factory=lambda: np.zeros(0))    # of x̂: ~1 (less eps)
    step: int = -1              # the training step it was taken at, where the caller knows it

    @property
    def channels(self) -> int:
        return int(self.mean.shape[0])


def batchnorm_layers(model: Sequential) -> list[tuple[int, str]]:
    """[(index, label)] of the model's top-level BatchNorm layers."""
    return [(l.index, f"{l.index} {l.type}") for l in model.layers if isinstance(l, BatchNorm)]


def per_channel(a: np.ndarray) -> np.ndarray:
    """(N, C, H, W) or (N, C) -> (C, N*H*W): one row of values per channel."""
    a = np.asarray(a)
    if a.ndim == 2:
        return a.T
    return np.moveaxis(a, 1, 0).reshape(a.shape[1], -1)


def channel_histograms(rows: np.ndarray, bins: int = 40) -> ChannelHistograms:
    """numpy.histogram of each row on its own min..max (one call per channel, not per
    value: 4x faster than one vectorised bincount over all channels). NaN and inf values
    (a diverged run) are left out of the counts."""
    v = np.asarray(rows)
    finite = bool(np.isfinite(v).all())
    edges = np.empty((v.shape[0], bins + 1))
    counts = np.zeros((v.shape[0], bins), np.int64)
    for c, row in enumerate(v):
        if not finite:
            row = row[np.isfinite(row)]
        lo, hi = (float(row.min()), float(row.max())) if row.size else (0.0, 0.0)
        if hi - lo < 1e-12:                     # a constant channel: one bin in the middle
            lo, hi = lo - 0.5, hi + 0.5
        counts[c], edges[c] = np.histogram(row, bins, (lo, hi))
    return ChannelHistograms(edges=edges, counts=counts)


def batchnorm_stats(model: Sequential, x: Any, index: int, bins: int = 40) -> BatchNormStats:
    """See the module docstring.  x: a batch (N, *model.input_shape)."""
    layers = model.layers
    index = int(index)
    bn = layers[index] if 0 <= index < len(layers) else None
    if not isinstance(bn, BatchNorm):
        found = ", ".join(str(i) for i, _ in batchnorm_layers(model)) or "none"
        raise LayerError(f"{model.name}: layer {index} is not a BatchNorm layer "
                         f"(BatchNorm layers: {found})")
    B = model.B
    x = B.asarray(x, model.dtype)
    if tuple(x.shape[1:]) != tuple(model.input_shape):
        raise LayerError(f"{model.name}: input has shape {tuple(x.shape[1:])} per sample, "
                         f"the model expects {tuple(model.input_shape)}")
    saved = [(a, np.array(B.to_host(a), copy=True)) for _, a in model.named_buffers()]
    rngs = [(l, l.rng) for l in _walk(layers[:index]) if hasattr(l, "rng")]
    running_mean = saved_of(saved, bn.buffers["running_mean"])
    running_var = saved_of(saved, bn.buffers["running_var"])
    try:
        if rngs:
            scratch = copy.deepcopy(model.rng)
            for l, _ in rngs:
                l.rng = scratch
        h = x
        for layer in layers[:index]:
            h = layer.forward(h, True)
        y = bn.forward(h, True)
        xin = np.asarray(B.to_host(h))
        xhat = np.asarray(B.to_host(bn._cache["xhat"]))
        yout = np.asarray(B.to_host(y))
        mean_next = np.array(B.to_host(bn.buffers["running_mean"]), copy=True)
        var_next = np.array(B.to_host(bn.buffers["running_var"]), copy=True)
    finally:
        for l, r in rngs:
            l.rng = r
        for a, host in saved:
            a[...] = B.asarray(host, a.dtype)
    rows_in, rows_norm = per_channel(xin), per_channel(xhat)
    v64 = rows_in.astype(np.float64)
    n64 = rows_norm.astype(np.float64)
    return BatchNormStats(
        layer=index, label=f"{index} {bn.type}", input_shape=tuple(bn.input_shape),
        batch=int(xin.shape[0]), per_channel=int(rows_in.shape[1]), momentum=bn.momentum,
        eps=bn.eps, mean=v64.mean(axis=1), var=v64.var(axis=1),
        running_mean=running_mean, running_var=running_var,
        running_mean_next=mean_next, running_var_next=var_next,
        gamma=np.array(B.to_host(bn.params["weight"]), copy=True),
        beta=np.array(B.to_host(bn.params["bias"]), copy=True),
        hist_in=channel_histograms(rows_in, bins), hist_norm=channel_histograms(rows_norm, bins),
        hist_out=channel_histograms(per_channel(yout), bins),
        norm_mean=n64.mean(axis=1), norm_var=n64.var(axis=1))


def saved_of(saved: list, array: Any) -> np.ndarray:
    """The host copy saved for `array` (matched by identity)."""
    return next(host for a, host in saved if a is array).copy()


def _walk(layers):
    for layer in layers:
        yield layer
        yield from _walk(getattr(layer, "children", ()))
