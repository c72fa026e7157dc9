"""The inspector's Explain tab and weight/gradient distributions (pytest-qt, offscreen):
what it shows equals nnviz.explain on the trained weights, the work runs off the UI
thread, activation maximisation can be cancelled, mistakes can be clicked, PNG export."""
import os
import threading

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from nnviz.explain import explain, mistakes, occlusion
from nnviz.gui.inspector import InspectorWorkspace
from nnviz.gui.inspector.compute import synthetic_dataset


@pytest.fixture
def ws(qtbot):
    """The inspector on a small synthetic set, LeNet-5 trained 30 steps, shown."""
    from nnviz.gui.style import apply_style
    apply_style()
    w = InspectorWorkspace(dataset=synthetic_dataset("shapes", (1, 28, 28), 10, n_train=128,
                                                     n_test=60, seed=1))
    qtbot.addWidget(w)
    w.resize(1024, 740)
    w.show()
    w.batch_spin.setValue(32)
    w.select_model("lenet5")
    w.train_sync(30)
    yield w
    assert w.shutdown()


def _explained(ws, qtbot):
    ws.tabs.setCurrentWidget(ws.explain)
    qtbot.waitUntil(lambda: ws.explain._last is not None and not ws.explain.busy(), timeout=20000)
    return ws.explain._last


