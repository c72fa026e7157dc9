"""Qt-free numerics for the CNN inspector: image tiling, colour maps, the worker-side
snapshot function, confusion matrices, canvas downsampling and a small fallback dataset."""
from __future__ import annotations

import threading
import time

import numpy as np

from nnviz.engine import softmax

from ..snapshots import Confusion, HistoryCopier, Inspection, InspectorSnapshot
from ..style import COLORMAPS, colormap_rgb, to_uint8


def map_tiles(act, cmap="viridis", per_map=True):
    """Activations (C, H, W) -> list of C RGB tiles; per-map or per-layer scaling.
    One vectorised scaling and one lookup for the whole layer."""
    a = np.asarray(act, np.float32)
    if a.size == 0:
        return []
    if not np.isfinite(a).all():
        a = np.where(np.isfinite(a), a, 0.0)
    if per_map:
        lo = a.min(axis=(1, 2), keepdims=True)
        hi = a.max(axis=(1, 2), keepdims=True)
    else:
        lo, hi = a.min(), a.max()
    span = hi - lo
    flat = span < 1e-12
    scale = np.where(flat, 0.0, 255.0 / np.where(flat, 1.0, span))
    u = np.clip((a - lo) * scale, 0, 255).astype(np.uint8)
    if np.any(flat):         # a constant map: mid grey-level, or 0 when it is all zeros
        const = np.where(hi != 0, 127, 0).astype(np.uint8)
        u = np.where(flat, const, u)
    rgb = COLORMAPS[cmap][u]
    return list(rgb)


def image_for_display(x, normalization=None):
    """One input (C, H, W) -> (H, W) or (H, W, 3) uint8, undoing the normalisation when known."""
    x = np.asarray(x, np.float32)
    if normalization and "mean" in normalization and "std" in normalization:
        m = np.asarray(normalization["mean"], np.float32).reshape(-1, 1, 1)
        s = np.asarray(normalization["std"], np.float32).reshape(-1, 1, 1)
        if m.shape[0] in (1, x.shape[0]):
            img = np.clip(x * s + m, 0, 1)
            u = (img * 255).round().astype(np.uint8)
            return u[0] if x.shape[0] == 1 else np.ascontiguousarray(u[:3].transpose(1, 2, 0))
    if x.shape[0] == 3:
        return np.ascontiguousarray(to_uint8(x).transpose(1, 2, 0))
    return to_uint8(x[0])


def filter_tiles(weight, layer_index=0, rgb=True):
    """Conv weights (out, in, kh, kw) -> (tiles, ncols).

    With 3 input channels and rgb=True each filter is one RGB composite, each filter
    normalised to its own min..max.  Otherwise a grid: one row per filter, one column
    per input channel, a diverging colour map symmetric about 0 for the whole layer.
    """
    w = np.asarray(weight, np.float32)
    out_c, in_c = w.shape[:2]
    if in_c == 3 and rgb:
        tiles = []
        for f in w:
            lo, hi = float(f.min()), float(f.max())
            tiles.append(np.ascontiguousarray(to_uint8(f, lo, hi).transpose(1, 2, 0)))
        return tiles, min(out_c, 16)
    lim = float(np.abs(w).max()) or 1.0
    tiles = [colormap_rgb(w[o, i], "diverging", -lim, lim) for o in range(out_c) for i in range(in_c)]
    return tiles, (in_c if in_c > 1 else min(16, max(3, int(np.ceil(np.sqrt(2 * out_c))))))


