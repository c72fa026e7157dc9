"""ONNX files both ways, against onnxruntime and PyTorch.

Reading: graphs built op by op with onnx.helper, and PyTorch models exported with
torch.onnx.export (the TorchScript exporter, dynamo=False: the dynamo exporter needs
onnxscript, which is not installed), run by onnxruntime / PyTorch and by nnviz on the same
inputs. Writing: nnviz models exported and run by onnxruntime, then read back.
Bad files: one ModelFormatError line, no large allocation.
"""
import tracemalloc
import warnings

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from nnviz.engine import load_preset, model_from_spec, preset_names, read_spec  # noqa: E402
from nnviz.io import ModelFormatError, load_model, save_model  # noqa: E402
from nnviz.io import onnx_format as OF  # noqa: E402

RTOL = 1e-5


def rel_diff(ours, ref):
    ours, ref = np.asarray(ours, np.float64), np.asarray(ref, np.float64)
    assert ours.shape == ref.shape
    return float(np.abs(ours - ref).max() / max(np.abs(ref).max(), 1e-30))


def run_ort(path, x):
    s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return s.run(None, {s.get_inputs()[0].name: x})[0]


def make_file(path, nodes, inits, in_shape, opset=13, out="y", batch="N"):
    inp = helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, *in_shape])
    outv = helper.make_tensor_value_info(out, TensorProto.FLOAT, None)
    g = helper.make_graph(nodes, "case", [inp], [outv],
                          [numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    onnx.save(m, str(path))
    return path


def rnd(rng, *shape, scale=1.0):
    return (scale * rng.standard_normal(shape)).astype(np.float32)


# ---- reading, op by op, against onnxruntime ---------------------------------------------------
def N(op, ins, out="y", **kw):
    return helper.make_node(op, ins, [out], **kw)


def _cases():
    r = np.random.default_rng(0)
    bn = {"g": rnd(r, 4) + 1, "b": rnd(r, 4), "m": rnd(r, 4), "v": r.uniform(0.5, 2, 4).astype(np.float32)}
    return {
        # id: (input shape, nodes, initializers, expected nnviz layer types, compare proba)
        "Conv stride 2 pads 1": ((2, 7, 6), [N("Conv", ["x", "w", "b"], strides=[2, 2], pads=[1, 1, 1, 1])],
                                 {"w": rnd(r, 3, 2, 3, 3), "b": rnd(r, 3)}, ["Conv2D"]),
        "Conv no bias, kernel 3x1": ((2, 5, 5), [N("Conv", ["x", "w"], kernel_shape=[3, 1], pads=[1, 0, 1, 0])],
                                     {"w": rnd(r, 4, 2, 3, 1)}, ["Conv2D"]),
        "Conv auto_pad SAME_UPPER": ((1, 6, 6), [N("Conv", ["x", "w", "b"], auto_pad="SAME_UPPER")],
                                     {"w": rnd(r, 2, 1, 5, 5), "b": rnd(r, 2)}, ["Conv2D"]),
        "ConvTranspose stride 2 pads 1": (
            (3, 4, 5), [N("ConvTranspose", ["x", "w", "b"], strides=[2, 2], pads=[1, 1, 1, 1])],
            {"w": rnd(r, 3, 2, 3, 3), "b": rnd(r, 2)}, ["ConvTranspose2D"]),
        "Gemm transB": ((5,), [N("Gemm", ["x", "w", "c"], transB=1)],
                        {"w": rnd(r, 3, 5), "c": rnd(r, 3)}, ["Dense"]),
        "Gemm alpha beta, C (1, out)": ((5,), [N("Gemm", ["x", "w", "c"], alpha=0.5, beta=2.0)],
                                        {"w": rnd(r, 5, 3), "c": rnd(r, 1, 3)}, ["Dense"]),
        "Gemm without C": ((4,), [N("Gemm", ["x", "w"], transB=1)], {"w": rnd(r, 2, 4)}, ["Dense"]),
        "MatMul+Add": ((6,), [N("MatMul", ["x", "w"], "h"), N("Add", ["h", "b"])],
                       {"w": rnd(r, 6, 4), "b": rnd(r, 4)}, ["Dense"]),
        "MatMul+Add bias first": ((6,), [N("MatMul", ["x", "w"], "h"), N("Add", ["b", "h"])],
                                  {"w": rnd(r, 6, 4), "b": rnd(r, 4)}, ["Dense"]),
        "MatMul alone": ((6,), [N("MatMul", ["x", "w"])], {"w": rnd(r, 6, 2)}, ["Dense"]),
        "Relu": ((3, 4, 4), [N("Relu", ["x"])], {}, ["ReLU"]),
        "LeakyRelu": ((7,), [N("LeakyRelu", ["x"], alpha=0.2)], {}, ["LeakyReLU"]),
        "LeakyRelu default": ((7,), [N("LeakyRelu", ["x"])], {}, ["LeakyReLU"]),
        "Sigmoid": ((7,), [N("Sigmoid", ["x"])], {}, ["Sigmoid"]),
        "Tanh": ((2, 3, 3), [N("Tanh", ["x"])], {}, ["Tanh"]),
        "Abs": ((7,), [N("Abs", ["x"])], {}, ["Abs"]),
        "MaxPool 3 stride 1": ((2, 6, 5), [N("MaxPool", ["x"], kernel_shape=[3, 3])], {}, ["MaxPool2D"]),
        "MaxPool 2": ((2, 6, 6), [N("MaxPool", ["x"], kernel_shape=[2, 2], strides=[2, 2])], {},
                      ["MaxPool2D"]),
        "AveragePool 2x3 stride (2, 1)": ((2, 6, 7), [N("AveragePool", ["x"], kernel_shape=[2, 3], strides=[2, 1])],
                                          {}, ["AvgPool2D"]),
        "AveragePool ceil_mode exact": ((1, 6, 6), [N("AveragePool", ["x"], kernel_shape=[2, 2], strides=[2, 2],
                                                      ceil_mode=1)], {}, ["AvgPool2D"]),
        "GlobalAveragePool+Flatten": ((3, 5, 4), [N("GlobalAveragePool", ["x"], "p"), N("Flatten", ["p"])], {},
                                      ["GlobalAvgPool2D"]),
        "GlobalAveragePool+Relu+Reshape": (
            (3, 5, 4), [N("GlobalAveragePool", ["x"], "p"), N("Relu", ["p"], "q"), N("Reshape", ["q", "s"])],
            {"s": np.array([-1, 3], np.int64)}, ["GlobalAvgPool2D", "ReLU"]),
        "ReduceMean axes (2, 3)": ((3, 5, 4), [N("ReduceMean", ["x"], axes=[2, 3], keepdims=0)], {},
                                   ["GlobalAvgPool2D"]),
        "ReduceMean keepdims + Flatten": ((3, 5, 4), [N("ReduceMean", ["x"], "p", axes=[-1, -2]), N("Flatten", ["p"])],
                                          {}, ["GlobalAvgPool2D"]),
        "Flatten": ((2, 3, 4), [N("Flatten", ["x"], axis=1)], {}, ["Flatten"]),
        "Reshape [0, -1]": ((2, 3, 4), [N("Reshape", ["x", "s"])], {"s": np.array([0, -1], np.int64)},
                            ["Flatten"]),
        "Reshape by Constant value_ints": ((2, 3, 4), [helper.make_node("Constant", [], ["s"], value_ints=[0, -1]),
                                                       N("Reshape", ["x", "s"])], {}, ["Flatten"]),
        "Reshape view(x.size(0), -1)": (
            (2, 3, 4), [N("Shape", ["x"], "sh"), N("Gather", ["sh", "i0"], "n", axis=0),
                        N("Unsqueeze", ["n", "ax"], "n1"), N("Concat", ["n1", "m1"], "s", axis=0),
                        N("Reshape", ["x", "s"])],
            {"i0": np.array(0, np.int64), "ax": np.array([0], np.int64), "m1": np.array([-1], np.int64)},
            ["Flatten"]),
        "BatchNormalization 4-D": ((4, 3, 3), [N("BatchNormalization", ["x", "g", "b", "m", "v"], epsilon=1e-3)],
                                   bn, ["BatchNorm"]),
        "BatchNormalization 2-D": ((4,), [N("BatchNormalization", ["x", "g", "b", "m", "v"])], bn,
                                   ["BatchNorm"]),
        "Dropout with ratio": ((5,), [N("Dropout", ["x", "r"])], {"r": np.array(0.3, np.float32)},
                               ["Dropout"]),
        "Dropout with training_mode and unused mask": (
            (5,), [helper.make_node("Dropout", ["x", "r", "t"], ["y", "mask"])],
            {"r": np.array(0.1, np.float32), "t": np.array(False)}, ["Dropout"]),
        "Identity of an activation and of a weight": (
            (5,), [N("Identity", ["w0"], "w"), N("Identity", ["x"], "h"), N("Gemm", ["h", "w"], transB=1)],
            {"w0": rnd(r, 2, 5)}, ["Dense"]),
        "Add residual": ((2, 4, 4), [N("Conv", ["x", "w", "b"], "c", pads=[1, 1, 1, 1]), N("Relu", ["c"], "h"),
                                     N("Add", ["x", "h"])],
                         {"w": rnd(r, 2, 2, 3, 3), "b": rnd(r, 2)}, ["Residual"]),
        "Add residual, nested": (
            (2, 4, 4), [N("Tanh", ["x"], "t"), N("Relu", ["t"], "u"), N("Add", ["u", "t"], "a"),
                        N("Sigmoid", ["a"], "s"), N("Add", ["s", "x"])],
            {}, ["Residual"]),
        "Sub+Div input scaling": (
            (3, 4, 4), [N("Sub", ["x", "m"], "s"), N("Div", ["s", "d"], "t"), N("Relu", ["t"])],
            {"m": np.array([0.1, 0.2, 0.3], np.float32).reshape(3, 1, 1),
             "d": np.array([0.5, 2.0, 4.0], np.float32).reshape(1, 3, 1, 1)}, ["InputScaling", "ReLU"], "note"),
        "Div by 255": ((5,), [N("Div", ["x", "d"])], {"d": np.array(255.0, np.float32)}, ["InputScaling"],
                       "note"),
        "x * 2 - 1 (Mul, Sub)": ((2, 3, 3), [N("Mul", ["c", "x"], "m"), N("Sub", ["m", "o"], "s"), N("Relu", ["s"])],
                                 {"c": np.array(2.0, np.float32), "o": np.array([1.0], np.float32)},
                                 ["InputScaling", "ReLU"], "note"),
        "Add, Div per feature": ((3,), [N("Add", ["x", "b"], "s"), N("Div", ["s", "d"])],
                                 {"b": np.array([0.5, -1, 2], np.float32), "d": np.array([[2, 4, 0.5]], np.float32)},
                                 ["InputScaling"], "note"),
        "Softmax last": ((6,), [N("Gemm", ["x", "w"], "z", transB=1), N("Softmax", ["z"], axis=1)],
                         {"w": rnd(r, 4, 6)}, ["Dense"], "proba"),
        "LogSoftmax last": ((6,), [N("Gemm", ["x", "w"], "z", transB=1), N("LogSoftmax", ["z"])],
                            {"w": rnd(r, 4, 6)}, ["Dense"], "log_proba"),
    }


CASES = _cases()


@pytest.mark.parametrize("case", list(CASES))
def test_read_op_matches_onnxruntime(case, tmp_path):
    in_shape, nodes, inits, kinds, *compare = CASES[case]
    path = make_file(tmp_path / "op.onnx", nodes, inits, in_shape)
    x = rnd(np.random.default_rng(1), 3, *in_shape, scale=2.0)
    loaded = OF.read(path)
    model = loaded.model
    assert [l.type for l in model.layers] == kinds
    ref = run_ort(path, x)
    if compare == ["proba"]:
        ours = model.predict_proba(x)
    elif compare == ["log_proba"]:
        ours = np.log(model.predict_proba(x))
    else:
        ours = model.predict_logits(x)
    assert rel_diff(ours, ref) <= RTOL, case
    assert bool(loaded.meta["notes"]) == bool(compare)   # softmax removed, scaling read
    assert loaded.meta["format"] == "ONNX" and loaded.meta["opset"] == 13


def test_reshape_by_the_files_fixed_batch_size_is_a_flatten(tmp_path):
    path = make_file(tmp_path / "b.onnx", [N("Reshape", ["x", "s"])], {"s": np.array([3, 12], np.int64)},
                     (2, 2, 3), batch=3)
    x = rnd(np.random.default_rng(0), 3, 2, 2, 3)
    model = OF.read(path).model
    assert [l.type for l in model.layers] == ["Flatten"]
    assert rel_diff(model.predict_logits(x), run_ort(path, x)) == 0


def test_read_dropout_is_nnviz_dropout_with_its_ratio(tmp_path):
    path = make_file(tmp_path / "d.onnx", CASES["Dropout with ratio"][1],
                     CASES["Dropout with ratio"][2], (5,))
    assert OF.read(path).model.layers[0].p == pytest.approx(0.3)


def test_read_batchnorm_keeps_running_stats(tmp_path):
    _, nodes, inits, _ = CASES["BatchNormalization 4-D"]
    nodes = [N("BatchNormalization", ["x", "g", "b", "m", "v"], epsilon=1e-3, momentum=0.8)]
    model = OF.read(make_file(tmp_path / "bn.onnx", nodes, inits, (4, 3, 3))).model
    bn = model.layers[0]
    assert bn.eps == pytest.approx(1e-3) and bn.momentum == pytest.approx(0.2)
    assert np.array_equal(bn.buffers["running_mean"], inits["m"])
    assert np.array_equal(bn.buffers["running_var"], inits["v"])
    assert np.array_equal(bn.params["weight"], inits["g"])


# ---- reading PyTorch models (torch.onnx.export) ------------------------------------------------
def _torch():
    return pytest.importorskip("torch")


def export_torch(module, x, path, **kw):
    torch = _torch()
    module.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")        # the TorchScript exporter's deprecation notice
        torch.onnx.export(module, (torch.from_numpy(x),), str(path), dynamo=False,
                          input_names=["x"], output_names=["y"], dynamic_axes={"x": {0: "n"}}, **kw)
    with torch.no_grad():
        return module(torch.from_numpy(x)).numpy()


def lab7_cnn():
    nn = _torch().nn

    class Lab7(nn.Module):          # as the course writes it: view(x.size(0), -1)
        def __init__(self):
            super().__init__()
            self.conv1, self.conv2 = nn.Conv2d(3, 6, 5), nn.Conv2d(6, 16, 5)
            self.pool = nn.MaxPool2d(2)
            self.fc1, self.fc2, self.fc3 = nn.Linear(400, 120), nn.Linear(120, 84), nn.Linear(84, 10)

        def forward(self, x):
            x = self.pool(self.conv1(x).relu())
            x = self.pool(self.conv2(x).relu())
            x = x.view(x.size(0), -1)
            return self.fc3(self.fc2(self.fc1(x).relu()).relu())
    return Lab7()


def lenet5():
    nn = _torch().nn
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.Tanh(), nn.AvgPool2d(2),
        nn.Conv2d(6, 16, 5), nn.Tanh(), nn.AvgPool2d(2),
        nn.Conv2d(16, 120, 5), nn.Tanh(), nn.Flatten(),
        nn.Linear(120, 84), nn.Tanh(), nn.Linear(84, 10))


def resnet(softmax=False, mean=False):
    torch = _torch()
    nn = torch.nn

    class Block(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.c1, self.b1 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
            self.c2, self.b2 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)

        def forward(self, x):
            return torch.relu(x + self.b2(self.c2(torch.relu(self.b1(self.c1(x))))))

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8),
                                      nn.ReLU())
            self.blocks = nn.Sequential(Block(8), Block(8))
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(8, 10)

        def forward(self, x):
            h = self.blocks(self.stem(x))
            z = self.fc(h.mean((2, 3)) if mean else torch.flatten(self.pool(h), 1))
            return torch.softmax(z, 1) if softmax else z

    net = Net()
    g = torch.Generator().manual_seed(0)
    for m in net.modules():         # trained-looking statistics, so that BN matters
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.2)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.randn(m.num_features, generator=g) * 0.5 + 1)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.2)
    return net


