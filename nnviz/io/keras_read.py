"""Keras model configs (legacy .h5 and Keras 3 .keras) -> an nnviz model, exactly.

A Sequential or a Functional graph that is a chain with residual Adds (x + f(x)) becomes an
nnviz Sequential. channels_last models are converted to NCHW: kernels transposed, and the
first Dense after a Flatten gets its input rows permuted so it sees the features in the order
Keras flattened them. Anything nnviz cannot compute the same way is refused in one line naming
the layer. The caller's `weights(node, group name, shapes)` supplies a layer's arrays (Keras
order and shapes, checked before they are read). The graph itself comes from keras_graph.py.
"""
from __future__ import annotations

import math

import numpy as np

from .keras_graph import fail, parse_graph

SUPPORTED = ("InputLayer, Dense, Conv2D, Conv2DTranspose, MaxPooling2D, AveragePooling2D, "
             "GlobalAveragePooling2D, Flatten, Reshape (to flat), Dropout, BatchNormalization, "
             "Activation/ReLU/LeakyReLU/Softmax, ZeroPadding2D, Cropping2D (after "
             "Conv2DTranspose), Add (residual), Normalization/Rescaling (first layer)")

MAX_INPUT_ELEMENTS = 1 << 26      # 64M values per sample: far beyond any model nnviz can show
_ACTS = {"relu": "ReLU", "tanh": "Tanh", "sigmoid": "Sigmoid"}
_SPATIAL = ("Conv2D", "Conv2DTranspose", "MaxPooling2D", "AveragePooling2D",
            "GlobalAveragePooling2D", "ZeroPadding2D", "Cropping2D")


# ---- layers ---------------------------------------------------------------------------------
def _pair(v, what, node):
    if isinstance(v, int) and not isinstance(v, bool):
        return v, v
    if isinstance(v, (list, tuple)) and len(v) == 2 and all(
            isinstance(x, int) and not isinstance(x, bool) for x in v):
        return int(v[0]), int(v[1])
    fail(f"{node.label}: {what} {v!r} is not an int or a pair of ints")


def _pads(v, what, node):
    """((top, bottom), (left, right)) from Keras's int | (h, w) | ((t, b), (l, r))."""
    if isinstance(v, (list, tuple)) and len(v) == 2 and all(isinstance(x, (list, tuple)) for x in v):
        return tuple(_pair(list(x), what, node) for x in v)
    h, w = _pair(v, what, node)
    return (h, h), (w, w)


def _activation_name(v):
    if isinstance(v, dict):
        v = v.get("config") if isinstance(v.get("config"), str) else v.get("class_name")
    return str(v or "linear").lower()


