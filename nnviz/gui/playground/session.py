"""Playground models, trainers and snapshots -- plain numpy/engine code (no Qt).

Snapshot functions run in the worker thread: they evaluate the model on a
precomputed grid of feature-mapped points and return copies only.
"""
from dataclasses import dataclass, field, replace

import numpy as np

from nnviz.data.dataset import Dataset
from nnviz.engine import softmax
from nnviz.train import Trainer

from ..snapshots import CompareSnapshot, HistoryCopier, PlaygroundSnapshot, RunSnapshot
from ..style import CLASS_COLORS
from .dropout import DEFAULT_RATE, compare_labels, dropped_units, seeded_model, with_dropout
from .features import feature_map, ordered

ACTIVATIONS = {"ReLU": "ReLU", "Tanh": "Tanh", "Sigmoid": "Sigmoid", "LeakyReLU": "LeakyReLU",
               "Linear": None}
BOUNDARY_RES = 200
COMPARE_RES = 100     # three boundaries side by side, each a third as wide: drawn smoothed
NEURON_RES = 48


@dataclass
class Settings:
    dataset: str = "spiral"
    noise: float = 0.1
    n_points: int = 500
    test_fraction: float = 0.5
    classes: int = 2
    seed: int = 0
    hidden: list = field(default_factory=lambda: [8, 8])
    activation: str = "Tanh"
    # raw coordinates only: then 0 hidden layers draws a straight line, the lecture's point
    features: list = field(default_factory=lambda: ["x1", "x2"])
    lr: float = 0.01
    batch_size: int = 16
    optimizer: str = "adam"
    reg: str = "None"
    reg_rate: float = 0.001
    dropout: float = 0.0      # rate of the Dropout after each hidden layer (0: none, fused training)


def build_spec(n_in, hidden, activation, classes, name=None):
    act = ACTIVATIONS.get(activation)
    layers = []
    for h in hidden:
        layers.append({"type": "Dense", "out_features": int(h)})
        if act:
            layers.append({"type": act})
    layers.append({"type": "Dense", "out_features": int(classes)})
    return {"name": name or f"playground-{len(hidden)}-hidden", "input_shape": [int(n_in)],
            "layers": layers}


def hidden_output_layers(spec):
    """Indices of the layers whose outputs are the hidden neurons (post-activation)."""
    out, layers = [], spec["layers"]
    for i, cfg in enumerate(layers[:-1]):
        if cfg["type"] != "Dense":
            continue
        nxt = layers[i + 1] if i + 1 < len(layers) else None
        out.append(i + 1 if nxt is not None and nxt["type"] != "Dense" else i)
    return out


def plane_extent(raw):
    pts = np.concatenate([raw.x_train, raw.x_test]) if len(raw.x_test) else raw.x_train
    m = float(np.abs(pts).max()) if len(pts) else 1.0
    m = m * 1.08 if m > 0 else 1.0
    return (-m, m, -m, m)


def grid_points(extent, res):
    x0, x1, y0, y1 = extent
    xs = np.linspace(x0, x1, res, dtype=np.float32)
    ys = np.linspace(y0, y1, res, dtype=np.float32)
    gx, gy = np.meshgrid(xs, ys)     # row = y, column = x
    return np.stack([gx.ravel(), gy.ravel()], 1)


def optimizer_kwargs(s):
    kw = {"lr": float(s.lr)}
    if s.reg == "L2":
        kw["weight_decay"] = float(s.reg_rate)
    elif s.reg == "L1":
        kw["l1"] = float(s.reg_rate)
    return kw


class Run:
    """One model + trainer on the feature-mapped data, with its grids."""

    def __init__(self, raw, settings, hidden, seed=0, label=None, res=BOUNDARY_RES):
        self.raw = raw
        self.res = int(res)
        self.settings = settings
        self.features = ordered(settings.features)
        self.hidden = list(hidden)
        self.label = label or f"{len(hidden)} hidden"
        classes = raw.num_classes
        self.dropout = float(getattr(settings, "dropout", 0.0))
        self.spec = with_dropout(build_spec(len(self.features), self.hidden, settings.activation,
                                            classes), self.dropout)
        self.neuron_layers = hidden_output_layers(self.spec)
        self.model = seeded_model(self.spec, seed)
        f = lambda x: feature_map(x, self.features)
        self.data = Dataset(name=raw.name, x_train=f(raw.x_train), y_train=raw.y_train,
                            x_test=f(raw.x_test), y_test=raw.y_test,
                            class_names=list(raw.class_names), source=raw.source)
        kw = optimizer_kwargs(settings)
        self.trainer = Trainer(self.model, self.data, loss="softmax_xent",
                               optimizer=settings.optimizer, lr=kw.pop("lr"),
                               batch_size=min(int(settings.batch_size), len(raw.y_train)),
                               seed=seed, **kw)
        self.extent = plane_extent(raw)
        self.grid = f(grid_points(self.extent, self.res))
        self.grid_small = f(grid_points(self.extent, NEURON_RES))


