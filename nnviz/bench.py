"""`nnviz bench`: training and inference speed of the engine, beside PyTorch.

Both engines run in the same process with the same number of threads, and
their timed blocks are interleaved (nnviz, PyTorch, nnviz, ...) so that other
load on the machine hits both alike. Each figure is the median over repeats;
a warm-up block before them (compilation, first allocations) is not counted.
"""
import json
import os
import platform
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
    "memory": ("MB", False, "max", 50.0, "RSS growth, epochs 2-3 of MNIST-size"),
}
DEFAULT = ["lenet5-b1", "lenet5-b16", "lenet5-b64", "lenet5-b256", "lab7-b64", "mlp-b10",
           "mlp-b32", "grid", "featuremaps", "mnist-load", "coldstart", "warmstart"]
QUICK_SKIP = {"coldstart", "warmstart"}  # subprocesses that compile: too slow for --quick


class _Settings:
    def __init__(self, quick):
        self.quick = quick
        self.repeats = 3 if quick else 7
        self.block_s = 0.08 if quick else 0.3   # length of one timed block per engine


# ---- helpers ---------------------------------------------------------------------
def _rss_mb():
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20
    except OSError:
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _synthetic(shape, n, classes=10, seed=0):
    from .data.dataset import Dataset
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n,) + tuple(shape), dtype=np.float32)
    y = rng.integers(0, classes, n)
    nt = max(1, n // 10)
    return Dataset(name="synthetic", x_train=x, y_train=y, x_test=x[:nt], y_test=y[:nt],
                   class_names=[str(i) for i in range(classes)])


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


def _interleaved(fns, st):
    """Median seconds per call of each fn in fns (None entries skipped), interleaved."""
    live = [f for f in fns if f is not None]
    for f in live:           # warm-up: compilation, buffers, caches
        for _ in range(3):
            f()
    ks = [_calibrate(f, st.block_s) for f in live]
    times = [[] for _ in live]
    for _ in range(st.repeats):
        for i, f in enumerate(live):
            times[i].append(_timed(f, ks[i]))
    med = iter([statistics.median(t) for t in times])
    return [None if f is None else next(med) for f in fns]


def _torch(st):
    if st.no_torch:
        return None
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(st.threads)
    return torch


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


# ---- training throughput -------------------------------------------------------------
def _train_pair(spec, batch, st, optimizer="sgd", n=None):
    """(nnviz seconds/step, PyTorch seconds/step) of full training steps via Trainer.step."""
    from .engine import model_from_spec
    from .train import Trainer
    shape = tuple(spec["input_shape"])
    classes = spec["layers"][-1]["out_features"]
    n = n or max(batch * 64, 2048)
    data = _synthetic(shape, n, classes)
    kw = dict(lr=0.01, momentum=0.9) if optimizer == "sgd" else dict(lr=0.01)
    model = model_from_spec(spec, seed=0)
    tr = Trainer(model, data, optimizer=optimizer, batch_size=batch, **kw)
    fns = [tr.step, None]
    torch = _torch(st)
    if torch is not None:
        tm = _torch_model(torch, spec)
        opt = (torch.optim.SGD(tm.parameters(), **kw) if optimizer == "sgd"
               else torch.optim.Adam(tm.parameters(), **kw))
        lossf = torch.nn.CrossEntropyLoss()
        xt, yt = torch.from_numpy(data.x_train), torch.from_numpy(data.y_train)
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
        fns[1] = tstep
    return _interleaved(fns, st)


def _bench_train(name, st):
    from .engine import read_spec
    if name.startswith("lenet5-b"):
        b = int(name[len("lenet5-b"):])
        a, t = _train_pair(LENET5_RELU, b, st)
        return b / a, (b / t if t else None)
    if name == "lab7-b64":
        a, t = _train_pair(read_spec("lab7-cnn"), 64, st)
        return 64 / a, (64 / t if t else None)
    b = int(name[len("mlp-b"):])
    a, t = _train_pair(TINY_MLP, b, st, optimizer="adam", n=1000)
    return 1 / a, (1 / t if t else None)


# ---- inference -----------------------------------------------------------------------
def _bench_grid(st):
    from .engine import load_preset
    model = load_preset("mlp2", seed=0)
    g = np.linspace(-3, 3, 200, dtype=np.float32)
    xx, yy = np.meshgrid(g, g)
    pts = np.ascontiguousarray(np.stack([xx.ravel(), yy.ravel()], axis=1))
    fns = [lambda: model.forward(pts), None]
    torch = _torch(st)
    if torch is not None:
        from .engine import read_spec
        tm = _torch_model(torch, read_spec("mlp2")).eval()
        tp = torch.from_numpy(pts)

        def tf():
            with torch.no_grad():
                tm(tp)
        fns[1] = tf
    a, t = _interleaved(fns, st)
    return a * 1e3, (t * 1e3 if t else None)


def _bench_featuremaps(st):
    from .engine import model_from_spec
    model = model_from_spec(LENET5_RELU, seed=0)
    x = np.random.default_rng(0).standard_normal((1, 1, 28, 28), dtype=np.float32)
    fns = [lambda: model.activations(x), None]
    torch = _torch(st)
    if torch is not None:
        tm = _torch_model(torch, LENET5_RELU).eval()
        xt = torch.from_numpy(x)

        def tf():
            outs = [xt.clone()]
            with torch.no_grad():
                y = xt
                for m in tm:
                    y = m(y)
                    outs.append(y.clone())
            return outs
        fns[1] = tf
    a, t = _interleaved(fns, st)
    return a * 1e3, (t * 1e3 if t else None)


# ---- data, start-up, memory ----------------------------------------------------------
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


def _bench_memory(st):
    from .engine import model_from_spec
    from .train import Trainer
    data, _ = _load_mnist()
    if data is None:
        data = _synthetic((1, 28, 28), 60000)
    if st.quick:
        data = data.subset(n_train=6000, n_test=1000)
    tr = Trainer(model_from_spec(LENET5_RELU, seed=0), data, lr=0.01, momentum=0.9,
                 batch_size=64)
    rss = []
    for _ in range(3):
        tr.fit(1)
        rss.append(_rss_mb())
    st.extra["memory_rss_mb"] = [round(r, 1) for r in rss]
    st.extra["memory_samples_per_s"] = tr.summary()["samples_per_second"]
    return rss[-1] - rss[0], None


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
    env = dict(os.environ, NUMBA_CACHE_DIR=cache)
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


# ---- driver ------------------------------------------------------------------------------
def _run_one(name, st):
    if name.startswith(("lenet5-b", "lab7-", "mlp-b")):
        return _bench_train(name, st)
    if name == "grid":
        return _bench_grid(st)
    if name == "featuremaps":
        return _bench_featuremaps(st)
    if name == "mnist-load":
        _, sec = _load_mnist()
        return sec, None
    if name == "memory":
        return _bench_memory(st)
    if name in ("coldstart", "warmstart"):
        return _bench_start(name[:-5], st)
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


def machine_info(torch_mod=None):
    import numba
    info = {"python": platform.python_version(), "numpy": np.__version__,
            "numba": numba.__version__, "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(), "numba_threads": numba.config.NUMBA_NUM_THREADS}
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                info["cpu"] = line.split(":", 1)[1].strip()
    except OSError:
        pass
    if torch_mod is not None:
        info["torch"] = torch_mod.__version__
        info["torch_threads"] = torch_mod.get_num_threads()
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
    # PyTorch first: its OpenMP runtime then keeps its default (spinning) wait policy, as in a
    # process of its own; nnviz's CPU backend makes Numba's workers sleep when idle.
    import numba
    st.threads = numba.config.NUMBA_NUM_THREADS
    torch = _torch(st)
    from .engine import backend
    backend.use(getattr(args, "backend", None) or "cpu")
    try:
        names = _select(getattr(args, "only", None), quick)
    except ValueError as e:
        print(f"nnviz: error: {e}", file=sys.stderr)
        return 2
    rows = []
    for name in names:
        unit, higher, kind, target, desc = BENCHMARKS[name]
        try:
            a, t = _run_one(name, st)
            err = None
        except Exception as e:  # one failing figure must not hide the others
            a, t, err = None, None, f"{type(e).__name__}: {e}"
        ratio, met = _met(name, a, t)
        row = {"name": name, "description": desc, "unit": unit, "nnviz": a, "pytorch": t,
               "ratio": ratio, "target": _target_text(name), "met": met}
        if err:
            row["error"] = err
        rows.append(row)
        if not want_json:
            print(f"  {name}: done", file=sys.stderr)
    extra = {k: v for k, v in st.extra.items() if not k.startswith("_")}
    cache = st.extra.get("_cache_dir")
    if cache:
        import shutil
        shutil.rmtree(cache, ignore_errors=True)
    result = {"machine": machine_info(torch), "backend": backend.get().name, "quick": quick,
              "repeats": st.repeats, "results": rows, "extra": extra}
    if want_json:
        print(json.dumps(result))
        return 0
    print(_table(result))
    return 0


def _table(result):
    m = result["machine"]
    head = (f"nnviz bench on {m['cpu']} ({m['cores']} cores), numpy {m['numpy']}, numba "
            f"{m['numba']}, torch {m.get('torch', 'not used')}; median of "
            f"{result['repeats']} interleaved repeats")
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
    return "\n".join(out)
