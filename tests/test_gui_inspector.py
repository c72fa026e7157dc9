"""CNN inspector workspace (pytest-qt, offscreen)."""
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

from nnviz.gui.inspector import InspectorWorkspace
from nnviz.gui.inspector.arch import analyze
from nnviz.gui.inspector.compute import canvas_to_input, confusion_matrix, downsample, synthetic_dataset
from nnviz.gui.inspector.editor import ArchitectureEditor
from nnviz.gui.inspector.views import FeatureMapView, GradientFlowView


@pytest.fixture(scope="module")
def grey_ds():
    return synthetic_dataset("shapes", (1, 28, 28), 10, n_train=128, n_test=60, seed=1)


@pytest.fixture
def ws(qtbot, grey_ds):
    from nnviz.gui.style import apply_style
    apply_style()
    w = InspectorWorkspace(dataset=grey_ds)
    qtbot.addWidget(w)
    w.batch_spin.setValue(32)
    yield w
    assert w.shutdown()


def _lenet(w):
    w.select_model("lenet5")
    assert w.trainer is not None and w.trainer.model.name == "lenet5"


# ------------------------------------------------------------------ Qt-free parts
def test_arch_analysis_conv_arithmetic_and_params():
    r = analyze({"input_shape": [3, 32, 32], "layers": [
        {"type": "Conv2D", "out_channels": 10, "kernel_size": 5, "padding": 2}]})
    row = r["rows"][0]
    assert r["ok"] and row["shape_text"] == "32×32×10" and row["params"] == 760
    assert row["arithmetic"] == "(32 − 5 + 2·2)/1 + 1 = 32"
    assert row["rf"] == "5×5"


def test_arch_analysis_refuses_impossible_layer_without_raising():
    r = analyze({"input_shape": [1, 5, 5], "layers": [
        {"type": "Conv2D", "out_channels": 4, "kernel_size": 7}, {"type": "ReLU"}]})
    assert not r["ok"] and r["error_row"] == 0
    assert "larger than the padded input" in r["error"]
    assert analyze({"input_shape": [1, 8, 8], "layers": []})["error"]
    assert analyze({"input_shape": [1, 8, 8], "layers": [{"type": "Bogus"}]})["error_row"] == 0


def test_downsample_and_confusion_helpers():
    img = np.zeros((280, 280), np.float32)
    img[:10, :10] = 255
    small = downsample(img, (28, 28))
    assert small.shape == (28, 28) and small[0, 0] == 255 and small[1:, 1:].max() == 0
    x = canvas_to_input(img.astype(np.uint8), (1, 28, 28), {"mean": [0.5], "std": [0.25]})
    assert x.shape == (1, 28, 28) and np.isclose(x[0, 0, 0], 2.0) and np.isclose(x[0, 5, 5], -2.0)
    m = confusion_matrix([0, 1, 1, 2], [0, 1, 2, 2], 3)
    assert m.sum() == 4 and m[1, 2] == 1


# ------------------------------------------------------------------ views on their own
def test_feature_map_view_alone(qtbot):
    v = FeatureMapView()
    qtbot.addWidget(v)
    v.set_maps([("0 Conv2D", np.random.rand(4, 12, 12)), ("1 ReLU", np.random.rand(4, 12, 12))])
    assert v.layers() == [("0 Conv2D", 4, (12, 12)), ("1 ReLU", 4, (12, 12))]
    assert [n for _, n in v.shown_tiles()] == [4, 4]
    with qtbot.waitSignal(v.mapClicked) as sig:
        v._rows[0][1].tileClicked.emit(2)
    assert sig.args == ["0 Conv2D", 2] and "map 2" in v.detail.caption


def test_gradient_flow_view_alone(qtbot):
    g = GradientFlowView()
    qtbot.addWidget(g)
    g.set_series([1, 2, 3], {"0.weight": [1e-3, 1e-4, 1e-5], "2.weight": [1, 2, 3]})
    assert g.series_names() == ["0.weight", "2.weight"]