# ---------------------------------------------------------------- canvas input
def downsample(img, out_hw):
    """Area-average an (H, W) image to out_hw; H, W need not be multiples."""
    img = np.asarray(img, np.float32)
    h, w = img.shape
    oh, ow = out_hw
    if h % oh == 0 and w % ow == 0:
        return img.reshape(oh, h // oh, ow, w // ow).mean(axis=(1, 3))
    rows = np.linspace(0, h, oh + 1).astype(int)
    cols = np.linspace(0, w, ow + 1).astype(int)
    out = np.add.reduceat(np.add.reduceat(img, rows[:-1], axis=0), cols[:-1], axis=1)
    area = np.outer(np.diff(rows), np.diff(cols))
    return out / np.maximum(area, 1)


def canvas_to_input(gray_u8, input_shape, normalization=None):
    """A white-on-black canvas (H, W) uint8 -> one normalised model input (1, h, w)."""
    c, h, w = input_shape
    small = downsample(np.asarray(gray_u8, np.float32) / 255.0, (h, w))
    if normalization and "mean" in normalization:
        m = float(np.asarray(normalization["mean"]).ravel()[0])
        s = float(np.asarray(normalization["std"]).ravel()[0]) or 1.0
        small = (small - m) / s
    return np.repeat(small[None], c, axis=0).astype(np.float32)


# ---------------------------------------------------------------- model helpers
def inspect_input(model, x, token=0):
    """Forward ONE input (C, H, W): activations of 3-D layers and class probabilities."""
    acts = model.activations(np.asarray(x, np.float32)[None])
    maps = [(label, a[0].copy()) for label, a in acts[1:] if a.ndim == 4]
    probs = softmax(np.asarray(acts[-1][1][0], np.float64).ravel())
    return Inspection(input=np.asarray(x, np.float32).copy(), maps=maps, probs=probs,
                      token=token)


def conv_weights(model):
    """[(name, weight copy)] of every Conv2D (nested ones too), in order."""
    out = []
    for name, p in model.named_parameters():
        if name.endswith(".weight") and getattr(p, "ndim", 0) == 4:
            out.append((name, np.array(model.B.to_host(p), copy=True)))
    return out


def confusion_matrix(y_true, y_pred, k):
    m = np.zeros((k, k), np.int64)
    np.add.at(m, (np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)), 1)
    return m


def confusion_subset(n, cap=2000, seed=0):
    """Indices of the test samples used for the confusion matrix (all, or `cap` of them)."""
    if n <= cap:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, cap, replace=False))


BN_INTERVAL_S = 0.3     # the Batch norm view's statistics while training runs


class SnapshotMaker:
    """The snapshot_fn run in the worker thread.  Returns InspectorSnapshots of copies.

    `get_input()` returns (x, token) for the inspected input (read from a reference the UI
    thread swaps atomically); the gradient-norm history lives here, bounded. The confusion
    matrix is computed once per epoch (and when asked for), not per snapshot.
    """

    def __init__(self, dataset, get_input, conf_cap=2000, max_history=400):
        self.get_input = get_input
        self.max_history = int(max_history)
        self.conf_idx = confusion_subset(len(dataset.y_test), conf_cap)
        self.conf_x = dataset.x_test[self.conf_idx]
        self.conf_y = dataset.y_test[self.conf_idx]
        self.n_test = len(dataset.y_test)
        self.num_classes = dataset.num_classes
        self.lock = threading.Lock()
        self._conf_epoch = None
        self.grad_steps = []
        self.grad_hist = {}
        self._last_grad_step = None
        self.history = HistoryCopier()
        self.bn_layer = None        # set by the UI thread while the Batch norm view shows
        self._bn_cache = ((None, 0.0), (None, ""))

    def confusion(self, model, epoch=0):
        k = self.num_classes
        if len(self.conf_y) == 0:
            return Confusion(matrix=np.zeros((k, k), np.int64), pred=np.zeros(0, np.int64),
                             index=self.conf_idx.copy(), y=self.conf_y.copy(), n_total=0,
                             epoch=epoch)
        pred = model.predict(self.conf_x, batch_size=512)
        return Confusion(matrix=confusion_matrix(self.conf_y, pred, k),
                         pred=pred.astype(np.int64), index=self.conf_idx.copy(),
                         y=self.conf_y.copy(), n_total=self.n_test, epoch=epoch)

    def record_gradients(self, trainer):
        if trainer.steps == self._last_grad_step or trainer.steps == 0:
            return
        self._last_grad_step = trainer.steps
        norms = trainer.model.gradient_norms()
        self.grad_steps.append(trainer.steps)
        for k, v in norms.items():
            if k.endswith(".weight"):
                self.grad_hist.setdefault(k, []).append(v)
        if len(self.grad_steps) > self.max_history:      # decimate: keep every other point
            self.grad_steps = self.grad_steps[1::2]
            self.grad_hist = {k: v[1::2] for k, v in self.grad_hist.items()}

    def batchnorm(self, trainer, index, min_interval=0.0):
        """(stats, error text) of BatchNorm layer `index` on the next training batch. Kept
        while the step and layer stay the same, and for `min_interval` seconds while training
        runs (a forward pass and three histograms: ~30 ms for LeNet-5's first BatchNorm)."""
        from nnviz.engine import LayerError
        from nnviz.explain.batchnorm import batchnorm_stats
        key = (id(trainer), trainer.steps, trainer.batch_size, index)
        (old, t0), res = self._bn_cache
        if old == key:
            return res
        live = old is not None and old[0] == key[0] and old[3] == index and key[1] > old[1] + 1
        if live and time.perf_counter() - t0 < min_interval:     # not after one Step
            return res
        try:
            stats = batchnorm_stats(trainer.model, trainer.next_batch()[0], index)
            stats.step = trainer.steps
            res = (stats, "")
        except LayerError as e:
            res = (None, str(e))
        self._bn_cache = ((key, time.perf_counter()), res)
        return res

    def __call__(self, trainer, with_confusion=None):
        with self.lock:
            model = trainer.model
            x, token = self.get_input()
            self.record_gradients(trainer)
            snap = InspectorSnapshot(
                step=trainer.steps, epoch=trainer.epoch, seconds=float(trainer.seconds),
                samples=int(trainer.samples), filters=conv_weights(model),
                grad_steps=np.asarray(self.grad_steps, np.int64),
                grad_norms={k: np.asarray(v, np.float64) for k, v in self.grad_hist.items()},
                history=self.history.copy(trainer.history))
            if self.bn_layer is not None:
                # live snapshots at most ~3 times a second; asked-for ones (with_confusion
                # given: a refresh, a Step) always
                snap.batchnorm, snap.batchnorm_error = self.batchnorm(
                    trainer, self.bn_layer, BN_INTERVAL_S if with_confusion is None else 0.0)
            if x is not None and tuple(np.shape(x)) == tuple(model.input_shape):
                snap.inspect = inspect_input(model, x, token)
            need = with_confusion if with_confusion is not None else (
                self._conf_epoch != trainer.epoch)
            if need:
                snap.confusion = self.confusion(model, trainer.epoch)
                self._conf_epoch = trainer.epoch
            return snap


