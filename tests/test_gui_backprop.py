"""The Backprop lab workspace: stepping by keyboard, typing numbers, the update, export (pytest-qt)."""
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
import pytest

pytest.importorskip("pytestqt")
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLineEdit

from nnviz.backprop.names import fmt
from nnviz.gui.backprop import BackpropWorkspace
from nnviz.gui.backprop.graph import FONT_PX


@pytest.fixture
def lab(qtbot):
    w = BackpropWorkspace(parent=None)
    qtbot.addWidget(w)
    w.resize(1024, 700)
    w.show()
    qtbot.waitExposed(w)
    yield w
    w.shutdown()
    w.close()
    w.deleteLater()         # gone before the next test rescales every plot (presentation mode)
    qtbot.wait(10)


def _row(lab, label):
    return [lab.rec.nodes[k].label for k in lab.rec.param_keys].index(label)


def test_protocol(lab):
    assert lab.title == "Backprop lab"
    assert lab.controller is None and lab.is_dirty() is False
    assert lab.save_payload() is None and lab.open_loaded(object()) is False


def test_arrows_and_home_step_through_the_graph(lab, qtbot):
    z = lab.graph.items_by_key["z0,0"]
    assert lab.pos == 0 and z.value_text == "?"
    for _ in range(3):
        qtbot.keyClick(lab, Qt.Key_Right)
    assert lab.pos == 3 and lab.current_step().title == "z_h₁"
    assert z.value_text == "0.3775" and z.current
    assert "0.15·0.05 + 0.2·0.1 + 0.35 = 0.3775" in lab.explain.text()
    qtbot.keyClick(lab, Qt.Key_Left)
    assert lab.pos == 2 and z.value_text == "?" and not z.current
    qtbot.keyClick(lab, Qt.Key_Right)
    qtbot.keyClick(lab, Qt.Key_Right)
    assert lab.pos == 4 and lab.current_step().title == "h₁"
    qtbot.keyClick(lab, Qt.Key_Left)
    assert lab.pos == 3
    # to the backward step of w5: its gradient and the chain-rule product appear
    lab.go_to([s.title for s in lab.steps].index("∂L/∂w₅") + 1)
    w5 = lab.graph.items_by_key["w1,0,0"]
    assert w5.grad_text == "∂ 0.08217" and w5.current
    assert "0.741365·0.186816·0.59327 = 0.082167" in lab.explain.text()
    row = lab.params_table.texts(1)
    assert row[_row(lab, "w₅")] == "0.082167" and row[_row(lab, "w₁")] == ""   # not reached yet
    assert abs(float(lab.params_table.texts(2)[_row(lab, "w₅")]) - 0.082167041) < 1e-6
    qtbot.keyClick(lab, Qt.Key_Home)
    assert lab.pos == 0 and w5.grad_text == "" and z.value_text == "?"


def test_last_step_is_the_update_and_apply_makes_it(lab, qtbot):
    lab.go_to(len(lab.steps))
    assert lab.current_step().phase == "update"
    assert lab.graph.items_by_key["w1,0,0"].grad_text == "→ 0.3589"
    assert "w₅ ← w₅ − η·∂L/∂w₅ = 0.4 − 0.5·0.082167 = 0.358916" in lab.explain.text()
    qtbot.keyClick(lab, Qt.Key_Right)              # nothing after the last step
    assert lab.pos == len(lab.steps)
    before = lab.table.loss
    lab.apply_button.click()
    assert lab.pos == 0
    assert abs(lab.net.weight(1)[0, 0] - 0.35891648) < 1e-8
    assert lab.table.loss < before
    assert lab.params_table.texts(0)[_row(lab, "w₅")] == "0.358916"


