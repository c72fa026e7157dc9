"""Keras files both ways, with Keras 3 itself as the oracle: nnviz's .h5 opens in Keras (with
and without compile) and computes nnviz's outputs; Keras's .h5 and .keras open in nnviz and
compute Keras's outputs; bad and hostile files are one-line errors."""
import copy
import json
import os
import zipfile

import h5py
import numpy as np
import pytest

from nnviz.engine import load_preset, model_from_spec
from nnviz.io import ModelFormatError, load_model, save_model
from nnviz.io.keras import keras_problems
from nnviz.io.scaling import set_input_scaling
from nnviz.train import Trainer

os.environ.setdefault("KERAS_BACKEND", "torch")
RTOL = 1e-5


def rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-12))


def keras_mod():
    return pytest.importorskip("keras")


def _x(shape, n=3, seed=0):
    return np.random.default_rng(seed).standard_normal((n, *shape)).astype(np.float32)


# ---- nnviz models that Keras must open -------------------------------------------------------
def _spec(name, shape, layers):
    return {"name": name, "input_shape": shape, "layers": layers}


BN_DROPOUT = _spec("bn-dropout", [3, 10, 10], [
    {"type": "Conv2D", "out_channels": 4, "kernel_size": 3}, {"type": "BatchNorm"},
    {"type": "ReLU"}, {"type": "MaxPool2D", "kernel_size": 2}, {"type": "Flatten"},
    {"type": "Dropout", "p": 0.3}, {"type": "Dense", "out_features": 8},
    {"type": "BatchNorm", "eps": 1e-3}, {"type": "Sigmoid"}, {"type": "Dense", "out_features": 3}])
STRIDE2 = _spec("stride2", [2, 11, 11], [
    {"type": "Conv2D", "out_channels": 3, "kernel_size": 3, "stride": 2, "padding": 1},
    {"type": "LeakyReLU", "alpha": 0.1},
    {"type": "ConvTranspose2D", "out_channels": 2, "kernel_size": 3, "stride": 2, "padding": 1},
    {"type": "Conv2D", "out_channels": 2, "kernel_size": [2, 3], "padding": [1, 0]},
    {"type": "AvgPool2D", "kernel_size": 2, "stride": 1}, {"type": "Tanh"},
    {"type": "Flatten"}, {"type": "Dense", "out_features": 4}])
RESIDUAL = _spec("residual-gap", [3, 8, 8], [
    {"type": "Conv2D", "out_channels": 4, "kernel_size": 3, "padding": 1}, {"type": "ReLU"},
    {"type": "Residual", "layers": [
        {"type": "Conv2D", "out_channels": 4, "kernel_size": 3, "padding": 1, "bias": False},
        {"type": "BatchNorm"}, {"type": "ReLU"},
        {"type": "Conv2D", "out_channels": 4, "kernel_size": 1}]},
    {"type": "ReLU"}, {"type": "GlobalAvgPool2D"}, {"type": "Dense", "out_features": 3}])

EVERY_LAYER = _spec("every-layer", [2, 9, 9], [     # every layer type but Abs; nested residuals
    {"type": "Conv2D", "out_channels": 3, "kernel_size": 3, "stride": 2, "padding": 1},
    {"type": "BatchNorm", "momentum": 0.2, "eps": 1e-4}, {"type": "LeakyReLU", "alpha": 0.1},
    {"type": "ConvTranspose2D", "out_channels": 4, "kernel_size": [3, 2], "stride": 2,
     "padding": 1},
    {"type": "Residual", "layers": [
        {"type": "Conv2D", "out_channels": 4, "kernel_size": 3, "padding": 1, "bias": False},
        {"type": "BatchNorm"}, {"type": "Sigmoid"},
        {"type": "Residual", "layers": [{"type": "Conv2D", "out_channels": 4, "kernel_size": 1},
                                        {"type": "Tanh"}]}]},
    {"type": "MaxPool2D", "kernel_size": 2}, {"type": "AvgPool2D", "kernel_size": 2, "stride": 1},
    {"type": "Conv2D", "out_channels": 2, "kernel_size": [2, 1], "padding": [1, 0]},
    {"type": "Flatten"}, {"type": "Dropout", "p": 0.5},
    {"type": "Dense", "out_features": 7, "init": "xavier"}, {"type": "Tanh"},
    {"type": "Dense", "out_features": 3, "bias": False}])


def _randomize_bn(model, seed=7):
    """Moving statistics away from 0/1, so the check covers them."""
    rng = np.random.default_rng(seed)
    state = model.state()
    for k in state:
        if k.endswith("running_mean"):
            state[k] = rng.standard_normal(state[k].shape).astype(np.float32) * 0.3
        elif k.endswith("running_var") or k.endswith("weight") and state[k].ndim == 1:
            state[k] = (rng.random(state[k].shape) + 0.5).astype(np.float32)
    model.load_state(state)
    return model


