"""A Backprop-lab scene as plain data (for lesson files): the net, its weights, the examples, η.

`scene_from_state` checks every field and names the one that is wrong; `scene_state` writes a
scene back; `evaluate_scene` gives the numbers a lesson caption may state (the engine's, rounded
to 9 decimals as the worked example publishes them).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from . import tutorial_net
from .activations import state_numbers
from .batch import MAX_EXAMPLES, batch_table, sgd_update
from .names import sub
from .net import LabError, LabNet
from .recorder import record

PRESETS = ("worked example",)


@dataclass
class Scene:
    net: LabNet
    x: np.ndarray          # (examples, inputs)
    t: np.ndarray          # (examples, outputs) for MSE, (examples,) class indices for xent
    lr: float


def _numbers(v, shape, what):
    try:
        a = np.asarray(v, dtype=np.float64)
    except (TypeError, ValueError):
        raise LabError(f"{what}: expected numbers, got {v!r}") from None
    if a.shape != shape or not np.all(np.isfinite(a)):
        raise LabError(f"{what}: expected {len(shape)}-level lists of finite numbers of shape {shape}, "
                       f"got {v!r}")
    return a


def scene_from_state(state: dict[str, Any]) -> Scene:
    if state.get("preset") is not None:
        if state["preset"] not in PRESETS:
            raise LabError(f"state.preset: expected one of {', '.join(PRESETS)}, got {state['preset']!r}")
        net, x, t = tutorial_net()
        return Scene(net, np.array([x]), np.array([t]), _lr(state.get("lr", 0.5)))
    sizes = state.get("network", [2, 2, 2])
    if isinstance(sizes, str):
        sizes = [s for s in sizes.replace("-", " ").split()]
    try:
        sizes = [int(s) for s in sizes]
        net = LabNet(tuple(sizes), state.get("hidden", "sigmoid"), state.get("output", "sigmoid"),
                     state.get("loss", "mse"), seed=int(state.get("seed", 0)))
    except (LabError, TypeError, ValueError) as e:
        raise LabError(f"state.network: {e}") from None
    if "weights" in state or "biases" in state:
        if not isinstance(state.get("weights"), list) or not isinstance(state.get("biases"), list) \
                or len(state["weights"]) != net.n_layers or len(state["biases"]) != net.n_layers:
            raise LabError(f"state.weights and state.biases: one list per layer ({net.n_layers}), both given")
        for l in range(net.n_layers):
            net.weight(l)[...] = _numbers(state["weights"][l], net.weight(l).shape, f"state.weights[{l}]")
            net.bias(l)[...] = _numbers(state["biases"][l], net.bias(l).shape, f"state.biases[{l}]")
    inputs = state.get("inputs", [[0.05, 0.1][:sizes[0]] + [0.0] * max(0, sizes[0] - 2)])
    n = len(inputs) if isinstance(inputs, list) else 0
    if not 1 <= n <= MAX_EXAMPLES:
        raise LabError(f"state.inputs: 1 to {MAX_EXAMPLES} examples, got {inputs!r}")
    x = _numbers(inputs, (n, sizes[0]), "state.inputs")
    k = sizes[-1]
    if net.loss_name == "xent":
        classes = state.get("targets", [1] * n)
        c = _numbers(classes, (n,), "state.targets")
        if not np.all(c == np.round(c)) or c.min() < 1 or c.max() > k:
            raise LabError(f"state.targets: one class from 1 to {k} per example, got {classes!r}")
        t = c - 1
    else:
        t = _numbers(state.get("targets", [[0.0] * k] * n), (n, k), "state.targets")
    return Scene(net, x, t, _lr(state.get("lr", 0.5)))


def _lr(v):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= 100:
        raise LabError(f"state.lr: expected a number above 0 (and at most 100), got {v!r}")
    return float(v)


def scene_state(net: LabNet, x, t, lr: float) -> dict[str, Any]:
    xent = net.loss_name == "xent"
    return {"network": list(net.sizes), "hidden": net.hidden, "output": net.output, "loss": net.loss_name,
            "weights": [net.weight(l).tolist() for l in range(net.n_layers)],
            "biases": [net.bias(l).tolist() for l in range(net.n_layers)],
            "inputs": np.asarray(x).tolist(),
            "targets": [int(c) + 1 for c in np.asarray(t)] if xent else np.asarray(t).tolist(),
            "lr": float(lr)}


def evaluate_scene(state: dict[str, Any]) -> dict[str, Any]:
    """loss, grad_w5 / grad_b1 (of the first example), avg_grad_*, new_* after one SGD step,
    loss_after: each rounded to 9 decimals; with state.function also the activation page's
    numbers (activations.state_numbers)."""
    s = scene_from_state(state)
    targets = s.t.astype(np.int64) if s.net.loss_name == "xent" else s.t
    rec = record(s.net, s.x[0], targets[0])
    names = [rec.nodes[k].label.translate(_PLAIN) for k in rec.param_keys]
    table = batch_table(s.net, s.x, targets)
    up = sgd_update(s.net, s.x, targets, s.lr)
    r = lambda v: round(float(v), 9)
    out: dict[str, Any] = {"loss": r(rec.nodes["L"].value), "batch_loss": r(table.loss),
                           "loss_after": r(up.loss_after)}
    for i, (name, key) in enumerate(zip(names, rec.param_keys)):
        out[f"grad_{name}"] = r(rec.nodes[key].grad)
        out[f"avg_grad_{name}"] = r(table.average[i])
        out[f"new_{name}"] = r(up.after[i])
    if "function" in state:
        out.update(state_numbers(state))
    return out


_PLAIN = {ord(sub(i)): str(i) for i in range(10)}     # w₅ -> w5 in the keys