def test_typing_numbers_applies_only_valid_ones(lab, qtbot):
    lab.go_to(3)
    lab.set_param("w1", "2.5")
    assert lab.net.weight(0)[0, 0] == 2.5
    assert lab.pos == 3 and "2.5·0.05 + 0.2·0.1 + 0.35 = 0.495" in lab.explain.text()
    r = _row(lab, "w₂")
    lab.params_table.set_cell(r, 0, "abc")
    assert lab.net.weight(0)[0, 1] == 0.2                     # not applied
    assert lab.params_table.item(r, 0).text() == "abc"        # what was typed stays visible
    assert lab.params_table.item(r, 0).background().color().name() == "#fde2e1"
    assert lab.error_label.isVisibleTo(lab) and "'abc' is not a number" in lab.error_label.text()
    lab.params_table.set_cell(r, 0, "−0.5")                   # a typographic minus is fine
    assert lab.net.weight(0)[0, 1] == -0.5
    assert not lab.error_label.isVisibleTo(lab)
    # inputs and targets
    lab.examples_table.set_cell(0, 0, "1")
    lab.examples_table.set_cell(0, 3, "0.5")
    assert lab.X[0, 0] == 1.0 and lab.T[0, 1] == 0.5
    assert lab.rec.nodes["x0"].value == 1.0 and lab.rec.nodes["t1"].value == 0.5


def test_typing_in_a_table_editor(lab, qtbot):
    """Double-click a cell, type as a user does, press Enter."""
    t = lab.params_table
    r = _row(lab, "b₁")
    t.setCurrentCell(r, 0)
    t.editItem(t.item(r, 0))
    editor = t.viewport().findChild(QLineEdit)
    assert editor is not None
    editor.selectAll()
    qtbot.keyClicks(editor, "1.25")
    qtbot.keyClick(editor, Qt.Key_Return)       # the delegate commits in a queued call
    qtbot.waitUntil(lambda: lab.net.bias(0)[0] == 1.25, timeout=5000)
    assert lab.rec.nodes["b0,0"].value == 1.25


def test_architecture_activation_and_loss_choices(lab, qtbot):
    lab.arch.setText("3-4-4-3")
    lab.arch.editingFinished.emit()
    assert lab.net.sizes == (3, 4, 4, 3)
    assert not lab.detailed_box.isChecked()          # 40 weights: one node per unit
    assert "w0,0,0" not in lab.graph.items_by_key and "z2,2" in lab.graph.items_by_key
    lab.loss.setCurrentIndex(lab.loss.findData("xent"))
    assert lab.net.loss_name == "xent"
    assert lab.examples_table.horizontalHeaderItem(3).text() == "class y"
    lab.examples_table.set_cell(0, 3, "2")
    assert lab.T[0] == 1 and lab.rec.nodes["t0"].value == 2    # shown 1-based, stored 0-based
    for bad in ("4", "1.5"):
        lab.examples_table.set_cell(0, 3, bad)
        assert lab.T[0] == 1 and "expected a whole number 1 to 3" in lab.error_label.text()
        assert lab.error_label.isVisibleTo(lab)
    lab.go_to([s.title for s in lab.steps].index("L") + 1)
    assert "softmax" in lab.explain.text()
    lab.hidden.setCurrentIndex(lab.hidden.findData("relu"))
    assert lab.net.act_name(0) == "relu"
    lab.arch.setText("2-9-1")
    lab.arch.editingFinished.emit()
    assert lab.net.sizes == (3, 4, 4, 3)
    assert "1 to 4 units" in lab.error_label.text()
    assert lab.arch.property("invalid") is True and lab.arch.text() == "2-9-1"
    lab.arch.setText("2-2-1")                        # one output: not with cross-entropy
    lab.arch.editingFinished.emit()
    assert lab.net.sizes == (3, 4, 4, 3) and lab.loss.currentData() == "xent"
    assert "at least 2 outputs" in lab.error_label.text() and lab.error_label.isVisibleTo(lab)
    assert lab.arch.text() == "2-2-1" and lab.arch.property("invalid") is True
    lab.loss.setCurrentIndex(lab.loss.findData("mse"))
    assert lab.net.sizes == (2, 2, 1) and lab.net.loss_name == "mse"
    assert not lab.arch.property("invalid") and not lab.error_label.isVisibleTo(lab)


