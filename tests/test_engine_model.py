"""Sequential models: shapes, construction errors, summary, JSON specs, determinism, hooks."""
import json

import numpy as np
import pytest

from nnviz.engine import (
    SGD,
    Adam,
    AvgPool2D,
    BatchNorm,
    Conv2D,
    ConvTranspose2D,
    Dense,
    Dropout,
    Flatten,
    LayerError,
    LeakyReLU,
    MaxPool2D,
    OptimizerError,
    ReLU,
    Residual,
    Sequential,
    Sigmoid,
    SoftmaxCrossEntropy,
    SpecError,
    Tanh,
    load_preset,
    model_from_spec,
    preset_names,
    read_spec,
)
from nnviz.engine.spec import presets_dir

LENET_JSON = ('{"name":"lenet5","input_shape":[1,28,28],"layers":[{"type":"Conv2D",'
              '"out_channels":6,"kernel_size":5,"padding":2},{"type":"Tanh"},'
              '{"type":"AvgPool2D","kernel_size":2},{"type":"Flatten"},'
              '{"type":"Dense","out_features":10}]}')


# ---- output sizes ----------------------------------------------------------------
@pytest.mark.parametrize("n,f,p,s", [
    (7, 3, 0, 3), (7, 3, 0, 1), (7, 3, 1, 2), (32, 5, 0, 1), (28, 5, 2, 1), (5, 5, 0, 1),
    (10, 4, 1, 3), (6, 1, 0, 2), (9, 2, 2, 4),
])
def test_conv_output_size_formula(n, f, p, s):
    model = Sequential([Conv2D(2, f, stride=s, padding=p)], (1, n, n))
    size = (n - f + 2 * p) // s + 1
    assert model.output_shape == (2, size, size)
    x = np.random.default_rng(0).standard_normal((2, 1, n, n))
    assert model.forward(x).shape == (2, 2, size, size)
    notes = model.summary()[0]["notes"]
    if (n - f + 2 * p) % s:
        assert notes and all("unused" in note for note in notes)
    else:
        assert notes == []


def test_7x7_kernel3_stride3_is_2x2_with_unused_note():
    model = Sequential([Conv2D(1, 3, stride=3)], (1, 7, 7))
    row = model.summary()[0]
    assert row["output_shape"] == [1, 2, 2]
    assert len(row["notes"]) == 2          # rows and columns
    assert all("unused" in n and "stride 3 leaves 1" in n for n in row["notes"])
    assert "unused" in model.summary_text()


