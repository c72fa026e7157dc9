"""Show as code: the generated PyTorch and Keras source builds the same network."""
import os

import numpy as np
import pytest

from nnviz.engine import model_from_spec, read_spec
from nnviz.engine.codegen import keras_code, pytorch_code

PRESETS = ["mlp2", "lenet5", "lenet5-relu", "lab7-cnn"]
EXTRA = {
    "bn-residual": {"input_shape": [3, 12, 12], "layers": [
        {"type": "Conv2D", "out_channels": 4, "kernel_size": 3, "padding": 1, "stride": 2},
        {"type": "BatchNorm"}, {"type": "LeakyReLU", "alpha": 0.1},
        {"type": "Residual", "layers": [{"type": "Conv2D", "out_channels": 4, "kernel_size": 3, "padding": 1},
                                        {"type": "ReLU"}]},
        {"type": "MaxPool2D", "kernel_size": 3, "stride": 2}, {"type": "Flatten"}, {"type": "Dropout", "p": 0.25},
        {"type": "Dense", "out_features": 5}]},
    "scaled-gap": {"input_shape": [1, 8, 8], "layers": [
        {"type": "InputScaling", "mean": 0.1307, "std": 0.3081},
        {"type": "Conv2D", "out_channels": 3, "kernel_size": 3}, {"type": "ReLU"},
        {"type": "GlobalAvgPool2D"}, {"type": "Dense", "out_features": 4}]},
    "transpose": {"input_shape": [2, 3, 3], "layers": [
        {"type": "ConvTranspose2D", "out_channels": 3, "kernel_size": 3, "stride": 2, "padding": 1},
        {"type": "Sigmoid"}, {"type": "AvgPool2D", "kernel_size": 2, "stride": 1}, {"type": "Flatten"},
        {"type": "Dense", "out_features": 2, "bias": False}]},
}


def _model(name):
    spec = EXTRA[name] if name in EXTRA else read_spec(name)
    return model_from_spec(spec, seed=3)


def _torch_from_code(model):
    torch = pytest.importorskip("torch")
    ns = {}
    exec(pytorch_code(model), ns)  # the code as a student would paste it
    tm = ns["model"].double().eval()
    with torch.no_grad():
        for p, w in zip(tm.parameters(), model.parameters(), strict=True):
            p.copy_(torch.from_numpy(np.asarray(w, dtype=np.float64)))
    return torch, tm


@pytest.mark.parametrize("name", PRESETS + list(EXTRA))
def test_pytorch_code_builds_the_same_network(name):
    model = _model(name)
    torch, tm = _torch_from_code(model)
    assert sum(p.numel() for p in tm.parameters()) == model.param_count()
    x = np.random.default_rng(0).standard_normal((4, *model.input_shape)).astype(np.float32)
    with torch.no_grad():
        got = tm(torch.from_numpy(x.astype(np.float64))).numpy()
    assert got.shape == (4, *model.output_shape)
    want = model.forward(x)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_pytorch_code_reads_as_the_notes_write_it():
    code = pytorch_code(_model("lab7-cnn"))
    assert "nn.Conv2d(3, 6, kernel_size=5)" in code
    assert "nn.MaxPool2d(2)" in code
    assert "nn.Linear(400, 120)" in code
    assert code.count("nn.ReLU()") == 4


@pytest.mark.parametrize("name", PRESETS + list(EXTRA))
def test_keras_code_builds_the_same_shapes_and_counts(name):
    os.environ.setdefault("KERAS_BACKEND", "torch")
    pytest.importorskip("keras")
    model = _model(name)
    ns = {}
    exec(keras_code(model), {"__builtins__": __builtins__, "print": lambda *a: None} | ns, ns)
    km = ns["model"]
    assert tuple(km.output_shape[1:]) == tuple(model.output_shape)
    trainable = sum(int(np.prod(w.shape)) for w in km.trainable_weights)
    assert trainable == model.param_count()