# ------------------------------------------------------------------ editor
def test_editor_updates_shapes_and_refuses_impossible_layers(qtbot):
    e = ArchitectureEditor()
    qtbot.addWidget(e)
    e.set_spec({"name": "t", "input_shape": [3, 32, 32], "layers": [
        {"type": "Conv2D", "out_channels": 10, "kernel_size": 5, "padding": 2}, {"type": "ReLU"},
        {"type": "Flatten"}, {"type": "Dense", "out_features": 10}]}, num_classes=10)
    assert e.table.item(0, 2).text() == "32×32×10"
    assert e.table.item(0, 4).text().startswith("760")
    assert e.trainable()
    e.edit_field(0, "out_channels", 4)
    assert e.table.item(0, 2).text() == "32×32×4"
    assert e.table.item(0, 4).text().startswith("304")     # 4*(5*5*3+1)
    # a 5x5 map, then a kernel 7 conv: refused with a message, no exception
    e.set_spec({"name": "t", "input_shape": [1, 5, 5], "layers": [
        {"type": "Conv2D", "out_channels": 2, "kernel_size": 3, "padding": 1},
        {"type": "Flatten"}, {"type": "Dense", "out_features": 10}]}, num_classes=10)
    assert e.trainable()
    e.edit_field(0, "kernel_size", 7)
    e.edit_field(0, "padding", 0)
    assert not e.trainable()
    assert "larger than the padded input" in e.message.text()
    assert e.table.item(0, 0).background().color().red() == 255
    # add / move / remove
    n = len(e.layers())
    e.select_row(0)
    e.add_layer("ReLU")
    assert len(e.layers()) == n + 1 and e.layers()[1]["type"] == "ReLU"
    e.move_layer(1, -1)
    assert e.layers()[0]["type"] == "ReLU"
    e.remove_layer(0)
    assert len(e.layers()) == n
    e.add_layer("Residual", at=1)
    assert e.layers()[1]["type"] == "Residual"


def test_workspace_disables_train_while_invalid(ws):
    w = ws
    w.editor.edit_field(0, "kernel_size", 40)
    assert not w.play_btn.isEnabled()
    assert "larger" in w.editor.message.text()
    w.editor.edit_field(0, "kernel_size", 3)
    assert w.play_btn.isEnabled()


# ------------------------------------------------------------------ workspace
def test_lenet_feature_maps(ws):
    _lenet(ws)
    layers = ws.features.layers()
    shapes = [(n, hw) for _, n, hw in layers]
    assert shapes[:6] == [(6, (28, 28)), (6, (28, 28)), (6, (14, 14)), (16, (10, 10)),
                          (16, (10, 10)), (16, (5, 5))]
    assert shapes[6] == (120, (1, 1))
    assert [n for _, n in ws.features.shown_tiles()] == [n for _, n, _ in layers]
    assert ws.filters.current()[1].shape == (6, 1, 5, 5)


def test_filters_change_after_training_steps(ws, qtbot):
    _lenet(ws)
    before = ws.filters.current()[1].copy()
    for _ in range(3):
        with qtbot.waitSignal(ws.controller.snapshot, timeout=20000):
            ws.step()
    assert ws.trainer.steps == 3
    after = ws.filters.current()[1]
    assert not np.allclose(before, after)
    assert ws.is_dirty()


def test_confusion_matrix_sums_to_test_size(ws, grey_ds):
    ws.train_sync(5)          # 128 / 32 = 4 steps per epoch: one epoch passes
    m = ws.confusion.matrix
    assert m.shape == (10, 10) and m.sum() == len(grey_ds.y_test)
    t, p = np.unravel_index(np.argmax(m), m.shape)
    idx = ws.show_cell(int(t), int(p))
    assert len(idx) == m[t, p] == ws.cell_gallery.count() or ws.cell_gallery.count() == 48
    assert all(grey_ds.y_test[i] == t for i in idx)
    ws.cell_gallery.picked.emit(0)
    assert ws._inspect_label == t


def test_drawing_changes_prediction(ws, qtbot):
    ws.train_sync(3)
    ws.input_tabs.setCurrentIndex(1)
    c = ws.canvas
    c.resize(280, 280)
    c.clear()
    p0 = ws.prediction.probs.copy()

    def mouse(kind, x, y, buttons):
        ev = QMouseEvent(kind, QPointF(x, y), QPointF(x, y), Qt.LeftButton, buttons,
                         Qt.NoModifier)
        QApplication.sendEvent(c, ev)

    mouse(QEvent.MouseButtonPress, 140, 30, Qt.LeftButton)
    for y in range(30, 250, 10):
        mouse(QEvent.MouseMove, 140, y, Qt.LeftButton)
    mouse(QEvent.MouseButtonRelease, 140, 250, Qt.NoButton)
    assert c.array().max() == 255
    p1 = ws.prediction.probs.copy()
    assert not np.allclose(p0, p1)
    assert ws.features.input_view.caption.endswith("your drawing")
    c.stroke([(20, 140), (260, 140)])      # the paint API: a horizontal bar
    assert not np.allclose(ws.prediction.probs, p1)


