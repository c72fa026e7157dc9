"""Speed of the explanations on LeNet-5 (the preset as taught: tanh, average pooling),
for `nnviz bench --only explain`: medians of repeated calls after a warm-up, on ONE Numba
thread, as the app runs them (its explanation thread leaves the other cores to training;
on a loaded 2-core machine two threads were also 4-5x slower than one for these sizes)."""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import numpy as np

from nnviz.engine import Sequential, load_preset

from .gradients import explain
from .maximize import maximize
from .occlusion import occlusion


def _median_s(fn: Callable[[], object], repeats: int, min_s: float = 0.05) -> float:
    import numba
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        return _timed(fn, repeats, min_s)
    finally:
        numba.set_num_threads(before)


def _timed(fn: Callable[[], object], repeats: int, min_s: float) -> float:
    fn()                                         # warm-up: kernels, allocator
    t0 = time.perf_counter()
    fn()
    one = time.perf_counter() - t0
    k = max(1, int(min_s / max(one, 1e-6)))      # short calls: time a block of k
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(k):
            fn()
        times.append((time.perf_counter() - t0) / k)
    return statistics.median(times)


def _lenet() -> tuple[Sequential, np.ndarray]:
    model = load_preset("lenet5", seed=0)
    x = np.random.default_rng(0).normal(0, 1, (1, 28, 28)).astype(np.float32)
    return model, x


def gradients_s(repeats: int = 7) -> float:
    """Saliency + gradient x input + Grad-CAM (default layer) for one input."""
    model, x = _lenet()
    return _median_s(lambda: explain(model, x), repeats)


def occlusion_s(repeats: int = 7) -> float:
    """Occlusion map of a 28x28 input, 4x4 patches, stride 2 (170 forward passes)."""
    model, x = _lenet()
    return _median_s(lambda: occlusion(model, x, size=4, stride=2), repeats)


def maximize_s(repeats: int = 3) -> float:
    """200 steps of activation maximisation for one filter of LeNet-5's last convolution
    (the deepest: every step runs all three convolutions forward and back)."""
    model, _ = _lenet()
    return _median_s(lambda: maximize(model, layer=6, units=[0], steps=200), repeats, 0.0)