@pytest.mark.parametrize("name,make,shape,kinds", [
    ("lab7", lab7_cnn, (3, 32, 32), ["Conv2D", "ReLU", "MaxPool2D", "Conv2D", "ReLU", "MaxPool2D",
                                     "Flatten", "Dense", "ReLU", "Dense", "ReLU", "Dense"]),
    ("lenet5", lenet5, (1, 28, 28), [c["type"] for c in load_preset("lenet5").to_spec()["layers"]]),
])
def test_torch_models_open_with_the_same_logits(name, make, shape, kinds, tmp_path):
    torch = _torch()
    torch.manual_seed(1)
    net = make()
    x = np.random.default_rng(2).standard_normal((5, *shape)).astype(np.float32)
    ref = export_torch(net, x, tmp_path / f"{name}.onnx")
    model = OF.read(tmp_path / f"{name}.onnx").model
    assert [l.type for l in model.layers] == kinds
    assert model.param_count() == sum(p.numel() for p in net.parameters())
    assert rel_diff(model.predict_logits(x), ref) <= RTOL
    if name == "lenet5":     # the same network as nnviz's preset
        assert model.to_spec()["layers"] == load_preset("lenet5").to_spec()["layers"]


@pytest.mark.parametrize("mode,mean", [("EVAL", False), ("PRESERVE", False), ("EVAL", True)],
                         ids=["eval", "preserve-bn", "x.mean((2,3))"])
