"""save_model / load_model / describe_model: bit-identical round trips, the Keras layout,
atomic writes and one clear ModelFormatError for every kind of bad file."""
import json
import os

import h5py
import numpy as np
import pytest

from nnviz.data.dataset import Dataset
from nnviz.engine import load_preset, model_from_spec
from nnviz.io import FORMAT_VERSION, ModelFormatError, describe_model, load_model, save_model
from nnviz.train import Trainer

ALL_LAYERS = {"name": "zoo", "input_shape": [2, 9, 9], "layers": [
    {"type": "Conv2D", "out_channels": 3, "kernel_size": 3, "stride": 2, "padding": 1},
    {"type": "BatchNorm", "momentum": 0.2, "eps": 1e-4}, {"type": "LeakyReLU", "alpha": 0.1},
    {"type": "ConvTranspose2D", "out_channels": 4, "kernel_size": [3, 2], "stride": 2,
     "padding": 1},
    {"type": "Abs"},
    {"type": "Residual", "layers": [
        {"type": "Conv2D", "out_channels": 4, "kernel_size": 3, "padding": 1, "bias": False},
        {"type": "BatchNorm"}, {"type": "Sigmoid"}]},
    {"type": "MaxPool2D", "kernel_size": 2}, {"type": "AvgPool2D", "kernel_size": 2, "stride": 1},
    {"type": "Conv2D", "out_channels": 2, "kernel_size": [2, 1], "padding": [1, 0]},
    {"type": "Flatten"}, {"type": "Dropout", "p": 0.5},
    {"type": "Dense", "out_features": 7, "init": "xavier"}, {"type": "Tanh"},
    {"type": "Dense", "out_features": 3, "bias": False}]}


def toy_data(shape, classes=3, n=40, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, *shape)).astype(np.float32)
    y = rng.integers(0, classes, n)
    return Dataset(name="toy", x_train=x[:30], y_train=y[:30], x_test=x[30:], y_test=y[30:],
                   class_names=[f"k{i}" for i in range(classes)],
                   normalization={"mean": [0.5], "std": [0.25]})


def trained_zoo(steps=4):
    data = toy_data((2, 9, 9))
    tr = Trainer(model_from_spec(ALL_LAYERS, seed=5), data, optimizer="adam", lr=0.01,
                 batch_size=8, seed=3)
    for _ in range(steps):
        tr.step()
    return tr, data


def weight_datasets(path):
    out = {}
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset) and name.startswith(("model_weights", "optimizer_weights")):
                out[name] = obj[()]
        f.visititems(visit)
    return out


# ---- round trips -------------------------------------------------------------------------
@pytest.mark.parametrize("preset", ["lenet5", "lab7-cnn", "mlp2"])
def test_presets_predict_bit_identically(preset, tmp_path):
    m = load_preset(preset, seed=4)
    x = np.random.default_rng(1).standard_normal((5, *m.input_shape)).astype(np.float32)
    loaded = load_model(save_model(tmp_path / "m.h5", m))
    assert np.array_equal(m.predict_logits(x), loaded.model.predict_logits(x))
    assert loaded.model.to_spec() == m.to_spec()
    assert loaded.meta["training"] is None and loaded.meta["history"] is None
    assert loaded.meta["format_version"] == FORMAT_VERSION


def test_every_layer_type_round_trips_with_buffers_and_rng(tmp_path):
    tr, data = trained_zoo()
    m = tr.model
    x = data.x_test
    path = save_model(str(tmp_path / "zoo.h5"), m, trainer=tr, extra={"note": "hi", "n": 3})
    loaded = load_model(path)
    lm = loaded.model
    assert np.array_equal(m.predict_logits(x), lm.predict_logits(x))
    for (n, a), (n2, b) in zip(m.named_buffers(), lm.named_buffers()):
        assert n == n2 and np.array_equal(a, b)
    assert any(np.any(b != 0) for _, b in m.named_buffers())   # BN stats were trained
    # the dropout stream continues where it was: training-mode outputs agree too
    assert np.array_equal(m.forward(x, train=True), lm.forward(x, train=True))
    meta = loaded.meta
    assert meta["dataset"] == {"name": "toy", "input_shape": [2, 9, 9],
                               "class_names": ["k0", "k1", "k2"],
                               "normalization": {"mean": [0.5], "std": [0.25]}}
    assert meta["extra"] == {"note": "hi", "n": 3}
    assert meta["training"]["steps"] == 4 and meta["backend"] == "cpu"
    assert set(meta) >= {"format_version", "nnviz_version", "created", "backend", "dataset",
                         "training", "history"}
    assert loaded.path == path