def test_minibatch_table_has_an_average_column(lab):
    lab.n_examples.setValue(3)
    t = lab.batch_page.table
    assert [t.horizontalHeaderItem(c).text() for c in range(t.columnCount())] == \
        ["ex 1", "ex 2", "ex 3", "avg", "θ", "θ − η·avg"]
    r = _row(lab, "w₅")
    cols = [float(t.item(r, c).text().replace("−", "-")) for c in range(4)]
    assert abs(np.mean(cols[:3]) - cols[3]) < 1e-5
    assert abs(cols[3] - lab.table.average[r]) < 1e-5
    text = lab.batch_page.update_label.text()
    losses = " + ".join(fmt(v, 6) for v in lab.table.losses)
    assert f"C = (1/3)·Σ Lₑ = ({losses}) / 3 = <b>{fmt(lab.table.loss, 6)}</b>" in text
    assert f"After one step: <b>{fmt(lab.preview.loss_after, 6)}</b>" in text


def _activate(window, qtbot):
    window.raise_()
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)


def test_clicker_pagedown_pageup_in_the_window(window, qtbot, tmp_path):
    lab = window.workspace("Backprop lab")
    window.tabs.setCurrentWidget(lab)
    _activate(window, qtbot)
    for _ in range(3):
        qtbot.keyClick(lab.graph, Qt.Key_PageDown)
    assert lab.pos == 3 and lab.current_step().title == "z_h₁"
    qtbot.keyClick(lab.graph, Qt.Key_PageUp)
    assert lab.pos == 2
    qtbot.keyClick(lab.graph, Qt.Key_Home)
    assert lab.pos == 0
    # File > Export view as PNG saves the graph, at twice its scene size
    assert window.export_png(str(tmp_path / "view.png"))
    from PIL import Image
    r = lab.graph.scene().sceneRect()
    assert Image.open(tmp_path / "view.png").size == (int(r.width() * 2), int(r.height() * 2))
    window.tabs.setCurrentWidget(window.workspace("Playground"))
    qtbot.keyClick(window.tabs.currentWidget(), Qt.Key_Right)   # arrows belong to the shown tab only
    assert lab.pos == 0


def test_letters_and_arrows_type_into_fields_without_stepping(window, qtbot):
    lab = window.workspace("Backprop lab")
    window.tabs.setCurrentWidget(lab)
    lab.pages.setCurrentIndex(0)
    lab.side.setCurrentIndex(1)
    _activate(window, qtbot)          # shortcuts only fire in the active window
    qtbot.keyClick(lab.graph, Qt.Key_Right)
    assert lab.pos == 1               # they do fire outside a field
    lab.go_to(0)
    lab.lr_field.setFocus()
    qtbot.waitUntil(lab.lr_field.hasFocus, timeout=5000)
    lab.lr_field.clear()
    qtbot.keyClicks(lab.lr_field, "0.25s")           # S is the window's Step shortcut
    qtbot.keyClick(lab.lr_field, Qt.Key_Left)
    qtbot.keyClick(lab.lr_field, Qt.Key_Backspace)
    assert lab.pos == 0
    assert lab.lr_field.text() == "0.2s"
    lab.lr_field.setText("0.25")
    qtbot.keyClick(lab.lr_field, Qt.Key_Return)
    assert lab.lr == 0.25 and lab.preview.lr == 0.25
    qtbot.keyClick(lab.lr_field, Qt.Key_PageDown)    # the window keeps keys out of fields
    assert lab.pos == 0


def test_readable_at_1024x768(window, qtbot):
    lab = window.workspace("Backprop lab")
    window.tabs.setCurrentWidget(lab)
    assert lab.minimumSizeHint().width() <= 1024
    window.resize(1024, 768)
    qtbot.wait(100)
    assert window.width() == 1024
    assert lab.graph.scale_factor() * FONT_PX >= 12 - 1e-9
    assert not lab.graph.horizontalScrollBar().isVisible()