def nnviz_models():
    out = {p: load_preset(p, seed=1) for p in ("mlp2", "lenet5", "lab7-cnn")}
    for spec in (BN_DROPOUT, STRIDE2, RESIDUAL, EVERY_LAYER):
        out[spec["name"]] = _randomize_bn(model_from_spec(spec, seed=2))
    out["lenet5-mnist-scaling"] = set_input_scaling(load_preset("lenet5", seed=1), "mnist")
    return out


MODEL_NAMES = ["mlp2", "lenet5", "lab7-cnn", "bn-dropout", "stride2", "residual-gap",
               "every-layer", "lenet5-mnist-scaling"]


@pytest.fixture(scope="module")
def zoo():
    return nnviz_models()


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_keras_opens_nnviz_files_and_computes_the_same(zoo, name, tmp_path):
    keras = keras_mod()
    m = zoo[name]
    path = save_model(tmp_path / f"{name}.h5", m)
    x = _x(m.input_shape)
    want = m.predict_logits(x)
    for compile in (False, True):
        km = keras.saving.load_model(path, compile=compile)
        assert rel(keras.ops.convert_to_numpy(km(x)), want) < RTOL, (name, compile)
    # and as a Keras 3 .keras file
    km = keras.saving.load_model(save_model(tmp_path / f"{name}.keras", m))
    assert rel(keras.ops.convert_to_numpy(km(x)), want) < RTOL, name
    back = load_model(tmp_path / f"{name}.keras").model        # and nnviz reads it back
    assert rel(back.predict_logits(x), want) < RTOL, name


@pytest.mark.parametrize("opt,loss", [("adam", "softmax_xent"), ("sgd", "bce")])
def test_training_config_compiles_in_keras(opt, loss, tmp_path):
    keras = keras_mod()
    from nnviz.data import Dataset
    rng = np.random.default_rng(0)
    classes = 1 if loss == "bce" else 3
    spec = copy.deepcopy(BN_DROPOUT)
    spec["layers"][-1]["out_features"] = classes
    x = rng.standard_normal((24, 3, 10, 10)).astype(np.float32)
    y = rng.integers(0, 2 if loss == "bce" else 3, 24)
    data = Dataset("toy", x[:16], y[:16], x[16:], y[16:], class_names=["a", "b", "c"][:max(2, classes)])
    tr = Trainer(model_from_spec(spec, seed=3), data, loss=loss, optimizer=opt, lr=0.02,
                 momentum=0.9 if opt == "sgd" else 0.0, weight_decay=1e-4, batch_size=8)
    for _ in range(2):
        tr.step()
    path = save_model(tmp_path / "t.h5", tr.model, trainer=tr)
    km = keras.saving.load_model(path, compile=True)
    assert type(km.optimizer).__name__ == {"adam": "Adam", "sgd": "SGD"}[opt]
    assert float(keras.ops.convert_to_numpy(km.optimizer.learning_rate)) == pytest.approx(0.02)
    assert rel(keras.ops.convert_to_numpy(km(x[16:])), tr.model.predict_logits(x[16:])) < RTOL
    km.evaluate(x[16:], y[16:].astype("float32" if loss == "bce" else "int64"), verbose=0)


def test_a_model_keras_cannot_represent_says_so():
    m = model_from_spec(_spec("abs", [4], [{"type": "Dense", "out_features": 3},
                                           {"type": "Abs"}]))
    assert keras_problems(m) == ["layer 1 (Abs) has no Keras layer"]
    assert keras_problems(load_preset("lenet5")) == []


def test_old_nested_residual_layout_still_loads(zoo, tmp_path, monkeypatch):
    from nnviz.io import h5model
    m = zoo["residual-gap"]
    orig = h5model._layout
    monkeypatch.setattr(h5model, "_layout", lambda model, nested=False: orig(model, True))
    path = save_model(tmp_path / "old.h5", m)
    monkeypatch.setattr(h5model, "_layout", orig)
    with h5py.File(path, "r") as f:
        assert "nnviz>Residual" in json.dumps(json.loads(f.attrs["model_config"]))
    x = _x(m.input_shape)
    assert np.array_equal(load_model(path).model.predict_logits(x), m.predict_logits(x))


