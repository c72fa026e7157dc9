"""Figures without a PyTorch twin: data loading and memory (in the nnviz worker), start-up
(in fresh interpreters, timed from here)."""
from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from .figure import Figure
from .workloads import LENET5_RELU, child_env, rss_mb, synthetic


# ---- in the nnviz worker --------------------------------------------------------------
def load_mnist():
    """(Dataset, seconds) from the real MNIST files where the data registry finds them
    (`$NNVIZ_DATA_DIR/mnist`, see docs/datasets.md), or (None, None)."""
    from ..data import DatasetError, load_dataset
    t0 = time.perf_counter()
    try:
        ds = load_dataset("mnist")
    except DatasetError as e:   # not downloaded (or damaged): report, fall back
        print(f"nnviz bench: no MNIST ({e}); using synthetic data", file=sys.stderr)
        return None, None
    return ds, time.perf_counter() - t0


def mnist_load(quick):
    return load_mnist()[1], {}


def memory(quick):
    """(RSS growth in MB over epochs 1-3, extra figures): run in the nnviz worker, whose
    process trains and never loads torch."""
    from ..engine import model_from_spec
    from ..train import Trainer
    data, _ = load_mnist()
    if data is None:
        data = synthetic((1, 28, 28), 60000)
    if quick:
        data = data.subset(n_train=6000, n_test=1000)
    tr = Trainer(model_from_spec(LENET5_RELU, seed=0), data, lr=0.01, momentum=0.9,
                 batch_size=64)
    rss = []
    for _ in range(3):
        tr.fit(1)
        rss.append(rss_mb())
    extra = {"memory_rss_mb": [round(r, 1) for r in rss],
             "memory_samples_per_s": tr.summary()["samples_per_second"]}
    return rss[-1] - rss[0], extra


# ---- fresh interpreters, timed by the driver ---------------------------------------------
_START_SCRIPT = r"""
import time, sys
t0 = time.perf_counter()
import numpy as np
from nnviz.engine import model_from_spec, load_preset, Sequential
from nnviz.bench.workloads import LENET5_RELU, TINY_MLP, synthetic
from nnviz.train import Trainer
if sys.argv[1] == "cold":
    for spec, shape, opt in ((LENET5_RELU, (1, 28, 28), "sgd"), ("lenet5", (1, 28, 28), "sgd"),
                             ("lab7-cnn", (3, 32, 32), "sgd"), (TINY_MLP, (2,), "adam"),
                             ("mlp2", (2,), "sgd")):
        m = load_preset(spec) if isinstance(spec, str) else model_from_spec(spec)
        k = m.output_shape[0]
        for b in (1, 16):
            tr = Trainer(m, synthetic(shape, 64, k), optimizer=opt, batch_size=b, momentum=0.0)
            tr.step(); tr.step()
        m.forward(np.zeros((3,) + shape, np.float32))
        m.activations(np.zeros((1,) + shape, np.float32))
else:
    m = model_from_spec(LENET5_RELU)
    m.forward(np.zeros((1, 1, 28, 28), np.float32))
print(time.perf_counter() - t0)
"""


def _cache_dir(st):
    """A Numba cache of the run's own, shared by the start-up figures (the driver removes it)."""
    return st.extra.setdefault("_cache_dir", tempfile.mkdtemp(prefix="nnviz-numba-cache-"))


def start(kind, st):
    env = child_env(NUMBA_CACHE_DIR=_cache_dir(st))
    if kind == "warm" and not os.listdir(env["NUMBA_CACHE_DIR"]):
        subprocess.run([sys.executable, "-c", _START_SCRIPT, "cold"], env=env, check=True,
                       capture_output=True)
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", _START_SCRIPT, kind], env=env,
                       capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(r.stderr.strip().splitlines()[-1] if r.stderr else "failed")
    return wall


def window(st):
    """Seconds from starting the app's process to its main window being shown."""
    autosave = tempfile.mkdtemp(prefix="nnviz-bench-autosave-")
    env = child_env(NUMBA_CACHE_DIR=_cache_dir(st), NNVIZ_AUTOSAVE_DIR=autosave)
    try:
        times = []
        for i in range(4):    # the first run fills the cache with the app's kernels
            t0 = time.perf_counter()
            p = subprocess.Popen([sys.executable, "-m", "nnviz.gui.startup_probe"], env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            line = p.stdout.readline()
            t = time.perf_counter() - t0
            _, err = p.communicate(timeout=120)
            if line.strip() != "shown":
                raise RuntimeError(err.strip().splitlines()[-1] if err.strip() else "no window")
            if i:
                times.append(t)
        return statistics.median(times)
    finally:
        shutil.rmtree(autosave, ignore_errors=True)


# Start-up figures compile in subprocesses: too slow for --quick. `memory` runs only when asked.
FIGURES = [
    Figure("mnist-load", "s", "load_dataset('mnist')", "worker", mnist_load),
    Figure("coldstart", "s", "compile all kernels, empty cache", "driver",
           lambda st: start("cold", st), target=("max", 30.0), quick=False),
    Figure("warmstart", "s", "import + lenet5 forward, warm cache", "driver",
           lambda st: start("warm", st), quick=False),
    Figure("window", "s", "`nnviz` launch to main window shown, warm cache", "driver", window,
           target=("max", 2.0), quick=False),
    Figure("memory", "MB", "RSS growth, epochs 2-3 of MNIST-size", "worker", memory,
           target=("max", 50.0), default=False),
]