def test_autoplay_and_export(lab, qtbot, tmp_path):
    lab.speed.setValue(10)
    lab.start_pause()
    assert lab.is_playing()
    qtbot.waitUntil(lambda: lab.pos >= 2, timeout=10000)
    lab.start_pause()
    assert not lab.is_playing()
    path = tmp_path / "graph.png"
    assert lab.export_graph(str(path))
    from PIL import Image
    img = np.asarray(Image.open(path).convert("L"))
    assert img.shape[0] > 300 and img.shape[1] > 600
    assert (img < 128).mean() > 0.005          # text and lines, not an empty image


def test_vanishing_page(lab, qtbot):
    lab.pages.setCurrentWidget(lab.vanishing)
    g = lab.vanishing.data["sigmoid"]
    assert len(g) == 10 and g[0] < 1e-3 * g[-1]
    qtbot.waitUntil(lab.vanishing.sweep_complete, timeout=60000)
    from nnviz.backprop import depth_sweep
    from nnviz.gui.backprop.pages import DEPTHS
    first = [d["sigmoid"] for d in lab.vanishing._sweep_done]
    np.testing.assert_allclose(first, depth_sweep("sigmoid", DEPTHS), rtol=1e-12)
    assert first[-1] < 1e-6 * first[0]        # 30 sigmoid layers
    lab.vanishing.depth.setValue(4)
    assert len(lab.vanishing.data["relu"]) == 4
    assert "k = 4" in lab.vanishing.summary.text()


