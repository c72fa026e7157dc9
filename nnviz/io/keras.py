"""nnviz layers -> legacy Keras (.h5) model_config entries and weight names.

Each nnviz layer becomes one Keras layer (explicit padding adds a ZeroPadding2D
before a convolution; ConvTranspose2D padding adds a Cropping2D after it; a Residual
becomes its inner layers plus an Add, in a functional config). Weights are stored in
Keras axis order; `to_keras` / `from_keras` transpose. Keras 3 loads these files.
"""
import numpy as np

from ..engine.layers import (
    Abs,
    AvgPool2D,
    BatchNorm,
    Conv2D,
    ConvTranspose2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAvgPool2D,
    InputScaling,
    LeakyReLU,
    MaxPool2D,
    ReLU,
    Residual,
    Sigmoid,
    Tanh,
)
from ..engine.layers import init as _init

KERAS_VERSION = "2.15.0"   # the layout followed (legacy tf.keras HDF5), not the writer
CHANNELS = "channels_first"

_SNAKE = {"Dense": "dense", "Conv2D": "conv2d", "Conv2DTranspose": "conv2d_transpose",
          "MaxPooling2D": "max_pooling2d", "AveragePooling2D": "average_pooling2d",
          "BatchNormalization": "batch_normalization", "Dropout": "dropout",
          "Flatten": "flatten", "Activation": "activation", "LeakyReLU": "leaky_re_lu",
          "ZeroPadding2D": "zero_padding2d", "Cropping2D": "cropping2d",
          "GlobalAveragePooling2D": "global_average_pooling2d", "nnviz>Residual": "residual",
          "InputLayer": "input_layer", "Add": "add", "Normalization": "normalization"}

_ACT = {ReLU: "relu", Tanh: "tanh", Sigmoid: "sigmoid", Abs: "nnviz>abs"}


def _dense_to(a):
    return np.ascontiguousarray(a.T)


def _conv_to(a):      # (out,in,kh,kw) -> (kh,kw,in,out); (in,out,kh,kw) -> (kh,kw,out,in)
    return np.ascontiguousarray(a.transpose(2, 3, 1, 0))


def _conv_from(a):
    return np.ascontiguousarray(a.transpose(3, 2, 0, 1))


def _same(a):
    return np.ascontiguousarray(a)


# nnviz array key -> (Keras weight name, nnviz->Keras, Keras->nnviz)
_WEIGHTS = {
    Dense: {"weight": ("kernel", _dense_to, _dense_to), "bias": ("bias", _same, _same)},
    Conv2D: {"weight": ("kernel", _conv_to, _conv_from), "bias": ("bias", _same, _same)},
    ConvTranspose2D: {"weight": ("kernel", _conv_to, _conv_from), "bias": ("bias", _same, _same)},
    BatchNorm: {"weight": ("gamma", _same, _same), "bias": ("beta", _same, _same),
                "running_mean": ("moving_mean", _same, _same),
                "running_var": ("moving_variance", _same, _same)},
}


class Namer:
    """Keras auto-names: dense, dense_1, dense_2, ..."""

    def __init__(self):
        self.count = {}

    def __call__(self, class_name):
        base = _SNAKE.get(class_name, class_name.lower().replace(">", "_"))
        n = self.count.get(base, 0)
        self.count[base] = n + 1
        return base if n == 0 else f"{base}_{n}"


def _initializer(layer, hint):
    try:
        kind = _init.choose(layer.init, hint, layer.label)
    except ValueError:
        kind = "he"
    name = "HeNormal" if kind == "he" else "GlorotUniform"
    return {"class_name": name, "config": {"seed": None}}


def _base(name):
    return {"name": name, "trainable": True, "dtype": "float32"}


