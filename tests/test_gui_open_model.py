"""File ▸ Open model… with Keras files: chosen by content, shown in the CNN inspector, input
scaling asked once, trained, saved as nnviz HDF5; a model no dataset fits names its shape."""
import os

import numpy as np
import pytest

pytest.importorskip("pytestqt")
os.environ.setdefault("KERAS_BACKEND", "torch")

from PySide6.QtWidgets import QFileDialog, QMessageBox


@pytest.fixture
def shown(monkeypatch):
    out = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: out.append(a[2]))
    return out


def _keras_lenet(keras, path, classes=10, size=28):
    L = keras.layers
    keras.utils.set_random_seed(0)
    m = keras.Sequential([keras.Input((size, size, 1)), L.Conv2D(4, 5, activation="relu"),
                          L.MaxPooling2D(2), L.Flatten(), L.Dense(classes, activation="softmax")])
    m.save(path)
    return m


def test_open_keras_model_asks_scaling_trains_and_saves(window, qtbot, tmp_path, monkeypatch,
                                                        shown):
    keras = pytest.importorskip("keras")
    km = _keras_lenet(keras, tmp_path / "k.keras")
    from nnviz.gui import import_dialog
    monkeypatch.setattr(QFileDialog, "getOpenFileName",
                        staticmethod(lambda *a, **k: (str(tmp_path / "k.keras"), "")))
    asked = []
    monkeypatch.setattr(import_dialog, "ask_input_scaling",
                        lambda parent, loaded: asked.append(loaded.meta["format"]) or "mnist")
    assert window.open_model() is True, shown
    assert asked == ["Keras"]
    ws = window.current
    assert ws.title == "CNN inspector"
    model, ds = ws.trainer.model, ws.dataset
    assert ds.input_shape == (1, 28, 28)
    assert [r["type"] for r in ws.editor.result["rows"]] == [
        "InputScaling", "Conv2D", "ReLU", "MaxPool2D", "Flatten", "Dense"]
    # the views and the trainer feed the model the dataset through the scaling it expects
    scale = model.layers[0]
    assert scale.data_mean == pytest.approx(ds.normalization["mean"])
    pixels = ds.x_test[:3] * np.float32(ds.normalization["std"][0]) + \
        np.float32(ds.normalization["mean"][0])
    want = keras.ops.convert_to_numpy(km(((pixels - 0.1307) / 0.3081).transpose(0, 2, 3, 1)))
    np.testing.assert_allclose(model.predict_proba(ds.x_test[:3]), want, rtol=1e-4, atol=1e-6)
    # another dataset that fits keeps the imported weights (and rebinds the scaling)
    from nnviz.gui.inspector.compute import synthetic_dataset
    w0 = model.state()
    other = synthetic_dataset("other", (1, 28, 28), 10, n_train=64, n_test=20, seed=3)
    ws.set_dataset(other)
    assert ws.trainer.model is model and ws.trainer.dataset is other
    assert all(np.array_equal(v, model.state()[k]) for k, v in w0.items())
    assert scale.data_mean == pytest.approx(other.normalization["mean"])
    # fine-tune, then save as nnviz HDF5 (Save asks for a name: the .keras is not overwritten)
    ws.train_sync(2)
    assert ws.trainer.steps == 2
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        staticmethod(lambda *a, **k: (str(tmp_path / "tuned.h5"), "")))
    assert window.save_model()
    from nnviz.io import load_model
    back = load_model(tmp_path / "tuned.h5")
    assert back.meta["format"] == "nnviz HDF5" and back.model.layers[0].type == "InputScaling"
    assert shown == []


def test_open_keras_model_no_dataset_fits_names_the_shape(window, tmp_path, shown):
    keras = pytest.importorskip("keras")
    _keras_lenet(keras, tmp_path / "odd.h5", classes=3, size=20)
    assert window.open_model(str(tmp_path / "odd.h5")) is False
    assert len(shown) == 1 and "needs inputs of shape (1, 20, 20)" in shown[0], shown
    assert "Open dataset" in shown[0]
    assert window.isVisible()


def test_export_onnx_from_the_menu(window, tmp_path, shown):
    pytest.importorskip("nnviz.io.onnx_format")
    ort = pytest.importorskip("onnxruntime")
    ws = window.workspace("CNN inspector")
    window.tabs.setCurrentWidget(ws)
    ws.select_model("lenet5")
    assert window.export_onnx(str(tmp_path / "m.onnx")), shown
    sess = ort.InferenceSession(str(tmp_path / "m.onnx"))
    x = ws.dataset.x_test[:2]
    got = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    np.testing.assert_allclose(got, ws.trainer.model.predict_logits(x), rtol=1e-5, atol=1e-5)
