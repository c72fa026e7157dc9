"""Kernel warm-up in the background: the window shows first, Numba compiles behind it.

A first start compiles every kernel (tens of seconds); a warm start loads them from the
disk cache (milliseconds each). Groups compile in order, the Playground's first; a
workspace that needs a group asks ``when_ready(group, fn)`` and runs fn once the group is
compiled (at once when no warm-up runs: tests, a workspace built on its own). Progress
is a Qt signal; the app shows it in the status bar.
"""
from __future__ import annotations

import logging
import threading
import time

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

log = logging.getLogger("nnviz")

# group -> (label, model spec, batch sizes): a forward and backward pass of each compiles
# the kernels the workspace's first snapshots and steps use
GROUPS = {
    "mlp": ("Playground networks", {
        "name": "warm-mlp", "input_shape": [2],
        "layers": [{"type": "Dense", "out_features": 4}, {"type": "Tanh"},
                   {"type": "Dense", "out_features": 4}, {"type": "ReLU"},
                   {"type": "Dense", "out_features": 2}]}),
    "cnn": ("convolutions", {
        "name": "warm-cnn", "input_shape": [1, 12, 12],
        # 1 -> 18 channels takes the direct convolution, 18 -> 2 (162 inputs per output)
        # im2col + GEMM: both CPU paths compile here
        "layers": [{"type": "Conv2D", "out_channels": 18, "kernel_size": 3, "padding": 1},
                   {"type": "ReLU"}, {"type": "MaxPool2D", "kernel_size": 2},
                   {"type": "Conv2D", "out_channels": 2, "kernel_size": 3}, {"type": "Tanh"},
                   {"type": "AvgPool2D", "kernel_size": 2},
                   {"type": "Flatten"}, {"type": "Dense", "out_features": 2}]}),
    "convlab": ("the convolution lab", None),
}


def _warm_convlab():
    """The float64 convolution and pooling the Convolution lab's panels compute with."""
    from nnviz.engine import convmath
    g = np.arange(36, dtype=np.float64).reshape(6, 6)
    for flip in (False, True):
        convmath.conv2d(g, np.ones((3, 3)), stride=1, padding=1, flip=flip)
    convmath.conv2d_multi(np.zeros((3, 8, 8)), np.ones((2, 3, 3, 3)))
    for mode in ("max", "avg"):
        convmath.pool2d(g, 2, mode=mode)


def warm_group(name):
    """Compile (or load from the cache) one group's kernels: a training step and the
    forward passes a snapshot makes."""
    if name == "convlab":
        return _warm_convlab()
    from nnviz.data.dataset import Dataset
    from nnviz.engine import model_from_spec
    from nnviz.train import Trainer
    _, spec = GROUPS[name]
    rng = np.random.default_rng(0)
    shape = tuple(spec["input_shape"])
    x = rng.normal(size=(8, *shape)).astype(np.float32)
    y = np.arange(8) % 2
    data = Dataset(name="warm", x_train=x, y_train=y, x_test=x, y_test=y,
                   class_names=["a", "b"])
    for opt in ("sgd", "adam"):
        tr = Trainer(model_from_spec(spec, seed=0), data, optimizer=opt, lr=0.01,
                     momentum=0.9 if opt == "sgd" else 0.0, batch_size=4)
        tr.step()
        tr.evaluate("test")
    m = tr.model
    m.activations(x[:1])
    m.forward(x, train=False)


class KernelWarmer(QObject):
    """Warms GROUPS in a daemon thread; ``progress(text, done, total)`` after each group."""

    progress = Signal(str, int, int)
    group_done = Signal(str)

    def __init__(self, groups=None, parent=None):
        super().__init__(parent)
        self.groups = list(groups or GROUPS)
        self.done = set()
        self.seconds = {}
        self._waiting = {}
        self._thread = None
        self.group_done.connect(self._on_done)

    def start(self):
        self._thread = threading.Thread(target=self._run, name="nnviz-kernel-warm-up",
                                        daemon=True)
        self._thread.start()

    def _run(self):
        n = len(self.groups)
        for i, g in enumerate(self.groups):
            self.progress.emit(f"Compiling kernels: {GROUPS[g][0]} ({i + 1}/{n})", i, n)
            t0 = time.perf_counter()
            try:
                warm_group(g)
            except Exception as exc:   # warming up is an optimisation, never fatal
                log.warning("kernel warm-up of %s failed: %s", g, exc)
            self.seconds[g] = time.perf_counter() - t0
            self.group_done.emit(g)
        self.progress.emit("Kernels ready", n, n)

    def _on_done(self, group):
        self.done.add(group)
        for fn in self._waiting.pop(group, []):
            fn()

    def when_ready(self, group, fn):
        if group in self.done or group not in self.groups:
            QTimer.singleShot(0, fn)
        else:
            self._waiting.setdefault(group, []).append(fn)


_warmer = None


def install(warmer):
    """Make `warmer` the app's (``when_ready`` asks it)."""
    global _warmer
    _warmer = warmer


def when_ready(group, fn):
    """Run fn in the UI thread once `group`'s kernels are compiled (soon when no warm-up runs)."""
    if _warmer is None:
        QTimer.singleShot(0, fn)
    else:
        _warmer.when_ready(group, fn)
