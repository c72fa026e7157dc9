"""The app never dies in front of a room: divergence, bad files, bad settings, crashes."""
import json
import subprocess
import sys

import h5py
import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtWidgets import QFileDialog, QMessageBox

from nnviz.gui.mainwindow import MainWindow


class Dialogs:
    """QMessageBox.critical/warning/question/information recorded instead of blocking."""

    def __init__(self, monkeypatch, answer=QMessageBox.Discard):
        self.calls = []
        self.answer = answer
        for kind in ("critical", "warning", "information"):
            monkeypatch.setattr(QMessageBox, kind, self._rec(kind, QMessageBox.Ok))
        monkeypatch.setattr(QMessageBox, "question", self._rec("question", None))

    def _rec(self, kind, result):
        def fn(parent, title, text, *a, **k):
            self.calls.append((kind, title, text))
            return self.answer if result is None else result
        return staticmethod(fn)

    def texts(self, kind=None):
        return [c[2] for c in self.calls if kind is None or c[0] == kind]


@pytest.fixture
def autosave_dir(tmp_path, monkeypatch):
    d = tmp_path / "autosave"
    monkeypatch.setenv("NNVIZ_AUTOSAVE_DIR", str(d))
    return d


@pytest.fixture
def dialogs(monkeypatch):
    return Dialogs(monkeypatch)


@pytest.fixture
def window(autosave_dir, dialogs, window):
    # the autosave folder and dialog patches are in place before conftest's window is built
    return window


def _usable(qtbot, w):
    """The window still trains: one step moves the Playground on."""
    assert w.isVisible()
    pg = w.playground
    w.tabs.setCurrentWidget(pg)
    pg.banner.dismiss()
    s = pg.trainer.steps
    w.step()
    qtbot.waitUntil(lambda: pg.trainer.steps == s + 1, timeout=5000)


# ---- divergence ----------------------------------------------------------------------------
def _train_at_lr_1e6(qtbot, window, activation):
    """Spiral, SGD at 1e6 until the banner shows; returns the Playground and the banner text."""
    pg = window.playground
    pg.dataset_combo.setCurrentText("spiral")
    pg.act_combo.setCurrentText(activation)
    pg.opt_combo.setCurrentText("SGD")
    pg.set_lr(1e6)
    pg.start()
    qtbot.waitUntil(lambda: pg.banner.isVisible(), timeout=20000)
    return pg, pg.banner.text()


def test_divergence_offers_restore_and_lower_lr(qtbot, window):
    pg, text = _train_at_lr_1e6(qtbot, window, "Linear")   # tanh saturates instead of overflowing
    assert "diverged at step" in text and "learning rate 1e+06" in text, text
    assert not pg.controller.running and not pg.play_button.isChecked()
    btn = pg.banner.action_button
    assert btn.isVisible() and "÷10" in btn.text() and "Restore last good weights" in btn.text()
    calls = []
    tr = pg.trainer
    orig = tr.restore_last_good
    tr.restore_last_good = lambda: (calls.append(1), orig())[1]
    btn.click()
    qtbot.waitUntil(lambda: bool(calls) and abs(pg.trainer.lr - 1e5) < 1e-6, timeout=5000)
    assert pg.settings.lr == pytest.approx(1e5)
    assert pg.lr_combo.currentText() == "100000"
    assert not pg.banner.isVisible()
    assert all(np.isfinite(v).all() for v in pg.trainer.model.state().values())
    assert not pg.controller.running                      # the user presses Train again
    _usable(qtbot, window)


def test_a_runaway_loss_shows_the_divergence_banner(qtbot, window):
    """Tanh saturates: the loss grows huge but stays finite, so only the runaway rule
    (issue 20) can stop it; the banner is the one NaN divergence shows."""
    pg, text = _train_at_lr_1e6(qtbot, window, "Tanh")
    assert "diverged at step" in text and "ran away" in text, text
    assert not pg.controller.running
    _usable(qtbot, window)