def test_explain_tab_shows_the_engine_explanations_of_the_trained_weights(ws, qtbot):
    ws.select_test_input(5)
    ws.explain.occ_size.setValue(6)
    ws.explain.occ_stride.setValue(3)
    res = _explained(ws, qtbot)
    qtbot.waitUntil(lambda: ws.explain._last["size"] == 6 and ws.explain._last["stride"] == 3
                    and not ws.explain.busy(), timeout=20000)
    res = ws.explain._last
    model, x = ws.trainer.model, ws.dataset.x_test[5]
    want = explain(model, x, cam_layer=3, baseline=ws.explain._black())
    np.testing.assert_allclose(res["exp"].saliency, want.saliency, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(res["exp"].grad_x_input, want.grad_x_input, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(res["exp"].grad_cam, want.grad_cam, rtol=1e-5, atol=1e-7)
    occ = occlusion(model, x, size=6, stride=3, fill=ws.explain._fill())
    np.testing.assert_allclose(res["occ"].heatmap, occ.heatmap, atol=1e-6)
    assert res["exp"].cam_layer == 3 and ws.explain.cam_layer.currentData() == 3
    # another class: the panel explains that class
    ws.explain.class_combo.setCurrentIndex(2 + 4)      # "class 4"
    ws.explain.request()
    qtbot.waitUntil(lambda: int(ws.explain._last["exp"].target[0]) == 4, timeout=20000)
    assert ws.explain.t_sal.picture._img is not None


def test_views_follow_training_live(ws, qtbot):
    _explained(ws, qtbot)
    step0 = ws.explain.mirror.step
    ws.live_tabs.setCurrentWidget(ws.explain.distributions)
    ws.tabs.setCurrentWidget(ws.explain)
    ws.controller.start()
    qtbot.waitUntil(lambda: ws.explain.mirror.step > step0 + 5, timeout=20000)
    ws.controller.pause()
    qtbot.waitUntil(lambda: not ws.controller.running, timeout=5000)
    # the distributions recorded while training (the view is on another tab)
    h = ws.explain.history
    qtbot.waitUntil(lambda: len(h.steps) >= 1, timeout=10000)
    _, _, dens = h.density("weights", "0 Conv2D")
    np.testing.assert_allclose(dens.sum(axis=1), 1.0)


def test_activation_maximisation_runs_off_the_ui_thread_and_cancels(ws, qtbot):
    ws.tabs.setCurrentWidget(ws.explain)
    ws.explain.views.setCurrentWidget(ws.explain.maxview)
    mv = ws.explain.maxview
    mv.follow.setChecked(False)
    threads = []
    import nnviz.gui.inspector.explain_panel as panel
    real = panel.maximize

    def spy(*a, **kw):
        threads.append(threading.current_thread())
        return real(*a, **kw)
    panel.maximize = spy
    try:
        ws.explain.run_maximize()
        qtbot.waitUntil(lambda: mv.result is not None, timeout=30000)
        assert threads and threads[0] is not threading.main_thread()
        assert mv.choice() == 3 and len(mv.result.units) == 16
        assert mv.grid.count() == 16 and np.all(mv.result.final > mv.result.start)
        mv.grid.tileClicked.emit(2)              # one filter enlarged, with its trace
        assert mv.side.isVisible() and mv.detail.title.text() == "layer 3, filter 2"
        np.testing.assert_array_equal(mv.trace_curve.getData()[1], mv.result.trace[:, 2])
        mv.steps.setValue(2000)
        mv.result = None
        ws.explain.run_maximize()
        qtbot.waitUntil(lambda: mv.cancel_btn.isEnabled() and mv.bar.value() > 0, timeout=20000)
        mv.cancel_btn.click()
        qtbot.waitUntil(lambda: mv.result is not None, timeout=20000)
        assert mv.result.cancelled and mv.result.steps < 2000 and mv.run_btn.isEnabled()
        ws.reset()                      # a new network: the old pictures go
        assert mv.result is None and mv.grid.count() == 0 and ws.explain._last is None
    finally:
        panel.maximize = real


def test_mistakes_gallery_lists_every_wrong_image_and_explains_a_click(ws, qtbot):
    grey_ds = ws.dataset
    ws.tabs.setCurrentWidget(ws.explain)
    ws.explain.left_tabs.setCurrentWidget(ws.explain.mistakes)
    mv = ws.explain.mistakes
    qtbot.waitUntil(lambda: mv.result is not None, timeout=20000)
    want = mistakes(ws.trainer.model, grey_ds.x_test, grey_ds.y_test)
    assert mv.shown() == want.index.tolist() and len(want) > 0
    mv.grid.tileClicked.emit(0)
    idx = int(want.index[0])
    assert ws._inspect_what == f"test image #{idx}"
    qtbot.waitUntil(lambda: ws.explain._last is not None and
                    np.array_equal(ws.explain._last["x"], grey_ds.x_test[idx]), timeout=20000)
    assert int(ws.explain._last["exp"].target[0]) == int(want.pred[0])


def test_export_png(ws, qtbot, tmp_path):
    _explained(ws, qtbot)
    p = tmp_path / "why.png"
    assert ws.explain.export_png(str(p)) and p.stat().st_size > 1000
    from nnviz.gui.inspector.explain_widgets import export_widget
    q = tmp_path / "dist.png"
    assert export_widget(ws.explain.distributions, str(q)) and q.stat().st_size > 1000


def test_hidden_views_cost_nothing_but_the_distribution_records(ws, qtbot, monkeypatch):
    from nnviz.gui.inspector.explain_jobs import JobThread
    kinds = []
    real = JobThread.submit
    monkeypatch.setattr(JobThread, "submit",
                        lambda self, kind, fn: (kinds.append(kind), real(self, kind, fn)))
    ws.tabs.setCurrentIndex(1)                     # the feature maps, not the Explain tab
    step0 = ws.trainer.steps
    ws.controller.start()
    qtbot.waitUntil(lambda: ws.trainer.steps > step0 + 20 and "hist" in kinds, timeout=20000)
    ws.controller.pause()
    qtbot.waitUntil(lambda: not ws.controller.running, timeout=5000)
    assert set(kinds) == {"hist"}
    kinds.clear()
    ws.tabs.setCurrentWidget(ws.explain)           # shown: the visible view is computed
    qtbot.waitUntil(lambda: "explain" in kinds, timeout=10000)
    assert "mistakes" not in kinds and "maximize" not in kinds   # their tabs are not shown


def test_a_drawing_is_explained(ws, qtbot):
    x = np.zeros((1, 28, 28), np.float32)
    x[0, 4:24, 13:15] = 2.0                       # a vertical stroke
    ws.select_input(x, None, "your drawing")
    res = _explained(ws, qtbot)
    assert res["what"] == "your drawing" and res["label"] is None
    np.testing.assert_array_equal(res["x"], x)
    assert "your drawing" in ws.explain.input_label.text()