def test_torch_resnet_with_batchnorm_and_global_pooling(mode, mean, tmp_path):
    torch = _torch()
    torch.manual_seed(3)
    net = resnet(softmax=True, mean=mean)
    x = np.random.default_rng(4).standard_normal((6, 3, 16, 16)).astype(np.float32)
    # EVAL folds each BatchNorm into its convolution; PRESERVE keeps BatchNormalization nodes
    proba = export_torch(net, x, tmp_path / "res.onnx",
                         training=getattr(torch.onnx.TrainingMode, mode))
    loaded = OF.read(tmp_path / "res.onnx")
    model = loaded.model
    types = [l.type for l in model.layers]
    assert types.count("Residual") == 2 and "GlobalAvgPool2D" in types
    assert ("BatchNorm" in types) == (mode == "PRESERVE")
    assert any("Softmax" in n for n in loaded.meta["notes"])
    assert loaded.meta["source_format"].startswith("ONNX opset ") and "pytorch" in loaded.meta["source_format"]
    with torch.no_grad():     # (pool and mean((2, 3)) are the same average)
        logits = net.fc(torch.flatten(net.pool(net.blocks(net.stem(torch.from_numpy(x)))), 1))
    assert rel_diff(model.predict_logits(x), logits.numpy()) <= RTOL
    assert rel_diff(model.predict_proba(x), proba) <= RTOL


