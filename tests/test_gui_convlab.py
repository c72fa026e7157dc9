"""The convolution-lab workspace shows the engine's numbers (pytest-qt, offscreen)."""
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
import pytest

pytest.importorskip("pytestqt")
from PySide6.QtCore import Qt

from nnviz.gui.convlab import ConvLabWorkspace

M = "\u2212"


def _num(texts):
    return [[float(t.replace(M, "-")) for t in row] for row in texts]


@pytest.fixture
def lab(qtbot):
    w = ConvLabWorkspace(parent=None)
    qtbot.addWidget(w)
    yield w
    w.shutdown()


def test_protocol(lab):
    assert lab.title == "Convolution lab"
    assert lab.controller is None
    assert lab.is_dirty() is False
    assert lab.save_payload() is None
    assert lab.open_loaded(object()) is False


def test_output_grid_shows_worked_example(lab):
    assert _num(lab.conv.output_grid.texts()) == [[-5, -4, 0, 8], [-10, -2, 2, 3],
                                             [0, -2, -4, -7], [-3, -2, -3, -16]]
    assert lab.conv.output_grid.item(0, 0).text() == M + "5"
    assert lab.conv.dot_label.text().endswith("= " + M + "5")
    assert "3\u00b71 + 0\u00b70 + 1\u00b7(" + M + "1)" in lab.conv.dot_label.text()
    assert not lab.conv.warning_label.isVisibleTo(lab)


def test_stride_three_on_seven_does_not_fit(lab):
    lab.conv.input_size.setValue(7)
    lab.conv.stride.setValue(3)
    assert lab.conv.output_shape() == (2, 2)
    assert "2.33" in lab.conv.formula_label.text()
    assert "(7 \u2212 3 + 2\u00b70) / 3 + 1 = 2.33 \u2192 2" in lab.conv.formula_label.text()
    warn = lab.conv.warning_label.text()
    assert lab.conv.warning_label.isVisibleTo(lab)
    assert "does not fit" in warn and "2.33" in warn and "floors" in warn
    lab.conv.stride.setValue(2)
    assert not lab.conv.warning_label.isVisibleTo(lab)


def test_stepping_moves_window_and_dot_text(lab, qtbot):
    assert lab.conv.current_cell() == (0, 0)
    assert lab.conv.input_grid.frame[:4] == (0, 0, 3, 3)
    before = lab.conv.dot_label.text()
    with qtbot.waitSignal(lab.status, timeout=1000):
        lab.step()
    assert lab.conv.current_cell() == (0, 1)
    assert lab.conv.input_grid.frame[:4] == (0, 1, 3, 3)
    assert lab.conv.output_grid.frame[:2] == (0, 1)
    assert lab.conv.dot_label.text() != before and lab.conv.dot_label.text().endswith("= " + M + "4")
    qtbot.mouseClick(lab.conv.step_button, Qt.LeftButton)
    assert lab.conv.current_cell() == (0, 2)
    lab.conv.back()
    assert lab.conv.current_cell() == (0, 1)
    lab.conv.set_cell(3, 3)
    assert lab.conv.dot_label.text().endswith("= " + M + "16")
    lab.reset()
    assert lab.conv.current_cell() == (0, 0)
    lab.start_pause()
    assert lab.conv.is_playing()
    lab.start_pause()
    assert not lab.conv.is_playing()


def test_clicking_output_cell_jumps(lab):
    lab.conv.output_grid.cellClicked.emit(2, 1)
    assert lab.conv.current_cell() == (2, 1)
    assert lab.conv.input_grid.frame[:2] == (2, 1)


def test_padding_shows_zero_border_and_stride(lab):
    lab.conv.padding.setValue(1)
    assert lab.conv.input_grid.rowCount() == 8
    assert lab.conv.input_grid.item(0, 0).text() == "0"
    assert not (lab.conv.input_grid.item(0, 0).flags() & Qt.ItemIsEditable)
    assert lab.conv.input_grid.item(1, 1).flags() & Qt.ItemIsEditable
    lab.conv.stride.setValue(2)
    lab.step()
    assert lab.conv.input_grid.frame[:2] == (0, 2)


