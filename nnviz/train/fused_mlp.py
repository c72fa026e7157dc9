"""The fused training step for plain MLPs: which trainers qualify, and the flat storage the
backend's `mlp_step` kernel works on (capability "fused_mlp").

Planning moves the model's parameters, gradients and the optimiser's slots into flat arrays
and leaves views of them in the layers and the optimiser, so both paths keep seeing the same
numbers; a plan is rebuilt when the optimiser, the data or a parameter array is replaced.
"""
from __future__ import annotations

from typing import Any, Literal

import numpy as np

from ..engine.fused_mlp import layout
from ..engine.losses import SoftmaxCrossEntropy
from ..engine.optim import SGD, Adam


def _view(flat: np.ndarray, off: int, like: np.ndarray) -> np.ndarray:
    return flat[off:off + like.size].reshape(like.shape)


class _Plan:
    def __init__(self, tr: Any, lay: list[list]):
        model, opt = tr.model, tr.optimizer
        self.opt, self.x, self.y, self.model = opt, tr.dataset.x_train, tr.dataset.y_train, model
        params = opt.params
        pos = {id(p): i for i, p in enumerate(params)}
        arrays = [(layer, key) for layer, _ in lay for key in ("weight", "bias")]
        total = sum(l.params[k].size for l, k in arrays)
        dt = model.dtype
        self.P, self.G = np.empty(total, dt), np.zeros(total, dt)
        self.S1, self.S2 = np.zeros(total, dt), np.zeros(total, dt)
        self.adam = type(opt) is Adam
        slots = opt.m if self.adam else opt.velocity
        off, offs = 0, {}
        for l, key in arrays:
            a = l.params[key]
            i = pos[id(a)]
            p = _view(self.P, off, a)
            p[...] = a
            offs[(id(l), key)] = off
            s1 = _view(self.S1, off, a)
            s1[...] = slots[i]
            if self.adam:
                s2 = _view(self.S2, off, a)
                s2[...] = opt.v[i]
                opt.v[i] = s2
            slots[i] = s1
            params[i] = p
            l.params[key] = p
            l.grads[key] = _view(self.G, off, a)
            off += a.size
        self.table = np.array([(offs[(id(l), "weight")], offs[(id(l), "bias")], l.input_shape[0],
                                l.output_shape[0]) for l, _ in lay], np.int64).reshape(len(lay), 4)
        self.acts = np.array([a for _, a in lay], np.int64)
        self.fast = dt == np.float32   # rational tanh for float32, exact np.tanh for float64
        self.out = np.zeros(2, np.float64)
        # the arrays the layers hold: a replaced one (a new parameter, or gradients a layer-path
        # step stored) means the flat copies are no longer what the layers see
        self.sig = [(l, key, l.params[key], l.grads[key]) for l, _ in lay for key in ("weight", "bias")]

    def still_valid(self, tr: Any) -> bool:
        if (self.opt is not tr.optimizer or self.x is not tr.dataset.x_train
                or self.y is not tr.dataset.y_train or self.model is not tr.model):
            return False
        return all(l.params[key] is p and l.grads.get(key) is g for l, key, p, g in self.sig)


def _qualifies(tr: Any) -> list[list] | None:
    """The MLP layout when the fused kernel computes exactly what the layer path would."""
    model, opt, ds = tr.model, tr.optimizer, tr.dataset
    if "fused_mlp" not in model.B.capabilities:
        return None
    if not isinstance(tr.loss, SoftmaxCrossEntropy) or type(opt) not in (SGD, Adam):
        return None
    if opt.weight_decay or opt.l1 or model.dtype not in (np.float32, np.float64):
        return None
    lay = layout(model)
    x, y = ds.x_train, ds.y_train
    if (lay is None or x.ndim != 2 or x.dtype != model.dtype or not x.flags.c_contiguous
            or y.dtype != np.int64 or y.ndim != 1):
        return None
    k = lay[-1][0].output_shape[0]
    if y.size and (y.min() < 0 or y.max() >= k):
        return None  # the layer path raises the loss's error message
    pos = {id(p) for p in opt.params}
    arrays = [layer.params[key] for layer, _ in lay for key in ("weight", "bias")]
    if len(arrays) != len(opt.params) or any(id(a) not in pos for a in arrays):
        return None
    return lay


class FusedMLPStep:
    """A trainer's fused step: plans on first use, re-plans when what it copied changed."""

    def __init__(self) -> None:
        self.plan: _Plan | Literal[False] | None = None   # None: not planned yet; False: does not qualify

    @property
    def active(self) -> bool:
        return isinstance(self.plan, _Plan)

    def run(self, tr: Any, perm: np.ndarray, pos: int, b: int) -> tuple[int, float, int] | None:
        """One fused step for trainer `tr` if it qualifies: (status, loss, correct) or None.
        status: 0 applied, 1 loss not finite, 2 gradient not finite (nothing applied)."""
        if tr.model.has_hooks():
            return None
        plan = self.plan
        if plan is False:
            return None
        if plan is None or not plan.still_valid(tr):
            lay = _qualifies(tr)
            plan = _Plan(tr, lay) if lay is not None else None
            self.plan = plan if plan is not None else False
            if plan is None:
                return None
        opt = tr.optimizer
        if plan.adam:
            hyper = (1, opt.lr, 0.0, False, opt.betas[0], opt.betas[1], opt.eps)
        else:
            hyper = (0, opt.lr, opt.momentum, opt.nesterov, 0.0, 0.0, 0.0)
        status = tr.model.B.mlp_step(plan.x, plan.y, perm, pos, b, plan.P, plan.G, plan.S1, plan.S2,
                                     plan.table, plan.acts, *hyper, opt.t + 1, plan.out, plan.fast)
        if status == 0:
            opt.t += 1
        return status, float(plan.out[0]), int(plan.out[1])