# ---- writing: onnxruntime runs nnviz models ------------------------------------------------
WRITE_SPECS = {
    "bn-dropout": {"input_shape": [1, 12, 12], "layers": [
        {"type": "Conv2D", "out_channels": 4, "kernel_size": 3}, {"type": "BatchNorm"}, {"type": "ReLU"},
        {"type": "MaxPool2D", "kernel_size": 2}, {"type": "Dropout", "p": 0.25}, {"type": "Flatten"},
        {"type": "Dense", "out_features": 16}, {"type": "BatchNorm", "momentum": 0.2, "eps": 1e-3},
        {"type": "Sigmoid"}, {"type": "Dropout", "p": 0.5}, {"type": "Dense", "out_features": 3}]},
    "stride2-padded": {"input_shape": [3, 11, 9], "layers": [
        {"type": "Conv2D", "out_channels": 5, "kernel_size": 3, "stride": 2, "padding": 1},
        {"type": "LeakyReLU", "alpha": 0.1},
        {"type": "Conv2D", "out_channels": 4, "kernel_size": [3, 2], "stride": [2, 1], "padding": [1, 0]},
        {"type": "Abs"}, {"type": "AvgPool2D", "kernel_size": 2, "stride": 1},
        {"type": "ConvTranspose2D", "out_channels": 2, "kernel_size": 3, "stride": 2, "padding": 1},
        {"type": "Tanh"}, {"type": "Flatten"}, {"type": "Dense", "out_features": 4}]},
    "scaled-lenet5": {"input_shape": [1, 28, 28], "layers": [
        {"type": "InputScaling", "mean": [0.1307], "std": [0.3081]}, *read_spec("lenet5")["layers"]]},
    "scaled-mlp": {"input_shape": [3], "layers": [
        {"type": "InputScaling", "mean": [0.5, 0.0, -1.0], "std": [0.5, 2.0, 1.5]},
        {"type": "Dense", "out_features": 4}, {"type": "ReLU"}, {"type": "Dense", "out_features": 2}]},
    "residual": {"input_shape": [2, 8, 8], "layers": [
        {"type": "Conv2D", "out_channels": 6, "kernel_size": 3, "padding": 1}, {"type": "ReLU"},
        {"type": "Residual", "layers": [
            {"type": "Conv2D", "out_channels": 6, "kernel_size": 3, "padding": 1, "bias": False},
            {"type": "BatchNorm"}, {"type": "ReLU"},
            {"type": "Residual", "layers": [{"type": "Conv2D", "out_channels": 6, "kernel_size": 1}]},
            {"type": "Conv2D", "out_channels": 6, "kernel_size": 3, "padding": 1}]},
        {"type": "ReLU"}, {"type": "GlobalAvgPool2D"}, {"type": "Dense", "out_features": 5}]},
}


def _models():
    out = {name: load_preset(name, seed=7) for name in preset_names()}
    out.update({name: model_from_spec(dict(spec, name=name), seed=7) for name, spec in WRITE_SPECS.items()})
    return out


def _randomise_stats(model, seed=0):
    """Non-trivial biases and BatchNorm statistics, as after training."""
    rng = np.random.default_rng(seed)
    state = model.state()
    for k, a in state.items():
        if k.endswith("running_var"):
            state[k] = rng.uniform(0.5, 2.0, a.shape).astype(a.dtype)
        elif k.endswith(("bias", "running_mean")):
            state[k] = (0.3 * rng.standard_normal(a.shape)).astype(a.dtype)
    model.load_state(state)


