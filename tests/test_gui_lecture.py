"""Issue #15, one test per item seen on screen: numeric fields, the convolution lab's trained
layer, saving, stale read-outs, Compare depths defaults, presentation mode, clicker keys and
the missing-xcb message (pytest-qt, offscreen)."""
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
import pytest

pytest.importorskip("pytestqt")
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QFileDialog, QMessageBox

from nnviz.gui import platform_check

# ---- numeric fields ------------------------------------------------------------------------


def _type(qtbot, field, text, enter=True):
    edit = field.lineEdit()
    edit.setFocus()
    edit.selectAll()
    qtbot.keyClicks(edit, text)
    if enter:
        qtbot.keyClick(edit, Qt.Key_Return)


def test_typing_a_learning_rate_gives_that_value(qtbot, window):
    pg = window.playground
    combo = pg.lr_combo
    items = combo.count()
    for text, value in (("2.5", 2.5), ("0.05", 0.05), ("0.03", 0.03), ("1e-3", 0.001),
                        ("0,3", 0.3)):
        before = pg.settings.lr
        _type(qtbot, combo, text, enter=False)
        assert pg.settings.lr == before           # nothing applied while typing
        assert combo.currentText() == text        # and the text is never rewritten
        qtbot.keyClick(combo.lineEdit(), Qt.Key_Return)
        assert pg.settings.lr == pytest.approx(value), text
        qtbot.waitUntil(lambda v=value: pg.trainer.lr == pytest.approx(v), timeout=3000)
        assert combo.count() == items             # nothing added to the drop-down


def test_invalid_learning_rate_is_shown_and_not_applied(qtbot, window):
    pg = window.playground
    combo = pg.lr_combo
    before = pg.settings.lr
    _type(qtbot, combo, "0.0x")
    assert combo.is_invalid() and combo.property("invalid")
    assert "not a number" in combo.toolTip()
    assert pg.settings.lr == before and combo.currentText() == "0.0x"
    _type(qtbot, combo, "-2")
    assert combo.is_invalid() and pg.settings.lr == before
    _type(qtbot, combo, "0.3")
    assert not combo.is_invalid() and pg.settings.lr == 0.3


def test_learning_rate_arrows_and_paste(qtbot, window):
    pg = window.playground
    combo = pg.lr_combo
    combo.setValue(0.01)
    combo.setFocus()
    qtbot.keyClick(combo, Qt.Key_Up)
    assert pg.settings.lr == 0.03
    qtbot.keyClick(combo, Qt.Key_Down)
    qtbot.keyClick(combo, Qt.Key_Down)
    assert pg.settings.lr == 0.003
    QApplication.clipboard().setText("0.25")
    combo.lineEdit().selectAll()
    combo.lineEdit().paste()
    qtbot.keyClick(combo.lineEdit(), Qt.Key_Return)
    assert pg.settings.lr == 0.25


def test_spin_fields_apply_on_enter_only(qtbot, window):
    ins = window.workspace("CNN inspector")
    batches = []
    ins.batch_spin.valueChanged.connect(batches.append)
    _type(qtbot, ins.batch_spin, "32", enter=False)
    assert batches == []                          # "3" was never applied on the way
    qtbot.keyClick(ins.batch_spin.lineEdit(), Qt.Key_Return)
    assert batches == [32]
    _type(qtbot, ins.lr_spin, "0.02")
    assert ins.lr_spin.value() == pytest.approx(0.02)
    qtbot.waitUntil(lambda: ins.trainer.lr == pytest.approx(0.02), timeout=3000)


def test_single_letter_shortcuts_do_not_fire_while_typing(qtbot, window):
    pg = window.playground
    steps = pg.trainer.steps
    window.activateWindow()
    _type(qtbot, pg.lr_combo, "0.1 Sbr ", enter=False)
    qtbot.wait(300)
    assert pg.trainer.steps == steps and not pg.controller.running
    assert pg.lr_combo.currentText() == "0.1 Sbr "


def test_convlab_cell_rejects_invalid_text_visibly(qtbot):
    from nnviz.gui.convlab import ConvLabWorkspace
    lab = ConvLabWorkspace()
    qtbot.addWidget(lab)
    lab.conv.input_grid.item(0, 0).setText("abc")
    assert lab.conv.input_grid.item(0, 0).text() == "3"          # the value in use stays
    assert lab.conv.warning_label.isVisibleTo(lab)
    assert "'abc' is not a number" in lab.conv.warning_label.text()
    lab.conv.input_grid.item(0, 0).setText("2,5")                # a decimal comma is fine
    assert lab.conv.input_grid.values[0, 0] == 2.5