# ---------------------------------------------------------------- fallback data
def synthetic_dataset(name="synthetic", input_shape=(1, 28, 28), num_classes=10, n_train=600,
                      n_test=200, seed=0):
    """A small learnable image set (oriented bars and blobs) for tests and as a fallback
    when no dataset can be loaded.  Returns an nnviz.data Dataset."""
    from nnviz.data.dataset import Dataset
    c, h, w = input_shape
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    yy = (yy - h / 2) / (h / 2)
    xx = (xx - w / 2) / (w / 2)

    def make(n):
        y = rng.integers(0, num_classes, n)
        ang = np.pi * y / num_classes + rng.normal(0, 0.08, n)
        off = rng.normal(0, 0.15, (n, 2))
        d = np.abs((xx[None] - off[:, :1, None]) * np.sin(ang)[:, None, None]
                   - (yy[None] - off[:, 1:, None]) * np.cos(ang)[:, None, None])
        img = np.exp(-(d / 0.12) ** 2)
        img = img * (((xx[None] - off[:, :1, None]) ** 2 + (yy[None] - off[:, 1:, None]) ** 2)
                     < 0.7).astype(np.float32)
        img += rng.normal(0, 0.05, img.shape)
        x = np.repeat(img[:, None], c, axis=1).astype(np.float32)
        if c == 3:
            tint = np.stack([(y % 2) * 0.6 + 0.4, ((y + 1) % 2) * 0.6 + 0.4,
                             np.full(n, 0.5)], 1)
            x *= tint[:, :, None, None].astype(np.float32)
        return x, y

    xtr, ytr = make(n_train)
    xte, yte = make(n_test)
    mean = [float(xtr[:, i].mean()) for i in range(c)]
    std = [float(xtr[:, i].std()) or 1.0 for i in range(c)]
    m = np.asarray(mean, np.float32).reshape(1, c, 1, 1)
    s = np.asarray(std, np.float32).reshape(1, c, 1, 1)
    return Dataset(name=name, x_train=(xtr - m) / s, y_train=ytr, x_test=(xte - m) / s,
                   y_test=yte, class_names=[f"class {i}" for i in range(num_classes)],
                   normalization={"mean": mean, "std": std}, source="synthetic")