# ---- Keras models that nnviz must open -------------------------------------------------------
def keras_models(keras):
    L, I = keras.layers, keras.Input
    keras.utils.set_random_seed(0)
    out = {
        "mlp": (keras.Sequential([I((28, 28)), L.Flatten(), L.Dense(16, activation="relu"),
                                  L.Dropout(0.2), L.Dense(10, activation="softmax")]), (28, 28)),
        "lenet5": (keras.Sequential([
            I((28, 28, 1)), L.Conv2D(6, 5, padding="same", activation="tanh"),
            L.AveragePooling2D(2), L.Conv2D(16, 5, activation="tanh"), L.AveragePooling2D(2),
            L.Flatten(), L.Dense(120, activation="tanh"), L.Dense(84, activation="tanh"),
            L.Dense(10)]), (28, 28, 1)),
        "lab7-cnn": (keras.Sequential([
            I((32, 32, 3)), L.Conv2D(6, 5, activation="relu"), L.MaxPooling2D(2),
            L.Conv2D(16, 5, activation="relu"), L.MaxPooling2D(2), L.Flatten(),
            L.Dense(120, activation="relu"), L.Dense(84, activation="relu"), L.Dense(10)]),
            (32, 32, 3)),
        "bn-dropout": (keras.Sequential([
            I((12, 12, 3)), L.Conv2D(8, 3), L.BatchNormalization(), L.ReLU(),
            L.MaxPooling2D(2), L.Flatten(), L.BatchNormalization(), L.Dropout(0.3),
            L.Dense(10), L.Softmax()]), (12, 12, 3)),
        "stride2": (keras.Sequential([
            I((11, 11, 2)), L.ZeroPadding2D(1), L.Conv2D(4, 3, strides=2), L.LeakyReLU(0.1),
            L.Conv2DTranspose(3, 3, strides=2), L.Conv2DTranspose(3, 4, strides=2, padding="same"),
            L.Conv2D(3, 4, strides=2, padding="same"), L.Activation("sigmoid"),
            L.Reshape((-1,)), L.Dense(5)]), (11, 11, 2)),
        "channels-first": (keras.Sequential([
            I((2, 9, 9)), L.Conv2D(4, 3, data_format="channels_first"),
            L.MaxPooling2D(2, data_format="channels_first"),
            L.Flatten(data_format="channels_first"), L.Dense(3)]), (2, 9, 9)),
    }
    inp = I((8, 8, 3))
    x = L.Conv2D(4, 3, padding="same", activation="relu")(inp)
    y = L.Conv2D(4, 3, padding="same", use_bias=False)(x)
    y = L.BatchNormalization()(y)
    y = L.ReLU()(y)
    y = L.Conv2D(4, 1)(y)
    x = L.Activation("relu")(L.Add()([x, y]))
    out["residual-gap"] = (keras.Model(inp, L.Dense(3)(L.GlobalAveragePooling2D()(x))), (8, 8, 3))
    for m, _ in out.values():
        for layer in m.layers:
            if isinstance(layer, L.BatchNormalization):
                n = layer.moving_mean.shape
                rng = np.random.default_rng(len(n))
                layer.moving_mean.assign(rng.standard_normal(n).astype("float32") * 0.3)
                layer.moving_variance.assign((rng.random(n) + 0.5).astype("float32"))
                layer.gamma.assign((rng.random(n) + 0.5).astype("float32"))
    return out


def to_nnviz_input(x, nnviz_shape):
    if x.ndim == 4 and x.shape[1:] != tuple(nnviz_shape):
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))    # NHWC -> NCHW
    return x.reshape((len(x), *nnviz_shape))


def nnviz_output(loaded, x):
    final_softmax = any("softmax" in n for n in loaded.meta["notes"])
    return loaded.model.predict_proba(x) if final_softmax else loaded.model.predict_logits(x)


@pytest.fixture(scope="module")
def kzoo():
    return keras_models(keras_mod())


KERAS_NAMES = ["mlp", "lenet5", "lab7-cnn", "bn-dropout", "stride2", "channels-first",
               "residual-gap"]


@pytest.mark.parametrize("ext", [".keras", ".h5"])
@pytest.mark.parametrize("name", KERAS_NAMES)
def test_nnviz_opens_keras_files_and_computes_the_same(kzoo, name, ext, tmp_path):
    keras = keras_mod()
    km, shape = kzoo[name]
    path = tmp_path / f"{name}{ext}"
    km.save(path)
    x = _x(shape)
    want = keras.ops.convert_to_numpy(km(x))
    loaded = load_model(path)
    assert loaded.meta["format"] == "Keras"
    got = nnviz_output(loaded, to_nnviz_input(x, loaded.model.input_shape))
    assert rel(got, want) < RTOL, name