# ---- convolution lab: the trained first layer ---------------------------------------------


def test_convlab_shows_the_inspector_first_layer(qtbot, window):
    ins = window.workspace("CNN inspector")
    lab = window.workspace("Convolution lab")
    window.tabs.setCurrentWidget(lab)
    assert lab.trained.trained_info.text().startswith("No trained CNN")
    window.tabs.setCurrentWidget(ins)
    ins.select_model("lenet5")
    ins.train_sync(3)
    window.tabs.setCurrentWidget(lab)
    assert lab.trained.trained_view.isVisibleTo(lab)
    assert "CNN inspector" in lab.trained.trained_info.text()
    model = ins.trainer.model
    w0 = next(np.asarray(model.B.to_host(p)) for n, p in model.named_parameters()
              if n.endswith("weight"))
    assert w0.shape == (6, 1, 5, 5)
    np.testing.assert_allclose(lab.trained.weights, w0)        # the trained weights, copied


# ---- saving ---------------------------------------------------------------------------------


def test_title_shows_file_and_modified_mark(qtbot, window, tmp_path):
    pg = window.playground
    window.tabs.setCurrentWidget(pg)
    assert "untitled" in window.windowTitle() and "Playground" in window.windowTitle()
    path = tmp_path / "net.h5"
    assert window.save_model_as(str(path))
    assert window.windowTitle().startswith("net.h5[*]") and not window.isWindowModified()
    window.step()
    qtbot.waitUntil(lambda: pg.trainer.steps == 1, timeout=10000)
    qtbot.waitUntil(window.isWindowModified, timeout=5000)


def test_save_writes_only_to_the_file_this_model_came_from(qtbot, window, tmp_path, monkeypatch):
    ins = window.workspace("CNN inspector")
    window.tabs.setCurrentWidget(ins)
    ins.train_sync(2)
    path = tmp_path / "lenet_shapes.h5"
    assert window.save_model_as(str(path))
    saved = path.read_bytes()
    asked = []
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        lambda *a, **k: (asked.append(a) or "", ""))
    assert window.windowTitle().startswith("lenet_shapes.h5")
    ins.set_dataset("color-shapes")            # a new model: not the one in the file
    ins.train_sync(2)
    assert window.model_path is None
    assert window.windowTitle().startswith("untitled[*] - CNN inspector")
    assert window.save_model() is False          # asked for a name (cancelled), wrote nothing
    assert asked and path.read_bytes() == saved


def test_quit_asks_when_training_was_started_with_space(qtbot, monkeypatch):
    from nnviz.gui.mainwindow import MainWindow
    w = MainWindow()
    qtbot.addWidget(w)
    w.show()
    pg = w.playground
    w.start_pause()                              # Space: the keyboard way
    qtbot.waitUntil(lambda: pg.trainer.steps > 3, timeout=15000)
    w.start_pause()
    asked = []
    monkeypatch.setattr("nnviz.gui.mainwindow.ask_save_discard",
                        lambda parent, what: asked.append(what) or QMessageBox.Cancel)
    assert not w.close()
    assert asked == ["Playground"]
    monkeypatch.setattr("nnviz.gui.mainwindow.ask_save_discard",
                        lambda *a: QMessageBox.Discard)
    assert w.close()


def test_opening_a_model_over_unsaved_work_asks(qtbot, window, tmp_path, monkeypatch):
    pg = window.playground
    path = tmp_path / "a.h5"
    assert window.save_model_as(str(path))
    window.step()
    qtbot.waitUntil(lambda: pg.trainer.steps == 1, timeout=10000)
    window.confirm_close = True
    asked = []
    monkeypatch.setattr("nnviz.gui.mainwindow.ask_save_discard",
                        lambda parent, what: asked.append(what) or QMessageBox.Cancel)
    assert window.open_model(str(path)) is False and asked == ["Playground"]
    assert pg.trainer.steps == 1
    window.confirm_close = False


def test_switching_the_inspector_dataset_asks_before_replacing_trained_work(qtbot, window,
                                                                            monkeypatch):
    ins = window.workspace("CNN inspector")
    window.tabs.setCurrentWidget(ins)
    ins.train_sync(2)
    window.confirm_close = True
    asked = []
    monkeypatch.setattr("nnviz.gui.mainwindow.ask_save_discard",
                        lambda parent, what: asked.append(what) or QMessageBox.Cancel)
    trainer = ins.trainer
    ins._on_data_combo("color-shapes")
    assert asked == ["CNN inspector"] and ins.trainer is trainer
    assert ins.data_combo.currentText() == "shapes"
    ins._on_model_combo("lenet5")
    assert ins.trainer is trainer and ins.model_combo.currentText() != "lenet5"
    monkeypatch.setattr("nnviz.gui.mainwindow.ask_save_discard", lambda *a: QMessageBox.Discard)
    ins._on_data_combo("color-shapes")
    assert ins.dataset.name == "color-shapes" and ins.trainer is not trainer
    window.confirm_close = False