@pytest.mark.parametrize("name", list(preset_names()) + list(WRITE_SPECS))
def test_written_models_run_in_onnxruntime_and_read_back_identically(name, tmp_path):
    model = _models()[name]
    _randomise_stats(model)
    path = OF.write(model, tmp_path / f"{name}.onnx")
    x = np.random.default_rng(5).standard_normal((4, *model.input_shape)).astype(np.float32)
    assert rel_diff(run_ort(path, x), model.predict_logits(x)) <= RTOL
    assert OF.can_read(path)
    back = OF.read(path)
    assert back.model.to_spec()["layers"] == model.to_spec()["layers"]
    assert back.model.name == model.name
    scaled = model.layers[0].type == "InputScaling"
    assert len(back.meta["notes"]) == scaled and all("scal" in n for n in back.meta["notes"])
    a, b = model.state(), back.model.state()
    assert a.keys() == b.keys()
    for k in a:
        assert np.array_equal(a[k], b[k]), k
    assert np.array_equal(back.model.predict_logits(x), model.predict_logits(x))
    # dropout ratio and BatchNorm settings survive too
    for la, lb in zip(model.layers, back.model.layers):
        assert la.config() == lb.config()


def test_input_scaling_is_in_the_graph_and_chosen_at_import(tmp_path):
    from nnviz.io import load_model as load_any
    model = model_from_spec(dict(WRITE_SPECS["scaled-lenet5"], name="s"), seed=1)
    path = OF.write(model, tmp_path / "s.onnx")
    assert [n.op_type for n in onnx.load(str(path)).graph.node][:3] == ["Sub", "Div", "Conv"]
    # the file takes [0, 1] pixels, as the scaling does; nnviz's binding to a dataset's own
    # standardisation is not part of it
    model.layers[0].set_data_normalization({"mean": [0.2], "std": [0.4]})
    x = np.random.default_rng(0).random((2, 1, 28, 28)).astype(np.float32)
    assert rel_diff(run_ort(OF.write(model, tmp_path / "b.onnx"), x),
                    model.predict_logits((x - 0.2) / 0.4)) <= RTOL
    # choosing another scaling at import replaces the one in the graph
    plain = OF.write(load_preset("lenet5", seed=1), tmp_path / "p.onnx")
    loaded = load_any(plain, input_scaling="minus1to1")
    assert loaded.meta["format"] == "ONNX"
    first = loaded.model.layers[0]
    assert first.type == "InputScaling" and first.mean == [0.5] and first.std == [0.5]
    assert rel_diff(loaded.model.predict_logits(x), run_ort(plain, (x - 0.5) / 0.5)) <= RTOL


def test_torch_model_normalising_in_forward(tmp_path):
    torch = _torch()
    torch.manual_seed(5)
    body = lenet5()

    class Normalised(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.body = body

        def forward(self, x):
            return self.body((x - 0.1307) / 0.3081)
    x = np.random.default_rng(6).random((3, 1, 28, 28)).astype(np.float32)
    ref = export_torch(Normalised(), x, tmp_path / "n.onnx")
    loaded = OF.read(tmp_path / "n.onnx")
    first = loaded.model.layers[0]
    assert first.type == "InputScaling"
    assert first.mean == pytest.approx([0.1307]) and first.std == pytest.approx([0.3081])
    assert rel_diff(loaded.model.predict_logits(x), ref) <= RTOL


def test_write_is_opset_13_and_valid(tmp_path):
    path = OF.write(load_preset("lenet5"), tmp_path / "l.onnx")
    mp = onnx.load(str(path))
    onnx.checker.check_model(mp, full_check=True)
    assert [(o.domain, o.version) for o in mp.opset_import] == [("", 13)]
    assert mp.producer_name == "nnviz"
    assert [n.op_type for n in mp.graph.node][:3] == ["Conv", "Tanh", "AveragePool"]


def test_onnx_to_hdf5_and_back(tmp_path):
    """An imported model saves as nnviz HDF5 with the same numbers."""
    model = model_from_spec(dict(WRITE_SPECS["residual"], name="r"), seed=2)
    _randomise_stats(model)
    imported = OF.read(OF.write(model, tmp_path / "r.onnx")).model
    h5 = load_model(save_model(tmp_path / "r.h5", imported)).model
    x = np.random.default_rng(0).standard_normal((3, 2, 8, 8)).astype(np.float32)
    assert np.array_equal(h5.predict_logits(x), model.predict_logits(x))


def test_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "m.onnx"
    target.write_bytes(b"old")

    def boom(*a, **k):
        raise OSError("disk full")
    monkeypatch.setattr(onnx, "save", boom)
    with pytest.raises(OSError):
        OF.write(load_preset("mlp1"), target)
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]


# ---- what is refused, in one line -----------------------------------------------------------
def refused(path, *words):
    with pytest.raises(ModelFormatError) as e:
        OF.read(path)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(str(path)), msg
    for w in words:
        assert w in msg, msg
    return msg


def test_unsupported_op_names_node_and_lists_supported(tmp_path):
    path = make_file(tmp_path / "u.onnx", [N("Erf", ["x"], "e", name="my_erf"), N("Relu", ["e"])], {}, (4,))
    refused(path, "'my_erf'", "'Erf'", "supported:", "Conv", "GlobalAveragePool", "BatchNormalization")