def test_non_square_conv_output():
    model = Sequential([Conv2D(3, (3, 5), stride=(2, 1), padding=(1, 2))], (2, 9, 8))
    assert model.output_shape == (3, (9 - 3 + 2) // 2 + 1, (8 - 5 + 4) // 1 + 1)


def test_pool_and_transpose_output_sizes():
    model = Sequential([MaxPool2D(3, 2), AvgPool2D(2, 1), ConvTranspose2D(4, 3, stride=2,
                                                                           padding=1)],
                       (1, 9, 9))
    assert model.layers[0].output_shape == (1, 4, 4)
    assert model.layers[1].output_shape == (1, 3, 3)
    assert model.layers[2].output_shape == (4, (3 - 1) * 2 - 2 + 3, (3 - 1) * 2 - 2 + 3)
    assert model.summary()[0]["notes"] == []
    odd = Sequential([MaxPool2D(2)], (1, 5, 6))
    assert odd.output_shape == (1, 2, 3)
    assert len(odd.summary()[0]["notes"]) == 1 and "unused" in odd.summary()[0]["notes"][0]


# ---- construction errors ------------------------------------------------------------
def test_kernel_larger_than_padded_input():
    with pytest.raises(LayerError) as e:
        Sequential([Conv2D(4, 3), Conv2D(4, 7, padding=1)], (1, 6, 6))
    msg = str(e.value)
    assert "layer 1 (Conv2D)" in msg and "7x7" in msg and "6x6" in msg and "(4, 4, 4)" in msg


def test_pool_window_larger_than_input():
    with pytest.raises(LayerError) as e:
        Sequential([Conv2D(2, 3), MaxPool2D(5)], (1, 6, 6))
    msg = str(e.value)
    assert "layer 1 (MaxPool2D)" in msg and "5x5" in msg and "4x4" in msg


def test_dense_on_image_without_flatten():
    with pytest.raises(LayerError) as e:
        Sequential([Conv2D(6, 5, padding=2), Tanh(), Dense(10)], (1, 28, 28))
    msg = str(e.value)
    assert "layer 2 (Dense)" in msg and "(6, 28, 28)" in msg and "Flatten" in msg


def test_conv_on_flat_input():
    with pytest.raises(LayerError, match=r"layer 0 \(Conv2D\).*\(10,\)"):
        Sequential([Conv2D(2, 3)], (10,))


def test_residual_changing_shape():
    with pytest.raises(LayerError) as e:
        Sequential([Conv2D(2, 1), Residual([Conv2D(2, 3), ReLU()])], (1, 8, 8))
    msg = str(e.value)
    assert "layer 1 (Residual)" in msg and "(2, 8, 8)" in msg and "(2, 6, 6)" in msg


def test_residual_inner_error_names_inner_index():
    with pytest.raises(LayerError, match=r"layer 1\.1 \(Dense\)"):
        Sequential([Conv2D(2, 1), Residual([ReLU(), Dense(3)])], (1, 4, 4))


def test_transpose_padding_removes_output():
    with pytest.raises(LayerError, match=r"layer 0 \(ConvTranspose2D\)"):
        Sequential([ConvTranspose2D(2, 1, padding=1)], (1, 1, 1))


@pytest.mark.parametrize("make,words", [
    (lambda: Conv2D(-1, 3), ["Conv2D", "out_channels", "-1"]),
    (lambda: Conv2D(0, 3), ["Conv2D", "out_channels", "0"]),
    (lambda: Conv2D(4, 3, stride=0), ["Conv2D", "stride", "0"]),
    (lambda: Conv2D(4, 0), ["Conv2D", "kernel_size", "0"]),
    (lambda: Conv2D(4, 3, padding=-1), ["Conv2D", "padding", "-1"]),
    (lambda: Conv2D(4, (3, 3, 3)), ["kernel_size", "(3, 3, 3)"]),
    (lambda: Conv2D(4, 2.5), ["Conv2D kernel_size", "2.5"]),
    (lambda: Conv2D(4, 3, stride=(1, 1.5)), ["Conv2D stride", "1.5"]),
    (lambda: Conv2D(4, "3"), ["Conv2D kernel_size", "'3'"]),
    (lambda: MaxPool2D((2.7, 2)), ["MaxPool2D kernel_size", "2.7"]),
    (lambda: ConvTranspose2D(4, 3, stride=(1, 0)), ["ConvTranspose2D", "stride", "0"]),
    (lambda: Dense(0), ["Dense", "out_features", "0"]),
    (lambda: Dense(-3), ["Dense", "out_features", "-3"]),
    (lambda: Dense(2.5), ["Dense", "out_features", "2.5"]),
    (lambda: MaxPool2D(0), ["MaxPool2D", "0"]),
    (lambda: AvgPool2D(2, stride=0), ["AvgPool2D", "0"]),
    (lambda: Dropout(1), ["Dropout", "p", "1"]),
    (lambda: Dropout(-0.1), ["Dropout", "p", "-0.1"]),
    (lambda: LeakyReLU(1.5), ["LeakyReLU", "alpha", "1.5"]),
    (lambda: BatchNorm(momentum=0), ["BatchNorm", "momentum"]),
    (lambda: BatchNorm(eps=0), ["BatchNorm", "eps"]),
    (lambda: Residual([]), ["Residual"]),
])
def test_bad_layer_arguments(make, words):
    with pytest.raises(LayerError) as e:
        make()
    for w in words:
        assert w in str(e.value)


def test_bad_model_arguments():
    with pytest.raises(LayerError, match="input_shape"):
        Sequential([ReLU()], (0, 3))
    with pytest.raises(LayerError, match="input_shape"):
        Sequential([ReLU()], "abc")
    with pytest.raises(LayerError, match="input_shape"):
        Sequential([ReLU()], [2.5])
    with pytest.raises(LayerError, match="input_shape"):
        Sequential([ReLU()], "12")
    assert Sequential([ReLU()], np.array([1, 4, 4])).input_shape == (1, 4, 4)
    with pytest.raises(LayerError, match="non-empty"):
        Sequential([], (3,))
    with pytest.raises(LayerError, match="layer 1"):
        Sequential([ReLU(), "Dense"], (3,))


def test_wrong_input_shape_at_forward():
    model = Sequential([Dense(2)], (3,))
    with pytest.raises(LayerError, match=r"\(4,\).*\(3,\)"):
        model.forward(np.zeros((5, 4)))


def test_batchnorm_batch_of_one_in_training():
    model = Sequential([Dense(3), BatchNorm()], (2,))
    with pytest.raises(LayerError, match=r"layer 1 \(BatchNorm\)"):
        model.forward(np.zeros((1, 2)), train=True)
    assert model.forward(np.zeros((1, 2)), train=False).shape == (1, 3)


@pytest.mark.parametrize("kw,words", [
    (dict(lr=0), ["learning rate", "0"]),
    (dict(lr=-0.1), ["learning rate", "-0.1"]),
    (dict(lr=float("nan")), ["learning rate"]),
    (dict(lr=0.1, momentum=1.0), ["momentum"]),
    (dict(lr=0.1, momentum=-0.5), ["momentum"]),
    (dict(lr=0.1, weight_decay=-1), ["weight_decay"]),
    (dict(lr="fast"), ["learning rate", "fast"]),
])
def test_bad_sgd_arguments(kw, words):
    model = Sequential([Dense(2)], (3,))
    with pytest.raises(OptimizerError) as e:
        SGD(model.parameters(), **kw)
    for w in words:
        assert w in str(e.value)


def test_bad_adam_and_lr_setter():
    model = Sequential([Dense(2)], (3,))
    with pytest.raises(OptimizerError, match="learning rate"):
        Adam(model.parameters(), lr=0)
    with pytest.raises(OptimizerError, match="eps"):
        Adam(model.parameters(), eps=0)
    opt = SGD(model.parameters(), lr=0.1)
    with pytest.raises(OptimizerError):
        opt.lr = -1
    assert opt.lr == 0.1
    with pytest.raises(OptimizerError, match="1 gradients for 2 parameters"):
        opt.step([model.parameters()[0]])


# ---- summary ---------------------------------------------------------------------------
def test_lenet5_summary():
    model = load_preset("lenet5")
    assert model.param_count() == 61706
    rows = model.summary()
    assert sum(r["params"] for r in rows) == 61706
    assert [r["params"] for r in rows] == [156, 0, 0, 2416, 0, 0, 48120, 0, 0, 10164, 0, 850]
    assert [tuple(r["output_shape"]) for r in rows] == [
        (6, 28, 28), (6, 28, 28), (6, 14, 14), (16, 10, 10), (16, 10, 10), (16, 5, 5),
        (120, 1, 1), (120, 1, 1), (120,), (84,), (84,), (10,)]
    rf = [r["receptive_field"] for r in rows]
    assert rf[0] == 5 and rf[1] == 5 and rf[2] == 6 and rf[3] == 14 and rf[5] == 16
    assert rf[6] == 32
    assert rf[9] == "full"
    assert "61,706" in model.summary_text()


def test_conv_summary_params():
    model = Sequential([Conv2D(10, 5, padding=2)], (3, 32, 32))
    row = model.summary()[0]
    assert row["output_shape"] == [10, 32, 32]
    assert row["params"] == 760 == model.param_count()
    assert row["receptive_field"] == 5
    assert row["config"] == {"type": "Conv2D", "out_channels": 10, "kernel_size": 5,
                             "padding": 2}


def test_summary_other_param_counts():
    model = Sequential([Conv2D(4, 3, bias=False), BatchNorm(), Residual([Conv2D(4, 3, padding=1),
                                                                         ReLU()]),
                        ConvTranspose2D(2, 2, stride=2), Flatten(), Dense(5), BatchNorm()],
                       (3, 6, 6))
    assert [r["params"] for r in model.summary()] == [
        108, 8, 4 * 4 * 9 + 4, 4 * 2 * 4 + 2, 0, 2 * 8 * 8 * 5 + 5, 10]
    assert model.param_count() == sum(p.size for p in model.parameters())
    assert [n for n, _ in model.named_buffers()] == [
        "1.running_mean", "1.running_var", "6.running_mean", "6.running_var"]


def test_global_avgpool_summary_and_spec():
    spec = {"name": "gap", "input_shape": [3, 8, 8], "layers": [
        {"type": "Conv2D", "out_channels": 4, "kernel_size": 3}, {"type": "ReLU"},
        {"type": "GlobalAvgPool2D"}, {"type": "Dense", "out_features": 2}]}
    model = model_from_spec(spec)
    rows = model.summary()
    assert [tuple(r["output_shape"]) for r in rows] == [(4, 6, 6), (4, 6, 6), (4,), (2,)]
    assert [r["params"] for r in rows] == [112, 0, 0, 10]
    # the pooled value of a channel depends on every input pixel
    assert [r["receptive_field"] for r in rows] == [3, 3, "full", "full"]
    assert model.to_spec() == spec
    with pytest.raises(LayerError, match="GlobalAvgPool2D.*image input"):
        model_from_spec({"input_shape": [5], "layers": [{"type": "GlobalAvgPool2D"}]})


def test_mlp_summary_has_no_receptive_field():
    model = load_preset("mlp2")
    widths = [2] + [c["out_features"] for c in read_spec("mlp2")["layers"] if c["type"] == "Dense"]
    assert model.param_count() == sum((a + 1) * b for a, b in zip(widths, widths[1:]))
    assert all(r["receptive_field"] is None for r in model.summary())


# ---- specs ----------------------------------------------------------------------------
def test_issue_example_json_builds():
    model = model_from_spec(json.loads(LENET_JSON))
    assert model.name == "lenet5"
    assert model.output_shape == (10,)
    assert model.param_count() == 156 + 6 * 14 * 14 * 10 + 10
    assert model.forward(np.zeros((2, 1, 28, 28))).shape == (2, 10)


@pytest.mark.parametrize("name", preset_names())
def test_every_preset_builds_and_runs(name):
    assert set(preset_names()) >= {"lenet5", "lab7-cnn", "mlp0", "mlp1", "mlp2"}
    spec = read_spec(name)
    model = load_preset(name)
    assert model.input_shape == tuple(spec["input_shape"])
    x = np.random.default_rng(0).standard_normal((3,) + model.input_shape)
    y = model.forward(x)
    assert y.shape == (3,) + model.output_shape and np.isfinite(y).all()
    again = model_from_spec(json.loads(json.dumps(model.to_spec())))
    assert again.to_spec() == model.to_spec()


def test_preset_file_and_path_agree(tmp_path):
    p = tmp_path / "copy.json"
    p.write_text((presets_dir() / "lenet5.json").read_text())
    assert read_spec(str(p))["layers"] == read_spec("lenet5")["layers"]


def test_load_preset_adapts_shape_and_classes():
    model = load_preset("lab7-cnn", input_shape=(1, 32, 32), num_classes=4)
    assert model.input_shape == (1, 32, 32) and model.output_shape == (4,)


def _everything():
    return Sequential([
        Conv2D(4, (3, 2), stride=(2, 1), padding=(1, 0), bias=False, init="xavier"),
        BatchNorm(momentum=0.2, eps=1e-3), LeakyReLU(0.05),
        Residual([Conv2D(4, 3, padding=1), Tanh(), Conv2D(4, 1)]),
        MaxPool2D(2, 1), AvgPool2D((2, 1)), ConvTranspose2D(3, 2, stride=2, padding=1),
        Sigmoid(), Flatten(), Dropout(0.25), Dense(7, init="he"), ReLU(), Dense(3)],
        (2, 9, 8), seed=11, name="everything")


def test_spec_round_trip_keeps_config_and_weights():
    model = _everything()
    spec = model.to_spec()
    text = json.dumps(spec)
    again = model_from_spec(json.loads(text), seed=11)
    assert again.to_spec() == spec
    assert again.output_shape == model.output_shape
    assert repr(again.layers[0]) == repr(model.layers[0])
    for (n1, a), (n2, b) in zip(model.named_parameters(), again.named_parameters()):
        assert n1 == n2
        np.testing.assert_array_equal(a, b)
    assert spec["layers"][0] == {"type": "Conv2D", "out_channels": 4, "kernel_size": [3, 2],
                                 "stride": [2, 1], "padding": [1, 0], "bias": False,
                                 "init": "xavier"}
    assert spec["layers"][1] == {"type": "BatchNorm", "momentum": 0.2, "eps": 1e-3}
    assert spec["layers"][3]["layers"][0] == {"type": "Conv2D", "out_channels": 4,
                                              "kernel_size": 3, "padding": 1}


@pytest.mark.parametrize("spec,words", [
    ({"input_shape": [3], "layers": [{"type": "Dense2", "out_features": 2}]},
     ["layer 0", "unknown layer type", "Dense2"]),
    ({"input_shape": [3], "layers": [{"type": "ReLU"}, {"type": "Dense", "units": 2}]},
     ["layer 1", "Dense", "unknown parameter", "units"]),
    ({"layers": [{"type": "ReLU"}]}, ["input_shape"]),
    ({"name": "x", "input_shape": [3]}, ["layers"]),
    ({"input_shape": [3], "layers": []}, ["layers", "non-empty"]),
    ({"input_shape": [3], "layers": [{"out_features": 2}]}, ["layer 0", "type"]),
    ({"input_shape": [3], "layers": [{"type": "Dense"}]}, ["layer 0", "Dense", "out_features"]),
    ({"input_shape": [3], "layers": [{"type": "Dropout", "p": 1}]}, ["layer 0", "Dropout", "p"]),
    ({"input_shape": [1, 5, 5], "layers": [{"type": "Conv2D", "out_channels": 2,
                                            "kernel_size": 3, "stride": 0}]},
     ["layer 0", "Conv2D", "stride"]),
    ({"input_shape": [1, 5, 5], "layers": [{"type": "Residual", "layers": [
        {"type": "Conv2D", "out_channels": 1, "kernel_size": 3, "foo": 1}]}]},
     ["layer 0.0", "foo"]),
    ({"input_shape": [1, 5, 5], "layers": [{"type": "Residual"}]}, ["layer 0", "Residual"]),
    ({"input_shape": [1, 5, 5], "layers": [{"type": "Conv2D", "out_channels": 2,
                                            "kernel_size": "abc"}]},
     ["layer 0", "Conv2D", "kernel_size", "abc"]),
    ({"input_shape": [1, 5, 5], "layers": [{"type": "AvgPool2D", "kernel_size": 2.5}]},
     ["layer 0", "AvgPool2D", "kernel_size", "2.5"]),
    ({"input_shape": [3], "layers": [{"type": "Dropout", "p": "half"}]},
     ["layer 0 (Dropout)", "half"]),
    ({"input_shape": [3], "layers": [{"type": "LeakyReLU", "alpha": None}]},
     ["layer 0 (LeakyReLU)"]),
])
def test_malformed_specs(spec, words):
    with pytest.raises(SpecError) as e:
        model_from_spec(spec)
    for w in words:
        assert w in str(e.value)


def test_spec_must_be_an_object():
    with pytest.raises(SpecError, match="JSON object"):
        model_from_spec([{"type": "ReLU"}])


def test_shape_errors_from_specs_are_layer_errors():
    spec = {"input_shape": [1, 28, 28], "layers": [{"type": "Conv2D", "out_channels": 2,
                                                    "kernel_size": 3}, {"type": "Dense",
                                                                        "out_features": 2}]}
    with pytest.raises(LayerError, match=r"layer 1 \(Dense\).*\(2, 26, 26\)"):
        model_from_spec(spec)


def test_bad_json_file(tmp_path):
    p = tmp_path / "broken.json"
    p.write_text('{"input_shape": [3], "layers": [\n  {"type": "ReLU"},\n')
    with pytest.raises(SpecError) as e:
        read_spec(str(p))
    assert "broken.json" in str(e.value) and "malformed JSON" in str(e.value)
    assert "line 3" in str(e.value)
    q = tmp_path / "list.json"
    q.write_text("[1, 2]")
    with pytest.raises(SpecError, match="JSON object"):
        read_spec(str(q))
    with pytest.raises(SpecError, match="no such model file"):
        read_spec(str(tmp_path / "missing.json"))
    with pytest.raises(SpecError, match="unknown preset 'lenet6'.*lenet5"):
        read_spec("lenet6")


def test_read_spec_names_from_file(tmp_path):
    p = tmp_path / "tiny.json"
    p.write_text('{"input_shape": [3], "layers": [{"type": "Dense", "out_features": 2}]}')
    spec = read_spec(str(p))
    assert spec["name"] == "tiny"
    assert model_from_spec(spec).name == "tiny"


# ---- determinism -------------------------------------------------------------------------
def _train(seed, steps=20):
    model = Sequential([Dense(16), ReLU(), Dropout(0.5), Dense(16), Tanh(), Dropout(0.2),
                        Dense(3)], (5,), seed=seed)
    opt = SGD(model.parameters(), lr=0.1, momentum=0.9)
    loss = SoftmaxCrossEntropy()
    rng = np.random.default_rng(123)     # the same data for every model
    for _ in range(steps):
        x = rng.standard_normal((8, 5))
        y = rng.integers(0, 3, size=8)
        loss.forward(model.forward(x, train=True), y)
        model.backward(loss.backward())
        opt.step(model.gradients())
    return model


def test_same_seed_is_bit_identical():
    a, b = _train(4), _train(4)
    for (n, p), q in zip(a.named_parameters(), b.parameters()):
        assert p.tobytes() == q.tobytes(), n


def test_different_seeds_differ():
    a, b = _train(4), _train(5)
    assert any(not np.array_equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_dropout_masks_depend_on_seed_not_on_init():
    """Same weights, different seeds -> different dropout masks -> different training."""
    a, b = _train(4, steps=0), _train(5, steps=0)
    b.load_state(a.state())
    x = np.ones((4, 5))
    assert not np.array_equal(a.forward(x, train=True), b.forward(x, train=True))
    np.testing.assert_array_equal(a.forward(x), b.forward(x))


def test_state_round_trip():
    a = _train(1, steps=3)
    b = _train(2, steps=0)
    b.load_state(a.state())
    x = np.random.default_rng(0).standard_normal((4, 5))
    np.testing.assert_array_equal(a.forward(x), b.forward(x))
    with pytest.raises(LayerError, match="shape"):
        Sequential([Dense(4)], (5,)).load_state(
            {"0.weight": np.zeros((3, 5)), "0.bias": np.zeros(4)})


# ---- hooks and helpers ---------------------------------------------------------------------
def test_activations_hook():
    model = load_preset("lenet5")
    x = np.random.default_rng(0).standard_normal((2, 1, 28, 28))
    acts = model.activations(x)
    assert len(acts) == len(model.layers) + 1
    assert acts[0][0] == "input" and acts[0][1].shape == (2, 1, 28, 28)
    for (label, a), layer in zip(acts[1:], model.layers):
        assert label == f"{layer.index} {layer.type}"
        assert a.shape == (2,) + layer.output_shape
    np.testing.assert_allclose(acts[-1][1], model.forward(x), rtol=1e-6)
    np.testing.assert_allclose(acts[2][1], np.tanh(acts[1][1]), rtol=1e-6)
    assert model._forward_hooks == []          # the temporary hook is removed


def test_forward_and_backward_hooks():
    model = Sequential([Dense(4), ReLU(), Dense(2)], (3,))
    seen_f, seen_b = [], []
    rm_f = model.add_forward_hook(lambda layer, y: seen_f.append((layer.index, y.shape)))
    rm_b = model.add_backward_hook(lambda layer: seen_b.append(
        (layer.index, layer.grads.get("weight") is not None)))
    model.forward(np.zeros((5, 3)))
    model.backward(np.ones((5, 2), np.float32))
    assert seen_f == [(0, (5, 4)), (1, (5, 4)), (2, (5, 2))]
    assert seen_b == [(2, True), (1, False), (0, True)]
    rm_f(), rm_b()
    model.forward(np.zeros((5, 3)))
    assert len(seen_f) == 3


def test_gradient_norms():
    model = _everything()
    names = [n for n, _ in model.named_parameters()]
    assert all(v == 0.0 for v in model.gradient_norms().values())
    x = np.random.default_rng(0).standard_normal((3, 2, 9, 8))
    loss = SoftmaxCrossEntropy()
    loss.forward(model.forward(x, train=True), np.array([0, 1, 2]))
    model.backward(loss.backward())
    norms = model.gradient_norms()
    assert list(norms) == names
    assert "3.0.weight" in norms and "3.2.bias" in norms   # inside the Residual
    assert all(v > 0 for v in norms.values()), norms
    for n, g in zip(names, model.gradients()):
        assert norms[n] == pytest.approx(float(np.linalg.norm(g.astype(np.float64))), rel=1e-5)


def test_predict_proba_and_predict():
    model = load_preset("mlp1")
    x = np.random.default_rng(0).standard_normal((50, 2))
    p = model.predict_proba(x, batch_size=7)
    assert p.shape == (50, 2)
    np.testing.assert_allclose(p.sum(axis=1), 1, rtol=1e-6)
    assert (p >= 0).all()
    np.testing.assert_array_equal(model.predict(x), model.forward(x).argmax(axis=1))
    binary = Sequential([Dense(4), Tanh(), Dense(1)], (2,))
    pb = binary.predict_proba(x)
    np.testing.assert_allclose(pb.sum(axis=1), 1, rtol=1e-6)
    np.testing.assert_allclose(pb[:, 1], 1 / (1 + np.exp(-binary.forward(x)[:, 0])), rtol=1e-5)
    assert model.predict_logits(x[:0]).shape == (0, 2)


@pytest.mark.parametrize("name", ["lenet5", "mlp2"])
def test_float32_model_stays_float32(name):
    model = load_preset(name)
    assert all(p.dtype == np.float32 for p in model.parameters())
    x = np.random.default_rng(0).standard_normal((2,) + model.input_shape)   # float64 input
    assert model.forward(x).dtype == np.float32
    assert model.forward(x, train=True).dtype == np.float32
    loss = SoftmaxCrossEntropy()
    loss.forward(model.forward(x, train=True), np.array([0, 1]))
    gx = model.backward(loss.backward())
    assert gx.dtype == np.float32
    assert all(g.dtype == np.float32 for g in model.gradients())
    opt = Adam(model.parameters())
    opt.step(model.gradients())
    assert all(p.dtype == np.float32 for p in model.parameters())


def test_float32_batchnorm_dropout_stay_float32():
    model = Sequential([Conv2D(3, 3), BatchNorm(), Dropout(0.3), Flatten(), Dense(4),
                        BatchNorm()], (1, 5, 5))
    x = np.random.default_rng(0).standard_normal((3, 1, 5, 5))
    for train in (True, False):
        y = model.forward(x, train=train)
        assert y.dtype == np.float32
        assert model.backward(np.ones_like(y)).dtype == np.float32
    assert all(b.dtype == np.float32 for _, b in model.named_buffers())