def test_flatten_after_channels_last_conv_is_row_permuted(kzoo, tmp_path):
    """The Dense after Flatten is where channels_last and NCHW differ: check its rows."""
    keras = keras_mod()
    km, shape = kzoo["lab7-cnn"]
    km.save(tmp_path / "l7.keras")
    m = load_model(tmp_path / "l7.keras").model
    dense = km.layers[5]
    k = keras.ops.convert_to_numpy(dense.kernel)                     # (H*W*C, 120), H=W=5
    w = m.layers[7].params["weight"]                                 # (120, C*H*W)
    c, h, ww = 16, 5, 5
    for (ci, hi, wi) in ((0, 0, 1), (3, 2, 4), (15, 4, 0)):
        np.testing.assert_array_equal(w[:, ci * h * ww + hi * ww + wi], k[hi * ww * c + wi * c + ci])


def test_nnviz_to_keras_to_nnviz_round_trip(zoo, tmp_path):
    keras = keras_mod()
    m = zoo["residual-gap"]
    km = keras.saving.load_model(save_model(tmp_path / "a.h5", m), compile=False)
    km.save(tmp_path / "b.keras")
    back = load_model(tmp_path / "b.keras").model
    x = _x(m.input_shape)
    assert rel(back.predict_logits(x), m.predict_logits(x)) < RTOL


def test_rescaling_becomes_input_scaling(tmp_path):
    keras = keras_mod()
    L = keras.layers
    km = keras.Sequential([keras.Input((6, 6, 1)), L.Rescaling(1 / 127.5, offset=-1),
                           L.Conv2D(2, 3), L.Flatten(), L.Dense(3)])
    km.save(tmp_path / "r.keras")
    loaded = load_model(tmp_path / "r.keras")
    first = loaded.model.layers[0]
    assert first.type == "InputScaling"
    assert first.mean == pytest.approx([0.5]) and first.std == pytest.approx([0.5])
    pixels = np.random.default_rng(0).random((3, 6, 6, 1)).astype(np.float32)   # [0, 1]
    want = keras.ops.convert_to_numpy(km(pixels * 255))
    assert rel(loaded.model.predict_logits(pixels.transpose(0, 3, 1, 2)), want) < RTOL


def test_input_scaling_chosen_at_import(kzoo, tmp_path):
    keras = keras_mod()
    km, shape = kzoo["lenet5"]
    km.save(tmp_path / "l.keras")
    loaded = load_model(tmp_path / "l.keras", input_scaling="mnist")
    assert loaded.model.layers[0].config() == {"type": "InputScaling", "mean": [0.1307],
                                               "std": [0.3081]}
    pixels = np.random.default_rng(0).random((2, 28, 28, 1)).astype(np.float32)
    want = keras.ops.convert_to_numpy(km((pixels - 0.1307) / 0.3081))
    # fed nnviz-standardised data, the bound scaling gives the model what it expects
    norm = {"mean": [0.2], "std": [0.4]}
    loaded.model.layers[0].set_data_normalization(norm)
    x = (pixels.transpose(0, 3, 1, 2) - 0.2) / 0.4
    assert rel(loaded.model.predict_logits(x), want) < RTOL
    # it travels in the nnviz file
    again = load_model(save_model(tmp_path / "l.h5", loaded.model)).model
    assert again.layers[0].config() == loaded.model.layers[0].config()


# ---- per layer, both directions -----------------------------------------------------------------
PER_LAYER_READ = [
    ("Dense", lambda L: L.Dense(3), (5,)),
    ("Conv2D-same", lambda L: L.Conv2D(3, 3, padding="same"), (6, 7, 2)),
    ("Conv2D-stride", lambda L: L.Conv2D(3, (3, 2), strides=(2, 1), use_bias=False), (7, 6, 2)),
    ("Conv2DTranspose", lambda L: L.Conv2DTranspose(2, 3, strides=2), (4, 5, 3)),
    ("Conv2DTranspose-same", lambda L: L.Conv2DTranspose(2, 4, strides=2, padding="same"),
     (4, 5, 3)),
    ("MaxPooling2D", lambda L: L.MaxPooling2D(2), (6, 6, 2)),
    ("AveragePooling2D", lambda L: L.AveragePooling2D(3, strides=1), (6, 5, 2)),
    ("GlobalAveragePooling2D", lambda L: L.GlobalAveragePooling2D(), (5, 4, 3)),
    ("Flatten", lambda L: [L.Flatten(), L.Dense(3)], (3, 4, 2)),
    ("Reshape", lambda L: [L.Reshape((24,)), L.Dense(3)], (3, 4, 2)),
    ("Dropout", lambda L: L.Dropout(0.4), (5,)),
    ("BatchNormalization", lambda L: L.BatchNormalization(epsilon=0.01), (4, 4, 3)),
    ("Activation-tanh", lambda L: L.Activation("tanh"), (5,)),
    ("ReLU", lambda L: L.ReLU(), (5,)),
    ("LeakyReLU", lambda L: L.LeakyReLU(0.2), (5,)),
    ("Softmax", lambda L: [L.Dense(4), L.Softmax()], (5,)),
    ("ZeroPadding2D", None, (5, 5, 2)),
]