def test_pooling_grid(lab):
    assert _num(lab.pool.pool_output_grid.texts()) == [[9, 2], [6, 3]]
    lab.pool.pool_mode.setCurrentText("average")
    assert _num(lab.pool.pool_output_grid.texts()) == [[3.75, 1.25], [3.75, 2]]
    assert "mean(1, 3, 2, 9) = 3.75" in lab.pool.pool_label.text()


def test_parameter_panel(lab):
    lab.params.param_in.setValue(3)
    lab.params.param_out.setValue(10)
    lab.params.param_k.setValue(5)
    lab.params.param_pad.setValue(2)
    lab.params.param_h.setValue(32)
    lab.params.param_w.setValue(32)
    assert "760" in lab.params.param_label.text()
    assert "(5\u00b75\u00b73 + 1)\u00b710 = 760" in lab.params.param_label.text()
    assert "32\u00d732\u00d710" in lab.params.param_shape_label.text()
    lab.params.param_h.setValue(128)
    lab.params.param_w.setValue(128)
    assert "128\u00d7128\u00d710" in lab.params.param_shape_label.text() and "760" in lab.params.param_label.text()


def test_flip_and_presets(lab):
    lab.conv.set_preset("Sobel vertical")
    assert lab.conv.kernel_grid.texts()[1] == ["2", "0", M + "2"]
    normal = lab.conv.output_values()
    lab.conv.flip_check.setChecked(True)
    assert lab.conv.flipped_grid.isVisibleTo(lab)
    assert lab.conv.flipped_grid.texts()[1] == [M + "2", "0", "2"]
    np.testing.assert_array_equal(lab.conv.output_values(), -normal)
    lab.conv.kernel_size.setValue(5)
    assert lab.conv.output_shape() == (2, 2)


def test_edit_input_cell_recomputes(lab):
    lab.conv.input_grid.item(0, 0).setText("4")
    assert lab.conv.output_grid.item(0, 0).text() == M + "4"


def test_image_and_trained_filters(lab):
    lab.prepare_screenshot()
    assert lab.image._fm_img.image is not None
    assert lab.trained.trained_info.text().startswith("No trained CNN")
    lab.set_trained_filters(np.random.default_rng(0).normal(size=(4, 1, 3, 3)))
    assert lab.trained.trained_view.isVisibleTo(lab) and "4 filters" in lab.trained.trained_info.text()
    lab.set_trained_filters(None)
    assert not lab.trained.trained_view.isVisibleTo(lab)


def test_transposed_panel_steps_the_notes_figure(lab):
    t = lab.tconv
    from nnviz.engine import convmath as cm
    assert t.values().shape == (5, 5) and t.mirror_values().shape == (3, 3)
    assert "(3 \u2212 1)\u00b72 \u2212 2\u00b71 + 3 = 5" in t.formula_label.text()
    assert "= 3" in t.mirror_label.text()
    # step 1: input[0, 0] = 1 times the kernel, in the top-left corner of the 7x7 sum
    assert t.steps.count == 9 and t.steps.pos == 0
    assert _num(t.part_grid.texts()) == cm.TRANSPOSED_KERNEL.tolist()
    assert t.output_grid.frame[:4] == (0, 0, 3, 3) and t.output_grid.crop == 1
    assert t.running()[0, 0] == 4 and t.running()[0, 2] == 0
    t.step()                                              # input[0, 1] = 2, two columns right
    assert t.input_grid.frame[:2] == (0, 1) and t.output_grid.frame[:2] == (0, 2)
    assert t.mirror_input.frame[:2] == (0, 2) and t.mirror_output.frame[:2] == (0, 1)
    assert _num(t.part_grid.texts()) == (2 * cm.TRANSPOSED_KERNEL).tolist()
    assert t.running()[0, 1] == 6                         # 1*2 + 2*2
    assert "input[0, 1] = 2" in t.step_label.text() and "columns 2\u20134" in t.step_label.text()
    t.steps.go(8)
    assert np.array_equal(t.running(), t.values()) and "equals the engine" in t.step_label.text()
    assert _num(t.output_grid.texts()) == t._steps[-1].full.tolist()
    # the workspace's Step moves whichever stepper was used last
    t.steps.step_button.click()
    assert lab.stepping is t and t.steps.pos == 0
    lab.step()
    assert t.steps.pos == 1 and lab.conv.current_cell() == (0, 0)
    lab.conv.step_button.click()
    assert lab.stepping is lab.conv