def test_save_load_save_gives_the_same_weight_datasets(tmp_path):
    tr, data = trained_zoo()
    p1 = save_model(tmp_path / "a.h5", tr.model, trainer=tr)
    loaded = load_model(p1)
    tr2 = Trainer(loaded.model, data, batch_size=8)
    tr2.load_state_dict(loaded.meta["training"])
    p2 = save_model(tmp_path / "b.h5", loaded.model, trainer=tr2)
    a, b = weight_datasets(p1), weight_datasets(p2)
    assert a.keys() == b.keys() and len(a) > 10
    for k in a:
        assert a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]), k


# ---- the Keras layout --------------------------------------------------------------------
def test_lenet5_has_the_keras_layout(tmp_path):
    m = load_preset("lenet5", seed=0)
    path = save_model(tmp_path / "lenet5.h5", m)
    with h5py.File(path, "r") as f:
        cfg = json.loads(f.attrs["model_config"])
        assert cfg["class_name"] == "Sequential"
        first, *layers = cfg["config"]["layers"]
        assert first["class_name"] == "InputLayer"      # Keras 3 needs it (not batch_input_shape)
        assert first["config"]["batch_input_shape"] == [None, 1, 28, 28]
        assert [l["class_name"] for l in layers] == [
            "Conv2D", "Activation", "AveragePooling2D", "Conv2D", "Activation",
            "AveragePooling2D", "Conv2D", "Activation", "Flatten", "Dense", "Activation", "Dense"]
        assert layers[0]["config"]["padding"] == "same"          # 5x5, padding 2, stride 1
        assert layers[3]["config"]["padding"] == "valid"
        assert layers[1]["config"]["activation"] == "tanh"
        # Flatten is a plain (C, H, W) reshape: Keras's channels_last; the rest NCHW
        assert all(l["config"].get("data_format", "channels_first") == (
            "channels_last" if l["class_name"] == "Flatten" else "channels_first") for l in layers)
        assert f.attrs["keras_version"] and f.attrs["backend"]
        mw = f["model_weights"]
        names = [n.decode() for n in mw.attrs["layer_names"]]
        assert names == [l["config"]["name"] for l in layers]
        shapes = {}
        for n in names:
            for w in mw[n].attrs["weight_names"]:
                shapes[w.decode()] = mw[n][w.decode()].shape
        assert shapes == {"conv2d/kernel:0": (5, 5, 1, 6), "conv2d/bias:0": (6,),
                          "conv2d_1/kernel:0": (5, 5, 6, 16), "conv2d_1/bias:0": (16,),
                          "conv2d_2/kernel:0": (5, 5, 16, 120), "conv2d_2/bias:0": (120,),
                          "dense/kernel:0": (120, 84), "dense/bias:0": (84,),
                          "dense_1/kernel:0": (84, 10), "dense_1/bias:0": (10,)}
        np.testing.assert_array_equal(mw["dense/dense/kernel:0"][()],
                                      m.layers[9].params["weight"].T)
        g = f["nnviz"]
        assert g.attrs["format_version"] == FORMAT_VERSION
        assert json.loads(g.attrs["model_spec"]) == m.to_spec()


def test_global_avgpool_round_trips_as_keras_global_average_pooling(tmp_path):
    spec = {"name": "gap", "input_shape": [3, 6, 5], "layers": [
        {"type": "Conv2D", "out_channels": 4, "kernel_size": 3, "padding": 1}, {"type": "ReLU"},
        {"type": "GlobalAvgPool2D"}, {"type": "Dense", "out_features": 2}]}
    m = model_from_spec(spec, seed=2)
    x = np.random.default_rng(3).standard_normal((4, 3, 6, 5)).astype(np.float32)
    path = save_model(tmp_path / "gap.h5", m)
    loaded = load_model(path)
    assert loaded.model.to_spec() == spec
    assert np.array_equal(m.predict_logits(x), loaded.model.predict_logits(x))
    with h5py.File(path, "r") as f:
        entry = json.loads(f.attrs["model_config"])["config"]["layers"][3]   # after InputLayer
    assert entry["class_name"] == "GlobalAveragePooling2D"
    assert entry["config"]["name"] == "global_average_pooling2d"
    keras = pytest.importorskip("keras")
    # Keras itself, built from the written entry, pools what nnviz pools
    layer = getattr(keras.layers, entry["class_name"]).from_config(entry["config"])
    h = m.layers[1].forward(m.layers[0].forward(x))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(h)), m.layers[2].forward(h),
                               rtol=1e-6, atol=1e-6)