@pytest.mark.parametrize("name,make,shape", PER_LAYER_READ, ids=[p[0] for p in PER_LAYER_READ])
def test_each_keras_layer_reads_exactly(name, make, shape, tmp_path):
    keras = keras_mod()
    L = keras.layers
    keras.utils.set_random_seed(1)
    if make is None:
        km = keras.Sequential([keras.Input(shape), L.ZeroPadding2D(((1, 1), (2, 2))),
                               L.Conv2D(2, 3)])
    else:
        made = make(L)
        km = keras.Sequential([keras.Input(shape), *(made if isinstance(made, list) else [made])])
    for layer in km.layers:
        if isinstance(layer, L.BatchNormalization):
            layer.moving_mean.assign(np.array([0.1, -0.2, 0.3], np.float32))
            layer.moving_variance.assign(np.array([0.5, 2.0, 1.5], np.float32))
    km.save(tmp_path / "one.keras")
    loaded = load_model(tmp_path / "one.keras")
    x = _x(shape)
    want = keras.ops.convert_to_numpy(km(x))
    got = nnviz_output(loaded, to_nnviz_input(x, loaded.model.input_shape))
    if want.ndim == 4:
        want = want.transpose(0, 3, 1, 2)
    assert rel(got, want) < RTOL


PER_LAYER_WRITE = [
    ("Dense", [4], [{"type": "Dense", "out_features": 3}]),
    ("Conv2D", [2, 6, 5], [{"type": "Conv2D", "out_channels": 3, "kernel_size": 3,
                            "stride": 2, "padding": 1}]),
    ("ConvTranspose2D", [2, 4, 3], [{"type": "ConvTranspose2D", "out_channels": 3,
                                     "kernel_size": [3, 2], "stride": 2, "padding": 1}]),
    ("MaxPool2D", [2, 6, 6], [{"type": "MaxPool2D", "kernel_size": 3, "stride": 2}]),
    ("AvgPool2D", [2, 6, 6], [{"type": "AvgPool2D", "kernel_size": 2}]),
    ("GlobalAvgPool2D", [3, 4, 5], [{"type": "GlobalAvgPool2D"}]),
    ("Flatten", [2, 3, 4], [{"type": "Flatten"}, {"type": "Dense", "out_features": 3}]),
    ("BatchNorm", [3, 4, 4], [{"type": "BatchNorm", "eps": 1e-3}]),
    ("Dropout", [5], [{"type": "Dropout", "p": 0.5}]),
    ("ReLU", [5], [{"type": "ReLU"}]),
    ("Tanh", [5], [{"type": "Tanh"}]),
    ("Sigmoid", [5], [{"type": "Sigmoid"}]),
    ("LeakyReLU", [5], [{"type": "LeakyReLU", "alpha": 0.05}]),
    ("InputScaling", [3, 2, 2], [{"type": "InputScaling", "mean": [0.1, 0.2, 0.3],
                                  "std": [0.5, 0.25, 2.0], "data_mean": [0.4],
                                  "data_std": [0.3]}]),
    ("Residual", [2, 4, 4], [{"type": "Residual", "layers": [
        {"type": "Conv2D", "out_channels": 2, "kernel_size": 3, "padding": 1}]}]),
]


@pytest.mark.parametrize("name,shape,layers", PER_LAYER_WRITE, ids=[p[0] for p in PER_LAYER_WRITE])
def test_each_nnviz_layer_writes_exactly(name, shape, layers, tmp_path):
    keras = keras_mod()
    m = _randomize_bn(model_from_spec(_spec(name, shape, layers), seed=4))
    km = keras.saving.load_model(save_model(tmp_path / "one.h5", m), compile=False)
    x = _x(shape)
    ours = m.predict_logits(x)
    if name == "InputScaling":
        # Keras reads what the scaling expects (pixels); nnviz is fed the dataset's
        # standardised values (data_mean 0.4, data_std 0.3) and undoes that first
        x = x * np.float32(0.3) + np.float32(0.4)
    assert rel(keras.ops.convert_to_numpy(km(x)), ours) < RTOL
    # and back through nnviz's Keras reader (the file Keras re-saves)
    km.save(tmp_path / "one.keras")
    back = load_model(tmp_path / "one.keras").model
    # without an image layer Keras's file cannot say (C, H, W) from (H, W, C): nnviz reads
    # Keras's default channels_last
    assert rel(back.predict_logits(to_nnviz_input(x, back.input_shape)), ours) < RTOL