def _conv_padding(layer):
    """'valid', 'same' when Keras's same is exactly ours, else None (explicit padding)."""
    (kh, kw), (sh, sw), (ph, pw) = layer.kernel_size, layer.stride, layer.padding
    if (ph, pw) == (0, 0):
        return "valid"
    if (sh, sw) == (1, 1) and kh % 2 and kw % 2 and (ph, pw) == ((kh - 1) // 2, (kw - 1) // 2):
        return "same"
    return None


class Entry:
    """One nnviz layer as Keras layers; `weights` lists (key, keras name, to, from) of the
    layer that carries the arrays (key: nnviz params/buffers key)."""

    def __init__(self, layer, keras_layers, name, weights, children=()):
        self.layer = layer
        self.keras_layers = keras_layers   # [{"class_name", "config"}] in order
        self.name = name                   # the Keras layer holding the weights
        self.weights = weights
        self.children = list(children)     # Residual: the inner entries


def convert(layers, namer, next_type=None, nested=False):
    """[Entry] for a chain of nnviz layers.

    nested=True: a Residual is one `nnviz>Residual` layer holding its inner layers' weights
    (the layout nnviz wrote before Keras could open its files; still read)."""
    out = []
    for i, layer in enumerate(layers):
        hint = layers[i + 1].type if i + 1 < len(layers) else next_type
        out.append(_convert_one(layer, namer, hint, nested))
    return out


def _weights_of(layer, name):
    table = _WEIGHTS.get(type(layer), {})
    res = []
    for key in list(layer.params) + list(layer.buffers):
        kname, to, frm = table.get(key, (key, _same, _same))
        res.append((key, f"{name}/{kname}:0", to, frm))
    return res


def _convert_one(layer, namer, hint, nested=False):
    t = type(layer)
    pre, post = [], []
    if t in (Conv2D, ConvTranspose2D):
        cls = "Conv2D" if t is Conv2D else "Conv2DTranspose"
        (ph, pw) = layer.padding
        if t is Conv2D:
            padding = _conv_padding(layer)
            if padding is None:
                pre.append({"class_name": "ZeroPadding2D", "config": {
                    **_base(namer("ZeroPadding2D")), "padding": [[ph, ph], [pw, pw]],
                    "data_format": CHANNELS}})
                padding = "valid"
        else:
            padding = "valid"
            if (ph, pw) != (0, 0):
                post_name = "Cropping2D"
        name = namer(cls)
        cfg = {**_base(name), "filters": layer.out_channels,
               "kernel_size": list(layer.kernel_size), "strides": list(layer.stride),
               "padding": padding, "data_format": CHANNELS, "dilation_rate": [1, 1],
               "groups": 1, "activation": "linear", "use_bias": layer.use_bias,
               "kernel_initializer": _initializer(layer, hint),
               "bias_initializer": {"class_name": "Zeros", "config": {}},
               "kernel_regularizer": None, "bias_regularizer": None,
               "activity_regularizer": None, "kernel_constraint": None, "bias_constraint": None}
        if t is ConvTranspose2D:
            cfg.pop("groups")
            cfg["output_padding"] = [0, 0]     # length (H-1)*S + K, as PyTorch before cropping
            if (ph, pw) != (0, 0):
                post.append({"class_name": post_name, "config": {
                    **_base(namer("Cropping2D")), "cropping": [[ph, ph], [pw, pw]],
                    "data_format": CHANNELS}})
        main = {"class_name": cls, "config": cfg}
    elif t is Dense:
        name = namer("Dense")
        main = {"class_name": "Dense", "config": {
            **_base(name), "units": layer.out_features, "activation": "linear",
            "use_bias": layer.use_bias, "kernel_initializer": _initializer(layer, hint),
            "bias_initializer": {"class_name": "Zeros", "config": {}},
            "kernel_regularizer": None, "bias_regularizer": None,
            "activity_regularizer": None, "kernel_constraint": None, "bias_constraint": None}}
    elif t in (MaxPool2D, AvgPool2D):
        cls = "MaxPooling2D" if t is MaxPool2D else "AveragePooling2D"
        name = namer(cls)
        main = {"class_name": cls, "config": {
            **_base(name), "pool_size": list(layer.kernel_size), "strides": list(layer.stride),
            "padding": "valid", "data_format": CHANNELS}}
    elif t is GlobalAvgPool2D:
        name = namer("GlobalAveragePooling2D")
        main = {"class_name": "GlobalAveragePooling2D", "config": {
            **_base(name), "data_format": CHANNELS, "keepdims": False}}
    elif t is BatchNorm:
        name = namer("BatchNormalization")
        main = {"class_name": "BatchNormalization", "config": {
            **_base(name), "axis": 1, "momentum": 1.0 - layer.momentum,
            "epsilon": layer.eps, "center": True, "scale": True,
            "beta_initializer": {"class_name": "Zeros", "config": {}},
            "gamma_initializer": {"class_name": "Ones", "config": {}},
            "moving_mean_initializer": {"class_name": "Zeros", "config": {}},
            "moving_variance_initializer": {"class_name": "Ones", "config": {}},
            "beta_regularizer": None, "gamma_regularizer": None,
            "beta_constraint": None, "gamma_constraint": None}}
    elif t is Dropout:
        name = namer("Dropout")
        main = {"class_name": "Dropout", "config": {
            **_base(name), "rate": layer.p, "noise_shape": None, "seed": None}}
    elif t is Flatten:
        # nnviz flattens (C, H, W) in that order: Keras's channels_last Flatten is that plain
        # reshape (its channels_first Flatten transposes to H, W, C first)
        name = namer("Flatten")
        main = {"class_name": "Flatten", "config": {**_base(name), "data_format": "channels_last"}}
    elif t is InputScaling:
        # the Keras model reads what the scaling expects ([0, 1] pixels), as ONNX export does;
        # the binding to a dataset's standardisation stays in nnviz/model_spec
        c = layer.input_shape[0]
        mean, std = (np.broadcast_to(np.asarray(v, np.float64), (c,)) for v in (layer.mean,
                                                                               layer.std))
        name = namer("Normalization")
        main = {"class_name": "Normalization", "config": {
            **_base(name), "axis": 1, "invert": False, "mean": mean.tolist(),
            "variance": (std ** 2).tolist()}}
    elif t is LeakyReLU:
        name = namer("LeakyReLU")
        main = {"class_name": "LeakyReLU", "config": {**_base(name), "alpha": layer.alpha}}
    elif t in _ACT:
        name = namer("Activation")
        main = {"class_name": "Activation", "config": {**_base(name), "activation": _ACT[t]}}
    elif t is Residual and nested:
        name = namer("nnviz>Residual")
        children = convert(layer.layers, namer, nested=True)
        inner = [k for c in children for k in c.keras_layers]
        main = {"class_name": "nnviz>Residual", "config": {**_base(name), "layers": inner}}
        return Entry(layer, [main], name, [], children)
    elif t is Residual:
        children = convert(layer.layers, namer)
        add = {"class_name": "Add", "config": _base(namer("Add"))}
        return Entry(layer, [add], None, [], children)
    else:   # a layer type this module does not know yet: keep its nnviz config
        cls = f"nnviz>{layer.type}"
        name = namer(cls)
        main = {"class_name": cls, "config": {**_base(name), **layer.config()}}
    return Entry(layer, pre + [main] + post, name, _weights_of(layer, name))


def all_weights(entry):
    """(layer, nnviz key, keras weight name, to, from) of an entry and its children."""
    for key, wname, to, frm in entry.weights:
        yield entry.layer, key, wname, to, frm
    for c in entry.children:
        yield from all_weights(c)


def keras_layer_order(entries):
    """Every Keras layer config in model order (a Residual's inner layers before its Add)."""
    for e in entries:
        if e.name is None:
            yield from keras_layer_order(e.children)
        yield from e.keras_layers


def weight_groups(entries):
    """(Keras layer name, [(layer, key, weight name, to, from)]) in file order."""
    for e in entries:
        if e.name is None:
            yield from weight_groups(e.children)
        for kl in e.keras_layers:
            name = kl["config"]["name"]
            yield name, (list(all_weights(e)) if name == e.name else [])


def keras_problems(model):
    """Why Keras cannot run this model: ['layer 3 (Abs) has no Keras layer', ...]."""
    def walk(layers):
        for layer in layers:
            yield layer
            yield from walk(getattr(layer, "children", ()))
    return [f"{l.label} has no Keras layer" for l in walk(model.layers) if type(l) is Abs]


def model_config(model, entries):
    """Sequential with an InputLayer, or Functional (with Add) when there is a Residual."""
    layers = [dict(k, config=dict(k["config"])) for k in keras_layer_order(entries)]
    inp = {"class_name": "InputLayer", "config": {
        "batch_input_shape": [None, *model.input_shape], "dtype": "float32", "sparse": False,
        "ragged": False, "name": "input_layer"}}
    if not any(e.name is None for e in entries):
        return {"class_name": "Sequential",
                "config": {"name": model.name, "layers": [inp, *layers]}}
    nodes = [dict(inp, name="input_layer", inbound_nodes=[])]

    def node(kl, inputs):
        nodes.append(dict(kl, name=kl["config"]["name"],
                          inbound_nodes=[[[t, 0, 0, {}] for t in inputs]]))
        return kl["config"]["name"]

    def chain(entries, t):
        for e in entries:
            if e.name is None:                   # Residual: t + f(t)
                t = node(e.keras_layers[0], [t, chain(e.children, t)])
            else:
                for kl in e.keras_layers:
                    t = node(kl, [t])
        return t

    out = chain(entries, "input_layer")
    return {"class_name": "Functional", "config": {
        "name": model.name, "layers": nodes, "input_layers": [["input_layer", 0, 0]],
        "output_layers": [[out, 0, 0]]}}


def _with_modules(obj, module):
    """Keras 3 serialisation: every {"class_name", "config"} also names its module."""
    if isinstance(obj, list):
        return [_with_modules(v, module) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if "class_name" in obj and isinstance(obj.get("config"), dict):
        cfg = {k: _with_modules(v, "keras.initializers" if k.endswith("_initializer")
                                else "keras.layers") for k, v in obj["config"].items()}
        return {**obj, "module": module, "config": cfg, "registered_name": None}
    return {k: _with_modules(v, module) for k, v in obj.items()}


def keras3_config(model, entries):
    """model_config() as a Keras 3 `.keras` config.json."""
    cfg = _with_modules(model_config(model, entries), "keras.layers")
    cfg["module"] = "keras" if cfg["class_name"] == "Sequential" else "keras.src.models.functional"
    return cfg


def keras3_weight_groups(entries, functional):
    """(group in model.weights.h5, weights) in Keras's order: layers/<snake name>[_n]."""
    from .keras_graph import snake
    used = {}
    rows = [("InputLayer", [])] if functional else []
    by_name = dict(weight_groups(entries))
    rows += [(kl["class_name"], by_name.get(kl["config"]["name"], []))
             for kl in keras_layer_order(entries)]
    for cls, weights in rows:
        base = snake(cls)
        used[base] = used.get(base, -1) + 1
        yield (base if used[base] == 0 else f"{base}_{used[base]}"), weights


_LOSSES = {
    "softmax_xent": {"class_name": "SparseCategoricalCrossentropy",
                     "config": {"from_logits": True, "reduction": "sum_over_batch_size",
                                "name": "sparse_categorical_crossentropy"}},
    "mse": {"class_name": "MeanSquaredError",
            "config": {"reduction": "sum_over_batch_size", "name": "mean_squared_error"}},
    "bce": {"class_name": "BinaryCrossentropy",
            "config": {"from_logits": True, "reduction": "sum_over_batch_size",
                       "name": "binary_crossentropy"}},
}


def optimizer_config(cfg):
    kind = str(cfg.get("type", "SGD"))
    c = {"name": kind, "learning_rate": cfg.get("lr")}
    if kind == "Adam":
        betas = cfg.get("betas") or [0.9, 0.999]
        c.update(beta_1=betas[0], beta_2=betas[1], epsilon=cfg.get("eps"), amsgrad=False)
    else:
        c.update(momentum=cfg.get("momentum", 0.0), nesterov=cfg.get("nesterov", False))
    return {"class_name": kind, "config": c}


def training_config(trainer_cfg):
    loss = trainer_cfg.get("loss")
    opt = trainer_cfg.get("optimizer") or {}
    return {"loss": _LOSSES.get(loss, loss), "metrics": ["accuracy"],
            "weighted_metrics": None, "loss_weights": None,
            "optimizer_config": optimizer_config(opt),
            # nnviz adds these to the gradient (PyTorch's L2 weight_decay), unlike Keras's
            # decoupled weight_decay; outside the optimizer config, which Keras validates
            "nnviz_weight_decay": opt.get("weight_decay", 0.0), "nnviz_l1": opt.get("l1", 0.0),
            "nnviz_loss": loss, "nnviz_batch_size": trainer_cfg.get("batch_size")}


SLOT_NAMES = {"velocity": "momentum", "m": "m", "v": "v"}