@pytest.mark.parametrize("nodes,inits,shape,words", [
    ([N("Conv", ["x", "w"], pads=[0, 0, 1, 1])], {"w": np.ones((1, 1, 2, 2), np.float32)}, (1, 4, 4),
     ["pads", "symmetric"]),
    ([N("Conv", ["x", "w"], group=2)], {"w": np.ones((2, 1, 1, 1), np.float32)}, (2, 4, 4), ["group"]),
    ([N("Conv", ["x", "w"], dilations=[2, 2])], {"w": np.ones((1, 1, 2, 2), np.float32)}, (1, 5, 5),
     ["dilations"]),
    ([N("MaxPool", ["x"], kernel_shape=[2, 2], pads=[1, 1, 1, 1])], {}, (1, 4, 4), ["pads", "without padding"]),
    ([N("Conv", ["x", "w"], "a"), N("Conv", ["x", "w"], "b"), N("Add", ["a", "b"])],
     {"w": np.ones((1, 1, 1, 1), np.float32)}, (1, 3, 3), ["not the previous layer's output"]),
    ([N("Relu", ["x"], "a"), N("Add", ["a", "c"])], {"c": np.ones(3, np.float32)}, (3,), ["adds a constant"]),
    ([N("Reshape", ["x", "s"])], {"s": np.array([-1, 2, 2], np.int64)}, (1, 2, 2),
     ["(N, 1, 2, 2) to [-1, 2, 2]", "flattening to (N, 4)"]),
    ([N("Reshape", ["x", "s"])], {"s": np.array([2, -1], np.int64)}, (2, 3, 3), ["[2, -1]", "flattening"]),
    ([N("Softmax", ["x"], "s"), N("Relu", ["s"])], {}, (3,), ["last node"]),
    ([N("Gemm", ["x", "w"], transB=1)], {"w": np.ones((2, 5), np.float32)}, (4,), ["weight", "(2, 5)", "(2, 4)"]),
    ([N("GlobalAveragePool", ["x"])], {}, (2, 3, 3), ["Flatten"]),
    ([N("Gemm", ["x", "w"], transB=5)], {"w": np.ones((2, 4), np.float32)}, (4,), ["'transB' is 5"]),
    ([N("Relu", ["x", "w"])], {"w": np.ones(4, np.float32)}, (4,), ["(Relu): not valid ONNX", "input size 2"]),
    ([N("Relu", ["x"], "a"), N("Concat", ["x", "a"], axis=1)], {}, (3,), ["'Concat'", "supported:"]),
    ([N("Relu", ["x"], "a"), N("Sub", ["a", "c"])], {"c": np.ones(1, np.float32)}, (3,), ["only at the model's input"]),
    ([N("Mul", ["x", "c"])], {"c": np.array(-2.0, np.float32)}, (3,), ["factor <= 0"]),
    ([N("Relu", ["x"], alpha=0.2)], {}, (3,), ["(Relu): not valid ONNX", "alpha"]),
    ([N("Sub", ["c", "x"])], {"c": np.ones(3, np.float32)}, (3,), ["(x - mean) / std"]),
], ids=["asymmetric pads", "group", "dilation", "pool pads", "fork", "constant add", "reshape",
        "reshape with a batch size",
        "softmax in the middle", "weight shape", "pool without flatten", "bad flag", "bad arity", "concat",
        "sub in the middle", "negative scale", "unknown attribute", "constant minus input"])
def test_graphs_nnviz_cannot_represent(nodes, inits, shape, words, tmp_path):
    refused(make_file(tmp_path / "g.onnx", nodes, inits, shape), *words)


def test_projection_shortcut_is_refused(tmp_path):
    torch = _torch()
    nn = torch.nn

    class Down(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Conv2d(2, 4, 3, 2, 1), nn.Conv2d(2, 4, 1, 2)

        def forward(self, x):
            return self.a(x) + self.b(x)
    export_torch(Down(), np.zeros((1, 2, 6, 6), np.float32), tmp_path / "d.onnx")
    refused(tmp_path / "d.onnx", "Conv", "not the previous layer's output")


def test_old_opset_and_graph_boundaries(tmp_path):
    refused(make_file(tmp_path / "o.onnx", [N("Relu", ["x"])], {}, (3,), opset=11), "opset 11", "13")
    refused(make_file(tmp_path / "d.onnx", [N("Relu", ["x"])], {}, (3, "h", 4)), "fixed")
    refused(make_file(tmp_path / "r.onnx", [N("Relu", ["x"])], {}, (3, 4)), "3 dimensions")


def test_missing_garbage_truncated_and_empty(tmp_path):
    refused(tmp_path / "nope.onnx", "no such file")
    refused(tmp_path, "folder")
    (tmp_path / "e.onnx").write_bytes(b"")
    refused(tmp_path / "e.onnx", "empty")
    (tmp_path / "g.onnx").write_bytes(np.random.default_rng(0).bytes(5000))
    refused(tmp_path / "g.onnx")
    (tmp_path / "t.txt").write_text("not a model at all\n" * 50)
    refused(tmp_path / "t.txt")
    good = OF.write(load_preset("lenet5"), tmp_path / "ok.onnx").read_bytes()
    for frac in (0.1, 0.5, 0.9, 0.999):
        bad = tmp_path / f"trunc{frac}.onnx"
        bad.write_bytes(good[:int(len(good) * frac)])
        refused(bad, "not a readable ONNX file")


def test_external_data_is_refused_without_opening_it(tmp_path):
    secret = tmp_path / "secret.bin"
    secret.write_bytes(np.ones(8, np.float32).tobytes())
    w = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[2, 4],
                    data_location=TensorProto.EXTERNAL)
    w.external_data.add(key="location", value="../secret.bin")
    g = helper.make_graph([N("Gemm", ["x", "w"], transB=1)], "ext",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [w])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    (tmp_path / "sub").mkdir()
    path = tmp_path / "sub" / "ext.onnx"
    path.write_bytes(m.SerializeToString())
    refused(path, "external", "../secret.bin", "initializer 'w'")


def test_declared_billions_are_refused_before_allocating(tmp_path):
    w = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[100_000, 100_000], raw_data=b"\0" * 16)
    g = helper.make_graph([N("Gemm", ["x", "w"], transB=1)], "big",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 100_000])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [w])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    path = tmp_path / "big.onnx"
    path.write_bytes(m.SerializeToString())
    tracemalloc.start()
    try:
        refused(path, "initializer 'w'", "[100000, 100000]", "limit")
        # an input of 3 x 60000 x 60000 per sample, with tiny weights
        huge_in = make_file(tmp_path / "in.onnx", [N("Relu", ["x"])], {}, (3, 60_000, 60_000))
        refused(huge_in, "(3, 60000, 60000)", "limit")
        # a transposed convolution whose output would be 200001 x 200001
        wide = make_file(tmp_path / "wide.onnx", [N("ConvTranspose", ["x", "w"], strides=[100_000, 100_000])],
                         {"w": np.ones((1, 1, 1, 1), np.float32)}, (1, 3, 3))
        refused(wide, "(1, 200001, 200001)", "limit")
        # a weight whose stored bytes do not match its declared shape
        w2 = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[300, 4], raw_data=b"\0" * 16)
        g.ClearField("initializer")
        g.initializer.append(w2)
        g.input[0].CopyFrom(helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4]))
        path.write_bytes(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString())
        refused(path, "[300, 4]", "stores 16 bytes")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50 << 20, f"{peak:,} bytes allocated while refusing"


