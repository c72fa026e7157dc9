"""`nnviz bench`: training and inference speed of the engine, beside PyTorch.

Each engine runs in a long-lived worker process of its own: the "nnviz" worker never
imports torch and the "torch" worker never imports numba or nnviz.engine. PyTorch's wheel
ships its own libgomp.so.1, the soname of the system libgomp that Numba's OpenMP threading
layer links to; in one process the loader would hand Numba torch's copy, and libgomp reads
its wait policy once, when it is loaded, so nnviz would run on a runtime set up by torch's
import rather than the one a user's process (which never imports torch) gets.

This process (the CLI) only drives: for each figure it has both workers build and warm up
their model and size a block of calls to about `block_s` seconds, then asks them in turn
(nnviz, PyTorch, nnviz, ...) to time one block, so that other load on the machine hits both
alike. Each figure is the median over the repeats; warm-up is not counted. Both use the
same number of threads: Numba's default (NUMBA_NUM_THREADS) and `torch.set_num_threads`.
"""
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
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

# name -> (unit, higher is better, target kind, target value, description)
#   target kind "ratio": nnviz / PyTorch >= value; "max": nnviz <= value (absolute)
BENCHMARKS = {
    "lenet5-b1": ("img/s", True, "ratio", 3.0, "LeNet-5 train step, batch 1"),
    "lenet5-b16": ("img/s", True, "ratio", 3.0, "LeNet-5 train step, batch 16"),
    "lenet5-b64": ("img/s", True, "ratio", 1.0, "LeNet-5 train step, batch 64"),
    "lenet5-b256": ("img/s", True, "ratio", 1.0, "LeNet-5 train step, batch 256"),
    "lab7-b64": ("img/s", True, "ratio", 1.0, "Lab-7 CNN train step, batch 64"),
    "mlp-b10": ("steps/s", True, "ratio", 20.0, "MLP 2-8-8-2 Trainer.step, batch 10"),
    "mlp-b32": ("steps/s", True, "ratio", 20.0, "MLP 2-8-8-2 Trainer.step, batch 32"),
    "grid": ("ms", False, "max", 0.5, "mlp2 forward, 200x200 grid"),
    "featuremaps": ("ms", False, "max", 1.0, "LeNet-5 activations(), 1 image"),
    "mnist-load": ("s", False, None, None, "load_dataset('mnist')"),
    "coldstart": ("s", False, "max", 30.0, "compile all kernels, empty cache"),
    "warmstart": ("s", False, None, None, "import + lenet5 forward, warm cache"),
    "window": ("s", False, "max", 2.0, "`nnviz` launch to main window shown, warm cache"),
    "memory": ("MB", False, "max", 50.0, "RSS growth, epochs 2-3 of MNIST-size"),
}
DEFAULT = ["lenet5-b1", "lenet5-b16", "lenet5-b64", "lenet5-b256", "lab7-b64", "mlp-b10",
           "mlp-b32", "grid", "featuremaps", "mnist-load", "coldstart", "warmstart", "window"]
QUICK_SKIP = {"coldstart", "warmstart", "window"}  # subprocesses that compile: too slow


class _Settings:
    def __init__(self, quick):
        self.quick = quick
        self.repeats = 3 if quick else 7
        self.block_s = 0.08 if quick else 0.3   # length of one timed block per engine


# Figures timed in both workers; the rest run in the nnviz worker or (start-up) in a fresh
# interpreter of their own.
PAIRED = {"lenet5-b1", "lenet5-b16", "lenet5-b64", "lenet5-b256", "lab7-b64", "mlp-b10",
          "mlp-b32", "grid", "featuremaps"}
NNVIZ_ONLY = {"mnist-load", "memory"}


# ---- helpers (numpy only: both workers use them) -------------------------------------
def _rss_mb():
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20
    except OSError:
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _synthetic_arrays(shape, n, classes=10, seed=0):
    """(x float32, y int64): the same numbers in both workers for the same arguments."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n,) + tuple(shape), dtype=np.float32)
    y = rng.integers(0, classes, n).astype(np.int64)
    return x, y


def _synthetic(shape, n, classes=10, seed=0):
    from .data.dataset import Dataset
    x, y = _synthetic_arrays(shape, n, classes, seed)
    nt = max(1, n // 10)
    return Dataset(name="synthetic", x_train=x, y_train=y, x_test=x[:nt], y_test=y[:nt],
                   class_names=[str(i) for i in range(classes)])


def _grid_points():
    g = np.linspace(-3, 3, 200, dtype=np.float32)
    xx, yy = np.meshgrid(g, g)
    return np.ascontiguousarray(np.stack([xx.ravel(), yy.ravel()], axis=1))


def _one_image():
    return np.random.default_rng(0).standard_normal((1, 1, 28, 28), dtype=np.float32)


def _opt_kw(optimizer):
    return dict(lr=0.01, momentum=0.9) if optimizer == "sgd" else dict(lr=0.01)


def _child_env(**extra):
    """The environment for a child interpreter: ours, with this nnviz importable."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, **extra)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


