"""Plain MLPs (Dense layers, each followed by at most one ReLU/Tanh/Sigmoid): which models
qualify for the backends' fused MLP kernels, and the eval-mode forward of large batches.

The training step's planning lives beside the trainer (nnviz.train.fused_mlp); the kernels
live in the backend (capability "fused_mlp").
"""
from __future__ import annotations

from typing import Any

import numpy as np

FORWARD_MIN_ROWS = 2048   # below this the layer-by-layer path is as fast


def layout(model: Any, eval_only: bool = False) -> list[list] | None:
    """[[dense layer, activation code]] or None when the model is not a plain MLP.
    eval_only: Dropout layers (the identity when evaluating) are passed over."""
    codes = model.B.MLP_ACT_CODES
    out: list[list] = []
    for layer in model.layers:
        t = layer.type
        if eval_only and t == "Dropout":
            continue
        if t == "Dense":
            if "bias" not in layer.params or getattr(layer, "children", None):
                return None
            out.append([layer, 0])
        elif t in codes and out and out[-1][1] == 0:
            out[-1][1] = codes[t]
        else:
            return None
    return out or None


class _ForwardPlan:
    def __init__(self, lay: list[list]):
        self.acts = np.array([a for _, a in lay], np.int64)
        self.table = np.empty((len(lay), 4), np.int64)
        self.arrays: list[tuple] = []
        self.parts: list[np.ndarray] = []
        off = 0
        for j, (l, _) in enumerate(lay):
            w, b = l.params["weight"], l.params["bias"]
            self.table[j] = (off, off + w.size, l.input_shape[0], l.output_shape[0])
            self.arrays += [(l, "weight", w), (l, "bias", b)]
            self.parts += [w.reshape(-1), b]
            off += w.size + b.size
        self.P = np.empty(off, np.float32)
        self.maxd = int(max(self.table[:, 2].max(), self.table[:, 3].max()))
        self.k = int(self.table[-1, 3])
        self.dense = [l for l, _ in lay]


def forward(model: Any, x: np.ndarray) -> np.ndarray | None:
    """Eval-mode forward of a plain MLP in one parallel kernel, or None (not applicable).

    Layers keep no input caches from this call (layer._x is cleared), so backward() must
    follow a forward(train=True) or a small forward, as the training paths do.
    """
    if x.ndim != 2 or x.shape[0] < FORWARD_MIN_ROWS or x.dtype != np.float32:
        return None
    plan = model.__dict__.get("_mlp_fwd")
    if plan is False:
        return None
    if plan is None or any(l.params[k] is not a for l, k, a in plan.arrays):
        lay = layout(model, eval_only=True)      # first call, or a parameter array was replaced
        plan = _ForwardPlan(lay) if lay is not None else None
        model._mlp_fwd = plan if plan is not None else False
        if plan is None:
            return None
    np.concatenate(plan.parts, out=plan.P)   # the current weights, in one flat array
    for layer in plan.dense:                 # no stale input caches: backward needs a
        layer._x = None                      # training forward first
    for layer in model.layers:
        if hasattr(layer, "_y"):
            layer._x = layer._y = None
    y = np.empty((x.shape[0], plan.k), np.float32)
    model.B.mlp_forward(x, plan.P, plan.table, plan.acts, plan.maxd, True, y)
    return y
