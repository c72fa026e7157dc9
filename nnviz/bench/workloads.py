"""Models, data and timing helpers that both workers use (numpy only)."""
from __future__ import annotations

import os
import time

import numpy as np

# The LeNet-5 measured here is the ReLU / max-pool variant (the preset uses tanh / avg-pool).
LENET5_RELU = {
    "name": "lenet5-relu", "input_shape": [1, 28, 28],
    "layers": [{"type": "Conv2D", "out_channels": 6, "kernel_size": 5, "padding": 2},
               {"type": "ReLU"}, {"type": "MaxPool2D", "kernel_size": 2},
               {"type": "Conv2D", "out_channels": 16, "kernel_size": 5}, {"type": "ReLU"},
               {"type": "MaxPool2D", "kernel_size": 2},
               {"type": "Conv2D", "out_channels": 120, "kernel_size": 5}, {"type": "ReLU"},
               {"type": "Flatten"},
               {"type": "Dense", "out_features": 84}, {"type": "ReLU"},
               {"type": "Dense", "out_features": 10}]}

TINY_MLP = {
    "name": "mlp-2-8-8-2", "input_shape": [2],
    "layers": [{"type": "Dense", "out_features": 8}, {"type": "Tanh"},
               {"type": "Dense", "out_features": 8}, {"type": "Tanh"},
               {"type": "Dense", "out_features": 2}]}


def rss_mb():
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20
    except OSError:
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def synthetic_arrays(shape, n, classes=10, seed=0):
    """(x float32, y int64): the same numbers in both workers for the same arguments."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n,) + tuple(shape), dtype=np.float32)
    y = rng.integers(0, classes, n).astype(np.int64)
    return x, y


def synthetic(shape, n, classes=10, seed=0):
    from ..data.dataset import Dataset
    x, y = synthetic_arrays(shape, n, classes, seed)
    nt = max(1, n // 10)
    return Dataset(name="synthetic", x_train=x, y_train=y, x_test=x[:nt], y_test=y[:nt],
                   class_names=[str(i) for i in range(classes)])


def grid_points():
    g = np.linspace(-3, 3, 200, dtype=np.float32)
    xx, yy = np.meshgrid(g, g)
    return np.ascontiguousarray(np.stack([xx.ravel(), yy.ravel()], axis=1))


def one_image():
    return np.random.default_rng(0).standard_normal((1, 1, 28, 28), dtype=np.float32)


def opt_kw(optimizer):
    return dict(lr=0.01, momentum=0.9) if optimizer == "sgd" else dict(lr=0.01)


def child_env(**extra):
    """The environment for a child interpreter: ours, with this nnviz importable."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, **extra)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


def calibrate(fn, block_s):
    """Calls of fn that fill about block_s seconds (fn is already warm)."""
    t0 = time.perf_counter()
    k = 0
    while True:
        fn()
        k += 1
        el = time.perf_counter() - t0
        if el >= block_s / 4 or k >= 10000:
            return max(1, int(k * block_s / max(el, 1e-9)))


# NNVIZ_BENCH_CLOCK=thread times with the calling thread's CPU clock: steadier on a loaded
# machine, but only meaningful with one thread (NUMBA_NUM_THREADS=1).
_CLOCK = time.thread_time if os.environ.get("NNVIZ_BENCH_CLOCK") == "thread" else time.perf_counter


def timed(fn, k):
    t0 = _CLOCK()
    for _ in range(k):
        fn()
    return (_CLOCK() - t0) / k