def _calibrate(fn, block_s):
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


def _timed(fn, k):
    t0 = _CLOCK()
    for _ in range(k):
        fn()
    return (_CLOCK() - t0) / k


def _figure(name):
    """What a paired figure runs, as plain data both workers understand. A preset name in
    "spec" is resolved by the nnviz worker, which hands the spec on to the torch worker."""
    if name.startswith("lenet5-b"):
        b = int(name[len("lenet5-b"):])
        return {"kind": "train", "spec": LENET5_RELU, "batch": b, "optimizer": "sgd",
                "n": max(b * 64, 2048)}
    if name == "lab7-b64":
        return {"kind": "train", "spec": "lab7-cnn", "batch": 64, "optimizer": "sgd",
                "n": 64 * 64}
    if name.startswith("mlp-b"):
        b = int(name[len("mlp-b"):])
        return {"kind": "train", "spec": TINY_MLP, "batch": b, "optimizer": "adam", "n": 1000}
    if name == "grid":
        return {"kind": "grid", "spec": "mlp2"}
    if name == "featuremaps":
        return {"kind": "featuremaps", "spec": LENET5_RELU}
    raise KeyError(name)


def _figure_value(name, sec):
    """The table's number from seconds per call."""
    if sec is None:
        return None
    if name.startswith(("lenet5-b", "lab7-")):
        return _figure(name)["batch"] / sec      # img/s
    if name.startswith("mlp-b"):
        return 1 / sec                           # steps/s
    return sec * 1e3                             # ms


# ---- the nnviz worker ------------------------------------------------------------------
class _NnvizSide:
    """Runs in the nnviz worker: Numba kernels, never torch."""
    role = "nnviz"
    forbidden = ("torch",)

    def __init__(self):
        import numba  # noqa: F401

        from . import engine  # noqa: F401
        self.fn, self.k = None, 1

    def init(self, msg):
        import numba

        from .engine import backend
        backend.use(msg.get("backend") or "cpu")
        return {"numba": numba.__version__, "numba_threads": numba.config.NUMBA_NUM_THREADS,
                "backend": backend.get().name}

    def build(self, fig):
        from .engine import model_from_spec, read_spec
        spec = read_spec(fig["spec"]) if isinstance(fig["spec"], str) else fig["spec"]
        model = model_from_spec(spec, seed=0)
        if fig["kind"] == "train":
            from .train import Trainer
            classes = spec["layers"][-1]["out_features"]
            data = _synthetic(tuple(spec["input_shape"]), fig["n"], classes)
            tr = Trainer(model, data, optimizer=fig["optimizer"], batch_size=fig["batch"],
                         **_opt_kw(fig["optimizer"]))
            return tr.step, spec
        if fig["kind"] == "grid":
            pts = _grid_points()
            return (lambda: model.forward(pts)), spec
        x = _one_image()
        return (lambda: model.activations(x)), spec

    def info(self, msg):
        import numba
        try:
            layer = numba.threading_layer()
        except ValueError:   # no parallel kernel has run yet
            layer = None
        return {"numba_threading_layer": layer}

    def solo(self, msg):
        name = msg["name"]
        if name == "mnist-load":
            _, sec = _load_mnist()
            return {"value": sec, "extra": {}}
        if name == "memory":
            mb, extra = _bench_memory(bool(msg.get("quick")))
            return {"value": mb, "extra": extra}
        raise KeyError(name)