def test_file_size_is_checked_first(tmp_path, monkeypatch):
    path = OF.write(load_preset("lab7-cnn"), tmp_path / "l.onnx")
    monkeypatch.setattr(OF, "MAX_FILE_BYTES", 1000)
    refused(path, "bytes", "up to 1,000")


def test_can_read_sniffs_content(tmp_path):
    onnx_path = OF.write(load_preset("mlp1"), tmp_path / "renamed.h5")
    assert OF.can_read(onnx_path)
    h5 = save_model(tmp_path / "m.h5", load_preset("mlp1"))
    assert not OF.can_read(h5)
    (tmp_path / "z").write_bytes(b"PK\x03\x04rest")
    (tmp_path / "empty").write_bytes(b"")
    assert not OF.can_read(tmp_path / "z") and not OF.can_read(tmp_path / "empty")
    assert not OF.can_read(tmp_path / "missing")


def test_damaged_bytes_give_model_format_error_or_a_model(tmp_path):
    """Flipped and deleted bytes in real files: protobuf parses many of them; whatever the
    fields then hold, the answer is a model or one ModelFormatError, never another exception."""
    model = model_from_spec(dict(WRITE_SPECS["residual"], name="r"))
    goods = [OF.write(model, tmp_path / "r.onnx").read_bytes()]
    export_torch(lab7_cnn(), np.zeros((1, 3, 32, 32), np.float32), tmp_path / "lab7.onnx")
    goods.append((tmp_path / "lab7.onnx").read_bytes())
    rng = np.random.default_rng(0)
    outcomes = {"model": 0, "error": 0}
    path = tmp_path / "f.onnx"
    for i in range(400):
        b = bytearray(goods[i % 2])
        for _ in range(int(rng.integers(1, 4))):
            pos = int(rng.integers(0, len(b)))
            if rng.random() < 0.7:
                b[pos] = int(rng.integers(0, 256))
            else:
                del b[pos:pos + int(rng.integers(1, 8))]
        path.write_bytes(bytes(b))
        try:
            OF.read(path)
            outcomes["model"] += 1
        except ModelFormatError as e:
            assert "\n" not in str(e)
            outcomes["error"] += 1
    assert outcomes["model"] > 0 and outcomes["error"] > 0, outcomes


