"""Qt-free architecture analysis for the layer editor: per-layer output shapes with the
(N - F + 2P)/S + 1 arithmetic, parameter counts, receptive fields and inline errors."""
from __future__ import annotations

import copy

import numpy as np

from nnviz.engine import LayerError, SpecError, backend, model_from_spec
from nnviz.engine.spec import layer_from_config

#: layer kinds the editor offers, with their default configs
LAYER_KINDS = {
    "Conv2D": {"type": "Conv2D", "out_channels": 8, "kernel_size": 3, "padding": 1},
    "MaxPool2D": {"type": "MaxPool2D", "kernel_size": 2},
    "AvgPool2D": {"type": "AvgPool2D", "kernel_size": 2},
    "ReLU": {"type": "ReLU"},
    "LeakyReLU": {"type": "LeakyReLU"},
    "Tanh": {"type": "Tanh"},
    "Sigmoid": {"type": "Sigmoid"},
    "BatchNorm": {"type": "BatchNorm"},
    "Dropout": {"type": "Dropout", "p": 0.25},
    "Residual": {"type": "Residual", "layers": [
        {"type": "Conv2D", "out_channels": 8, "kernel_size": 3, "padding": 1}, {"type": "ReLU"}]},
    "GlobalAvgPool2D": {"type": "GlobalAvgPool2D"},
    "Flatten": {"type": "Flatten"},
    "Dense": {"type": "Dense", "out_features": 10},
}

#: the editable fields of each kind: (key, label, minimum, maximum)
FIELDS = {
    "Conv2D": [("out_channels", "channels", 1, 512), ("kernel_size", "kernel", 1, 15),
               ("stride", "stride", 1, 8), ("padding", "padding", 0, 8)],
    "MaxPool2D": [("kernel_size", "window", 1, 8), ("stride", "stride", 1, 8)],
    "AvgPool2D": [("kernel_size", "window", 1, 8), ("stride", "stride", 1, 8)],
    "Dense": [("out_features", "units", 1, 4096)],
    "Dropout": [("p", "drop p", 0.0, 0.95)],
    "Residual": [("channels", "channels", 1, 512)],
    "LeakyReLU": [("alpha", "alpha", 0.0, 0.99)],
}

DEFAULT_SPEC = {"name": "small-cnn", "input_shape": [1, 28, 28], "layers": [
    {"type": "Conv2D", "out_channels": 8, "kernel_size": 3, "padding": 1}, {"type": "ReLU"},
    {"type": "MaxPool2D", "kernel_size": 2},
    {"type": "Conv2D", "out_channels": 16, "kernel_size": 3, "padding": 1}, {"type": "ReLU"},
    {"type": "MaxPool2D", "kernel_size": 2},
    {"type": "Flatten"}, {"type": "Dense", "out_features": 10}]}


def get_field(cfg, key):
    """The editor's view of one field (pairs shown by their first value)."""
    t = cfg.get("type")
    if t == "Residual" and key == "channels":
        for c in cfg.get("layers", []):
            if c.get("type") == "Conv2D":
                return c.get("out_channels", 8)
        return 8
    if key == "stride" and t in ("MaxPool2D", "AvgPool2D"):
        v = cfg.get("stride", cfg.get("kernel_size", 2))
    else:
        v = cfg.get(key, {"stride": 1, "padding": 0, "p": 0.5, "alpha": 0.01}.get(key))
    if isinstance(v, (list, tuple)):
        v = v[0]
    return v


def set_field(cfg, key, value):
    """A copy of cfg with one field changed (defaults dropped so specs stay tidy)."""
    cfg = copy.deepcopy(cfg)
    t = cfg.get("type")
    if t == "Residual" and key == "channels":
        for c in cfg.get("layers", []):
            if c.get("type") == "Conv2D":
                c["out_channels"] = int(value)
        return cfg
    if key in ("p", "alpha"):
        cfg[key] = float(value)
    elif key == "stride" and t in ("MaxPool2D", "AvgPool2D"):
        if int(value) == int(get_field(cfg, "kernel_size")):
            cfg.pop("stride", None)
        else:
            cfg["stride"] = int(value)
    elif key in ("stride", "padding") and int(value) == (1 if key == "stride" else 0):
        cfg.pop(key, None)
    else:
        cfg[key] = int(value)
    return cfg


def layer_title(cfg):
    t = cfg.get("type", "?")
    g = lambda k: get_field(cfg, k)
    if t == "Conv2D":
        s = f"Conv2D {g('out_channels')}@{g('kernel_size')}×{g('kernel_size')}"
        if g("stride") != 1:
            s += f" stride {g('stride')}"
        if g("padding"):
            s += f" pad {g('padding')}"
        return s
    if t in ("MaxPool2D", "AvgPool2D"):
        s = f"{t} {g('kernel_size')}×{g('kernel_size')}"
        return s + (f" stride {g('stride')}" if g("stride") != g("kernel_size") else "")
    if t == "Dense":
        return f"Dense {g('out_features')}"
    if t == "Dropout":
        return f"Dropout p={g('p'):g}"
    if t == "Residual":
        inner = " – ".join(layer_title(c) for c in cfg.get("layers", []))
        return f"Residual [{inner}]"
    return t


