"""Mini-batch table, gradient check and the SGD update, all from the engine.

Rows are parameters, columns are examples; the last column is the average, which equals the
gradient of the engine's mean loss over the batch. The update is one engine `SGD.step`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .names import DOT, MINUS, fmt, fmt_factor
from .net import LabError, LabNet

MAX_EXAMPLES = 8


def _flat(arrays) -> np.ndarray:
    return np.concatenate([np.asarray(a, dtype=np.float64).reshape(-1) for a in arrays])


@dataclass
class BatchTable:
    per_example: np.ndarray     # (params, examples): the engine's gradient of each example's loss
    average: np.ndarray         # (params,): the engine's gradient of the mean loss over the batch
    losses: np.ndarray          # (examples,): each example's loss
    loss: float                 # the batch's mean loss


@dataclass
class Update:
    lr: float
    before: np.ndarray          # (params,)
    after: np.ndarray           # after one engine SGD.step with the batch gradient
    grad: np.ndarray            # the batch gradient used
    loss_before: float
    loss_after: float


def check_batch_size(n: int) -> None:
    if not 1 <= n <= MAX_EXAMPLES:
        raise LabError(f"mini-batch: 1 to {MAX_EXAMPLES} examples, got {n}")


def batch_table(net: LabNet, x, targets) -> BatchTable:
    x = np.asarray(x, dtype=np.float64)
    check_batch_size(len(x))
    targets = np.asarray(targets)
    cols, losses = [], []
    for i in range(len(x)):                  # at most 8 examples, each through the engine alone
        tr = net.trace(x[i:i + 1], targets[i:i + 1])
        cols.append(_flat(net.gradients(tr)))
        losses.append(tr.loss)
    whole = net.trace(x, targets)
    return BatchTable(per_example=np.stack(cols, axis=1), average=_flat(net.gradients(whole)),
                      losses=np.array(losses), loss=whole.loss)


def sgd_update(net: LabNet, x, targets, lr: float, apply: bool = False) -> Update:
    """θ ← θ − η·(batch gradient) by one engine SGD.step; restores θ unless `apply`."""
    x = np.asarray(x, dtype=np.float64)
    check_batch_size(len(x))
    saved = net.state()
    tr = net.trace(x, targets)
    grads = net.gradients(tr)
    net.sgd_step(grads, lr)
    after = _flat(net.parameters())
    loss_after = net.forward_loss(x, targets)
    if not apply:
        net.load_state(saved)
    return Update(lr=float(lr), before=_flat(saved), after=after, grad=_flat(grads),
                  loss_before=tr.loss, loss_after=loss_after)


def gradient_check(net: LabNet, x, target, h: float = 1e-6):
    """(backprop, finite differences) per parameter, flat in net.parameters() order."""
    x = np.asarray(x, dtype=np.float64).reshape(1, -1)
    t = np.asarray(target).reshape(1, -1) if net.loss_name == "mse" else np.asarray(target).reshape(1)
    bp = _flat(net.gradients(net.trace(x, t)))
    return bp, _flat(net.finite_differences(x, t, h))


def update_lines(names, up: Update, n_examples: int, digits: int = 6) -> list[str]:
    """θ ← θ − η·avg written out per parameter, then the loss before and after."""
    g = "avg \u2202L/\u2202" if n_examples > 1 else "\u2202L/\u2202"
    out = []
    for name, b, gr, a in zip(names, up.before, up.grad, up.after):
        out.append(f"{name} \u2190 {name} {MINUS} \u03b7{DOT}{g}{name} = {fmt(b, digits)} {MINUS} "
                   f"{fmt(up.lr, digits)}{DOT}{fmt_factor(gr, digits)} = {fmt(a, digits)}")
    out.append(f"loss over {n_examples} example{'s' if n_examples > 1 else ''}: before "
               f"{fmt(up.loss_before, digits)}, after {fmt(up.loss_after, digits)}")
    return out
