"""Dropout in the Playground (no Qt): the network with Dropout layers, the units dropped in
the last training step, and the settings of the "with vs without dropout" comparison."""
import copy

import numpy as np

from nnviz.engine import model_from_spec

RATES = ["0", "0.1", "0.2", "0.3", "0.4", "0.5", "0.6", "0.7", "0.8"]
MAX_RATE = 0.9
DEFAULT_RATE = 0.5        # the comparison's rate when the Playground's is 0
# Compare dropout starts with these: two overlapping clouds (the best boundary is a straight
# line), 50 training points, 2 x 8 units. Without dropout the net draws islands around single
# points and its test loss climbs after a few hundred steps; with dropout it stays low (seed 0,
# 3000 steps: 0.10 -> 0.49 against 0.09 throughout; seeds 0-4 all look like that)
LECTURE = {"dataset": "gauss", "noise": 0.5, "n_points": 100, "hidden": [8, 8],
           "activation": "ReLU", "lr": 0.01, "dropout": 0.5}


def with_dropout(spec: dict, p: float) -> dict:
    """`spec` with a Dropout(p) after each hidden layer's activation (unchanged for p = 0):
    the output layer's inputs and every hidden layer's are thinned, as in the notes."""
    p = float(p)
    if p <= 0:
        return spec
    layers = spec["layers"]
    out = []
    for i, cfg in enumerate(layers):
        out.append(cfg)
        if i + 1 < len(layers) and layers[i + 1]["type"] == "Dense":    # a hidden layer ends
            out.append({"type": "Dropout", "p": p})
    spec = copy.deepcopy(spec)
    spec["layers"] = out
    return spec


def seeded_model(spec: dict, seed: int):
    """The model of `spec` whose Dense layers start from the same weights as the same net
    without Dropout (weights are seeded per layer index, which Dropout layers shift), so
    "with vs without dropout" compares one starting point."""
    model = model_from_spec(spec, seed=seed)
    plain_spec = dict(spec, layers=[c for c in spec["layers"] if c["type"] != "Dropout"])
    if len(plain_spec["layers"]) == len(spec["layers"]):
        return model
    plain = model_from_spec(plain_spec, seed=seed)
    dense = [l for l in model.layers if l.type == "Dense"]
    for dst, src in zip(dense, [l for l in plain.layers if l.type == "Dense"]):
        for k, v in src.params.items():
            dst.params[k] = model.B.asarray(plain.B.to_host(v), model.dtype)
    return model


def dropped_units(model) -> list[np.ndarray]:
    """Per Dropout layer, which units the last training step dropped for the first example
    of its batch (bool, True = dropped); None for a layer that has not trained yet. Read
    in the worker thread from the mask the step itself drew, never drawn again."""
    out = []
    for layer in model.layers:
        if layer.type != "Dropout":
            continue
        mask = getattr(layer, "last_mask", None)
        out.append(None if mask is None else np.asarray(model.B.to_host(mask))[0] == 0)
    return out


def compare_labels(p: float) -> tuple[str, str]:
    return "no dropout", f"dropout {p:g}"


def compare_caption(s, p: float) -> str:
    net = "-".join(str(h) for h in s.hidden) or "no hidden layer: nothing to drop"
    return (f"<b>Compare dropout</b> on <b>{s.dataset}</b> ({s.n_points} points, noise {s.noise:g}): "
            f"the same net ({net}, {s.activation}) from the same starting weights, without dropout "
            f"and with dropout {p:g}; learning rate {s.lr:g}, batch {s.batch_size}, "
            f"{s.optimizer.upper()}.<br><b>Look for:</b> without dropout the test loss (dashed) "
            "turns up while the training loss keeps falling: the net learns the noise of its "
            "training points. With dropout the test loss stays low (its training loss is higher: "
            "it is measured on thinned nets).")


def playground_layout(types: list[str], rates: list[float]) -> bool:
    """True when a loaded model's Dropout layers sit where the Playground puts them (one
    rate, after each hidden layer), so it can train there."""
    if not rates:
        return True
    if len(set(rates)) != 1 or not 0 < rates[0] <= MAX_RATE:
        return False
    plain = [t for t in types if t != "Dropout"]
    spec = {"layers": [{"type": t} for t in plain]}
    return [c["type"] for c in with_dropout(spec, rates[0])["layers"]] == list(types)
