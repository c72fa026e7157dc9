"""A small fully connected net built from the engine's own layers, in float64 on the CPU.

`LabNet.trace(x, target)` runs the engine's Dense and activation layers forward, the engine's
loss, and the layers' explicit backward, and keeps a copy of every intermediate array. The
backprop lab displays only these arrays: nothing here re-implements a layer.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nnviz.engine import MSE, SGD, Dense, ReLU, Sigmoid, SoftmaxCrossEntropy, Tanh
from nnviz.engine import backend as _backend

ACTIVATIONS = {"sigmoid": Sigmoid, "tanh": Tanh, "relu": ReLU, "linear": None}
LOSSES = ("mse", "xent")
MAX_UNITS = 4
MAX_LAYERS = 3          # Dense layers: up to two hidden layers and the output
DTYPE = np.float64


class LabError(ValueError):
    """Settings or values the backprop lab cannot use."""


@dataclass
class Trace:
    """Every intermediate array of one forward and backward pass over a batch (n rows)."""
    x: np.ndarray                    # (n, inputs)
    target: np.ndarray               # (n, outputs) floats for MSE, (n,) class indices for xent
    z: list[np.ndarray]              # per Dense layer: pre-activations (n, units)
    a: list[np.ndarray]              # per layer: activations (z itself where there is none)
    d_act: list[np.ndarray | None]   # per layer: da/dz from the activation's backward, None: none
    loss: float
    terms: np.ndarray                # MSE: (o - t)^2 per output; xent: softmax probabilities
    g_out: np.ndarray                # the loss's gradient (dL/d its input)
    g_a: list[np.ndarray]            # dL/da per layer
    g_z: list[np.ndarray]            # dL/dz per layer
    g_w: list[np.ndarray]            # dL/dW per layer (units, fan_in)
    g_b: list[np.ndarray]            # dL/db per layer
    g_x: np.ndarray                  # dL/dx


def _cpu():
    return _backend.load("cpu")


class LabNet:
    """sizes = (inputs, hidden..., outputs); hidden/output activations by name; loss mse|xent.

    With softmax cross-entropy the last layer has no activation: the loss takes its logits.
    """

    def __init__(self, sizes=(2, 2, 2), hidden="sigmoid", output="sigmoid", loss="mse",
                 seed: int = 0):
        sizes = tuple(sizes)
        if not 2 <= len(sizes) <= MAX_LAYERS + 1:
            raise LabError(f"architecture: 1 to {MAX_LAYERS} layers after the inputs, got {sizes}")
        for s in sizes:
            if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or not 1 <= s <= MAX_UNITS:
                raise LabError(f"architecture: every layer needs 1 to {MAX_UNITS} units, got {sizes}")
        for which, act in (("hidden", hidden), ("output", output)):
            if act not in ACTIVATIONS:
                raise LabError(f"{which} activation must be one of {', '.join(ACTIVATIONS)}, got {act!r}")
        if loss not in LOSSES:
            raise LabError(f"loss must be 'mse' or 'xent', got {loss!r}")
        if loss == "xent" and sizes[-1] < 2:
            raise LabError("softmax cross-entropy needs at least 2 outputs")
        self.sizes = tuple(int(s) for s in sizes)
        self.hidden, self.output, self.loss_name = hidden, output, loss
        self.B = _cpu()
        self.dense: list[Dense] = []
        self.acts = []
        shape: tuple[int, ...] = (self.sizes[0],)
        n_layers = len(self.sizes) - 1
        for l, units in enumerate(self.sizes[1:]):
            last = l == n_layers - 1
            name: str | None = (None if loss == "xent" else output) if last else hidden
            cls = ACTIVATIONS.get(name) if name else None
            dense, act = Dense(units), (cls() if cls else None)
            dense.index = 2 * l
            rng = np.random.default_rng([seed, l])
            shape = dense.build(shape, rng, DTYPE, self.B, hint=act.type if act else None)
            if act is not None:
                act.index = 2 * l + 1
                act.build(shape, rng, DTYPE, self.B)
            self.dense.append(dense)
            self.acts.append(act)

    # ---- parameters ----------------------------------------------------------------------
    @property
    def n_layers(self) -> int:
        return len(self.dense)

    def act_name(self, l: int) -> str:
        """'sigmoid', 'tanh', 'relu', 'linear' or 'softmax' (the output of xent)."""
        if l == self.n_layers - 1:
            return "softmax" if self.loss_name == "xent" else self.output
        return self.hidden

    def weight(self, l: int) -> np.ndarray:
        return self.dense[l].params["weight"]

    def bias(self, l: int) -> np.ndarray:
        return self.dense[l].params["bias"]

    def parameters(self) -> list[np.ndarray]:
        """The engine's parameter arrays, weight before bias per layer (Sequential's order)."""
        return [p for d in self.dense for p in (d.params["weight"], d.params["bias"])]

    def set_params(self, weights, biases) -> None:
        for l, (w, b) in enumerate(zip(weights, biases)):
            self.set_array(self.weight(l), w, f"layer {l + 1} weights")
            self.set_array(self.bias(l), b, f"layer {l + 1} biases")

    @staticmethod
    def set_array(dst, src, what):
        src = np.asarray(src, dtype=DTYPE)
        if src.shape != dst.shape:
            raise LabError(f"{what}: expected shape {dst.shape}, got {src.shape}")
        if not np.all(np.isfinite(src)):
            raise LabError(f"{what}: values must be finite numbers")
        dst[...] = src

    def state(self) -> list[np.ndarray]:
        return [p.copy() for p in self.parameters()]

    def load_state(self, state) -> None:
        for p, s in zip(self.parameters(), state):
            p[...] = s

    # ---- running the engine ----------------------------------------------------------------
    def check_batch(self, x, target):
        x = np.ascontiguousarray(x, dtype=DTYPE)
        if x.ndim != 2 or x.shape[1] != self.sizes[0]:
            raise LabError(f"inputs: expected (examples, {self.sizes[0]}), got {x.shape}")
        k = self.sizes[-1]
        if self.loss_name == "xent":
            t = np.asarray(target)
            if t.shape != (len(x),) or not np.all(t == np.round(t)) or t.min() < 0 or t.max() >= k:
                raise LabError(f"targets: one class in 0..{k - 1} per example for cross-entropy")
            t = t.astype(np.int64)
        else:
            t = np.ascontiguousarray(target, dtype=DTYPE)
            if t.shape != (len(x), k):
                raise LabError(f"targets: expected (examples, {k}), got {t.shape}")
        if not np.all(np.isfinite(x)) or not np.all(np.isfinite(t)):
            raise LabError("inputs and targets must be finite numbers")
        return x, t

    def new_loss(self):
        return SoftmaxCrossEntropy(self.B) if self.loss_name == "xent" else MSE(self.B)

    def forward_loss(self, x, target) -> float:
        """The engine's loss for a batch (mean over examples and, for MSE, outputs)."""
        x, t = self.check_batch(x, target)
        h = x
        for d, act in zip(self.dense, self.acts):
            h = d.forward(h, train=True)
            if act is not None:
                h = act.forward(h, train=True)
        return float(self.new_loss().forward(h, t))

    def trace(self, x, target) -> Trace:
        x, t = self.check_batch(x, target)
        zs, acts, dacts = [], [], []
        h = x
        for d, act in zip(self.dense, self.acts):
            z = d.forward(h, train=True).copy()
            zs.append(z)
            if act is None:
                h, da = z, None
            else:
                h = act.forward(z, train=True).copy()
                da = act.backward(np.ones_like(z)).copy()    # local derivative da/dz
            acts.append(h)
            dacts.append(da)
        loss = self.new_loss()
        value = float(loss.forward(h, t))
        g = np.array(loss.backward(), copy=True)
        terms = self._terms(h, t, g)
        g_out = g.copy()
        g_a, g_z, g_w, g_b = [], [], [], []       # filled from the last layer back, then reversed
        for dense, act in zip(reversed(self.dense), reversed(self.acts)):
            g_a.append(g.copy())
            if act is not None:
                g = act.backward(g)
            g_z.append(np.array(g, copy=True))
            g = dense.backward(g, need_gx=True)
            g_w.append(dense.grads["weight"].copy())
            g_b.append(dense.grads["bias"].copy())
        return Trace(x=x, target=t, z=zs, a=acts, d_act=dacts, loss=value, terms=terms, g_out=g_out,
                     g_a=g_a[::-1], g_z=g_z[::-1], g_w=g_w[::-1], g_b=g_b[::-1], g_x=np.array(g, copy=True))

    def _terms(self, out, t, grad):
        n, k = out.shape
        if self.loss_name == "xent":
            # the engine's gradient of the mean cross-entropy is (softmax(z) - onehot) / n
            p = grad * n
            p[np.arange(n), t] += 1.0
            return p
        terms = np.empty_like(out)
        for i in range(n):            # at most 8 x 4: the engine's MSE of one output of one example
            for j in range(k):
                terms[i, j] = MSE(self.B).forward(out[i:i + 1, j:j + 1], t[i:i + 1, j:j + 1])
        return terms

    def gradients(self, tr: Trace) -> list[np.ndarray]:
        return [g for l in range(self.n_layers) for g in (tr.g_w[l], tr.g_b[l])]

    def sgd_step(self, grads, lr: float) -> None:
        """One engine SGD.step (no momentum) on the parameters, in place."""
        SGD(self.parameters(), lr=lr, backend=self.B).step(grads)

    def finite_differences(self, x, target, h: float = 1e-6) -> list[np.ndarray]:
        """Central differences (L(θ+h) - L(θ-h)) / 2h of the engine's loss, per parameter."""
        out = []
        for p in self.parameters():
            g = np.empty_like(p)
            flat, gf = p.reshape(-1), g.reshape(-1)
            for i in range(flat.size):
                old = flat[i]
                flat[i] = old + h
                up = self.forward_loss(x, target)
                flat[i] = old - h
                down = self.forward_loss(x, target)
                flat[i] = old
                gf[i] = (up - down) / (2 * h)
            out.append(g)
        return out