def test_keras_arrays_compute_what_the_model_computes(tmp_path):
    """Read the file the way a Keras-style (channels_first) reader would and recompute."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    tr, data = trained_zoo()
    m = tr.model
    path = save_model(tmp_path / "zoo.h5", m, trainer=tr)
    x = data.x_test[:4]
    with h5py.File(path, "r") as f:
        cfg = json.loads(f.attrs["model_config"])
        assert cfg["class_name"] == "Functional"       # the residual needs an Add
        first, *layers = cfg["config"]["layers"]
        assert first["class_name"] == "InputLayer"
        mw = f["model_weights"]
        kinds = [l["class_name"] for l in layers]
        assert kinds[:5] == ["ZeroPadding2D", "Conv2D", "BatchNormalization", "LeakyReLU",
                             "Conv2DTranspose"]
        assert kinds[5] == "Cropping2D" and kinds[6] == "Activation"
        assert layers[6]["config"]["activation"] == "nnviz>abs"
        assert kinds[7:11] == ["Conv2D", "BatchNormalization", "Activation", "Add"]
        assert layers[10]["inbound_nodes"] == [[["activation", 0, 0, {}],
                                                ["activation_1", 0, 0, {}]]]
        w = {n.decode(): mw[l][n.decode()][()] for l in mw.attrs["layer_names"]
             for n in mw[l].attrs["weight_names"]}
        assert layers[2]["config"]["momentum"] == pytest.approx(0.8)
        # 1) explicit padding + strided conv, as Keras would: pad, then 'valid' conv
        pad = layers[0]["config"]["padding"]
        t = F.pad(torch.from_numpy(x), (pad[1][0], pad[1][1], pad[0][0], pad[0][1]))
        k = torch.from_numpy(w["conv2d/kernel:0"]).permute(3, 2, 0, 1)   # (kh,kw,in,out)
        t = F.conv2d(t, k, torch.from_numpy(w["conv2d/bias:0"]), stride=2)
        ours = m.layers[0].forward(m._check_input(x))
        np.testing.assert_allclose(t.numpy(), ours, rtol=1e-5, atol=1e-5)
        # 2) batch norm inference from gamma/beta/moving stats
        bn = m.layers[1]
        t = F.batch_norm(t, torch.from_numpy(w["batch_normalization/moving_mean:0"]),
                         torch.from_numpy(w["batch_normalization/moving_variance:0"]),
                         torch.from_numpy(w["batch_normalization/gamma:0"]),
                         torch.from_numpy(w["batch_normalization/beta:0"]), eps=bn.eps)
        ours = bn.forward(ours)
        np.testing.assert_allclose(t.numpy(), ours, rtol=1e-5, atol=1e-5)
        t = F.leaky_relu(t, layers[3]["config"]["alpha"])
        ours = m.layers[2].forward(ours)
        # 3) transposed conv: (kh,kw,out,in) kernel, 'valid' + output_padding 0, then crop
        k = torch.from_numpy(w["conv2d_transpose/kernel:0"]).permute(3, 2, 0, 1)  # (in,out,kh,kw)
        t = F.conv_transpose2d(t, k, torch.from_numpy(w["conv2d_transpose/bias:0"]), stride=2)
        (ct, cb), (cl, cr) = layers[5]["config"]["cropping"]
        t = t[:, :, ct:t.shape[2] - cb, cl:t.shape[3] - cr]
        ours = m.layers[3].forward(ours)
        np.testing.assert_allclose(t.numpy(), ours, rtol=1e-5, atol=1e-5)
        # 4) the last Dense: y = x @ kernel (in, out)
        h = np.random.default_rng(0).standard_normal((3, 7)).astype(np.float32)
        np.testing.assert_allclose(h @ w["dense_1/kernel:0"], m.layers[-1].forward(h),
                                   rtol=1e-5, atol=1e-6)
        # residual weights live in the inner layers' own groups
        assert [n.decode() for n in mw["conv2d_1"].attrs["weight_names"]] == ["conv2d_1/kernel:0"]
        assert [n.decode() for n in mw["batch_normalization_1"].attrs["weight_names"]] == [
            "batch_normalization_1/gamma:0", "batch_normalization_1/beta:0",
            "batch_normalization_1/moving_mean:0", "batch_normalization_1/moving_variance:0"]
        # optimizer state in Keras order/names, and the training config
        ow = f["optimizer_weights"]
        ws = [n.decode() for n in ow.attrs["weight_names"]]
        assert ws[0] == "Adam/iter:0" and "Adam/dense/kernel/m:0" in ws
        np.testing.assert_array_equal(ow["Adam/dense/kernel/m:0"][()],
                                      tr.optimizer.m[-3].T)
        tc = json.loads(f.attrs["training_config"])
        assert tc["optimizer_config"]["class_name"] == "Adam"
        assert tc["optimizer_config"]["config"]["learning_rate"] == pytest.approx(0.01)
        assert tc["loss"]["class_name"] == "SparseCategoricalCrossentropy"


# ---- atomic save ---------------------------------------------------------------------------
def _only(tmp_path):
    return sorted(p.name for p in tmp_path.iterdir())


def test_failed_save_leaves_the_old_file_untouched(tmp_path, monkeypatch):
    m = load_preset("mlp2", seed=0)
    target = tmp_path / "model.h5"
    save_model(target, m)
    before = target.read_bytes()
    calls = {"n": 0}
    real = h5py.Group.create_dataset

    def boom(self, *a, **kw):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk full (simulated)")
        return real(self, *a, **kw)

    monkeypatch.setattr(h5py.Group, "create_dataset", boom)
    with pytest.raises(OSError, match="simulated"):
        save_model(target, load_preset("mlp2", seed=1))
    assert target.read_bytes() == before
    assert _only(tmp_path) == ["model.h5"]          # no temporary file left behind
    monkeypatch.undo()
    assert load_model(target).model.to_spec() == m.to_spec()


def test_interrupted_save_leaves_no_file(tmp_path, monkeypatch):
    import nnviz.io.h5model as h5model
    real = h5model.write_tree

    def interrupted(*a, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(h5model, "write_tree", interrupted)
    tr, _ = trained_zoo(1)
    with pytest.raises(KeyboardInterrupt):
        save_model(tmp_path / "new.h5", tr.model, trainer=tr)
    assert _only(tmp_path) == []
    monkeypatch.setattr(h5model, "write_tree", real)


def test_save_replaces_and_keeps_permissions(tmp_path):
    target = tmp_path / "m.h5"
    save_model(target, load_preset("mlp2", seed=0))
    os.chmod(target, 0o640)
    save_model(target, load_preset("mlp2", seed=1))
    assert (target.stat().st_mode & 0o777) == 0o640
    assert load_model(target).meta["seed"] == 1
    assert _only(tmp_path) == ["m.h5"]


# ---- bad files -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def good_file(tmp_path_factory):
    tr, _ = trained_zoo(2)
    return save_model(tmp_path_factory.mktemp("good") / "good.h5", tr.model, trainer=tr)


def _copy(src, dst):
    dst.write_bytes(src.read_bytes())
    return dst


def _expect_error(path, *fragments):
    with pytest.raises(ModelFormatError) as ei:
        load_model(path)
    msg = str(ei.value)
    assert msg.startswith(f"{path}: "), msg
    for frag in fragments:
        assert frag in msg, msg
    assert "\n" not in msg
    return msg


def _edit(src, tmp_path, fn):
    p = _copy(src, tmp_path / "bad.h5")
    with h5py.File(p, "r+") as f:
        fn(f)
    return p


def test_missing_file_and_folder(tmp_path):
    _expect_error(tmp_path / "nope.h5", "no such file")
    _expect_error(tmp_path, "folder")


def test_not_hdf5(tmp_path):
    p = tmp_path / "x.h5"
    p.write_text("hello, I am text")
    _expect_error(p, "not a readable HDF5 file")
    (tmp_path / "empty.h5").write_bytes(b"")
    _expect_error(tmp_path / "empty.h5", "HDF5")


@pytest.mark.parametrize("frac", [0.1, 0.5, 0.9, 0.999])
def test_truncated(good_file, tmp_path, frac):
    data = good_file.read_bytes()
    p = tmp_path / "t.h5"
    p.write_bytes(data[:int(len(data) * frac)])
    _expect_error(p)


def test_plain_hdf5_without_nnviz_group(tmp_path):
    p = tmp_path / "other.h5"
    with h5py.File(p, "w") as f:
        f["x"] = np.arange(3)
    _expect_error(p, "no /nnviz group")


def test_newer_format_version(good_file, tmp_path):
    p = _edit(good_file, tmp_path,
              lambda f: f["nnviz"].attrs.__setitem__("format_version", FORMAT_VERSION + 1))
    _expect_error(p, "newer nnviz", f"format version {FORMAT_VERSION + 1}")


@pytest.mark.parametrize("what", ["model_weights", "nnviz/dataset", "optimizer_weights",
                                  "model_weights/dense", "model_weights/conv2d/conv2d",
                                  "model_weights/conv2d_1/conv2d_1",
                                  "nnviz/training/optimizer"])
def test_missing_groups(good_file, tmp_path, what):
    def rm(f):
        del f[what]
    p = _edit(good_file, tmp_path, rm)
    if what == "nnviz/dataset":      # optional: facts about the data
        assert load_model(p).meta["dataset"]["name"] is None
    else:
        _expect_error(p)


@pytest.mark.parametrize("obj,attr", [("/", "model_config"), ("nnviz", "model_spec"),
                                      ("nnviz", "format_version"), ("nnviz", "seed"),
                                      ("model_weights", "layer_names"),
                                      ("model_weights/dense", "weight_names"),
                                      ("nnviz", "optimizer_slots")])
def test_missing_attrs(good_file, tmp_path, obj, attr):
    p = _edit(good_file, tmp_path, lambda f: f[obj].attrs.__delitem__(attr))
    _expect_error(p, attr if attr != "optimizer_slots" else "")


@pytest.mark.parametrize("obj,attr", [("/", "model_config"), ("nnviz", "model_spec"),
                                      ("nnviz/dataset", "class_names"), ("nnviz", "dropout_rng")])
def test_unreadable_json(good_file, tmp_path, obj, attr):
    p = _edit(good_file, tmp_path, lambda f: f[obj].attrs.__setitem__(attr, '{"broken": '))
    _expect_error(p, "not valid JSON", attr)


def test_unknown_layer_type(good_file, tmp_path):
    def edit(f):
        spec = json.loads(f["nnviz"].attrs["model_spec"])
        spec["layers"][1]["type"] = "Conv3D"
        f["nnviz"].attrs["model_spec"] = json.dumps(spec)
    _expect_error(_edit(good_file, tmp_path, edit), "unknown layer type 'Conv3D'")


def test_weight_shape_mismatch(good_file, tmp_path):
    def edit(f):
        g = f["model_weights/dense/dense"]
        del g["kernel:0"]
        g["kernel:0"] = np.zeros((5, 7), np.float32)
    _expect_error(_edit(good_file, tmp_path, edit), "dense/kernel:0", "shape (5, 7)",
                  "expected (24, 7)")


def test_spec_and_weights_disagree(good_file, tmp_path):
    def edit(f):
        spec = json.loads(f["nnviz"].attrs["model_spec"])
        spec["layers"][-1]["out_features"] = 4
        f["nnviz"].attrs["model_spec"] = json.dumps(spec)
    _expect_error(_edit(good_file, tmp_path, edit), "dense_1/kernel:0")


def test_changed_weights_fail_the_checksum(good_file, tmp_path):
    def edit(f):
        f["model_weights/dense/dense/bias:0"][0] += 1
    _expect_error(_edit(good_file, tmp_path, edit), "checksum")

    def edit_and_drop_crc(f):   # dropping the checksum no longer smuggles an array in (issue 20)
        ds = f["model_weights/dense/dense/bias:0"]
        ds[0] = 42
        del ds.attrs["nnviz_crc32"]
    _expect_error(_edit(good_file, tmp_path, edit_and_drop_crc), "no nnviz_crc32 checksum")


def test_damaged_training_state(good_file, tmp_path):
    p = _edit(good_file, tmp_path,
              lambda f: f["nnviz/training/config"].attrs.__setitem__("loss", "hinge"))
    _expect_error(p, "training state")


# ---- describe ----------------------------------------------------------------------------
def test_describe_saved_file_and_preset(tmp_path):
    data = toy_data((2,), classes=2)
    tr = Trainer(load_preset("mlp2", seed=0), data, optimizer="sgd", lr=0.1, batch_size=10)
    tr.fit(2)
    path = save_model(tmp_path / "m.h5", tr.model, trainer=tr)
    info = describe_model(path)
    json.dumps(info, allow_nan=False)
    assert info["kind"] == "file" and info["param_count"] == 354
    assert [r["type"] for r in info["layers"]] == ["Dense", "Tanh", "Dense", "Tanh", "Dense"]
    assert info["training"]["epochs"] == 2 and info["training"]["steps"] == 6
    assert info["training"]["test_accuracy"] == pytest.approx(tr.history.epochs["test_accuracy"][-1])
    assert info["dataset"]["name"] == "toy"
    for frag in ("354 parameters", "Dense", "2 epochs", "6 steps", "toy", "test loss"):
        assert frag in info["text"], frag
    pre = describe_model("lenet5")
    assert pre["kind"] == "spec" and pre["training"] is None and pre["param_count"] == 61706
    assert "lenet5" in pre["text"]
    js = tmp_path / "spec.json"
    js.write_text(json.dumps(ALL_LAYERS))
    assert describe_model(str(js))["name"] == "zoo"
    with pytest.raises(ModelFormatError):
        describe_model(tmp_path / "missing.h5")