class GroupTrainer:
    """Steps several trainers round-robin in one worker thread (Compare depths)."""

    def __init__(self, runs):
        self.runs = runs
        self.trainers = [r.trainer for r in runs]

    @property
    def steps(self):
        return self.trainers[0].steps

    @property
    def epoch(self):
        return self.trainers[0].epoch

    @property
    def lr(self):
        return self.trainers[0].lr

    @property
    def model(self):
        return self.trainers[0].model

    def step(self):
        out = None
        for t in self.trainers:
            ep = t.epoch
            out = t.step()
            if t.epoch != ep:
                t.record_epoch()
        return out

    def restore_last_good(self):
        return [t.restore_last_good() for t in self.trainers][0]


def dropout_runs(raw, settings, res):
    """Compare dropout: the net of `settings` without dropout and with its rate (DEFAULT_RATE
    when that is 0). Same seed: same data order and starting weights."""
    p = settings.dropout if settings.dropout > 0 else DEFAULT_RATE
    return [Run(raw, replace(settings, dropout=rate), settings.hidden, seed=settings.seed,
                label=label, res=res) for rate, label in zip((0.0, p), compare_labels(p))]


def trainers_of(tr):
    return list(getattr(tr, "trainers", [tr])) if tr is not None else []


# ---- colours -----------------------------------------------------------------------
_ORANGE = np.array(CLASS_COLORS[0], np.float32)
_BLUE = np.array(CLASS_COLORS[1], np.float32)
_WHITE = np.array([255, 255, 255], np.float32)


def _lut2(discretize, strength):
    key = (bool(discretize), float(strength))
    lut = _LUTS.get(key)
    if lut is None:
        p = np.linspace(0, 1, 256, dtype=np.float32)[:, None, None]
        lut = _probability_rgb_slow(np.concatenate([1 - p, p], -1), discretize, strength)[:, 0]
        _LUTS[key] = lut
    return lut


_LUTS = {}


def probability_rgb(probs, discretize=False, strength=0.8):
    """(H, W, C) class probabilities -> (H, W, 3) uint8 (a lookup table for 2 classes)."""
    probs = np.asarray(probs, np.float32)
    if probs.shape[-1] == 2:
        idx = np.clip(probs[..., 1] * 255 + 0.5, 0, 255).astype(np.uint8)
        return _lut2(discretize, strength)[idx]
    return _probability_rgb_slow(probs, discretize, strength)


def _probability_rgb_slow(probs, discretize=False, strength=0.8):
    """(H, W, C) class probabilities -> (H, W, 3) uint8, orange <-> white <-> blue for 2
    classes, class colours blended by probability (lightened by uncertainty) for more."""
    probs = np.asarray(probs, np.float32)
    C = probs.shape[-1]
    if C == 2:
        v = probs[..., 1] * 2 - 1                  # -1 orange ... +1 blue
        if discretize:
            v = np.where(v >= 0, 1.0, -1.0).astype(np.float32) * 0.75
        a = np.abs(v)[..., None] * strength
        col = np.where((v >= 0)[..., None], _BLUE, _ORANGE)
    else:
        cols = np.array(CLASS_COLORS[:C] + [CLASS_COLORS[-1]] * max(0, C - len(CLASS_COLORS)),
                        np.float32)[:C]
        if discretize:
            onehot = np.eye(C, dtype=np.float32)[probs.argmax(-1)]
            col = onehot @ cols
            a = np.full(probs.shape[:-1] + (1,), 0.6 * strength, np.float32)
        else:
            col = probs @ cols
            conf = (probs.max(-1) - 1.0 / C) / (1 - 1.0 / C)
            a = np.clip(conf, 0, 1)[..., None] * strength
    out = _WHITE * (1 - a) + col * a
    return np.clip(out, 0, 255).astype(np.uint8)


_DIV_LUT = None


def diverging(values, scale=None):
    """Neuron activations (..., H, W) -> uint8 RGB, orange negative, blue positive
    (through a 256-entry lookup table)."""
    global _DIV_LUT
    if _DIV_LUT is None:
        t = np.linspace(-1, 1, 256, dtype=np.float32)[:, None]
        col = np.where(t >= 0, _BLUE, _ORANGE)
        _DIV_LUT = (_WHITE * (1 - np.abs(t)) + col * np.abs(t)).astype(np.uint8)
    v = np.asarray(values, np.float32)
    if scale is None:
        scale = float(np.abs(v).max()) or 1.0
    idx = np.clip(v * (127.5 / scale) + 128.0, 0, 255).astype(np.uint8)
    return _DIV_LUT[idx]


