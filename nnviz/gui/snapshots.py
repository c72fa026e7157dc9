"""What the training thread hands the views: typed snapshots of copies (numpy only, no Qt).

A snapshot is made in the worker thread between two steps and never shared back: every
array in it is a copy the UI thread owns. The worker fills in ``status``; the snapshot
functions of the workspaces fill in the rest.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from nnviz.explain.batchnorm import BatchNormStats


@dataclass
class Status:
    """Where training stands (set by the worker for every snapshot)."""
    steps: int = 0
    epoch: int = 0
    steps_per_s: float = 0.0
    elapsed: float = 0.0
    running: bool = False


@dataclass(kw_only=True)
class Snapshot:
    status: Status = field(default_factory=Status)


@dataclass
class HistoryCopy:
    """A trainer's history tables as float arrays: per step and per epoch."""
    steps: dict[str, np.ndarray] = field(default_factory=dict)
    epochs: dict[str, np.ndarray] = field(default_factory=dict)

    def last_test_accuracy(self) -> float | None:
        a = self.epochs.get("test_accuracy")
        return float(a[-1]) if a is not None and len(a) else None


class HistoryCopier:
    """Copies a growing History cheaply: only the points added since the last copy are
    converted from Python lists; the rest is kept in arrays that grow by doubling."""

    def __init__(self):
        self._buf = {}       # (table, key) -> float array, capacity >= used
        self._n = {}         # table -> points converted
        self._stride = None

    def _table(self, name, table):
        n0 = self._n.get(name, 0)
        keys = list(table)
        n = len(table[keys[0]]) if keys else 0
        if n < n0:           # shrunk (a new history): start over
            n0 = 0
        for k in keys:
            buf = self._buf.get((name, k))
            if buf is None or len(buf) < n:
                new = np.empty(max(64, 2 * n), np.float64)
                if buf is not None and n0:
                    new[:n0] = buf[:n0]
                buf = self._buf[(name, k)] = new
            if n > n0:
                buf[n0:n] = table[k][n0:n]
        self._n[name] = n
        return {k: self._buf[(name, k)][:n].copy() for k in keys}

    def copy(self, history) -> HistoryCopy:
        if history.stride != self._stride:    # decimated: every point changed
            self._stride = history.stride
            self._n.clear()
        return HistoryCopy(steps=self._table("steps", history.steps),
                           epochs=self._table("epochs", history.epochs))


# ---- Playground --------------------------------------------------------------------------
@dataclass
class RunSnapshot:
    """One Playground network: decision boundary, losses, neuron thumbnails."""
    label: str
    steps: int
    epoch: int
    rgb: np.ndarray                       # (res, res, 3) uint8, row 0 = bottom of the plane
    probs: np.ndarray                     # (res, res, classes)
    contour: np.ndarray | None            # (M, 2, 2) segments of the 0.5 level, 2 classes
    history: HistoryCopy
    train_loss: float
    train_acc: float
    test_loss: float
    test_acc: float
    neuron_rgb: list[np.ndarray] = field(default_factory=list)   # per hidden layer (n, r, r, 3)
    output_rgb: np.ndarray | None = None
    weights: list[np.ndarray] = field(default_factory=list)
    # per Dropout layer: units dropped in the last training step (first example), None before one
    dropped: list[np.ndarray | None] = field(default_factory=list)


@dataclass(kw_only=True)
class PlaygroundSnapshot(Snapshot):
    run: RunSnapshot


@dataclass(kw_only=True)
class CompareSnapshot(Snapshot):
    runs: list[RunSnapshot]


# ---- CNN inspector -----------------------------------------------------------------------
@dataclass
class Inspection:
    """One input forwarded: its feature maps and class probabilities."""
    input: np.ndarray                     # (C, H, W)
    maps: list[tuple[str, np.ndarray]]    # (layer label, (C, H, W))
    probs: np.ndarray
    token: int = 0


@dataclass
class Confusion:
    matrix: np.ndarray                    # (k, k) counts, rows = true class
    pred: np.ndarray
    index: np.ndarray                     # test-set indices of the rows of pred / y
    y: np.ndarray
    n_total: int
    epoch: int = 0

    @property
    def accuracy(self) -> float:
        n = int(self.matrix.sum())
        return float(np.trace(self.matrix)) / max(n, 1)


@dataclass(kw_only=True)
class InspectorSnapshot(Snapshot):
    step: int
    epoch: int
    seconds: float
    samples: int
    filters: list[tuple[str, np.ndarray]]
    grad_steps: np.ndarray
    grad_norms: dict[str, np.ndarray]
    history: HistoryCopy
    inspect: Inspection | None = None
    confusion: Confusion | None = None
    batchnorm: BatchNormStats | None = None   # only while the Batch norm view is shown
    batchnorm_error: str = ""