# ---- the torch worker ------------------------------------------------------------------
class _TorchSide:
    """Runs in the torch worker: PyTorch and numpy, never numba or nnviz.engine."""
    role = "torch"
    forbidden = ("numba", "nnviz.engine")

    def __init__(self):
        try:
            import torch
        except ImportError as e:
            self.torch, self.missing = None, str(e) or "not installed"
        else:
            self.torch, self.missing = torch, None
        self.fn, self.k = None, 1

    def init(self, msg):
        if self.torch is None:
            return {"torch": None, "missing": self.missing}
        self.torch.set_num_threads(int(msg["threads"]))
        return {"torch": self.torch.__version__, "torch_threads": self.torch.get_num_threads()}

    def build(self, fig):
        torch = self.torch
        if torch is None:
            raise RuntimeError("torch is not installed")
        spec = fig["spec"]
        tm = _torch_model(torch, spec)
        if fig["kind"] == "train":
            return _torch_train_step(torch, tm, spec, fig), spec
        tm.eval()
        if fig["kind"] == "grid":
            tp = torch.from_numpy(_grid_points())

            def tf():
                with torch.no_grad():
                    tm(tp)
            return tf, spec
        xt = torch.from_numpy(_one_image())

        def tmaps():
            outs = [xt.clone()]
            with torch.no_grad():
                y = xt
                for m in tm:
                    y = m(y)
                    outs.append(y.clone())
            return outs
        return tmaps, spec

    def info(self, msg):
        return {}