# ---- files -------------------------------------------------------------------------------------
@pytest.fixture
def bad_models(tmp_path):
    not_h5 = tmp_path / "notes.h5"
    not_h5.write_text("not a model")
    from nnviz.cli import main
    good = tmp_path / "good.h5"
    assert main(["train", "--model", "mlp1", "--data", "xor", "--epochs", "1",
                 "--out", str(good)]) == 0
    raw = good.read_bytes()
    trunc = tmp_path / "truncated.h5"
    trunc.write_bytes(raw[: len(raw) // 3])
    return {"not_hdf5": (not_h5, "not a readable HDF5 file"),
            "truncated": (trunc, "not a readable HDF5 file"),
            "missing": (tmp_path / "gone.h5", "no such file"),
            "good": (good, None)}


@pytest.mark.parametrize("case", ["not_hdf5", "truncated", "missing"])
def test_open_bad_model_shows_dialog_and_lives_on(qtbot, window, dialogs, bad_models,
                                                  monkeypatch, case):
    path, reason = bad_models[case]
    monkeypatch.setattr(QFileDialog, "getOpenFileName",
                        staticmethod(lambda *a, **k: (str(path), "")))
    assert window.open_model() is False
    texts = dialogs.texts()
    assert len(texts) == 1 and str(path) in texts[0] and reason in texts[0], dialogs.calls
    _usable(qtbot, window)
    # and a good file still opens afterwards
    assert window.open_model(str(bad_models["good"][0])) is True


def test_cancelled_open_dialog_is_harmless(qtbot, window, dialogs, monkeypatch):
    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(lambda *a, **k: ("", "")))
    assert window.open_model() is False and window.open_dataset() is False
    assert dialogs.calls == []


@pytest.fixture
def bad_datasets(tmp_path):
    rng = np.random.default_rng(0)
    good = tmp_path / "grey8.h5"
    with h5py.File(good, "w") as f:
        f["x_train"] = rng.integers(0, 255, (60, 8, 8), dtype=np.uint8)
        f["y_train"] = np.arange(60) % 3
        f["x_test"] = rng.integers(0, 255, (20, 8, 8), dtype=np.uint8)
        f["y_test"] = np.arange(20) % 3
    trunc = tmp_path / "truncated.h5"
    trunc.write_bytes(good.read_bytes()[:300])
    points = tmp_path / "points.h5"
    with h5py.File(points, "w") as f:
        f["x_train"] = rng.standard_normal((20, 2)).astype(np.float32)
        f["y_train"] = np.arange(20) % 2
        f["x_test"] = rng.standard_normal((10, 2)).astype(np.float32)
        f["y_test"] = np.arange(10) % 2
    empty = tmp_path / "empty_folder"
    empty.mkdir()
    return {"missing": (tmp_path / "nope.h5", "no such dataset"),
            "truncated": (trunc, "HDF5"),
            "points": (points, "needs images"),
            "empty_folder": (empty, "no class sub-folders"),
            "good": (good, None)}


@pytest.mark.parametrize("case", ["missing", "truncated", "points", "empty_folder"])
def test_open_bad_dataset_shows_dialog_and_lives_on(qtbot, window, dialogs, bad_datasets,
                                                    monkeypatch, case):
    path, reason = bad_datasets[case]
    monkeypatch.setattr(QFileDialog, "getOpenFileName",
                        staticmethod(lambda *a, **k: (str(path), "")))
    assert window.open_dataset() is False
    texts = dialogs.texts()
    assert len(texts) == 1 and str(path) in texts[0] and reason in texts[0], dialogs.calls
    _usable(qtbot, window)


def test_open_good_dataset_goes_to_inspector(qtbot, window, dialogs, bad_datasets):
    ins = window.workspace("CNN inspector")
    if ins is None:
        pytest.skip("no CNN inspector")
    assert window.open_dataset(str(bad_datasets["good"][0])) is True, dialogs.calls
    assert window.current is ins and tuple(ins.dataset.input_shape) == (1, 8, 8)


def test_invalid_layer_in_editor_is_an_inline_message(qtbot, window, dialogs):
    ins = window.workspace("CNN inspector")
    if ins is None:
        pytest.skip("no CNN inspector")
    window.tabs.setCurrentWidget(ins)
    ins.editor.edit_field(0, "kernel_size", 99)
    assert "larger" in ins.editor.message.text()
    assert not ins.play_btn.isEnabled()
    assert dialogs.calls == []                  # inline, no modal dialog
    ins.editor.edit_field(0, "kernel_size", 3)
    assert ins.editor.message.text() == "" or "⚠" not in ins.editor.message.text()
    _usable(qtbot, window)


def test_bad_learning_rate_text_is_ignored(qtbot, window):
    pg = window.playground
    lr = pg.trainer.lr
    for text in ("abc", "-1", "0", "", "1e400"):
        assert pg.lr_combo.commit(text) is False
        assert pg.lr_combo.is_invalid()
    qtbot.wait(50)
    assert pg.trainer.lr == lr
    _usable(qtbot, window)


# ---- autosave and crash recovery --------------------------------------------------------------
def test_autosave_writes_checkpoint_and_clean_exit(qtbot, autosave_dir, dialogs, monkeypatch):
    from nnviz.io import load_model
    from nnviz.io.autosave import find_crash_checkpoint, read_marker
    monkeypatch.setattr(MainWindow, "AUTOSAVE_MIN_S", 0.0)
    w = MainWindow()
    w.confirm_close = False
    qtbot.addWidget(w)
    w.show()
    assert w.autosave_action.isCheckable() and w.autosave_action.isChecked()
    assert read_marker(autosave_dir)["clean_exit"] is False
    pg = w.playground
    pg.start()
    ck = autosave_dir / "playground-checkpoint.h5"
    qtbot.waitUntil(lambda: ck.exists(), timeout=15000)
    pg.pause()
    qtbot.waitUntil(lambda: not pg.controller.running, timeout=3000)
    # an explicit save at a step boundary agrees with itself
    path = w.autosave_now(pg, wait=True)
    loaded = load_model(path)
    st = loaded.meta["training"]
    assert st["steps"] == st["optimizer"]["t"] == pg.trainer.steps
    w.close()
    assert read_marker(autosave_dir)["clean_exit"] is True
    assert find_crash_checkpoint(autosave_dir) == []
    w.deleteLater()


def test_autosave_can_be_switched_off(qtbot, window):
    window.autosave_action.trigger()
    assert window.autosaver.enabled is False
    window.autosave_action.trigger()
    assert window.autosaver.enabled is True


def _leave_crash(folder):
    """A checkpoint and a marker as left by a session that was killed."""
    from nnviz.cli import main
    from nnviz.io.autosave import MARKER_NAME
    folder.mkdir(parents=True, exist_ok=True)
    assert main(["train", "--model", "mlp1", "--data", "xor", "--epochs", "1", "--out",
                 str(folder / "playground-checkpoint.h5")]) == 0
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    (folder / MARKER_NAME).write_text(json.dumps({"pid": p.pid, "started": 0,
                                                  "clean_exit": False}))
    return folder / "playground-checkpoint.h5"


@pytest.mark.parametrize("answer", [QMessageBox.Open, QMessageBox.Discard])
def test_crash_checkpoint_is_offered_on_start(qtbot, autosave_dir, monkeypatch, answer):
    ck = _leave_crash(autosave_dir)
    monkeypatch.delenv("NNVIZ_NO_RESTORE_PROMPT", raising=False)
    d = Dialogs(monkeypatch, answer=answer)
    opened = []
    monkeypatch.setattr(MainWindow, "open_model",
                        lambda self, path=None: (opened.append(path), True)[1])
    w = MainWindow()
    w.confirm_close = False
    qtbot.addWidget(w)
    w.show()
    assert w.crash_checkpoints == [ck]
    qtbot.waitUntil(lambda: bool(d.texts("question")), timeout=3000)
    assert str(ck) in d.texts("question")[0]
    qtbot.wait(50)
    assert opened == ([str(ck)] if answer == QMessageBox.Open else [])
    w.shutdown()
    w.close()
    w.deleteLater()


def test_crash_prompt_skipped_by_env(qtbot, autosave_dir, dialogs, monkeypatch):
    _leave_crash(autosave_dir)
    monkeypatch.setenv("NNVIZ_NO_RESTORE_PROMPT", "1")
    w = MainWindow()
    w.confirm_close = False
    qtbot.addWidget(w)
    qtbot.wait(100)
    assert w.crash_checkpoints and dialogs.calls == []
    w.shutdown()
    w.close()
    w.deleteLater()


def test_restoring_a_real_checkpoint_opens_it(qtbot, autosave_dir, dialogs):
    ck = _leave_crash(autosave_dir)
    w = MainWindow()
    w.confirm_close = False
    qtbot.addWidget(w)
    w.show()
    dialogs.answer = QMessageBox.Open
    assert w.offer_crash_restore([ck]) is True, dialogs.calls
    assert w.model_path is None            # Save must ask for a real file name
    _usable(qtbot, w)
    w.shutdown()
    w.close()
    w.deleteLater()