# ---- refusals and hostile files ---------------------------------------------------------------
def _one_line(e, *frags):
    msg = str(e.value)
    assert "\n" not in msg
    for f in frags:
        assert f in msg, msg
    return msg


def test_unsupported_layer_is_named_with_what_is_supported(tmp_path):
    keras = keras_mod()
    L = keras.layers
    km = keras.Sequential([keras.Input((8, 8, 3)), L.DepthwiseConv2D(3), L.Flatten(),
                           L.Dense(2)])
    km.save(tmp_path / "dw.keras")
    with pytest.raises(ModelFormatError) as e:
        load_model(tmp_path / "dw.keras")
    _one_line(e, "dw.keras", "DepthwiseConv2D", "is not supported", "Conv2DTranspose", "Add")


def test_asymmetric_same_padding_is_refused(tmp_path):
    keras = keras_mod()
    L = keras.layers
    km = keras.Sequential([keras.Input((8, 8, 1)), L.Conv2D(2, 3, strides=2, padding="same")])
    km.save(tmp_path / "asym.h5")
    with pytest.raises(ModelFormatError) as e:
        load_model(tmp_path / "asym.h5")
    _one_line(e, "padding='same'", "both sides equally")


def _keras_zip(path, config, weights=b"", extra=()):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("config.json", json.dumps(config))
        z.writestr("model.weights.h5", weights)
        for name, data in extra:
            z.writestr(name, data)
    return path


DENSE_CFG = {"class_name": "Sequential", "config": {"name": "s", "layers": [
    {"class_name": "InputLayer", "config": {"batch_shape": [None, 4]}},
    {"class_name": "Dense", "config": {"name": "dense", "units": 3}}]}}


def test_hostile_keras_zips(tmp_path):
    import io
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        f.create_dataset("layers/dense/vars/0", data=np.zeros((4, 3), np.float32))
        f.create_dataset("layers/dense/vars/1", data=np.zeros((3,), np.float32))
    good = _keras_zip(tmp_path / "good.keras", DENSE_CFG, buf.getvalue())
    assert load_model(good).model.layers[0].out_features == 3
    cases = {
        "many.keras": (_keras_zip(tmp_path / "many.keras", DENSE_CFG, buf.getvalue(),
                                  [(f"x{i}", b"") for i in range(100)]), "members"),
        "bomb.keras": (_keras_zip(tmp_path / "bomb.keras", DENSE_CFG, b"\0" * (8 << 20)),
                       "zip bomb"),
        "noconfig.keras": (tmp_path / "noconfig.keras", "without config.json"),
        "huge.keras": (_keras_zip(tmp_path / "huge.keras", {"class_name": "Sequential",
                       "config": {"layers": [
                           {"class_name": "InputLayer", "config": {"batch_shape": [None, 4]}},
                           {"class_name": "Dense", "config": {"name": "dense",
                                                              "units": 10 ** 9}}]}},
                                  buf.getvalue()), "declares 5,000,000,000 parameters"),
        "trunc.keras": (tmp_path / "trunc.keras", "zip"),
        "shape.keras": (_keras_zip(tmp_path / "shape.keras", {**DENSE_CFG, "config": {
            "layers": [DENSE_CFG["config"]["layers"][0],
                       {"class_name": "Dense", "config": {"name": "dense", "units": 2}}]}},
                                   buf.getvalue()), "expected (4, 2)"),
    }
    with zipfile.ZipFile(tmp_path / "noconfig.keras", "w") as z:
        z.writestr("model.weights.h5", buf.getvalue())
    (tmp_path / "trunc.keras").write_bytes(good.read_bytes()[:200])
    for name, (path, frag) in cases.items():
        with pytest.raises(ModelFormatError) as e:
            load_model(path)
        _one_line(e, name, frag)


def test_hostile_legacy_h5_with_billions_declared(tmp_path):
    path = tmp_path / "big.h5"
    cfg = copy.deepcopy(DENSE_CFG)
    cfg["config"]["layers"][1]["config"]["units"] = 3 * 10 ** 9
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps(cfg).encode()
        g = f.create_group("model_weights/dense")
        g.attrs["weight_names"] = np.array([b"dense/kernel:0", b"dense/bias:0"])
    with pytest.raises(ModelFormatError) as e:
        load_model(path)
    _one_line(e, "big.h5", "declares 15,000,000,000 parameters")