class Converter:
    """Walks the ops and emits nnviz layer specs plus their arrays in nnviz layout."""

    def __init__(self, weights, notes, max_params=None):
        self.weights = weights        # fn(node, shapes) -> [arrays]
        self.notes = notes
        self.max_params = max_params
        self.started = False          # a layer was converted (scaling must come first)
        self._gray = False
        self._crop_ok = False
        self.layout = None            # "channels_last" | "channels_first" for images
        self.shape = None             # nnviz shape (C, H, W) or (F,)
        self.perm = None              # flat features: Keras index j is nnviz feature perm[j]
        self.pad = None               # a ZeroPadding2D waiting for its convolution
        self.params = 0

    # shape helpers
    def _image(self, node):
        if len(self.shape) != 3:
            fail(f"{node.label} needs an image input, got features of shape {self.shape}")
        df = node.config.get("data_format") or "channels_last"
        if df not in ("channels_last", "channels_first"):
            fail(f"{node.label}: unknown data_format {df!r}")
        if self.layout is None:
            self.layout = df
        elif df != self.layout:
            fail(f"{node.label}: data_format {df} in a {self.layout} model")
        return self.shape

    def _flat_ok(self, node):
        if len(self.shape) != 1:
            fail(f"{node.label} on inputs of shape {self.shape}: nnviz applies it to flat "
                  f"features only (add a Flatten)")

    def _count(self, *shapes):
        n = sum(int(np.prod(s, dtype=np.float64)) for s in shapes)
        self.params += n

    def _arrays(self, node, shapes):
        self._count(*shapes)
        if self.max_params is not None and self.params > self.max_params:
            # checked before anything of that size is read or allocated
            fail(f"the model declares {self.params:,} parameters by {node.label}, more than "
                  f"the file holds ({self.max_params:,} float32 values)")
        arrs = self.weights(node, shapes)
        return [np.asarray(a, np.float32) for a in arrs]

    # entry points
    def start(self, inp, first, cfg):
        shape = None
        for src in (inp.config if inp is not None else {}, first.config if first else {}):
            for key in ("batch_shape", "batch_input_shape"):
                if isinstance(src.get(key), list):
                    shape = src[key][1:]
        if shape is None and first is not None:
            bc = (first.config.get("build_config") or
                  (cfg.get("build_config") if isinstance(cfg.get("build_config"), dict) else {}))
            if isinstance(bc, dict) and isinstance(bc.get("input_shape"), list):
                shape = bc["input_shape"][1:]
            elif isinstance(cfg.get("build_input_shape"), list):      # tf.keras 2 Sequential
                shape = cfg["build_input_shape"][1:]
        if shape is None:
            fail("the model has no input shape (no InputLayer / batch_input_shape)")
        if not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in shape):
            fail(f"input shape {shape} must be fixed positive sizes (nnviz needs every size)")
        if math.prod(shape) > MAX_INPUT_ELEMENTS:
            fail(f"input shape {shape} has more than {MAX_INPUT_ELEMENTS:,} values per sample")
        return list(shape)

    def input_shape(self, keras_shape, ops):
        if len(keras_shape) == 3:
            self.layout = _layout_hint(ops)
            h, w, c = keras_shape if self.layout == "channels_last" else (
                keras_shape[1], keras_shape[2], keras_shape[0])
            self.shape = (c, h, w)
        elif len(keras_shape) == 2:          # (H, W) grayscale, as MNIST MLPs read it
            self.layout = "channels_last"
            self.shape = (1, *keras_shape)
            self._gray = True
        elif len(keras_shape) == 1:
            self.shape = tuple(keras_shape)
        else:
            fail(f"input shape {keras_shape}: nnviz reads images (H, W, C) and flat features")
        return list(self.shape)

    def chain(self, ops, top):
        out = []
        for i, op in enumerate(ops):
            last = top and i == len(ops) - 1
            if isinstance(op, tuple):
                _, add, body = op
                if self.perm is not None:
                    fail(f"{add.label}: a residual on channels_last flattened features "
                          f"(nnviz orders them by channel)")
                before = (self.shape, self.perm)
                inner = self.chain(body, False)
                if (self.shape, self.perm is None) != (before[0], before[1] is None):
                    fail(f"{add.label}: the residual block changes the shape")
                if self.pad is not None:
                    fail(f"{self.pad.label} must come right before a convolution")
                out.append(({"type": "Residual", "layers": [c for c, _ in inner]},
                            [a for _, a in inner]))
                continue
            nxt = ops[i + 1] if i + 1 < len(ops) else None
            out.extend(self.layer(op, last, nxt))
            if op.cls != "InputLayer":
                self.started = True
        if self.pad is not None:
            fail(f"{self.pad.label} must come right before a Conv2D")
        return out

    def _act(self, node, name, last):
        if name in ("linear", None):
            return []
        if name == "softmax":
            if not last:
                fail(f"{node.label}: softmax inside the network; nnviz supports it only as "
                      f"the last layer (read as logits)")
            self.notes.append(f"the final softmax ({node.name}) was removed: nnviz models give "
                              f"logits; predictions are their softmax, the same probabilities")
            return []
        if name in _ACTS:
            return [({"type": _ACTS[name]}, {})]
        if name == "leaky_relu":
            return [({"type": "LeakyReLU", "alpha": 0.2}, {})]
        fail(f"{node.label}: activation {name!r} is not supported (relu, tanh, sigmoid, "
              f"leaky_relu, linear, final softmax)")

    def layer(self, node, last, nxt):
        c = node.config
        k = node.cls
        if k == "InputLayer":
            return []
        if k == "Dense":
            self._flat_ok(node)
            units = c.get("units")
            if not isinstance(units, int) or units < 1:
                fail(f"{node.label}: units {units!r}")
            fin = self.shape[0]
            shapes = [(fin, units)] + ([(units,)] if c.get("use_bias", True) else [])
            arrs = self._arrays(node, shapes)
            w = np.empty((units, fin), np.float32)
            kt = arrs[0].T
            if self.perm is not None:       # the Dense after a channels_last Flatten
                w[:, self.perm] = kt
                self.perm = None
            else:
                w[...] = kt
            a = {"weight": w}
            spec = {"type": "Dense", "out_features": units}
            if len(arrs) > 1:
                a["bias"] = arrs[1]
            else:
                spec["bias"] = False
            self.shape = (units,)
            return [(spec, a)] + self._act(node, _activation_name(c.get("activation")), last)
        if k in ("Conv2D", "Conv2DTranspose"):
            cin, h, w = self._image(node)
            filters = c.get("filters")
            if not isinstance(filters, int) or filters < 1:
                fail(f"{node.label}: filters {filters!r}")
            kh, kw = _pair(c.get("kernel_size"), "kernel_size", node)
            sh, sw = _pair(c.get("strides", 1), "strides", node)
            if _pair(c.get("dilation_rate", 1), "dilation_rate", node) != (1, 1):
                fail(f"{node.label}: dilation is not supported")
            if c.get("groups", 1) != 1:
                fail(f"{node.label}: grouped convolution is not supported")
            padding = str(c.get("padding", "valid")).lower()
            if k == "Conv2D":
                ph, pw = self._conv_pads(node, padding, (h, w), (kh, kw), (sh, sw))
                kshape = (kh, kw, cin, filters)
                oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
            else:
                ph, pw = self._deconv_pads(node, padding, (kh, kw), (sh, sw), nxt)
                kshape = (kh, kw, filters, cin)
                oh, ow = (h - 1) * sh - 2 * ph + kh, (w - 1) * sw - 2 * pw + kw
            if oh < 1 or ow < 1:
                fail(f"{node.label}: output would be empty for input {h}x{w}")
            shapes = [kshape] + ([(filters,)] if c.get("use_bias", True) else [])
            arrs = self._arrays(node, shapes)
            spec = {"type": "Conv2D" if k == "Conv2D" else "ConvTranspose2D",
                    "out_channels": filters, "kernel_size": [kh, kw], "stride": [sh, sw],
                    "padding": [ph, pw]}
            a = {"weight": np.ascontiguousarray(arrs[0].transpose(3, 2, 0, 1))}
            if len(arrs) > 1:
                a["bias"] = arrs[1]
            else:
                spec["bias"] = False
            self.shape = (filters, oh, ow)
            return [(spec, a)] + self._act(node, _activation_name(c.get("activation")), last)
        if k in ("MaxPooling2D", "AveragePooling2D"):
            ch, h, w = self._image(node)
            kh, kw = _pair(c.get("pool_size", 2), "pool_size", node)
            strides = c.get("strides")
            sh, sw = _pair(strides, "strides", node) if strides is not None else (kh, kw)
            if str(c.get("padding", "valid")).lower() == "same":
                tot = [max((math.ceil(n / s) - 1) * s + kk - n, 0)
                       for n, kk, s in ((h, kh, sh), (w, kw, sw))]
                if any(tot):
                    fail(f"{node.label}: padding='same' pads this {h}x{w} input; nnviz pools "
                          f"without padding")
            if kh > h or kw > w:
                fail(f"{node.label}: pool {kh}x{kw} is larger than the input {h}x{w}")
            self.shape = (ch, (h - kh) // sh + 1, (w - kw) // sw + 1)
            return [({"type": "MaxPool2D" if k == "MaxPooling2D" else "AvgPool2D",
                      "kernel_size": [kh, kw], "stride": [sh, sw]}, {})]
        if k == "GlobalAveragePooling2D":
            ch, _, _ = self._image(node)
            if c.get("keepdims"):
                fail(f"{node.label}: keepdims=True is not supported")
            self.shape = (ch,)
            return [({"type": "GlobalAvgPool2D"}, {})]
        if k in ("Flatten", "Reshape"):
            if k == "Reshape":
                target = c.get("target_shape")
                n = int(np.prod(self.shape))
                if not (isinstance(target, list) and len(target) == 1 and target[0] in (n, -1)):
                    fail(f"{node.label}: only a reshape to flat ({n},) is supported, "
                          f"got {target!r}")
            if len(self.shape) == 1:
                return []
            self.perm = self._flat_perm(node, k == "Flatten" and c.get("data_format")
                                        == "channels_first")
            self.shape = (int(np.prod(self.shape)),)
            return [({"type": "Flatten"}, {})]
        if k == "Dropout":
            rate = float(c.get("rate", 0.0))
            return [({"type": "Dropout", "p": rate}, {})]
        if k == "BatchNormalization":
            return self._batchnorm(node)
        if k == "Activation":
            return self._act(node, _activation_name(c.get("activation")), last)
        if k == "ReLU":
            if c.get("max_value") is not None or float(c.get("threshold") or 0) != 0:
                fail(f"{node.label}: max_value/threshold are not supported")
            slope = float(c.get("negative_slope") or 0)
            return [({"type": "LeakyReLU", "alpha": slope} if slope else {"type": "ReLU"}, {})]
        if k == "LeakyReLU":
            slope = c.get("negative_slope", c.get("alpha", 0.3))
            return [({"type": "LeakyReLU", "alpha": float(slope)}, {})]
        if k == "Softmax":
            return self._act(node, "softmax", last)
        if k == "ZeroPadding2D":
            self._image(node)
            (t, b), (l, r) = _pads(c.get("padding", 1), "padding", node)
            if t != b or l != r:
                fail(f"{node.label}: asymmetric padding {((t, b), (l, r))}; nnviz pads "
                      f"both sides equally")
            if nxt is None or isinstance(nxt, tuple) or nxt.cls != "Conv2D":
                fail(f"{node.label} must come right before a Conv2D (nnviz pads inside "
                      f"convolutions)")
            self.pad = node
            self._pad = (t, l)
            return []
        if k == "Cropping2D":
            if not self._crop_ok:
                fail(f"{node.label}: cropping is supported only right after a Conv2DTranspose")
            self._crop_ok = False
            return []
        if k in ("Normalization", "Rescaling"):
            return self._scaling(node)
        fail(f"{node.label} is not supported; nnviz reads {SUPPORTED}")

    def _conv_pads(self, node, padding, hw, ks, ss):
        extra = (0, 0)
        if self.pad is not None:
            extra, self.pad = self._pad, None
        if padding == "valid":
            return extra
        if padding != "same":
            fail(f"{node.label}: padding {padding!r}")
        if extra != (0, 0):
            fail(f"{node.label}: ZeroPadding2D before a padding='same' convolution")
        out = []
        for n, k, s, axis in zip(hw, ks, ss, ("height", "width")):
            tot = max((math.ceil(n / s) - 1) * s + k - n, 0)
            if tot % 2:
                fail(f"{node.label}: padding='same' here pads {tot // 2} and {tot - tot // 2} "
                      f"pixels on the two sides of the {axis} ({n} pixels, kernel {k}, stride "
                      f"{s}); nnviz pads both sides equally")
            out.append(tot // 2)
        return tuple(out)

    def _deconv_pads(self, node, padding, ks, ss, nxt):
        op = node.config.get("output_padding")
        if op is not None and _pair(op, "output_padding", node) != (0, 0):
            fail(f"{node.label}: output_padding is not supported")
        pads = []
        for k, s in zip(ks, ss):
            if padding == "valid":
                if op is None and k < s:
                    fail(f"{node.label}: kernel {k} < stride {s} needs output padding")
                pads.append(0)
            elif padding == "same":
                if (k - s) % 2 or k < s:
                    fail(f"{node.label}: padding='same' with kernel {k}, stride {s} crops "
                          f"asymmetrically")
                pads.append((k - s) // 2)
            else:
                fail(f"{node.label}: padding {padding!r}")
        if nxt is not None and not isinstance(nxt, tuple) and nxt.cls == "Cropping2D":
            (t, b), (l, r) = _pads(nxt.config.get("cropping", 0), "cropping", nxt)
            if t != b or l != r or nxt.config.get("data_format", self.layout) != self.layout:
                fail(f"{nxt.label}: asymmetric cropping is not supported")
            pads = [pads[0] + t, pads[1] + l]
            self._crop_ok = True
        return tuple(pads)

    def _flat_perm(self, node, transposing):
        """perm[j] = the nnviz (C, H, W) flat index of Keras's j-th flat feature."""
        c, h, w = self.shape
        idx = np.arange(c * h * w).reshape(c, h, w)
        if self._gray:
            idx = idx.reshape(h, w)                            # (H, W) input, no channel axis
        elif self.layout == "channels_last":
            idx = idx.transpose(1, 2, 0)                     # Keras holds (H, W, C)
        if transposing and idx.ndim == 3:
            idx = np.moveaxis(idx, 0, -1)                    # channels_first Flatten: to last
        perm = idx.reshape(-1)
        return None if np.array_equal(perm, np.arange(perm.size)) else perm

    def _batchnorm(self, node):
        c = node.config
        axis = c.get("axis", -1)
        axis = axis[0] if isinstance(axis, list) and len(axis) == 1 else axis
        n = self.shape[0]
        if len(self.shape) == 3:
            want = (-1, 3) if self.layout == "channels_last" else (1, -3)
        else:
            want = (-1, 1)
        if axis not in want:
            fail(f"{node.label}: normalises axis {axis}; nnviz normalises the channel axis")
        shapes = [(n,)] * (int(bool(c.get("scale", True))) + int(bool(c.get("center", True))) + 2)
        arrs = self._arrays(node, shapes)
        gamma = arrs.pop(0) if c.get("scale", True) else np.ones(n, np.float32)
        beta = arrs.pop(0) if c.get("center", True) else np.zeros(n, np.float32)
        mean, var = arrs
        a = {"weight": gamma, "bias": beta, "running_mean": mean, "running_var": var}
        if self.perm is not None:           # flat features in Keras order -> nnviz order
            for key, v in a.items():
                out = np.empty_like(v)
                out[self.perm] = v
                a[key] = out
        mom = 1.0 - float(c.get("momentum", 0.99))
        spec = {"type": "BatchNorm", "momentum": mom if 0 < mom <= 1 else 0.01,
                "eps": float(c.get("epsilon", 1e-3))}
        return [(spec, a)]

    def _scaling(self, node):
        if self.started:
            fail(f"{node.label} is supported only as the first layer (as input scaling)")
        c = node.config
        ch = self.shape[0]
        if node.cls == "Normalization":
            if c.get("invert"):
                fail(f"{node.label}: invert=True is not supported")
            mean, var = c.get("mean"), c.get("variance")
            if mean is None or var is None:
                shapes = [(ch,), (ch,), ()]
                mean, var, _ = self.weights(node, shapes)
            mean = np.asarray(mean, np.float64).reshape(-1)
            std = np.sqrt(np.maximum(np.asarray(var, np.float64).reshape(-1), 1e-7 ** 2))
            self.notes.append(f"input scaling from {node.name}: mean {mean.tolist()}, "
                              f"std {std.tolist()}")
        else:
            scale = np.asarray(c.get("scale", 1.0), np.float64).reshape(-1)
            offset = np.asarray(c.get("offset", 0.0), np.float64).reshape(-1)
            if np.any(scale == 0):
                fail(f"{node.label}: scale 0")
            # Rescaling reads raw 0..255 pixels: y = 255 p * scale + offset = (p - mean) / std
            std, mean = 1.0 / (255.0 * scale), -offset / (255.0 * scale) + 0.0   # no -0.0
            mean = np.broadcast_to(mean, np.broadcast_shapes(mean.shape, std.shape))
            self.notes.append(f"{node.name} rescales 0..255 pixels: read as input scaling "
                              f"mean {mean.tolist()}, std {np.ravel(std).tolist()} of [0, 1] pixels")
        return [({"type": "InputScaling", "mean": [float(v) for v in np.ravel(mean)],
                  "std": [float(v) for v in np.ravel(std)]}, {})]


def _layout_hint(ops):
    """The data layout the first image layer states (data_format, or a channel axis); Keras's
    default channels_last when none does."""
    for o in _flat_ops(ops):
        if o.cls in _SPATIAL:
            return o.config.get("data_format") or "channels_last"
        if o.cls in ("BatchNormalization", "Normalization"):
            axis = o.config.get("axis", -1)
            axis = axis[0] if isinstance(axis, list) and len(axis) == 1 else axis
            return "channels_first" if axis in (1, -3) else "channels_last"
        if o.cls in ("Flatten", "Reshape", "Dense", "GlobalAveragePooling2D"):
            break
    return "channels_last"


def _flat_ops(ops):
    for op in ops:
        if isinstance(op, tuple):
            yield from _flat_ops(op[2])
        else:
            yield op


def convert(model_config, weights, max_params=None):
    """(nnviz spec, {state name: array}, notes) for a Keras model_config.

    `weights(node, group name, shapes)` returns one layer's arrays after checking `shapes`;
    `max_params`: refuse a model declaring more parameters than the file can hold, before
    anything of that size is read or allocated."""
    ops, inp, cfg, wnames = parse_graph(model_config)
    notes = []
    conv = Converter(lambda node, shapes: weights(node, wnames.get(node.name, node.name), shapes),
                     notes, max_params)
    first = next(iter(_flat_ops(ops)), None)
    shape = conv.input_shape(conv.start(inp, first, cfg), ops)
    out = conv.chain(ops, True)
    if conv.perm is not None:
        fail("the model ends with a channels_last Flatten: its outputs come in (H, W, C) "
              "order, nnviz's in (C, H, W) order; add the Dense that follows")
    if not out:
        fail("the model has no layers nnviz can compute")
    state = {}
    for i, (spec, arrays) in enumerate(out):
        _collect(state, str(i), spec, arrays)
    name = str(cfg.get("name") or "keras-model")
    return {"name": name, "input_shape": shape, "layers": [c for c, _ in out]}, state, notes


def _collect(state, prefix, spec, arrays):
    if spec["type"] == "Residual":
        for j, (inner, arr) in enumerate(zip(spec["layers"], arrays)):
            _collect(state, f"{prefix}.{j}", inner, arr)
        return
    for k, v in arrays.items():
        state[f"{prefix}.{k}"] = v