def test_clicking_a_box_jumps_to_its_step(lab, qtbot):
    item = lab.graph.items_by_key["a0,1"]
    pos = lab.graph.mapFromScene(item.mapToScene(item.boundingRect().center()))
    qtbot.mouseClick(lab.graph.viewport(), Qt.LeftButton, pos=pos)
    assert lab.current_step().title == "h₂" and lab.current_step().phase == "forward"
    lab.go_to(len(lab.rec.steps) // 2 + 2)             # in the backward pass now
    assert lab.current_step().phase == "backward"
    qtbot.mouseClick(lab.graph.viewport(), Qt.LeftButton, pos=pos)
    assert lab.current_step().title == "∂L/∂h₂"


def test_presentation_scale_keeps_it_within_1024(lab, qtbot):
    from nnviz.gui import style
    lab.go_to(21)
    try:
        style.set_scale(1.5)
        qtbot.wait(20)
        assert lab.minimumSizeHint().width() <= 1024
        assert lab.explain.font().pointSizeF() >= 1.5 * style.FONT_PT
        assert lab.pos == 21 and lab.graph.scale_factor() * FONT_PX >= 12 - 1e-9
    finally:
        style.set_scale(1.0)


def test_backprop_lesson_pages_through_the_worked_example(window, qtbot):
    from nnviz.lessons import builtin_lessons
    lesson = next(l for l in builtin_lessons() if l.title == "Backprop by hand")
    window.lessons.open(lesson)
    lab = window.current
    assert lab is window.workspace("Backprop lab")
    assert lab.current_step().title == "z_h₁" and "0.3775" in lab.explain.text()
    assert window.lessons.next()
    assert lab.current_step().title == "L" and "0.298371" in lab.explain.text()
    assert window.lessons.next()
    assert lab.current_step().title == "∂L/∂w₅" and "= 0.082167" in lab.explain.text()
    for _ in range(3):
        assert window.lessons.next()
    assert lab.current_step().phase == "update" and "0.358916" in lab.explain.text()
    assert window.lessons.next()
    assert lab.pages.currentWidget() is lab.vanishing and lab.vanishing.depth.value() == 10
    # a scene of one's own round-trips through a lesson state
    from nnviz.gui.backprop.lesson import BackpropAdapter
    lab.arch.setText("2-3-2")
    lab.arch.editingFinished.emit()
    lab.loss.setCurrentIndex(lab.loss.findData("xent"))
    lab.n_examples.setValue(3)
    lab.pages.setCurrentIndex(0)
    lab.go_to(12)
    state = BackpropAdapter().capture(lab)
    lab.load_tutorial()
    BackpropAdapter().apply(lab, state)
    assert lab.net.sizes == (2, 3, 2) and lab.net.loss_name == "xent" and len(lab.X) == 3 and lab.pos == 12
    assert BackpropAdapter().capture(lab) == state


@pytest.mark.parametrize("state, field", [({"network": "2-9-1"}, "state.network"),
                                          ({"preset": "worked example", "step": "dL/dw99"}, "state.step"),
                                          ({"network": [2, 2, 1], "inputs": [[1, "a"]]}, "state.inputs"),
                                          ({"preset": "worked example", "page": "nope"}, "state.page"),
                                          ({"function": "swish"}, "state.function"),
                                          ({"function": "leaky_relu", "slope": -0.1}, "state.slope"),
                                          ({"x": 0.125}, "state.x"), ({"chain": 99}, "state.chain")])
def test_bad_backprop_lesson_state_names_the_field(lab, state, field):
    from nnviz.gui.backprop.lesson import BackpropAdapter
    from nnviz.lessons import LessonError
    with pytest.raises(LessonError, match=field):
        BackpropAdapter().apply(lab, state)


def test_activation_page_follows_the_function_and_x(lab, qtbot):
    from nnviz.backprop import activations as act
    page = lab.activations
    lab.pages.setCurrentWidget(page)
    assert page.function_name() == "sigmoid" and not page.slope.isEnabled()
    assert "f\u2032(x) = 0.25" in page.readout.text() and "0.25\u00b9\u2070" in page.chain_label.text()
    page.function.setCurrentIndex(page.function.findData("tanh"))
    xs, ys = page.df_curve.getData()
    np.testing.assert_array_equal(ys, act.evaluate("tanh", xs)[1])
    assert "f\u2032(x) = 1<" in page.readout.text() and [r.kind for r in page.regions] == ["saturated"] * 2
    page.x_slider.setValue(-150)                     # x = -1.5: the spin box and the read-out follow
    f, df = act.evaluate("tanh", [-1.5])
    assert page.x_spin.value() == -1.5 and page.shown["df"] == pytest.approx(df[0], rel=1e-5)
    assert f"f(x) = {fmt(f[0])}" in page.readout.text()
    page.x_line.setValue(2.0)                        # dragging the line moves x too
    assert page.x_spin.value() == 2.0 and page.x_slider.value() == 200
    page.function.setCurrentIndex(page.function.findData("relu"))
    page.x_spin.setValue(-2.0)
    assert [(r.lo, r.hi, r.kind) for r in page.regions] == [(-6.0, 0.0, "dead")]
    assert "f\u2032(x) = 0<" in page.readout.text() and "Dead" in page.notes.text()
    page.function.setCurrentIndex(page.function.findData("leaky_relu"))
    assert page.slope.isEnabled()
    page.slope.setValue(0.3)
    assert page.shown["f"] == pytest.approx(-0.6) and page.shown["df"] == pytest.approx(0.3)
    assert page.regions == []                        # a slope of 0.3 is no small gradient
    page.chain.setValue(3)
    assert page.shown["chain_df"] == pytest.approx(0.3 ** 3) and "= <b>0.027</b>" in page.chain_label.text()


def test_the_worked_example_loads_when_the_tab_is_first_shown(qtbot):
    """Start-up builds the tab without running the engine (its compile waited for the
    Playground's at start-up); showing it loads the 2-2-2 example."""
    w = BackpropWorkspace(parent=None)
    qtbot.addWidget(w)
    try:
        assert w.steps == [] and w.rec is None
        w.show()
        qtbot.waitExposed(w)
        assert w.steps and w.rec is not None
        assert w.lr == 0.5 and len(w.X) == 1
    finally:
        w.shutdown()