def test_cli_bad_keras_file_is_one_line_exit_2(tmp_path, capsys):
    from nnviz.cli import main
    p = _keras_zip(tmp_path / "bad.keras", {"class_name": "Sequential", "config": {"layers": [
        {"class_name": "InputLayer", "config": {"batch_shape": [None, 4]}},
        {"class_name": "LSTM", "config": {"name": "lstm", "units": 3}}]}})
    for cmd in (["info", str(p)], ["eval", str(p)], ["convert", str(p), str(tmp_path / "o.h5")]):
        assert main(cmd) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("nnviz: error: ") and "\n" not in err and "LSTM" in err, err


def test_cli_convert_keras_to_nnviz_h5_and_back_into_keras(kzoo, tmp_path, capsys):
    keras = keras_mod()
    from nnviz.cli import main
    km, shape = kzoo["lenet5"]
    km.save(tmp_path / "in.keras")
    out = tmp_path / "out.h5"
    assert main(["convert", str(tmp_path / "in.keras"), str(out), "--input-scaling", "mnist"]) == 0
    assert "wrote" in capsys.readouterr().out
    m = load_model(out).model
    assert m.layers[0].config() == {"type": "InputScaling", "mean": [0.1307], "std": [0.3081]}
    pixels = np.random.default_rng(0).random((2, 28, 28, 1)).astype(np.float32)
    want = keras.ops.convert_to_numpy(km((pixels - 0.1307) / 0.3081))
    assert rel(m.predict_logits(pixels.transpose(0, 3, 1, 2)), want) < RTOL
    # the converted file opens in Keras too: scaling included, it takes [0, 1] pixels
    k2 = keras.saving.load_model(out)
    assert rel(keras.ops.convert_to_numpy(k2(pixels.transpose(0, 3, 1, 2))), want) < RTOL
    assert main(["info", str(out)]) == 0
    assert "input scaling: mnist" in capsys.readouterr().out


def test_cli_convert_says_when_keras_cannot_open_the_result(tmp_path, capsys):
    from nnviz.cli import main
    src = save_model(tmp_path / "abs.h5", model_from_spec(_spec("abs", [4], [
        {"type": "Dense", "out_features": 3}, {"type": "Abs"}])))
    assert main(["convert", str(src), str(tmp_path / "o.h5")]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"nnviz: note: Keras cannot open {tmp_path / 'o.h5'}: layer 1 (Abs) has no "
                   f"Keras layer (nnviz reads it)"]
    assert main(["convert", str(src), str(tmp_path / "o.keras")]) == 2
    assert capsys.readouterr().err == (
        f"nnviz: error: {tmp_path / 'o.keras'}: Keras cannot represent this model: layer 1 "
        f"(Abs) has no Keras layer (save it as .h5 for nnviz)\n")
    assert not (tmp_path / "o.keras").exists()
    with pytest.raises(SystemExit) as e:
        main(["info", str(src), "--input-scaling", "1,2,3"])
    assert e.value.code == 2 and "expected one of" in capsys.readouterr().err


def test_info_into_a_closed_pipe_ends_quietly(tmp_path):
    import subprocess
    import sys
    path = save_model(tmp_path / "m.h5", load_preset("lenet5"))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    r = subprocess.run(f"'{sys.executable}' -m nnviz info '{path}' --json | head -c 1",
                       shell=True, capture_output=True, text=True, env=env, timeout=120)
    assert r.stdout == "{" and r.stderr == "", r.stderr


def test_weights_in_external_files_are_refused(tmp_path):
    """A legacy .h5 whose weight lives in another file (HDF5 external storage) or behind an
    external link: one line, and the other file is never read."""
    secret = tmp_path / "secret.bin"
    secret.write_bytes(np.arange(12, dtype=np.float32).tobytes())
    for kind in ("storage", "link"):
        path = tmp_path / f"{kind}.h5"
        with h5py.File(path, "w") as f:
            f.attrs["model_config"] = json.dumps(DENSE_CFG).encode()
            g = f.create_group("model_weights/dense")
            g.attrs["weight_names"] = np.array([b"dense/kernel:0", b"dense/bias:0"])
            if kind == "storage":
                g.create_dataset("dense/kernel:0", shape=(4, 3), dtype="f4",
                                 external=[(str(secret), 0, 48)])
            else:
                with h5py.File(tmp_path / "other.h5", "w") as o:
                    o.create_dataset("k", data=np.ones((4, 3), np.float32))
                g["dense/kernel:0"] = h5py.ExternalLink(str(tmp_path / "other.h5"), "k")
            g.create_dataset("dense/bias:0", data=np.zeros(3, np.float32))
        with pytest.raises(ModelFormatError) as e:
            load_model(path)
        _one_line(e, f"{kind}.h5", "dense/kernel:0",
                  "external files" if kind == "storage" else "is a link")