# ---- wrong or stale ------------------------------------------------------------------------


def test_compare_caption_counters_and_curves_follow_changes(qtbot, window):
    pg = window.playground
    pg.start_compare()
    assert "learning rate 0.03" in pg.compare_info.text()
    pg.set_lr(0.1)
    assert "learning rate 0.1," in pg.compare_info.text()
    qtbot.waitUntil(lambda: pg.group.steps > 30, timeout=15000)
    qtbot.waitUntil(lambda: bool(pg.compare_curves.curve_names("loss")), timeout=5000)
    old_group = pg.group
    pg.act_combo.setCurrentText("Tanh")          # new nets: the old curves go
    assert pg.group is not old_group
    assert all(d[0].size == 0 for d in (pg.compare_curves.curve_data("loss", n)
                                        for n in pg.compare_curves.curve_names("loss"))
               if d is not None) or pg.compare_curves.curve_names("loss") == []
    assert [r.settings.activation for r in pg.group.runs] == ["Tanh"] * 3
    pg.compare.pause()
    pg.leave_compare()
    tr = pg.trainer
    assert pg.step_label.text() == f"Step {tr.steps:,}"
    assert pg.epoch_label.text() == f"Epoch {tr.epoch:,}"


def test_compare_depths_lecture_defaults(qtbot, window):
    pg = window.playground
    pg.start_compare()
    s = pg.settings
    assert (s.dataset, s.activation, s.lr) == ("circle", "ReLU", 0.03)
    assert [r.hidden for r in pg.group.runs] == [[], [4], [4, 4]]
    text = pg.compare_info.text()
    assert "straight line" in text and "convex" in text and "combine" in text


def test_convlab_status_has_no_training_counters(qtbot, window):
    ins = window.workspace("CNN inspector")
    window.tabs.setCurrentWidget(ins)
    ins.train_sync(3)
    assert "step 3" in window.epoch_label.text()
    window.tabs.setCurrentWidget(window.workspace("Convolution lab"))
    assert window.epoch_label.text() == "" and window.speed_label.text() == ""
    window.tabs.setCurrentWidget(ins)
    assert "step 3" in window.epoch_label.text()     # the inspector's, remembered


