"""Lessons in the app: each built-in lesson opens from Help > Lessons and shows the numbers
its caption states; a sequence advances with PageDown; a saved scene reopens the same."""
import json
import subprocess
import sys

import numpy as np
import pytest
from PySide6.QtWidgets import QMessageBox

from nnviz.gui.lessons import ADAPTERS, workspace_key
from nnviz.lessons import builtin_lessons, load_lesson
from nnviz.lessons.examples import evaluate


def _lesson(title):
    return next(l for l in builtin_lessons() if l.title == title)


@pytest.fixture
def errors(monkeypatch):
    shown = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: shown.append(a[2]))
    return shown


def test_help_lessons_opens_edge_detection_and_pagedown_steps_through(window, errors):
    assert window.show_lessons("Edge detection") is not None
    ws = window.current
    assert workspace_key(ws) == "convlab"
    assert window.lesson_banner.isVisible() or not window.isVisible()
    assert "step 1 of 4" in window.lesson_banner.title.text()
    # what the grids show equals what the caption says (-5, -4, 0, 8)
    assert ws.conv.output_values()[0].tolist() == [-5, -4, 0, 8]
    window.page_down()
    assert window.lessons.index == 1
    assert ws.conv.kernel_name() == "horizontal edge"
    assert ws.conv.output_values()[0].tolist() == _lesson("Edge detection").steps[1].expect["conv_output_row0"]
    window.page_up()
    assert window.lessons.index == 0 and ws.conv.kernel_name() == "vertical edge"
    assert errors == []


@pytest.mark.parametrize("title", ["Pooling", "Convolution arithmetic", "Parameter counts",
                                   "Transposed convolution", "Connectivity"])
def test_convlab_lessons_show_their_numbers(window, errors, title):
    lesson = _lesson(title)
    window.lessons.open(lesson)
    ws = window.current
    for i, step in enumerate(lesson.steps):
        if i:
            assert window.lessons.next()
        got = evaluate(step)
        if "pool_output" in step.expect:
            assert ws.pool.values().tolist() == step.expect["pool_output"]
        if "params" in step.expect:
            assert f"= {step.expect['params']} parameters" in ws.params.param_label.text()
        if step.expect.get("output_size") and step.state["size"][0] <= 12:
            n = step.expect["output_size"]
            assert ws.conv.output_shape() == (n, n)
        if "tconv_running" in step.expect:
            assert ws.tconv.running().tolist() == step.expect["tconv_running"]
            assert ws.stepping is ws.tconv
        if "tconv_output" in step.expect:
            assert ws.tconv.values().tolist() == step.expect["tconv_output"]
        if "tconv_size" in step.expect:
            assert ws.tconv.values().shape == (step.expect["tconv_size"],) * 2
        if "mirror_size" in step.expect:
            assert ws.tconv.mirror_values().shape == (step.expect["mirror_size"],) * 2
        if "conn_dense" in step.expect:
            shown = {k: int(ws.conn.count_labels[k].text().split()[0]) for k in ("dense", "sparse", "tied")}
            assert shown == {k: step.expect[f"conn_{k}"] for k in ("dense", "sparse", "tied")}
        assert all(got[k] == v for k, v in step.expect.items())
    assert not window.lessons.next()          # the last step: PageDown falls back to Step
    assert errors == []


def test_lenet_lesson_builds_the_architecture_of_the_notes(window, errors):
    lesson = _lesson("LeNet-5 and the Lab-7 CNN")
    window.lessons.open(lesson)
    ws = window.current
    assert workspace_key(ws) == "inspector"
    model = ws.current_model()
    shapes = [list(model.input_shape)] + [list(l.output_shape) for l in model.layers
                                          if l.type not in ("ReLU", "Tanh")]
    assert shapes == lesson.steps[0].expect["shapes"]
    assert model.param_count() == lesson.steps[0].expect["param_count"]
    ws.refresh_all()
    # the filter list names this model's first layer, not the previous model's (both "0.weight")
    assert ws.filters.layer.itemText(0) == "layer 0: 6\u00d7 5\u00d75\u00d73"
    assert errors == []


