"""Per-layer histograms of weights and gradients, and their history over training (the
TensorBoard "distributions" picture): a recorder that keeps one histogram per layer and
record, and a re-binning onto one value axis for drawing them as a heat map over time."""
from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from nnviz.engine import Sequential


@dataclass
class LayerHistogram:
    layer: str                  # e.g. "3 Conv2D"
    edges: np.ndarray           # (bins + 1,)
    counts: np.ndarray          # (bins,) int64; counts.sum() + nonfinite == size
    size: int                   # the layer's parameter count
    nonfinite: int = 0          # NaN / inf values (not in any bin)


def _layer_arrays(model: Sequential, grads: bool) -> list[tuple[str, list[np.ndarray | None]]]:
    """[(label, host arrays)] per top-level layer with parameters (nested ones included)."""
    out = []
    for layer in model.layers:
        stack, arrays = [layer], []
        while stack:
            l = stack.pop(0)
            for k, p in l.params.items():
                a = l.grads.get(k) if grads else p
                arrays.append(None if a is None else np.asarray(model.B.to_host(a)))
            stack.extend(getattr(l, "children", ()))
        if arrays:
            out.append((f"{layer.index} {layer.type}", arrays))
    return out


def histogram(values: np.ndarray, bins: int = 40, label: str = "") -> LayerHistogram:
    v = np.asarray(values, np.float32).ravel()
    ok = np.isfinite(v)
    good = v if ok.all() else v[ok]
    lo, hi = (float(good.min()), float(good.max())) if good.size else (0.0, 0.0)
    if hi - lo < 1e-12:
        lo, hi = lo - 0.5, hi + 0.5
    counts, edges = np.histogram(good, bins=int(bins), range=(lo, hi))
    return LayerHistogram(label, edges, counts.astype(np.int64), int(v.size), int(v.size - good.size))


def weight_histograms(model: Sequential, bins: int = 40) -> list[LayerHistogram]:
    """One histogram of all parameters (weights and biases) of each layer with any."""
    return [histogram(np.concatenate([a.ravel() for a in arrays if a is not None]), bins, label)
            for label, arrays in _layer_arrays(model, grads=False)]


def gradient_histograms(model: Sequential, bins: int = 40) -> list[LayerHistogram]:
    """Histograms of the latest gradients; layers without gradients yet are left out."""
    return [histogram(np.concatenate([a.ravel() for a in arrays if a is not None]), bins, label)
            for label, arrays in _layer_arrays(model, grads=True)
            if all(a is not None for a in arrays)]


def snapshot_arrays(model: Sequential) -> dict[str, dict[str, np.ndarray]]:
    """Flat host copies {"weights"|"gradients": {layer: values}}: cheap to take between
    training steps; histograms are then made elsewhere (HistogramHistory.add)."""
    snap: dict[str, dict[str, np.ndarray]] = {"weights": {}, "gradients": {}}
    for kind, grads in (("weights", False), ("gradients", True)):
        for label, arrays in _layer_arrays(model, grads):
            if all(a is not None for a in arrays):
                snap[kind][label] = np.concatenate([np.ravel(a) for a in arrays
                                                    if a is not None]).astype(
                    np.float32, copy=True)
    return snap


def rebin(hist: LayerHistogram, edges: np.ndarray) -> np.ndarray:
    """Counts moved onto new bin edges, spreading each old bin evenly over its range."""
    cdf = np.concatenate([[0.0], np.cumsum(hist.counts, dtype=np.float64)])
    return np.diff(np.interp(edges, hist.edges, cdf, left=0.0, right=cdf[-1]))


class HistogramHistory:
    """Histograms per layer over training steps, bounded (every other record is dropped
    when full).  Thread-safe: a worker adds, the UI reads."""

    def __init__(self, bins: int = 120, max_records: int = 200):
        self.bins = int(bins)
        self.max_records = int(max_records)
        self._lock = threading.Lock()
        self.clear()

    def clear(self) -> None:
        with self._lock:
            self.steps: list[int] = []
            self.records: dict[str, list[dict[str, LayerHistogram]]] = {
                "weights": [], "gradients": []}
            self.version = 0

    def add(self, step: int, arrays: dict[str, dict[str, np.ndarray]]) -> None:
        hists = {kind: {label: histogram(v, self.bins, label) for label, v in layers.items()}
                 for kind, layers in arrays.items()}
        with self._lock:
            if self.steps and step <= self.steps[-1]:
                if step < self.steps[-1]:      # a new run: start again
                    self.steps, self.records = [], {"weights": [], "gradients": []}
                else:
                    return
            self.steps.append(int(step))
            for kind in ("weights", "gradients"):
                self.records[kind].append(hists.get(kind, {}))
            if len(self.steps) > self.max_records:
                self.steps = self.steps[1::2]
                self.records = {k: v[1::2] for k, v in self.records.items()}
            self.version += 1

    def add_model(self, step: int, model: Sequential) -> None:
        self.add(step, snapshot_arrays(model))

    def layers(self) -> list[str]:
        with self._lock:
            seen: dict[str, None] = {}
            for rec in self.records["weights"] + self.records["gradients"]:
                seen.update(dict.fromkeys(rec))
            return list(seen)

    def density(self, kind: str, layer: str, bins: int = 80, span=None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(steps (T,), value edges (bins + 1,), fraction of the layer's values (T, bins))
        on one value axis: `span` (lo, hi), or one spanning every record (then each row
        sums to 1; values outside a span are left out)."""
        with self._lock:
            pairs = [(s, r[layer]) for s, r in zip(self.steps, self.records[kind]) if layer in r]
        if not pairs:
            return np.zeros(0, np.int64), np.zeros(bins + 1), np.zeros((0, bins))
        lo = min(h.edges[0] for _, h in pairs) if span is None else float(span[0])
        hi = max(h.edges[-1] for _, h in pairs) if span is None else float(span[1])
        if hi - lo < 1e-12:
            lo, hi = lo - 0.5, hi + 0.5
        edges = np.linspace(lo, hi, bins + 1)
        dens = np.stack([rebin(h, edges) / max(h.size, 1) for _, h in pairs])
        return np.asarray([s for s, _ in pairs], np.int64), edges, dens

    def quantiles(self, kind: str, layer: str, qs=(0.5,)) -> tuple[np.ndarray, np.ndarray]:
        """(steps, (T, len(qs)) values) read off each record's cumulative counts."""
        with self._lock:
            pairs = [(s, r[layer]) for s, r in zip(self.steps, self.records[kind]) if layer in r]
        out = []
        for _, h in pairs:
            cdf = np.concatenate([[0.0], np.cumsum(h.counts)]) / max(h.counts.sum(), 1)
            out.append(np.interp(qs, cdf, h.edges))
        return (np.asarray([s for s, _ in pairs], np.int64),
                np.asarray(out, np.float64).reshape(len(pairs), len(qs)))
