"""Main window: tabs, menus and shortcuts, export, about, close prompt, open/save."""
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtWidgets import QMessageBox

from nnviz.gui.dialogs import versions_text
from nnviz.gui.mainwindow import MainWindow


def _actions(w):
    out = {}
    for menu_action in w.menuBar().actions():
        for a in menu_action.menu().actions():
            if a.text():
                out[a.text().replace("&", "")] = a
    return out


def test_tabs_menus_and_status(window):
    titles = [window.tabs.tabText(i) for i in range(window.tabs.count())]
    assert titles[0] == "Playground"
    acts = _actions(window)
    for name in ("New", "Open model…", "Save model", "Save model as…", "Export view as PNG…",
                 "Quit", "Start / Pause", "Step", "Reset", "About nnviz"):
        assert name in acts, name
    keys = [s.toString() for s in acts["Step"].shortcuts()]
    assert "S" in keys and "Ctrl+Right" in keys
    assert [s.toString() for s in acts["Start / Pause"].shortcuts()] == ["Space"]
    assert "backend" in window.backend_label.text()


def test_about_lists_versions():
    text = versions_text("cpu", "test-device")
    for lib in ("numpy", "numba", "PySide6", "pyqtgraph", "cpu", "test-device"):
        assert lib in text


def test_export_png(window, tmp_path, qtbot):
    path = tmp_path / "view.png"
    assert window.export_png(str(path))
    assert path.stat().st_size > 1000


def test_status_bar_follows_training(window, qtbot):
    pg = window.playground
    window.start_pause()
    qtbot.waitUntil(lambda: "steps/s" in window.speed_label.text(), timeout=15000)
    assert "step" in window.epoch_label.text()
    window.start_pause()
    qtbot.waitUntil(lambda: not pg.controller.running, timeout=2000)


def test_close_prompt_cancel_keeps_window(qtbot, monkeypatch):
    w = MainWindow()
    qtbot.addWidget(w)
    w.show()
    pg = w.playground
    w.step()
    qtbot.waitUntil(lambda: pg.trainer.steps == 1, timeout=15000)
    assert pg.is_dirty()
    monkeypatch.setattr("nnviz.gui.mainwindow.ask_save_discard",
                        lambda *a: QMessageBox.Cancel)
    assert not w.close()
    assert w.isVisible()
    monkeypatch.setattr("nnviz.gui.mainwindow.ask_save_discard",
                        lambda *a: QMessageBox.Discard)
    assert w.close()


def test_save_and_open_roundtrip(window, tmp_path, qtbot, monkeypatch):
    pytest.importorskip("nnviz.io")
    from nnviz import io as nio
    if not hasattr(nio, "save_model") or not hasattr(nio, "load_model"):
        pytest.skip("nnviz.io not complete yet")
    pg = window.playground
    pg.start()
    qtbot.waitUntil(lambda: pg.trainer.steps > 30, timeout=15000)
    path = tmp_path / "pg.h5"
    assert window.save_model_as(str(path))     # saved at a step boundary while training
    window.start_pause()
    qtbot.waitUntil(lambda: not pg.controller.running, timeout=2000)
    assert window.save_model(str(path))
    assert not pg.is_dirty()
    w_saved = pg.run.model.state()
    pg.rebuild()
    assert window.open_model(str(path))
    for k, v in w_saved.items():
        assert (pg.run.model.state()[k] == v).all()


def test_open_bad_file_shows_message(window, tmp_path, monkeypatch):
    pytest.importorskip("nnviz.io")
    shown = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: shown.append(a[2]))
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"not a model")
    assert not window.open_model(str(bad))
    assert shown and window.isVisible()


def test_backend_menu_refuses_cuda_without_gpu_and_keeps_running(qtbot, window, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    from nnviz.engine import backend
    shown = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a, **k: shown.append(a[2]))
    monkeypatch.setattr(backend, "cuda_available", lambda: False)
    window.backend_actions["cuda"].trigger()
    assert shown and "cuda" in shown[0].lower() and "no CUDA GPU" in shown[0]
    assert window.backend_name == "cpu"
    assert window.backend_actions["cpu"].isChecked() and not window.backend_actions["cuda"].isChecked()
    window.backend_actions["cpu"].trigger()
    assert "backend: cpu" in window.backend_label.text()


def test_app_starts_shows_main_window_and_fills_inspector(tmp_path):
    # run_app end to end in its own process (the splash, warm-up, window, the inspector's
    # deferred first snapshot), quitting once the inspector has shown its feature maps
    import subprocess
    import sys
    script = r"""
import os
os.environ["QT_QPA_PLATFORM"] = "offscreen"
os.environ["NNVIZ_NO_RESTORE_PROMPT"] = "1"
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
from nnviz.gui import app, mainwindow
show = mainwindow.MainWindow.show
def check(win, tries=[0]):
    ins = [w for w in win.workspaces if type(w).__name__ == "InspectorWorkspace"][0]
    tries[0] += 1
    if ins._last_snapshot is not None or tries[0] > 200:
        print("shown", ins.trainer is not None, ins._last_snapshot is not None, flush=True)
        QApplication.quit()
    else:
        QTimer.singleShot(25, lambda: check(win))
def shown(self):
    show(self)
    QTimer.singleShot(0, lambda: check(self))
mainwindow.MainWindow.show = shown
raise SystemExit(app.run_app("cpu", []))
"""
    env = dict(__import__("os").environ, NNVIZ_AUTOSAVE_DIR=str(tmp_path))
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                       timeout=300, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split() == ["shown", "True", "True"]


def test_startup_probe_reports_the_window(tmp_path):
    # what `nnviz bench --only window` times
    import os
    import subprocess
    import sys
    r = subprocess.run([sys.executable, "-m", "nnviz.gui.startup_probe"], capture_output=True,
                       text=True, timeout=300, env=dict(os.environ, NNVIZ_AUTOSAVE_DIR=str(tmp_path)))
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split() == ["shown"]