def test_transposed_panel_geometry_and_bad_padding(lab):
    t = lab.tconv
    t.set_problem([[1, 2], [3, 4]], np.ones((2, 2)), 2, 0)
    assert t.values().tolist() == [[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]]
    assert t.output_grid.crop == 0
    t.set_problem([[5]], [[1]], 1, 1)                     # 1x1 output, P = 1 crops it all
    assert t.values() is None and t.warning_label.isVisibleTo(lab) and "crops the whole" in t.warning_label.text()
    assert not t.steps.step_button.isEnabled()
    t.figure_button.click()
    assert t.values().shape == (5, 5) and not t.warning_label.isVisibleTo(lab)
    t.steps.go(4)                                         # the centre: input[1, 1] = 1
    t.kernel_grid.item(1, 1).setText("10")                # an edit recomputes, the step stays
    assert t.steps.pos == 4 and t.values()[2, 2] == 10 and t.running()[2, 2] == 10
    t.steps.play_button.click()                           # Play: this panel now takes Space / Pause
    assert t.is_playing() and lab.stepping is t and t.steps.play_button.text() == "Pause"
    lab.pause()
    assert not t.is_playing()


def test_connectivity_panel_counts_and_colours(lab):
    c = lab.conn
    assert c.counts() == {"dense": 25, "sparse": 13, "tied": 3}
    assert [c.count_labels[k].text() for k in ("dense", "sparse", "tied")] == ["25 weights", "13 weights", "3 weights"]
    assert "5\u00b73 \u2212 1\u00b72 = 13" in c.formula_labels["sparse"].text()
    assert "W x = (8, 14, 20, 26, 14)" in c.conv_label.text() and "gives (8, 14, 20, 26, 14)" in c.conv_label.text()
    c.n_spin.setValue(6)
    assert [c.count_labels[k].text() for k in ("dense", "sparse", "tied")] == ["36 weights", "16 weights", "3 weights"]
    c.k_spin.setValue(4)                                  # even: moved to the next odd field
    assert c.field() == (6, 5) and c.counts()["sparse"] == 6 * 5 - 6
    c.n_spin.setValue(2)                                  # k is clamped to 2n - 1 = 3
    assert c.field() == (2, 3) and c.counts() == {"dense": 4, "sparse": 4, "tied": 3}
    img = c.views["tied"].grab().toImage()
    assert img.width() > 100 and img.height() > 150


def test_lesson_adapter_round_trips_the_new_panels(lab):
    from nnviz.gui.lessons import ADAPTERS
    a = ADAPTERS["convlab"]
    lab.tconv.set_problem([[1, 2], [3, 4]], [[1, -1], [2, 0]], 1, 0, step=2)
    lab.conn.set_field(7, 5)
    state = a.capture(lab)
    assert (state["tconv_input"], state["tconv_kernel"]) == ([[1, 2], [3, 4]], [[1, -1], [2, 0]])
    assert (state["tconv_stride"], state["tconv_padding"], state["tconv_step"]) == (1, 0, 3)
    assert (state["conn_n"], state["conn_k"]) == (7, 5)
    shown = lab.tconv.running()
    lab.tconv.load_figure()
    lab.conn.set_field(5, 3)
    a.apply(lab, state)
    assert a.capture(lab) == state
    assert np.array_equal(lab.tconv.running(), shown) and lab.stepping is lab.tconv
    assert lab.conn.counts() == {"dense": 49, "sparse": 29, "tied": 5}