def test_activation_functions_lesson_shows_its_numbers(window, errors):
    from nnviz.backprop.names import fmt
    lesson = _lesson("Activation functions")
    window.lessons.open(lesson)
    ws = window.current
    page = ws.activations
    labels = {"f": page.readout, "df": page.readout, "chain_df": page.chain_label, "max_df": page.notes}
    for i, step in enumerate(lesson.steps):
        if i:
            assert window.lessons.next()
        assert ws.pages.currentWidget() is page and page.function_name() == step.state["function"]
        for key, want in step.expect.items():
            assert page.shown[key] == want, (i, key)
            if key in labels:                   # and the number is on screen
                assert fmt(want, 4 if key == "chain_df" else 6) in labels[key].text(), (i, key)
        if "saturated_from" in step.expect:     # the shading starts there
            assert round(page.regions[-1].lo, 2) == step.expect["saturated_from"]
    assert errors == []


def _affine_residual(model, rng):
    x = rng.uniform(-6, 6, size=(400, model.input_shape[0])).astype(np.float32)
    y = model.forward(x).astype(np.float64)
    a = np.c_[x.astype(np.float64), np.ones(len(x))]
    coef, *_ = np.linalg.lstsq(a, y, rcond=None)
    return float(np.abs(a @ coef - y).max() / (np.abs(y).max() + 1e-12))


def test_linear_neurons_lesson_draws_a_straight_line_and_reproduces(window, errors):
    lesson = _lesson("Depth and decision boundaries")
    window.lessons.open(lesson, 1)
    ws = window.current
    assert workspace_key(ws) == "playground" and ws.settings.activation == "Linear"
    assert ws.trainer.steps == lesson.steps[1].state["train_steps"]
    assert _affine_residual(ws.current_model(), np.random.default_rng(0)) < 1e-4
    w1 = [np.array(p) for p in ws.current_model().parameters()]
    window.lessons.go(2)                      # ReLU: the boundary bends
    assert _affine_residual(ws.current_model(), np.random.default_rng(0)) > 1e-2
    window.lessons.go(1)                      # the same scene again: the same weights
    w2 = [np.array(p) for p in ws.current_model().parameters()]
    assert all(np.array_equal(a, b) for a, b in zip(w1, w2))
    assert errors == []


def test_logits_lesson_reaches_100_percent_and_keeps_growing(window, errors):
    from nnviz.gui.lessons import pretrain
    lesson = _lesson("Logits keep growing")
    window.lessons.open(lesson)
    ws = window.current
    tr = ws.trainer
    d = tr.dataset
    pred = ws.current_model().forward(d.x_train).argmax(1)
    assert float((pred == d.y_train).mean()) == lesson.steps[0].expect["train_accuracy"]
    norm = float(np.linalg.norm(np.asarray(ws.current_model().parameters()[0])))
    pretrain(ws.controller, 400)
    assert float(np.linalg.norm(np.asarray(ws.current_model().parameters()[0]))) > norm
    assert errors == []


def test_dropout_lesson_greys_units_and_shows_overfitting_without_dropout(window, errors, qtbot):
    lesson = _lesson("Dropout")
    window.lessons.open(lesson)
    ws = window.current
    step = lesson.steps[0]
    assert ws.trainer.steps == step.state["train_steps"] and ws.run.dropout == step.state["dropout"]
    assert ws.trainer.optimizer.config()["type"].lower() == "adam" and ws.settings.noise == step.state["noise"]
    drops = [l for l in ws.current_model().layers if l.type == "Dropout"]
    want = [(np.asarray(l.last_mask)[0] == 0).tolist() for l in drops]
    qtbot.waitUntil(lambda: ws.network.dropped_units() == want, timeout=10000)   # the view greys that mask
    assert sum(map(sum, want)) == step.expect["greyed_units"]
    window.page_down()
    assert ws.in_compare and ws.compare_variant == "dropout" and not ws.compare.running   # paused: the scene stays
    plain, dropped = ws.group.runs
    assert plain.trainer.steps == dropped.trainer.steps == lesson.steps[1].state["train_steps"]
    got = {"test_loss_no_dropout": plain.trainer.evaluate("test")[0],
           "test_loss_dropout": dropped.trainer.evaluate("test")[0],
           "test_loss_no_dropout_min": float(np.min(plain.trainer.history.epochs["test_loss"]))}
    for key, v in got.items():      # the caption's numbers (training runs 2000 steps: some slack)
        assert abs(v - lesson.steps[1].expect[key]) <= 0.02, (key, v)
    assert got["test_loss_no_dropout"] > 3 * got["test_loss_dropout"]
    assert ADAPTERS["playground"].capture(ws)["compare"] == "dropout"
    assert errors == []