def test_gradient_flow_one_series_per_weight(ws, qtbot):
    _lenet(ws)
    ws.train_sync(2)
    names = [n for n, _ in ws.trainer.model.named_parameters() if n.endswith(".weight")]
    assert ws.gradflow.series_names() == names
    assert len(names) == 5
    for c in ws.gradflow.curves.values():
        assert len(c.getData()[1]) >= 1


def test_background_training_and_status(ws, qtbot):
    got = []
    ws.status.connect(got.append)
    ws.start_pause()
    qtbot.waitUntil(lambda: ws.trainer.steps >= 3, timeout=20000)
    ws.start_pause()
    qtbot.waitUntil(lambda: not ws.controller.running, timeout=5000)
    qtbot.waitUntil(lambda: len(got) > 0, timeout=5000)
    assert {"steps_per_s", "epoch", "step", "elapsed"} <= set(got[-1])
    ws.reset()
    assert ws.trainer.steps == 0 and not ws.is_dirty()


def test_open_loaded_and_save_payload(ws, grey_ds):
    _lenet(ws)
    ws.train_sync(2)
    model, trainer, ds = ws.save_payload()
    assert ws.is_dirty() and ds is grey_ds        # the window marks it saved once written
    ws.mark_saved()
    assert not ws.is_dirty()
    w0 = model.state()

    class Loaded:
        pass
    ld = Loaded()
    from nnviz.engine import model_from_spec
    ld.model = model_from_spec(model.to_spec())
    ld.model.load_state(w0)
    ld.meta = {"dataset": {"name": grey_ds.name},
               "training": {"history": trainer.history.to_dict()}}
    assert ws.open_loaded(ld)
    assert ws.trainer.model is ld.model
    assert ws.editor.layers() == model.to_spec()["layers"]
    assert len(ws.trainer.history.steps["step"]) == 2
    flat = Loaded()
    flat.model = model_from_spec({"input_shape": [4], "layers": [{"type": "Dense",
                                                                  "out_features": 2}]})
    flat.meta = {}
    assert ws.open_loaded(flat) is False


def test_colour_dataset_lab7(qtbot):
    ds = synthetic_dataset("color-shapes", (3, 32, 32), 10, n_train=64, n_test=20)
    w = InspectorWorkspace(dataset=ds)
    qtbot.addWidget(w)
    w.select_model("lab7-cnn")
    assert w.features.layers()[0] == ("0 Conv2D", 6, (28, 28))
    assert not w.canvas.isEnabled()
    name, wt = w.filters.current()
    assert wt.shape == (6, 3, 5, 5) and w.filters.grid.count() == 6   # RGB composites
    assert w.shutdown()


def test_render_png(ws, qtbot, tmp_path):
    _lenet(ws)
    ws.resize(1400, 900)
    ws.show()
    ws.train_sync(8)
    ws.select_test_input(int(ws._gallery_idx[2]))
    qtbot.wait(50)
    out = os.environ.get("NNVIZ_INSPECTOR_PNG", str(tmp_path / "inspector.png"))
    assert ws.grab().save(out)
    assert os.path.getsize(out) > 10000


def test_saved_file_reopens_with_architecture_weights_history(ws, tmp_path):
    """A real nnviz.io file round trip: architecture, weights, curves, dataset selection."""
    import numpy as np

    from nnviz.io import load_model, save_model
    _lenet(ws)
    ws.train_sync(3)
    model, trainer, ds = ws.save_payload()
    path = tmp_path / "inspected.h5"
    save_model(path, model, trainer=trainer, dataset=ds)
    weights, losses = model.state(), list(trainer.history.steps["loss"])
    ws.select_model("lenet5")                # a fresh, untrained network in its place
    assert not np.array_equal(ws.trainer.model.parameters()[0], weights["0.weight"])
    assert ws.open_loaded(load_model(path))
    assert ws.editor.layers() == model.to_spec()["layers"]
    restored = ws.trainer.model.state()
    assert all(np.array_equal(restored[k], weights[k]) for k in weights)
    assert ws.trainer.history.steps["loss"] == losses and len(losses) == 3
    assert ws.dataset.name == ds.name