def test_inspector_says_which_test_images_each_number_uses(qtbot, window):
    ins = window.workspace("CNN inspector")
    ins.select_model("lenet5")
    ins.train_sync(len(ins.dataset.y_train) // ins.batch_spin.value() + 1)   # one epoch
    n = len(ins.dataset.y_test)
    assert f"all {n:,} test images" in ins.status_label.text()
    assert "test images" in ins.confusion.note
    assert "paused" in ins.status_label.text() and "0/s" not in ins.status_label.text()


def test_inspector_lists(window):
    ins = window.workspace("CNN inspector")
    data = [ins.data_combo.itemText(i) for i in range(ins.data_combo.count())]
    assert not {"circle", "xor", "gauss", "spiral", "moons"} & set(data)
    models = [ins.model_combo.itemText(i) for i in range(ins.model_combo.count())]
    assert "lenet5-relu" in models and "lenet5" in models and "mlp0" not in models


def test_switching_dataset_clears_the_drawing(qtbot, window):
    ins = window.workspace("CNN inspector")
    ins.canvas.stroke([(40, 40), (200, 200)])
    assert ins.canvas.array().max() > 0
    ins.set_dataset("color-shapes")
    ins.set_dataset("shapes")
    assert ins.canvas.array().max() == 0
    assert ins._inspect_what.startswith("test image")


def test_empty_confusion_cell_text(qtbot, window):
    ins = window.workspace("CNN inspector")
    ins.train_sync(2)
    m = ins._confusion.matrix
    t, p = map(int, np.argwhere(m == 0)[0])
    assert ins.show_cell(t, p) == []
    title = ins.cell_gallery.title.text()
    assert "No test image" in title and "Click one" not in title


def test_speed_readout_keeps_its_unit_and_says_paused(qtbot, window):
    pg = window.playground
    fm = pg.speed_label.fontMetrics()
    assert pg.speed_label.minimumWidth() >= fm.horizontalAdvance("99,999 steps/s")
    pg.start()
    qtbot.waitUntil(lambda: "steps/s" in pg.speed_label.text(), timeout=15000)
    pg.pause()
    qtbot.waitUntil(lambda: pg.speed_label.text() == "paused", timeout=5000)
    assert window.speed_label.text() == "paused"


# ---- projector: window size, presentation mode, clicker keys ------------------------------


def test_window_opens_within_the_available_screen(qtbot):
    from nnviz.gui.mainwindow import MainWindow
    w = MainWindow()
    w.confirm_close = False
    qtbot.addWidget(w)
    avail = w.screen().availableGeometry()
    assert w.width() <= avail.width() and w.height() <= avail.height()
    w.shutdown()


def test_presentation_mode_is_remembered(qtbot, window):
    from nnviz.gui import style
    from nnviz.gui.mainwindow import MainWindow, app_settings
    acts = {a.text().replace("&", ""): a for a in window.findChildren(type(window.start_action))}
    acts["Larger"].trigger()
    assert style.scale() == 1.25
    acts["Larger"].trigger()
    assert style.scale() == 1.5 and window.presentation_action.isChecked()
    assert float(app_settings().value("view/scale")) == 1.5
    w2 = MainWindow()
    w2.confirm_close = False
    qtbot.addWidget(w2)
    assert style.scale() == 1.5
    w2.shutdown()
    acts["Normal size"].trigger()
    assert style.scale() == 1.0 and float(app_settings().value("view/scale")) == 1.0
    keys = {s.toString() for s in acts["Larger"].shortcuts()}
    assert "Ctrl+=" in keys and acts["Normal size"].shortcut().toString() == "Ctrl+0"


def test_clicker_keys(qtbot, window):
    pg = window.playground
    window.activateWindow()
    window.tabs.setFocus()
    steps = pg.trainer.steps
    qtbot.keyClick(window.tabs, Qt.Key_PageDown)
    qtbot.waitUntil(lambda: pg.trainer.steps == steps + 1, timeout=10000)
    pg.start()
    qtbot.waitUntil(lambda: pg.controller.running, timeout=5000)
    qtbot.keyClick(window.tabs, Qt.Key_B)
    qtbot.waitUntil(lambda: not pg.controller.running, timeout=5000)
    lab = window.workspace("Convolution lab")
    window.tabs.setCurrentWidget(lab)
    window.tabs.setFocus()
    qtbot.keyClick(window.tabs, Qt.Key_PageDown)
    assert lab.conv.current_cell() == (0, 1)
    qtbot.keyClick(window.tabs, Qt.Key_PageUp)
    assert lab.conv.current_cell() == (0, 0)


# ---- start on a real desktop ----------------------------------------------------------------


def test_missing_xcb_libraries_message(monkeypatch):
    monkeypatch.setattr(platform_check, "missing_libraries",
                        lambda plugin=None: ["libxcb-icccm.so.4", "libxcb-keysyms.so.1"])
    monkeypatch.setattr(platform_check.sys, "platform", "linux")
    msg = platform_check.xcb_problem({"DISPLAY": ":0"})
    assert msg.startswith("nnviz: error:") and "\n" not in msg
    assert "libxcb-icccm.so.4, libxcb-keysyms.so.1" in msg
    assert "sudo apt install libxcb-icccm4 libxcb-keysyms1" in msg
    assert "sudo dnf install xcb-util-wm xcb-util-keysyms" in msg
    # Qt will not use xcb: nothing to say (and nothing probed)
    assert platform_check.xcb_problem({"QT_QPA_PLATFORM": "offscreen", "DISPLAY": ":0"}) is None
    assert platform_check.xcb_problem({"QT_QPA_PLATFORM": "wayland"}) is None


def test_missing_libraries_reads_ldd(monkeypatch, tmp_path):
    out = ("\tlibQt6XcbQpa.so.6 => /x/libQt6XcbQpa.so.6 (0x1)\n"
           "\tlibxcb-icccm.so.4 => not found\n\tlibxcb-cursor.so.0 => not found\n")

    class R:
        stdout = out
    monkeypatch.setattr(platform_check.shutil, "which", lambda name: "/usr/bin/ldd")
    monkeypatch.setattr(platform_check.subprocess, "run", lambda *a, **k: R())
    assert platform_check.missing_libraries(tmp_path / "libqxcb.so") == [
        "libxcb-cursor.so.0", "libxcb-icccm.so.4"]
    assert platform_check.packages_for(["libxcb-xinerama.so.0"]) == (["libxcb-xinerama0"],
                                                                      ["libxcb"])