def test_playground_lessons_set_every_control_and_compare_with_their_own_settings(window, errors):
    """A lesson's settings reach the controls (which the Playground reads back), and a
    comparison uses them, not Compare's first-use defaults, and opens paused."""
    ws = next(w for w in window.workspaces if workspace_key(w) == "playground")
    window.tabs.setCurrentWidget(ws)
    state = dict(_lesson("Logits keep growing").steps[0].state, train_steps=0)
    ADAPTERS["playground"].apply(ws, state)
    assert type(ws.trainer.optimizer).__name__ == "SGD" and ws.trainer.lr == state["lr"]
    got = ADAPTERS["playground"].capture(ws)
    assert all(got[k] == v for k, v in state.items()), got
    state = dict(_lesson("Depth and decision boundaries").steps[0].state, train_steps=0)
    ADAPTERS["playground"].apply(ws, state)
    assert [r.hidden for r in ws.group.runs] == [[], [8], [8, 8]] and not ws.compare.running
    assert errors == []


def test_save_lesson_and_open_it_again(window, errors, tmp_path):
    window.tabs.setCurrentWidget(next(w for w in window.workspaces if workspace_key(w) == "convlab"))
    ws = window.current
    ws.conv.set_preset("Sobel horizontal")
    ws.conv.stride.setValue(2)
    p = window.save_lesson(tmp_path / "mine.json", caption="Sobel at stride 2. Look at the size.")
    assert p is not None and load_lesson(p).steps[0].state["kernel"] == "Sobel horizontal"
    before = ws.conv.output_values().copy()
    ws.conv.set_preset("identity")
    ws.conv.stride.setValue(1)
    assert window.open_lesson(str(p))
    assert ws.conv.kernel_name() == "Sobel horizontal" and ws.conv.stride.value() == 2
    assert np.array_equal(ws.conv.output_values(), before)
    assert "Sobel at stride 2" in window.lesson_banner.caption.text()
    assert errors == []


def test_bad_lesson_shows_one_message_and_keeps_running(window, errors, tmp_path):
    p = tmp_path / "bad.json"
    p.write_text(json.dumps({"nnviz_lesson": 1, "steps": [{"workspace": "convlab", "state": {"stride": 9}}]}))
    assert not window.open_lesson(str(p))
    assert len(errors) == 1 and "state.stride" in errors[0] and "steps[0]" in errors[0]
    assert window.isVisible()


def test_every_adapter_round_trips_its_own_capture(window, errors):
    for ws in window.workspaces:
        key = workspace_key(ws)
        if key is None:
            continue
        state = ADAPTERS[key].capture(ws)
        json.dumps(state)                     # a lesson file can hold it
        state["train_steps"] = 0
        ADAPTERS[key].apply(ws, state)
        again = ADAPTERS[key].capture(ws)
        again["train_steps"] = 0
        assert again == state, key
    assert errors == []


def test_show_as_code(window):
    from nnviz.engine.codegen import pytorch_code
    window.tabs.setCurrentWidget(next(w for w in window.workspaces if workspace_key(w) == "inspector"))
    dlg = window.show_code()
    assert dlg.code("PyTorch") == pytorch_code(window.current.current_model())
    assert "keras.Model" in dlg.code("Keras")
    dlg.close()