def fmt_shape(shape):
    if shape is None:
        return "—"
    shape = tuple(shape)
    if len(shape) == 3:
        c, h, w = shape
        return f"{h}×{w}×{c}"
    return " × ".join(str(s) for s in shape)


def arithmetic(cfg, in_shape, out_shape):
    """'(28 − 5 + 2·2)/1 + 1 = 28' for conv and pool rows, '' otherwise."""
    t = cfg.get("type")
    if t == "GlobalAvgPool2D" and in_shape is not None and len(in_shape) == 3:
        return f"mean of each {in_shape[1]}×{in_shape[2]} map: {in_shape[0]} values"
    if t not in ("Conv2D", "MaxPool2D", "AvgPool2D") or in_shape is None or len(in_shape) != 3:
        return ""
    k = cfg.get("kernel_size", 2)
    k = k if isinstance(k, (list, tuple)) else (k, k)
    if t == "Conv2D":
        s = cfg.get("stride", 1)
        p = cfg.get("padding", 0)
    else:
        s = cfg.get("stride", k)
        p = 0
    s = s if isinstance(s, (list, tuple)) else (s, s)
    p = p if isinstance(p, (list, tuple)) else (p, p)
    parts = []
    for ax, n in ((0, in_shape[1]), (1, in_shape[2])):
        val = (n - k[ax] + 2 * p[ax]) / s[ax] + 1
        res = f"{val:g}" if val == int(val) else f"{val:.2f} → {int(np.floor(val))}"
        parts.append(f"({n} − {k[ax]} + 2·{p[ax]})/{s[ax]} + 1 = {res}")
    if parts[0] == parts[1]:
        return parts[0]
    return f"H: {parts[0]};  W: {parts[1]}"


def param_formula(cfg, in_shape, params):
    t = cfg.get("type")
    if t == "Conv2D" and in_shape is not None and len(in_shape) == 3:
        k = cfg.get("kernel_size")
        k = k if isinstance(k, (list, tuple)) else (k, k)
        bias = "+1" if cfg.get("bias", True) else ""
        return f"{params:,} = {cfg['out_channels']}·({k[0]}·{k[1]}·{in_shape[0]}{bias})"
    if t == "Dense" and in_shape is not None and len(in_shape) == 1:
        bias = "+1" if cfg.get("bias", True) else ""
        return f"{params:,} = {cfg['out_features']}·({in_shape[0]}{bias})"
    return f"{params:,}"


def analyze(spec):
    """Analyse a spec without ever raising.

    Returns {"rows": [...], "ok": bool, "error": str|None, "error_row": int|None,
    "total_params": int, "output_shape": tuple|None}.  Each row has index, type, title,
    in_shape, out_shape, shape_text, arithmetic, params, params_text, rf, notes, error.
    """
    layers = spec.get("layers") if isinstance(spec, dict) else None
    result = {"rows": [], "ok": False, "error": None, "error_row": None, "total_params": 0,
              "output_shape": None}
    if not isinstance(layers, list) or not layers:
        result["error"] = "the model has no layers: add one"
        return result
    try:
        shape = tuple(int(s) for s in spec["input_shape"])
    except (KeyError, TypeError, ValueError):
        result["error"] = f"invalid input shape {spec.get('input_shape')!r}"
        return result
    B = backend.get()
    rng = np.random.default_rng(0)
    rows = result["rows"]
    failed = False
    for i, cfg in enumerate(layers):
        row = {"index": i, "type": cfg.get("type", "?") if isinstance(cfg, dict) else "?",
               "title": layer_title(cfg) if isinstance(cfg, dict) else str(cfg),
               "in_shape": None if failed else shape, "out_shape": None, "shape_text": "—",
               "arithmetic": "", "params": 0, "params_text": "", "rf": "", "notes": [],
               "error": None}
        rows.append(row)
        if failed:
            continue
        try:
            layer = layer_from_config(cfg, f"layer {i}")
            layer.index = i
            nxt = layers[i + 1].get("type") if i + 1 < len(layers) and isinstance(
                layers[i + 1], dict) else None
            out = layer.build(shape, rng, np.float32, B, hint=nxt)
        except (LayerError, TypeError, ValueError, KeyError) as e:
            msg = str(e)
            row["error"] = msg
            row["arithmetic"] = arithmetic(cfg, shape, None) if isinstance(cfg, dict) else ""
            result["error"] = msg if msg.startswith("layer") else f"layer {i}: {msg}"
            result["error_row"] = i
            failed = True
            continue
        row["out_shape"] = tuple(out)
        row["shape_text"] = fmt_shape(out)
        row["arithmetic"] = arithmetic(cfg, shape, out)
        row["params"] = layer.param_count()
        row["params_text"] = param_formula(cfg, shape, row["params"])
        row["notes"] = list(layer.notes)
        result["total_params"] += row["params"]
        shape = tuple(out)
    if failed:
        return result
    try:
        model = model_from_spec(spec)
    except (LayerError, SpecError, TypeError, ValueError) as e:
        result["error"] = str(e)
        return result
    for row, s in zip(rows, model.summary()):
        rf = s["receptive_field"]
        row["rf"] = "" if rf is None else (f"{rf}×{rf}" if isinstance(rf, int) else str(rf))
    result["ok"] = True
    result["output_shape"] = tuple(model.output_shape)
    result["total_params"] = model.param_count()
    return result