# ---- snapshots (worker thread) --------------------------------------------------------
def fast_proba(model, x):
    """Softmax of the logits for all of x in one forward pass (float32)."""
    return softmax(np.asarray(model.B.to_host(model.forward(x, train=False)), dtype=np.float32))


class RunSnapshotter:
    """Makes RunSnapshots of one Run in the worker thread (copies only); keeps the
    buffers that make the history copy incremental."""

    def __init__(self, run, opts):
        self.run, self.opts = run, opts
        self.history = HistoryCopier()

    def __call__(self, neurons=True):
        run = self.run
        tr, model = run.trainer, run.model
        res = run.res
        probs = fast_proba(model, run.grid).reshape(res, res, -1)
        tl, ta = tr.evaluate("train")
        el, ea = tr.evaluate("test")
        snap = RunSnapshot(
            label=run.label, steps=tr.steps, epoch=tr.epoch, probs=probs,
            rgb=probability_rgb(probs, self.opts.get("discretize", False)),
            contour=(contour_segments(probs[..., 1], 0.5, run.extent)
                     if probs.shape[-1] == 2 else None),
            history=self.history.copy(tr.history), train_loss=tl, train_acc=ta,
            test_loss=el, test_acc=ea, dropped=dropped_units(model))
        if neurons:
            acts = model.activations(run.grid_small)
            n = NEURON_RES
            hidden = [acts[i + 1][1].T.reshape(-1, n, n) for i in run.neuron_layers]
            small = softmax(np.asarray(acts[-1][1], np.float32))   # the logits: no second forward
            out = (small[:, 1] - small[:, 0]) if small.shape[1] == 2 else small.max(1) * 2 - 1
            snap.neuron_rgb = [diverging(a, float(np.abs(a).max()) or 1.0) for a in hidden]
            snap.output_rgb = diverging(out.reshape(n, n), 1.0)
            snap.weights = [np.array(model.B.to_host(p), copy=True)
                            for name, p in model.named_parameters() if name.endswith("weight")]
        return snap


def run_snapshot(run, opts, neurons=True):
    """One RunSnapshot (no incremental state: for one-off use)."""
    return RunSnapshotter(run, opts)(neurons)


def contour_segments(field, level, extent):
    """Marching squares, vectorised: line segments (M, 2, 2) in plane coordinates where
    `field` (rows = y) crosses `level`. Only the cells the level crosses are worked on."""
    f = np.asarray(field, np.float32) - level
    ny, nx = f.shape
    x0, x1, y0, y1 = extent
    sx, sy = (x1 - x0) / (nx - 1), (y1 - y0) / (ny - 1)
    pos = f > 0
    corners = pos[:-1, :-1].astype(np.int8) + pos[:-1, 1:] + pos[1:, 1:] + pos[1:, :-1]
    ii, jj = np.nonzero((corners > 0) & (corners < 4))
    if len(ii) == 0:
        return np.zeros((0, 2, 2), np.float32)
    a, b, c, d = f[ii, jj], f[ii, jj + 1], f[ii + 1, jj + 1], f[ii + 1, jj]
    fj, fi = jj.astype(np.float32), ii.astype(np.float32)

    def cross(p, q):
        with np.errstate(divide="ignore", invalid="ignore"):
            t = p / (p - q)
        return (p > 0) != (q > 0), np.nan_to_num(t)

    pts = []
    for (p, q, ox, oy, dx, dy) in ((a, b, 0, 0, 1, 0), (b, c, 1, 0, 0, 1),
                                   (d, c, 0, 1, 1, 0), (a, d, 0, 0, 0, 1)):
        m, t = cross(p, q)
        pts.append((m, fj + ox + dx * t, fi + oy + dy * t))
    mask = np.stack([m for m, _, _ in pts], -1)
    xs = np.stack([x for _, x, _ in pts], -1)
    ys = np.stack([y for _, _, y in pts], -1)
    two = mask.sum(-1) == 2                  # ignore saddles (rare, and one pixel wide)
    if not two.any():
        return np.zeros((0, 2, 2), np.float32)
    mk, xk, yk = mask[two], xs[two], ys[two]
    order = np.argsort(~mk, axis=1, kind="stable")[:, :2]
    px = np.take_along_axis(xk, order, 1) * sx + x0
    py = np.take_along_axis(yk, order, 1) * sy + y0
    return np.stack([px, py], -1).astype(np.float32)


def make_snapshot_fn(run, opts):
    snapshotter = RunSnapshotter(run, opts)
    return lambda trainer: PlaygroundSnapshot(run=snapshotter())


def make_group_snapshot_fn(group, opts):
    snapshotters = [RunSnapshotter(r, opts) for r in group.runs]
    return lambda trainer: CompareSnapshot(runs=[s(neurons=False) for s in snapshotters])