def test_cli_refuses_a_bad_lesson_with_one_line(tmp_path):
    p = tmp_path / "x.json"
    p.write_text("[1, 2]")
    r = subprocess.run([sys.executable, "-m", "nnviz", str(p)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "a lesson must be a JSON object" in r.stderr


@pytest.mark.parametrize("state, field", [({"tconv_stride": 9}, "state.tconv_stride"),
                                          ({"tconv_input": [[1, 2]]}, "state.tconv_input"),
                                          ({"tconv_input": [[1]], "tconv_kernel": [[1]], "tconv_padding": 1},
                                           "state.tconv_padding"),
                                          ({"tconv_step": 10}, "state.tconv_step"),
                                          ({"conn_n": 99}, "state.conn_n"), ({"conn_k": 4}, "state.conn_k")])
def test_bad_convlab_state_names_the_field(window, errors, tmp_path, state, field):
    p = tmp_path / "bad.json"
    p.write_text(json.dumps({"nnviz_lesson": 1, "steps": [{"workspace": "convlab", "state": state}]}))
    assert not window.open_lesson(str(p))
    assert len(errors) == 1 and field in errors[0]


@pytest.mark.parametrize("state, field", [({"dataset": "mnist"}, "state.dataset"), ({"lr": -1}, "state.lr"),
                                          ({"hidden": [3, 99]}, "state.hidden"),
                                          ({"activation": "Swish"}, "state.activation"),
                                          ({"dropout": 1.5}, "state.dropout"),
                                          ({"compare": "width"}, "state.compare")])
def test_bad_playground_state_names_the_field(window, errors, tmp_path, state, field):
    p = tmp_path / "bad.json"
    p.write_text(json.dumps({"nnviz_lesson": 1, "steps": [{"workspace": "playground", "state": state}]}))
    assert not window.open_lesson(str(p))
    assert len(errors) == 1 and field in errors[0]


def test_batchnorm_lesson_shows_the_view_and_reproduces_its_numbers(window, errors):
    lesson = _lesson("Batch normalisation")
    window.lessons.open(lesson)
    ws = window.current
    assert workspace_key(ws) == "inspector" and ws.bn_view.isVisible()
    assert ws.live_tabs.currentWidget() is ws.bn_view and ws.bn_view.current_layer() == 1
    s = ws.bn_view.stats
    assert s is not None and s.per_channel == 64 * 28 * 28 and "50,176 values" in ws.bn_view.info.text()
    assert s.running_mean.tolist() == [0.0] * 6 and s.running_var.tolist() == [1.0] * 6
    assert ws.current_model().param_count() == lesson.steps[0].expect["param_count"]
    saved = ADAPTERS["inspector"].capture(ws)             # File > Save lesson keeps the view
    assert (saved["model"], saved["view"], saved["bn_layer"]) == ("lenet5-bn", "batch norm", 1)
    for i in (1, 2):
        assert window.lessons.next()
        step = lesson.steps[i]
        assert ws.trainer.steps == step.state["train_steps"] == 100
        loss, acc = ws.trainer.evaluate("test")
        assert (round(acc, 4), round(loss, 3)) == (step.expect["test_accuracy"], step.expect["test_loss"])
        pct = f"{acc * 100:.2f}".rstrip("0").rstrip(".")
        assert f"test accuracy {pct} %, test loss {loss:.3f}" in step.caption     # 95.6 %, 80.55 %
    assert ws.bn_view.layer_indices() == [] and ws.live_tabs.currentWidget() is ws.curves
    assert errors == []


@pytest.mark.parametrize("state, field", [({"view": "histograms"}, "state.view"),
                                          ({"model": "lenet5-bn", "bn_layer": 0}, "state.bn_layer"),
                                          ({"model": "lenet5", "bn_layer": 1}, "state.bn_layer")])
def test_bad_inspector_view_state_names_the_field(window, errors, tmp_path, state, field):
    p = tmp_path / "bad.json"
    p.write_text(json.dumps({"nnviz_lesson": 1, "steps": [{"workspace": "inspector", "state": state}]}))
    assert not window.open_lesson(str(p))
    assert len(errors) == 1 and field in errors[0]