def test_tf_keras_2_legacy_h5(tmp_path):
    """The layout tf.keras 2.x wrote (batch_input_shape on the first layer, `:0` weight names,
    no InputLayer), built by hand; Keras 3 with the same weights is the oracle."""
    keras = keras_mod()
    L = keras.layers
    keras.utils.set_random_seed(3)
    km = keras.Sequential([keras.Input((8, 8, 2)), L.Conv2D(3, 3, activation="relu"),
                           L.MaxPooling2D(2), L.Flatten(), L.Dense(4)])
    conv, dense = km.layers[0], km.layers[3]
    cfg = {"class_name": "Sequential", "config": {"name": "sequential", "layers": [
        {"class_name": "Conv2D", "config": {
            "name": "conv2d", "batch_input_shape": [None, 8, 8, 2], "filters": 3,
            "kernel_size": [3, 3], "strides": [1, 1], "padding": "valid",
            "data_format": "channels_last", "activation": "relu", "use_bias": True}},
        {"class_name": "MaxPooling2D", "config": {"name": "max_pooling2d", "pool_size": [2, 2],
                                                  "strides": [2, 2], "padding": "valid"}},
        {"class_name": "Flatten", "config": {"name": "flatten"}},
        {"class_name": "Dense", "config": {"name": "dense", "units": 4,
                                           "activation": "linear"}}]}}
    path = tmp_path / "tf2.h5"
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps(cfg).encode()
        f.attrs["keras_version"] = b"2.15.0"
        mw = f.create_group("model_weights")
        mw.attrs["layer_names"] = np.array([b"conv2d", b"max_pooling2d", b"flatten", b"dense"])
        for name, layer in (("conv2d", conv), ("dense", dense)):
            g = mw.create_group(name)
            g.attrs["weight_names"] = np.array([f"{name}/kernel:0".encode(),
                                                f"{name}/bias:0".encode()])
            g[f"{name}/kernel:0"] = keras.ops.convert_to_numpy(layer.kernel)
            g[f"{name}/bias:0"] = keras.ops.convert_to_numpy(layer.bias)
        for name in ("max_pooling2d", "flatten"):
            mw.create_group(name).attrs["weight_names"] = np.zeros(0, "S1")
    loaded = load_model(path)
    assert loaded.meta["keras_version"] == "2.15.0"
    x = _x((8, 8, 2))
    got = loaded.model.predict_logits(x.transpose(0, 3, 1, 2))
    assert rel(got, keras.ops.convert_to_numpy(km(x))) < RTOL


def test_format_is_chosen_by_content_not_extension(kzoo, tmp_path):
    km, shape = kzoo["lenet5"]
    km.save(tmp_path / "k.keras")
    (tmp_path / "k.keras").rename(tmp_path / "looks-like.h5")
    assert load_model(tmp_path / "looks-like.h5").meta["source_format"] == "Keras 3 .keras"
    save_model(tmp_path / "n.h5", load_preset("mlp2"))
    (tmp_path / "n.h5").rename(tmp_path / "looks-like.onnx")
    assert load_model(tmp_path / "looks-like.onnx").meta["format"] == "nnviz HDF5"
    (tmp_path / "junk.keras").write_bytes(b"neither zip nor HDF5")
    with pytest.raises(ModelFormatError) as e:
        load_model(tmp_path / "junk.keras")
    _one_line(e, "junk.keras", "neither a .keras zip nor HDF5")


def test_adapted_normalization_and_bare_batchnorm(tmp_path):
    keras = keras_mod()
    L = keras.layers
    data = np.random.default_rng(0).random((50, 6, 6, 3)).astype(np.float32)
    norm = L.Normalization()
    norm.adapt(data)                   # mean/variance stored as weights, not in the config
    km = keras.Sequential([keras.Input((6, 6, 3)), norm, L.Conv2D(2, 3),
                           L.BatchNormalization(center=False, scale=False), L.Flatten(),
                           L.Dense(3)])
    km.save(tmp_path / "n.keras")
    loaded = load_model(tmp_path / "n.keras")
    first = loaded.model.layers[0]
    assert first.type == "InputScaling"
    np.testing.assert_allclose(first.mean, data.reshape(-1, 3).mean(0), rtol=1e-5)
    x = data[:4]
    assert rel(loaded.model.predict_logits(x.transpose(0, 3, 1, 2)),
               keras.ops.convert_to_numpy(km(x))) < RTOL