def test_cli_info_reads_onnx_and_refuses_bad_files_in_one_line(tmp_path, capsys):
    import json

    from nnviz.cli import main
    good = OF.write(model_from_spec(dict(WRITE_SPECS["residual"], name="res")), tmp_path / "r.onnx")
    assert main(["info", str(good), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["name"] == "res" and info["param_count"] == model_from_spec(WRITE_SPECS["residual"]).param_count()
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(good.read_bytes()[:500])
    huge = make_file(tmp_path / "huge.onnx", [N("Relu", ["x"])], {}, (3, 60_000, 60_000))
    unsupported = make_file(tmp_path / "u.onnx", [N("Erf", ["x"])], {}, (4,))
    for path in (bad, huge, unsupported):
        assert main(["info", str(path)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"nnviz: error: {path}: "), err


def test_a_layer_without_onnx_form_is_one_line_at_save(tmp_path):
    from nnviz.engine import Dense, Layer, Sequential

    class Odd(Layer):      # a layer type the writer has never heard of
        pass
    model = Sequential([Dense(3), Odd()], (4,))
    with pytest.raises(ModelFormatError, match=r"layer 1 \(Odd\): no ONNX form for layer type Odd"):
        OF.write(model, tmp_path / "odd.onnx")
    assert not list(tmp_path.iterdir())


def test_dataset_facts_travel_in_metadata(tmp_path):
    from nnviz.data.dataset import Dataset
    from nnviz.io import load_model as load_any
    from nnviz.io import save_model as save_any
    rng = np.random.default_rng(0)
    x = rng.random((6, 2)).astype(np.float32)
    ds = Dataset(name="toy", x_train=x, y_train=np.arange(6) % 2, x_test=x, y_test=np.arange(6) % 2,
                 class_names=["cat", "dog"], normalization={"mean": [0.5], "std": [0.25]})
    path = save_any(tmp_path / "m.onnx", load_preset("mlp1"), dataset=ds)
    loaded = load_any(path)
    assert loaded.meta["format"] == "ONNX"
    assert loaded.meta["dataset"] == {"name": "toy", "input_shape": [2], "class_names": ["cat", "dog"],
                                      "normalization": {"mean": [0.5], "std": [0.25]}}
    mp = onnx.load(str(path))
    mp.metadata_props[0].value = "[1, 2"
    onnx.save(mp, str(path))
    loaded = OF.read(path)
    assert loaded.meta["dataset"]["class_names"] is None
    assert any("nnviz.dataset" in n for n in loaded.meta["notes"])


def test_mutated_graphs_are_refused_or_read_as_onnxruntime_runs_them(tmp_path):
    """Field-level damage (dims, attributes, inputs, op types, input shapes) to real graphs:
    every file is a ModelFormatError or a model, and every model onnxruntime also runs
    computes what onnxruntime computes."""
    import copy
    bases = [onnx.load(str(OF.write(model_from_spec(dict(WRITE_SPECS[n], name=n)), tmp_path / f"{n}.onnx")))
             for n in ("residual", "bn-dropout", "stride2-padded")]
    export_torch(lab7_cnn(), np.zeros((1, 3, 32, 32), np.float32), tmp_path / "lab7.onnx")
    bases.append(onnx.load(str(tmp_path / "lab7.onnx")))
    rng = np.random.default_rng(1)
    numbers = [0, -1, 1, 2, 3, 7, 1 << 31, 1 << 40]
    ops = ["Relu", "Conv", "Add", "Flatten", "Gemm", "Identity", "MaxPool", "Reshape", "Sub", "ReduceMean"]
    seen = {"error": 0, "agree": 0}
    path = tmp_path / "m.onnx"
    for i in range(160):
        mp = copy.deepcopy(bases[i % len(bases)])
        g = mp.graph
        node = g.node[int(rng.integers(len(g.node)))]
        kind = i % 5
        if kind == 0 and len(g.initializer):
            t = g.initializer[int(rng.integers(len(g.initializer)))]
            if len(t.dims):
                t.dims[int(rng.integers(len(t.dims)))] = int(rng.choice(numbers))
        elif kind == 1 and len(node.attribute):
            a = node.attribute[int(rng.integers(len(node.attribute)))]
            if a.ints:
                a.ints[int(rng.integers(len(a.ints)))] = int(rng.choice(numbers))
            elif a.type == a.INT:
                a.i = int(rng.choice(numbers))
        elif kind == 2 and len(node.input):
            names = [x for n in g.node for x in list(n.input) + list(n.output)]
            node.input[int(rng.integers(len(node.input)))] = str(rng.choice(names))
        elif kind == 3:
            node.op_type = str(rng.choice(ops))
        else:
            dims = g.input[0].type.tensor_type.shape.dim
            dims[int(rng.integers(1, len(dims)))].dim_value = int(rng.choice(numbers[:6]))
        path.write_bytes(mp.SerializeToString())
        try:
            loaded = OF.read(path)
        except ModelFormatError as e:
            assert "\n" not in str(e)
            seen["error"] += 1
            continue
        try:
            s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            x = rnd(np.random.default_rng(i), 2, *loaded.model.input_shape)
            ref = s.run(None, {s.get_inputs()[0].name: x})[0]
        except Exception:        # onnxruntime refuses it (for instance a fixed batch of 1)
            continue
        assert rel_diff(loaded.model.predict_logits(x), ref) <= 1e-4, f"mutation {i}"
        seen["agree"] += 1
    assert seen["error"] > 40 and seen["agree"] > 15, seen


def test_imported_pytorch_model_fine_tunes_and_exports_back(tmp_path):
    """PyTorch -> ONNX -> nnviz, a few training steps (BatchNorm statistics move), -> ONNX:
    onnxruntime computes what the fine-tuned model computes."""
    from nnviz.data.dataset import Dataset
    from nnviz.train import Trainer
    torch = _torch()
    torch.manual_seed(8)
    rng = np.random.default_rng(8)
    x = rng.standard_normal((48, 3, 16, 16)).astype(np.float32)
    y = rng.integers(0, 10, 48)
    export_torch(resnet(), x[:2], tmp_path / "res.onnx", training=torch.onnx.TrainingMode.PRESERVE)
    model = OF.read(tmp_path / "res.onnx").model
    before = model.state()
    data = Dataset(name="toy", x_train=x[:40], y_train=y[:40], x_test=x[40:], y_test=y[40:],
                   class_names=[str(i) for i in range(10)])
    tr = Trainer(model, data, optimizer="adam", lr=0.01, batch_size=8, seed=0)
    losses = [tr.step()[0] for _ in range(5)]
    assert all(np.isfinite(losses))
    after = model.state()
    assert any(not np.array_equal(before[k], after[k]) for k in before if k.endswith("running_mean"))
    path = OF.write(model, tmp_path / "tuned.onnx", trainer=tr)
    assert rel_diff(run_ort(path, x[40:]), model.predict_logits(x[40:])) <= RTOL
    assert OF.read(path).meta["dataset"]["class_names"] == data.class_names


def test_cli_convert_between_onnx_and_hdf5(tmp_path, capsys):
    from nnviz.cli import main
    torch = _torch()
    torch.manual_seed(9)
    x = np.random.default_rng(9).standard_normal((4, 3, 16, 16)).astype(np.float32)
    proba = export_torch(resnet(softmax=True), x, tmp_path / "res.onnx")
    h5 = tmp_path / "res.h5"
    assert main(["convert", str(tmp_path / "res.onnx"), str(h5)]) == 0
    err = capsys.readouterr().err
    assert "Softmax" in err                         # the note says the softmax was removed
    model = load_model(h5).model
    assert rel_diff(model.predict_proba(x), proba) <= RTOL
    back = tmp_path / "back.onnx"
    assert main(["convert", str(h5), str(back), "--input-scaling", "minus1to1"]) == 0
    capsys.readouterr()
    assert [n.op_type for n in onnx.load(str(back)).graph.node][:2] == ["Sub", "Div"]
    # the written file expects [0, 1] pixels: x here, (x - 0.5) / 0.5 for the PyTorch model
    assert rel_diff(run_ort(back, x), model.predict_logits((x - 0.5) / 0.5)) <= RTOL
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(back.read_bytes()[:300])
    assert main(["convert", str(bad), str(tmp_path / "x.h5")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"nnviz: error: {bad}: ")
    assert not (tmp_path / "x.h5").exists()


@pytest.mark.skipif(not hasattr(__import__("os"), "mkfifo"), reason="needs named pipes")
def test_a_fifo_is_refused_without_blocking(tmp_path):
    import os
    fifo = tmp_path / "pipe.onnx"
    os.mkfifo(fifo)
    assert not OF.can_read(fifo)
    refused(fifo, "not a regular file")