def _torch_model(torch, spec):
    nn = torch.nn
    shape = list(spec["input_shape"])
    mods = []
    for cfg in spec["layers"]:
        t = cfg["type"]
        if t == "Conv2D":
            mods.append(nn.Conv2d(shape[0], cfg["out_channels"], cfg["kernel_size"],
                                  padding=cfg.get("padding", 0)))
            k, p = cfg["kernel_size"], cfg.get("padding", 0)
            shape = [cfg["out_channels"], shape[1] - k + 2 * p + 1, shape[2] - k + 2 * p + 1]
        elif t == "MaxPool2D":
            mods.append(nn.MaxPool2d(cfg["kernel_size"]))
            shape = [shape[0], shape[1] // 2, shape[2] // 2]
        elif t == "Flatten":
            mods.append(nn.Flatten())
            shape = [int(np.prod(shape))]
        elif t == "Dense":
            mods.append(nn.Linear(shape[0], cfg["out_features"]))
            shape = [cfg["out_features"]]
        else:
            mods.append({"ReLU": nn.ReLU, "Tanh": nn.Tanh}[t]())
    return nn.Sequential(*mods)


def _torch_train_step(torch, tm, spec, fig):
    """A full training step as Trainer.step does it: batch, forward, loss, backward,
    update, and the loss and accuracy read back."""
    n, batch = fig["n"], fig["batch"]
    classes = spec["layers"][-1]["out_features"]
    x, y = _synthetic_arrays(tuple(spec["input_shape"]), n, classes)
    kw = _opt_kw(fig["optimizer"])
    opt = (torch.optim.SGD(tm.parameters(), **kw) if fig["optimizer"] == "sgd"
           else torch.optim.Adam(tm.parameters(), **kw))
    lossf = torch.nn.CrossEntropyLoss()
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    state = {"pos": 0, "perm": torch.randperm(n)}

    def tstep():
        p = state["pos"]
        if p + batch > n:
            p, state["perm"] = 0, torch.randperm(n)
        idx = state["perm"][p:p + batch]
        state["pos"] = p + batch
        xb, yb = xt[idx], yt[idx]
        opt.zero_grad(set_to_none=True)
        out = tm(xb)
        loss = lossf(out, yb)
        loss.backward()
        opt.step()
        loss.item()
        (out.argmax(1) == yb).float().mean().item()
    return tstep


# ---- worker loop (runs in the worker processes) -----------------------------------------------
def _setup(side, msg):
    """Build the figure, warm it up (compilation, buffers, caches), size a block."""
    side.fn, side.k = None, 1
    fn, spec = side.build(msg["fig"])
    for _ in range(3):
        fn()
    side.k = _calibrate(fn, float(msg["block_s"]))
    side.fn = fn
    loaded = [m for m in side.forbidden if m in sys.modules]
    if loaded:
        raise RuntimeError(f"{', '.join(loaded)} was imported into the {side.role} worker")
    return {"spec": spec, "k": side.k}


def _block(side, msg):
    if side.fn is None:
        raise RuntimeError("no figure set up")
    return {"sec": _timed(side.fn, side.k)}


def _dispatch(side, msg):
    cmd = msg.get("cmd")
    if cmd == "setup":
        return _setup(side, msg)
    if cmd == "block":
        return _block(side, msg)
    if cmd in ("init", "info", "solo") and hasattr(side, cmd):
        return getattr(side, cmd)(msg)
    raise ValueError(f"unknown request {cmd!r} for the {side.role} worker")


def _jsonable(o):
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(f"{type(o).__name__} is not JSON serializable")


def _serve(role):
    """Worker main loop: one JSON request a line on stdin, one JSON reply a line on the
    original stdout. Anything else the worker prints goes to stderr."""
    replies = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # the driver decides when to stop
    try:
        side, broken = (_NnvizSide() if role == "nnviz" else _TorchSide()), None
    except Exception as e:  # reported on every request
        side, broken = None, f"{type(e).__name__}: {e}"
    foreign = "torch" if role == "nnviz" else "numba"
    for line in sys.stdin:
        msg = json.loads(line)
        if msg.get("cmd") == "quit":
            break
        try:
            if broken:
                raise RuntimeError(broken)
            reply = dict(_dispatch(side, msg), ok=True)
        except Exception as e:
            reply = {"ok": False, "error": f"{type(e).__name__}: {e}",
                     "error_type": type(e).__name__}
        reply["pid"] = os.getpid()
        reply["has_" + foreign] = foreign in sys.modules
        try:
            replies.write(json.dumps(reply, default=_jsonable) + "\n")
            replies.flush()
        except (BrokenPipeError, OSError):   # the driver has gone
            break


# ---- the driver's side of a worker ----------------------------------------------------------
class _WorkerError(RuntimeError):
    """A request failed in a worker; the message is the worker's 'Type: message'."""

    def __init__(self, msg, error_type=None):
        super().__init__(msg)
        self.error_type = error_type


class _Worker:
    def __init__(self, role, foreign):
        self.role, self.foreign = role, foreign   # foreign: role -> saw the other engine loaded
        # A session of its own: Ctrl-C reaches only the driver, which then shuts the
        # workers down; a worker whose driver died reads end-of-file and exits.
        self.proc = subprocess.Popen(
            [sys.executable, "-c", f"from nnviz.bench import _serve; _serve({role!r})"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=_child_env(), text=True,
            encoding="utf-8", start_new_session=True)
        self.pid = self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def call(self, **msg):
        try:
            self.proc.stdin.write(json.dumps(msg) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        except (BrokenPipeError, OSError, ValueError):
            line = ""
        if not line:
            try:
                code = self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                code = self.proc.wait()
            raise _WorkerError(f"RuntimeError: the {self.role} worker exited (code {code})")
        r = json.loads(line)
        seen = bool(r.get("has_torch") or r.get("has_numba"))
        self.foreign[self.role] = self.foreign.get(self.role, False) or seen
        if not r.get("ok"):
            raise _WorkerError(r.get("error", "failed"), r.get("error_type"))
        return r

    def close(self):
        p = self.proc
        try:
            if p.poll() is None:
                p.stdin.write('{"cmd": "quit"}\n')
                p.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            pass
        try:
            p.stdin.close()
        except (BrokenPipeError, OSError):
            pass
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        finally:
            p.stdout.close()


class _Workers:
    """The nnviz worker and (unless --no-torch or nothing needs it) the torch worker;
    one that dies is started again for the next figure."""

    def __init__(self, backend, want_torch):
        self.backend, self.want_torch = backend, want_torch
        self._nnviz = self._torch = None
        self.nnviz_info, self.torch_info = {}, None
        self.pids = {"nnviz": None, "torch": None}
        self.foreign = {}    # "nnviz": torch was loaded there; "torch": numba was loaded there

    def start(self):
        self._nnviz = self._new("nnviz")
        if self.want_torch:              # both import at once; torch waits for the thread count
            self._torch = self._new("torch")
        self._init_nnviz()
        if self._torch is not None:
            self._init_torch()

    def _new(self, role):
        w = _Worker(role, self.foreign)
        self.pids[role] = w.pid
        return w

    def _init_nnviz(self):
        r = self._nnviz.call(cmd="init", backend=self.backend)
        self.nnviz_info = {k: r[k] for k in ("numba", "numba_threads", "backend")}

    def _init_torch(self):
        try:
            r = self._torch.call(cmd="init", threads=self.nnviz_info["numba_threads"])
        except _WorkerError as e:
            print(f"nnviz bench: the PyTorch worker failed ({e}); nnviz column only",
                  file=sys.stderr)
            r = {"torch": None}
        if r.get("torch") is None:       # not installed: the PyTorch column stays empty
            self._torch.close()
            self._torch, self.want_torch = None, False
        else:
            self.torch_info = {"torch": r["torch"], "torch_threads": r["torch_threads"]}

    def nnviz(self):
        if not self._nnviz.alive():
            self._nnviz.close()
            self._nnviz = self._new("nnviz")
            self._init_nnviz()
        return self._nnviz

    def torch(self):
        if self._torch is not None and not self._torch.alive():
            self._torch.close()
            self._torch = self._new("torch")
            self._init_torch()
        return self._torch

    def threading_layer(self):
        """Numba's threading layer in the nnviz worker (None before any parallel kernel)."""
        if self._nnviz is None or not self._nnviz.alive():
            return None
        try:
            return self._nnviz.call(cmd="info").get("numba_threading_layer")
        except _WorkerError:
            return None

    def close(self):
        for w in (self._nnviz, self._torch):
            if w is not None:
                w.close()
        self._nnviz = self._torch = None


# ---- figures ------------------------------------------------------------------------------
def _paired(name, st, pool):
    """(nnviz value, PyTorch value or None, PyTorch error or None) of a paired figure."""
    fig = _figure(name)
    nw = pool.nnviz()
    fig["spec"] = nw.call(cmd="setup", fig=fig, block_s=st.block_s)["spec"]
    workers, terr = [nw], None
    tw = pool.torch()
    if tw is not None:
        try:
            tw.call(cmd="setup", fig=fig, block_s=st.block_s)
            workers.append(tw)
        except _WorkerError as e:        # the nnviz figure still stands
            terr = f"PyTorch: {e}"
    times = [[] for _ in workers]
    for _ in range(st.repeats):          # interleaved: nnviz, PyTorch, nnviz, ...
        for i, w in enumerate(workers):
            times[i].append(w.call(cmd="block")["sec"])
    med = [statistics.median(t) for t in times]
    t = _figure_value(name, med[1]) if len(med) > 1 else None
    return _figure_value(name, med[0]), t, terr

# ---- data, start-up, memory (nnviz only) ----------------------------------------------------
MNIST_DIRS = [os.environ.get("NNVIZ_MNIST_DIR", ""), "/work/shared/datasets/mnist"]


def _mnist_dir():
    for d in MNIST_DIRS:
        if d and os.path.exists(os.path.join(d, "train-images-idx3-ubyte.gz")):
            return d
    return None


def _load_mnist():
    """(Dataset, seconds) from the real MNIST files, or (None, None)."""
    src = _mnist_dir()
    if src is None:
        return None, None
    try:
        from .data import load_dataset
    except ImportError:
        return None, None
    with tempfile.TemporaryDirectory() as tmp:
        os.symlink(src, os.path.join(tmp, "mnist"))
        t0 = time.perf_counter()
        try:
            ds = load_dataset("mnist", data_dir=tmp)
        except Exception as e:  # the loader is optional here: report, fall back
            print(f"nnviz bench: mnist loader failed ({e}); using synthetic data", file=sys.stderr)
            return None, None
        return ds, time.perf_counter() - t0


def _bench_memory(quick):
    """(RSS growth in MB over epochs 1-3, extra figures): run in the nnviz worker, whose
    process trains and never loads torch."""
    from .engine import model_from_spec
    from .train import Trainer
    data, _ = _load_mnist()
    if data is None:
        data = _synthetic((1, 28, 28), 60000)
    if quick:
        data = data.subset(n_train=6000, n_test=1000)
    tr = Trainer(model_from_spec(LENET5_RELU, seed=0), data, lr=0.01, momentum=0.9,
                 batch_size=64)
    rss = []
    for _ in range(3):
        tr.fit(1)
        rss.append(_rss_mb())
    extra = {"memory_rss_mb": [round(r, 1) for r in rss],
             "memory_samples_per_s": tr.summary()["samples_per_second"]}
    return rss[-1] - rss[0], extra


_START_SCRIPT = r"""
import time, sys
t0 = time.perf_counter()
import numpy as np
from nnviz.engine import model_from_spec, load_preset, Sequential
from nnviz.bench import LENET5_RELU, TINY_MLP, _synthetic
from nnviz.train import Trainer
if sys.argv[1] == "cold":
    for spec, shape, opt in ((LENET5_RELU, (1, 28, 28), "sgd"), ("lenet5", (1, 28, 28), "sgd"),
                             ("lab7-cnn", (3, 32, 32), "sgd"), (TINY_MLP, (2,), "adam"),
                             ("mlp2", (2,), "sgd")):
        m = load_preset(spec) if isinstance(spec, str) else model_from_spec(spec)
        k = m.output_shape[0]
        for b in (1, 16):
            tr = Trainer(m, _synthetic(shape, 64, k), optimizer=opt, batch_size=b, momentum=0.0)
            tr.step(); tr.step()
        m.forward(np.zeros((3,) + shape, np.float32))
        m.activations(np.zeros((1,) + shape, np.float32))
else:
    m = model_from_spec(LENET5_RELU)
    m.forward(np.zeros((1, 1, 28, 28), np.float32))
print(time.perf_counter() - t0)
"""


def _bench_start(kind, st):
    cache = st.extra.setdefault("_cache_dir", tempfile.mkdtemp(prefix="nnviz-numba-cache-"))
    env = _child_env(NUMBA_CACHE_DIR=cache)
    if kind == "warm" and not os.listdir(cache):
        subprocess.run([sys.executable, "-c", _START_SCRIPT, "cold"], env=env, check=True,
                       capture_output=True)
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", _START_SCRIPT, kind], env=env,
                       capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(r.stderr.strip().splitlines()[-1] if r.stderr else "failed")
    return wall, None


def _bench_window(st):
    """Seconds from starting the app's process to its main window being shown."""
    cache = st.extra.setdefault("_cache_dir", tempfile.mkdtemp(prefix="nnviz-numba-cache-"))
    autosave = tempfile.mkdtemp(prefix="nnviz-bench-autosave-")
    env = _child_env(NUMBA_CACHE_DIR=cache, NNVIZ_AUTOSAVE_DIR=autosave)
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
        return statistics.median(times), None
    finally:
        import shutil
        shutil.rmtree(autosave, ignore_errors=True)


# ---- driver ------------------------------------------------------------------------------
def _run_one(name, st, pool):
    """(nnviz value, PyTorch value, error of the PyTorch side or None)."""
    if name in PAIRED:
        return _paired(name, st, pool)
    if name in NNVIZ_ONLY:
        r = pool.nnviz().call(cmd="solo", name=name, quick=st.quick)
        st.extra.update(r.get("extra") or {})
        return r["value"], None, None
    if name in ("coldstart", "warmstart"):
        return _bench_start(name[:-5], st) + (None,)
    if name == "window":
        return _bench_window(st) + (None,)
    raise KeyError(name)


def _select(only, quick):
    if not only:
        return [n for n in DEFAULT if not (quick and n in QUICK_SKIP)]
    out = []
    for tok in (t.strip() for t in only.split(",")):
        if not tok:
            continue
        hits = [n for n in BENCHMARKS if n == tok or n.startswith(tok)]
        if not hits:
            raise ValueError(f"unknown benchmark {tok!r}; known: {', '.join(BENCHMARKS)}")
        out.extend(h for h in hits if h not in out)
    return out


def machine_info(nnviz_info=None, torch_info=None):
    """This machine, with what the workers reported: numba and its thread count from the
    nnviz worker, torch and its thread count from the torch worker."""
    info = {"python": platform.python_version(), "numpy": np.__version__,
            "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()}
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                info["cpu"] = line.split(":", 1)[1].strip()
    except OSError:
        pass
    for k, v in (nnviz_info or {}).items():
        if k != "backend":
            info[k] = v
    info.update(torch_info or {})
    return info


def _met(name, a, t):
    unit, higher, kind, target, _ = BENCHMARKS[name]
    if a is None or kind is None:
        return None, None
    if kind == "ratio":
        if t is None:
            return None, None
        ratio = a / t if higher else t / a
        return ratio, ratio >= target
    return (t / a if (t and a) else None), a <= target


def _fmt(v, unit):
    if v is None:
        return "–"
    if unit in ("ms", "s", "MB"):
        return f"{v:,.3f}" if abs(v) < 10 else f"{v:,.1f}"
    return f"{v:,.0f}"


def _target_text(name):
    unit, higher, kind, target, _ = BENCHMARKS[name]
    if kind == "ratio":
        return f">= {target:g}x PyTorch"
    if kind == "max":
        return f"<= {target:g} {unit}"
    return "–"


def run_bench(args):
    quick = bool(getattr(args, "quick", False))
    st = _Settings(quick)
    st.no_torch = bool(getattr(args, "no_torch", False))
    st.extra = {}
    want_json = bool(getattr(args, "json", False))
    try:
        names = _select(getattr(args, "only", None), quick)
    except ValueError as e:
        print(f"nnviz: error: {e}", file=sys.stderr)
        return 2
    # The torch worker only when a figure compares with PyTorch.
    pool = _Workers(getattr(args, "backend", None) or "cpu",
                    want_torch=not st.no_torch and any(n in PAIRED for n in names))
    try:
        try:
            pool.start()
        except _WorkerError as e:
            print(f"nnviz: error: {e}", file=sys.stderr)
            return 2 if e.error_type == "BackendError" else 1
        rows = []
        for name in names:
            unit, higher, kind, target, desc = BENCHMARKS[name]
            try:
                a, t, err = _run_one(name, st, pool)
            except Exception as e:  # one failing figure must not hide the others
                a, t = None, None
                err = str(e) if isinstance(e, _WorkerError) else f"{type(e).__name__}: {e}"
            ratio, met = _met(name, a, t)
            row = {"name": name, "description": desc, "unit": unit, "nnviz": a, "pytorch": t,
                   "ratio": ratio, "target": _target_text(name), "met": met}
            if err:
                row["error"] = err
            rows.append(row)
            if not want_json:
                print(f"  {name}: done", file=sys.stderr)
        layer = pool.threading_layer()
    finally:
        pool.close()
        cache = st.extra.get("_cache_dir")
        if cache:
            import shutil
            shutil.rmtree(cache, ignore_errors=True)
    info = machine_info(pool.nnviz_info, pool.torch_info)
    if layer:
        info["numba_threading_layer"] = layer
    extra = {k: v for k, v in st.extra.items() if not k.startswith("_")}
    result = {"machine": info, "backend": pool.nnviz_info.get("backend"), "quick": quick,
              "repeats": st.repeats, "results": rows, "extra": extra,
              "isolation": {"nnviz_process_has_torch": pool.foreign.get("nnviz", False),
                            "torch_process_has_numba": pool.foreign.get("torch")},
              "processes": {"bench": os.getpid(), **pool.pids}}
    if want_json:
        print(json.dumps(result))
        return 0
    print(_table(result))
    return 0


def _isolation_text(result):
    iso, pids = result.get("isolation", {}), result.get("processes", {})
    has_torch = iso.get("nnviz_process_has_torch")
    out = (f"processes: nnviz in pid {pids.get('nnviz')} "
           f"({'WITH torch loaded, not what a user gets' if has_torch else 'torch not loaded'})")
    has_numba = iso.get("torch_process_has_numba")
    if has_numba is None:
        return out + ", PyTorch not run"
    return (out + f", PyTorch in pid {pids.get('torch')} "
            f"({'WITH numba loaded' if has_numba else 'numba not loaded'})")


def _table(result):
    m = result["machine"]
    head = (f"nnviz bench on {m['cpu']} ({m['cores']} cores), numpy {m['numpy']}, numba "
            f"{m.get('numba', '?')}, torch {m.get('torch', 'not used')}; median of "
            f"{result['repeats']} interleaved repeats, each engine in its own process")
    cols = ["benchmark", "unit", "nnviz", "PyTorch", "ratio", "target", "met?"]
    lines = []
    for r in result["rows"] if "rows" in result else result["results"]:
        ratio = "–" if r["ratio"] is None else f"{r['ratio']:.2f}x"
        met = "–" if r["met"] is None else ("yes" if r["met"] else "NO")
        if r.get("error"):
            met = "error: " + r["error"][:60]
        lines.append([r["name"], r["unit"], _fmt(r["nnviz"], r["unit"]),
                      _fmt(r["pytorch"], r["unit"]), ratio, r["target"], met])
    widths = [max(len(c), *(len(l[i]) for l in lines)) if lines else len(c)
              for i, c in enumerate(cols)]
    fmt = lambda row: "| " + " | ".join(v.ljust(w) for v, w in zip(row, widths)) + " |"
    out = [head, "", fmt(cols), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [fmt(l) for l in lines]
    for k, v in result.get("extra", {}).items():
        out.append(f"{k}: {v}")
    out.append("ratio: nnviz/PyTorch for throughput, PyTorch/nnviz for times (higher = nnviz faster)")
    if "isolation" in result:
        out.append(_isolation_text(result))
    return "\n".join(out)
