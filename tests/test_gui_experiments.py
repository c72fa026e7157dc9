"""The Experiments tab (pytest-qt): both arms train in the worker thread, the curves, the
gradient-norm view and the sample images follow; lessons 12 and 13 open and reproduce."""
import threading

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from nnviz.gui.experiments import ExperimentsWorkspace
from nnviz.gui.lessons import ADAPTERS, workspace_key
from nnviz.lessons import LessonError, builtin_lessons


@pytest.fixture
def ws(qtbot):
    w = ExperimentsWorkspace()
    qtbot.addWidget(w)
    w.resize(1024, 700)
    w.show()
    qtbot.waitExposed(w)
    yield w
    w.shutdown()
    w.close()
    w.deleteLater()
    qtbot.wait(10)


def _shown(qtbot, ws, steps):
    qtbot.waitUntil(lambda: ws.last_snapshot is not None and ws.last_snapshot.status.steps == steps,
                    timeout=60000)
    return ws.last_snapshot


def test_protocol(ws):
    assert ws.title == "Experiments" and ws.controller is not None
    assert ws.save_payload() is None and not ws.is_dirty() and ws.open_loaded(object()) is False
    assert workspace_key(ws) == "experiments"


def test_training_runs_in_the_worker_and_the_views_follow(ws, qtbot):
    threads = []
    run = ws.run
    step = run.step
    run.step = lambda: (threads.append(threading.current_thread()), step())[1]
    ws.step()
    _shown(qtbot, ws, 1)
    ws.start_pause()
    qtbot.waitUntil(lambda: run.steps >= 20, timeout=60000)
    ws.start_pause()
    assert not ws.play_button.isChecked()
    # the worker's last snapshot after pausing: taken when it had stopped stepping
    qtbot.waitUntil(lambda: not ws.last_snapshot.status.running, timeout=60000)
    snap = ws.last_snapshot
    n = snap.status.steps
    assert run.steps == n
    assert threads and threading.main_thread() not in threads      # the UI thread ran no step
    assert ws.step_label.text() == f"Step {n}"
    # the curves hold every step of both arms; the gradient view the engine's norms, per layer
    for label in ("plain", "residual"):
        x, _ = ws.curves.curve_data("loss", label)
        assert x[-1] == n and len(x) == n
    for i, key in enumerate(("plain", "residual")):
        layers, norms = ws.grads.layer_data(i)
        want = run.probes[key]["layer_grad_norms"]
        assert list(layers) == list(range(1, 21 + 1))
        np.testing.assert_allclose(norms, np.maximum(want, 1e-30), rtol=1e-6)
    assert snap.grad_norms[0][0] < snap.grad_norms[1][0]          # the first layer: plain gets less
    ws.curves.x_combo.setCurrentText("epochs")                      # per epoch: one point each
    x, _ = ws.curves.curve_data("accuracy", "plain")
    assert list(x) == list(range(1, run.epoch + 1))


def test_translation_shows_samples_with_both_nets_answers(ws, qtbot):
    ws.exp_combo.setCurrentIndex(ws.exp_combo.findData("translation"))
    assert ws.experiment.name == "translation" and ws.diag.currentWidget() is ws.samples
    assert len(ws.samples.images) == 8 and ws.translation_opts.isVisible() and not ws.vanishing_opts.isVisible()
    ws.train_sync(100)
    snap = _shown(qtbot, ws, 100)
    x, _ = ws.experiment.samples()
    for k, text in enumerate(ws.samples.texts):
        for arm in ws.run.arms:
            p = arm.model.predict_proba(x)[k, 1]
            assert f"{arm.label} {p:.2f}" in text.text()
    assert "centre" in ws.samples.text_of(0) and "elsewhere" in ws.samples.text_of(1)
    mlp, cnn = snap.sample_probs
    assert np.array_equal(mlp > 0.5, [True] + [False] * 7)            # the MLP: right on every one
    assert np.ptp(cnn) < 1e-5                                          # the CNN: the same answer for all
    # presentation mode: larger pictures, the same answers
    from nnviz.gui import style
    small, text = ws.samples.images[0].pixmap().width(), ws.samples.text_of(3)
    try:
        style.set_scale(1.5)
        assert ws.samples.images[0].pixmap().width() > small and ws.samples.text_of(3) == text
    finally:
        style.set_scale(1.0)


def test_options_rebuild_the_nets_and_bad_lesson_states_name_the_field(ws):
    ws.exp_combo.setCurrentIndex(ws.exp_combo.findData("translation"))
    assert "not even the border" in ws.caption.text()
    ws.pad_combo.setCurrentIndex(ws.pad_combo.findData("same"))
    assert ws.experiment.options["cnn_padding"] == "same" and "padding leaks position" in ws.caption.text()
    assert [l.use_bias for l in ws.run.arms[1].model.layers if l.type == "Conv2D"] == [True] * 3
    ws.exp_combo.setCurrentIndex(ws.exp_combo.findData("vanishing"))
    ws.depth_spin.setValue(5)
    assert ws.experiment.options["depth"] == 5 and ws.run.steps == 0
    assert len(ws.run.probes["plain"]["layer_grad_norms"]) == 6
    with pytest.raises(LessonError, match="state.depth: expected a whole number"):
        ADAPTERS["experiments"].apply(ws, {"experiment": "vanishing", "depth": 500})
    with pytest.raises(LessonError, match="state.experiment: expected one of"):
        ADAPTERS["experiments"].apply(ws, {"experiment": "nope"})
    assert ws.experiment.options["depth"] == 5          # a refused state changes nothing


def _within(value, bound):
    if isinstance(bound, dict):
        return bound.get("min", -np.inf) <= value <= bound.get("max", np.inf)
    return value == bound


@pytest.mark.parametrize("title", ["Vanishing gradients and skip connections", "Translation"])
def test_experiment_lessons_reproduce_in_the_app(window, qtbot, title):
    lesson = next(l for l in builtin_lessons() if l.title == title)
    assert window.show_lessons(title) is not None
    ws = window.current
    assert workspace_key(ws) == "experiments"
    for i, step in enumerate(lesson.steps):
        if i:
            assert window.lessons.next()
        assert ws.run.steps == step.state["train_steps"]
        got = ws.run.metrics()          # tests/test_lessons.py holds evaluate() to the same bounds
        for key, bound in step.expect.items():
            assert _within(got[key], bound), (title, i, key, got[key])
        _shown(qtbot, ws, step.state["train_steps"])
