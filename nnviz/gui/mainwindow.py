"""The main window: workspaces in tabs, menus, status bar, open/save, close handling."""
import logging
import os
import time

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QFileDialog, QLabel, QMainWindow, QMessageBox, QTabWidget

from .dialogs import ask_save_discard, versions_text

log = logging.getLogger("nnviz")


def _workspace_classes():
    """(class, tab title) for every workspace that can be imported."""
    out = []
    from .playground import PlaygroundWorkspace
    out.append(PlaygroundWorkspace)
    try:
        from nnviz.gui.inspector import InspectorWorkspace
        out.append(InspectorWorkspace)
    except ImportError as exc:
        log.warning("CNN inspector tab skipped: %s", exc)
    try:
        from nnviz.gui.convlab import ConvLabWorkspace
        out.append(ConvLabWorkspace)
    except ImportError as exc:
        log.warning("Convolution lab tab skipped: %s", exc)
    try:
        from nnviz.gui.backprop import BackpropWorkspace
        out.append(BackpropWorkspace)
    except ImportError as exc:
        log.warning("Backprop lab tab skipped: %s", exc)
    return out


class MainWindow(QMainWindow):
    confirm_close = True      # tests set False to skip the Save/Discard/Cancel prompt
    AUTOSAVE_MIN_S = 10.0     # at most one checkpoint per 10 s (toy epochs take milliseconds)

    def __init__(self, parent=None, backend_name=None, device=None):
        super().__init__(parent)
        from nnviz.engine import backend
        B = backend.get()
        self.backend_name = backend_name or B.name
        try:
            self.device = device or B.device_name()
        except Exception:
            self.device = device or "?"
        self.setWindowTitle("nnviz - watch neural networks learn")
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.setCentralWidget(self.tabs)
        self.workspaces = []
        self.model_path = None
        for cls in _workspace_classes():
            try:
                ws = cls(parent=self)
            except Exception as exc:   # a broken tab must not take the app down
                log.exception("workspace %s failed to start", getattr(cls, "__name__", cls))
                QTimer.singleShot(0, lambda e=exc, c=cls: self.statusBar().showMessage(
                    f"{getattr(c, 'title', c.__name__)} could not start: {e}", 10000))
                continue
            self.add_workspace(ws)
        self._build_menus()
        self._build_status()
        self.tabs.currentChanged.connect(self._tab_changed)
        self.resize(1400, 900)
        self._tab_changed(self.tabs.currentIndex())
        self._start_autosave()

    # ---- autosave and crash recovery ----------------------------------------------------
    def _start_autosave(self):
        """Look for a checkpoint left by a crashed session, then start this session's marker."""
        from nnviz.train.autosave import Autosaver, find_crash_checkpoint
        self._autosave_epochs = {}
        self.crash_checkpoints = []
        try:
            self.crash_checkpoints = find_crash_checkpoint()
        except Exception:
            log.exception("looking for crash checkpoints failed")
        try:
            self.autosaver = Autosaver(every_epochs=1, min_interval_s=self.AUTOSAVE_MIN_S)
        except Exception:
            log.exception("autosave is off")
            self.autosaver = None
        if self.autosaver is None and self.autosave_action is not None:
            self.autosave_action.setEnabled(False)
        if self.crash_checkpoints and not os.environ.get("NNVIZ_NO_RESTORE_PROMPT"):
            QTimer.singleShot(0, self.offer_crash_restore)

    def offer_crash_restore(self, paths=None):
        """Ask whether to open the checkpoint a crashed session left; True when opened."""
        paths = list(paths if paths is not None else self.crash_checkpoints)
        if not paths:
            return False
        ans = QMessageBox.question(
            self, "Restore autosaved training?",
            "nnviz did not close normally last time. Open the autosaved model?\n\n"
            + "\n".join(str(p) for p in paths[:5]),
            QMessageBox.Open | QMessageBox.Discard, QMessageBox.Open)
        self.crash_checkpoints = []
        if ans != QMessageBox.Open:
            return False
        ok = self.open_model(str(paths[0]))
        if ok:
            self.model_path = None   # a checkpoint is not the user's file: Save asks for a name
        return ok

    def set_autosave(self, on):
        if self.autosaver is not None:
            self.autosaver.enabled = bool(on)

    def _autosave_tick(self, ws, d):
        """Called with each status of a workspace: save once per new epoch, in the worker."""
        saver = getattr(self, "autosaver", None)
        if saver is None or not saver.enabled:
            return
        try:
            epoch = int(d.get("epoch", 0) or 0)
        except (TypeError, ValueError):
            return
        if epoch < 1 or self._autosave_epochs.get(id(ws)) == epoch or not saver.due():
            return
        self._autosave_epochs[id(ws)] = epoch
        self.autosave_now(ws)

    def autosave_now(self, ws=None, wait=False):
        """Checkpoint `ws` (default: the current tab) at a step boundary of its worker."""
        saver = getattr(self, "autosaver", None)
        ws = ws or self.current
        ctrl = getattr(ws, "controller", None)
        if saver is None or ctrl is None:
            return None
        name = str(getattr(ws, "title", "model")).replace(" ", "-").lower()

        def save(tr):
            if tr is None or not hasattr(tr, "state_dict") or not hasattr(tr, "model"):
                return None          # e.g. compare mode's group of three: not one model
            return saver.save_now(tr, workspace=name)
        try:
            if wait:
                return ctrl.run_locked(save)
            ctrl.apply(save)
        except Exception:
            log.exception("autosave failed")
        return None

    # ---- workspaces ---------------------------------------------------------------------
    def add_workspace(self, ws):
        self.workspaces.append(ws)
        self.tabs.addTab(ws, getattr(ws, "title", type(ws).__name__))
        sig = getattr(ws, "status", None)
        if sig is not None and hasattr(sig, "connect"):
            sig.connect(lambda d, ws=ws: self._on_status(ws, d))
            sig.connect(lambda d, ws=ws: self._autosave_tick(ws, d))

    def workspace(self, title):
        for ws in self.workspaces:
            if getattr(ws, "title", "") == title:
                return ws
        return None

    @property
    def current(self):
        return self.tabs.currentWidget()

    @property
    def playground(self):
        return self.workspace("Playground")

    # ---- menus ------------------------------------------------------------------------------
    def _action(self, menu, text, slot, shortcuts=()):
        a = QAction(text, self)
        if shortcuts:
            a.setShortcuts([QKeySequence(s) for s in shortcuts])
            a.setShortcutContext(Qt.WindowShortcut)
        a.triggered.connect(slot)
        menu.addAction(a)
        return a

    def _build_menus(self):
        mb = self.menuBar()
        f = mb.addMenu("&File")
        self._action(f, "&New", self.new, [QKeySequence.New])
        self._action(f, "&Open model…", self.open_model, [QKeySequence.Open])
        self._action(f, "Open &dataset…", self.open_dataset, ["Ctrl+D"])
        self._action(f, "&Save model", self.save_model, [QKeySequence.Save])
        self._action(f, "Save model &as…", self.save_model_as, [QKeySequence.SaveAs])
        f.addSeparator()
        self._action(f, "&Export view as PNG…", self.export_png, ["Ctrl+E"])
        f.addSeparator()
        self._action(f, "&Quit", self.close, [QKeySequence.Quit])
        t = mb.addMenu("&Training")
        self.start_action = self._action(t, "Start / Pause", self.start_pause, ["Space"])
        self._action(t, "Step", self.step, ["S", "Ctrl+Right"])
        self._action(t, "Reset", self.reset, ["R", "Ctrl+R"])
        t.addSeparator()
        self.autosave_action = self._action(t, "Autosave every epoch", self.set_autosave)
        self.autosave_action.setCheckable(True)
        self.autosave_action.setChecked(True)
        b = t.addMenu("&Backend")
        self.backend_actions = {}
        for name in ("cpu", "cuda"):
            a = self._action(b, name.upper(), lambda checked=False, n=name: self.choose_backend(n))
            a.setCheckable(True)
            a.setChecked(name == self.backend_name)
            self.backend_actions[name] = a
        h = mb.addMenu("&Help")
        self._action(h, "&About nnviz", self.about)

    def choose_backend(self, name):
        """Use another backend for networks built from now on (Reset rebuilds them)."""
        from nnviz.engine import backend
        try:
            mod = backend.use(name)
        except backend.BackendError as exc:
            QMessageBox.warning(self, "nnviz backend", str(exc))
        else:
            self.backend_name, self.device = mod.name, mod.device_name()
            self.backend_label.setText(f"backend: {self.backend_name} ({self.device})")
            self.statusBar().showMessage(f"Backend {mod.name}: applies to networks built from "
                                         f"now on (Reset rebuilds the current one)", 8000)
        for n, a in self.backend_actions.items():
            a.setChecked(n == self.backend_name)

    def _build_status(self):
        sb = self.statusBar()
        self.backend_label = QLabel(f"backend: {self.backend_name} ({self.device})")
        self.speed_label = QLabel("")
        self.epoch_label = QLabel("")
        self.elapsed_label = QLabel("")
        sb.addPermanentWidget(self.speed_label)
        sb.addPermanentWidget(self.epoch_label)
        sb.addPermanentWidget(self.elapsed_label)
        sb.addWidget(self.backend_label)

    def _on_status(self, ws, d):
        if ws is not self.current:
            return
        sps = d.get("steps_per_s")
        self.speed_label.setText(f"{sps:,.0f} steps/s" if sps else "paused")
        self.epoch_label.setText(f"epoch {d.get('epoch', 0):,}  step {d.get('step', 0):,}")
        el = float(d.get("elapsed", 0) or 0)
        self.elapsed_label.setText(f"elapsed {int(el) // 60}:{int(el) % 60:02d}")

    def _tab_changed(self, _):
        self.speed_label.setText("")
        self.epoch_label.setText("")
        self.elapsed_label.setText("")

    # ---- training shortcuts (forwarded to the current tab) ------------------------------------
    def _forward(self, name):
        fn = getattr(self.current, name, None)
        if callable(fn):
            fn()

    def start_pause(self):
        self._forward("start_pause")

    def step(self):
        self._forward("step")

    def reset(self):
        self._forward("reset")

    # ---- files --------------------------------------------------------------------------------
    def new(self):
        self.model_path = None
        self._forward("reset")

    def _error(self, title, exc):
        log.warning("%s: %s", title, exc)
        QMessageBox.warning(self, title, str(exc) or type(exc).__name__)

    def open_model(self, path=None):
        if not path:
            path, _ = QFileDialog.getOpenFileName(self, "Open model", "",
                                                  "nnviz models (*.h5 *.hdf5);;All files (*)")
        if not path:
            return False
        try:
            from nnviz.io import load_model
            loaded = load_model(path)
        except Exception as exc:
            self._error("Cannot open model", exc)
            return False
        order = [self.current] + [w for w in self.workspaces if w is not self.current]
        for ws in order:
            try:
                ok = ws.open_loaded(loaded)
            except Exception as exc:
                self._error("Cannot open model", exc)
                return False
            if ok:
                self.tabs.setCurrentWidget(ws)
                self.model_path = path
                self.statusBar().showMessage(f"opened {path}", 5000)
                return True
        self._error("Cannot open model", ValueError(
            f"{path}: no workspace can show this model"))
        return False

    def open_dataset(self, path=None):
        """An .h5 dataset or an image folder for the CNN inspector; errors are a dialog."""
        if not path:
            path, _ = QFileDialog.getOpenFileName(self, "Open dataset", "",
                                                  "HDF5 datasets (*.h5 *.hdf5);;All files (*)")
        if not path:
            return False
        try:
            from nnviz.data import load_dataset
            ds = load_dataset(path)
        except Exception as exc:
            msg = str(exc) or type(exc).__name__
            self._error("Cannot open dataset", ValueError(
                msg if str(path) in msg else f"{path}: {msg}"))
            return False
        target = self.workspace("CNN inspector")
        if target is None or len(ds.input_shape) != 3 or not hasattr(target, "set_dataset"):
            self._error("Cannot open dataset", ValueError(
                f"{path}: inputs of shape {tuple(ds.input_shape)}; the CNN inspector needs "
                "images (channels, height, width)"))
            return False
        try:
            target.set_dataset(ds)
        except Exception as exc:
            self._error("Cannot open dataset", ValueError(f"{path}: {exc}"))
            return False
        self.tabs.setCurrentWidget(target)
        self.statusBar().showMessage(f"opened dataset {path}", 5000)
        return True

    def save_model(self, path=None):
        path = path or self.model_path
        if not path:
            return self.save_model_as()
        return self._save(path)

    def save_model_as(self, path=None):
        if not path:
            path, _ = QFileDialog.getSaveFileName(self, "Save model", "model.h5",
                                                  "nnviz models (*.h5)")
        if not path:
            return False
        return self._save(path)

    def _save(self, path, ws=None):
        ws = ws or self.current
        ctrl = getattr(ws, "controller", None)

        def save(_trainer):
            payload = ws.save_payload()
            if payload is None:
                raise ValueError(f"{getattr(ws, 'title', 'this tab')} has no model to save")
            model, trainer, dataset = payload
            from nnviz.io import save_model
            save_model(path, model, trainer=trainer, dataset=dataset)
        try:
            if ctrl is not None:
                ctrl.run_locked(save)
            else:
                save(None)
        except Exception as exc:
            self._error("Cannot save model", exc)
            return False
        self.model_path = path
        mark = getattr(ws, "mark_saved", None)
        if callable(mark):
            mark()
        self.statusBar().showMessage(f"saved {path}", 5000)
        return True

    def export_png(self, path=None):
        if not path:
            path, _ = QFileDialog.getSaveFileName(self, "Export view as PNG", "nnviz.png",
                                                  "PNG images (*.png)")
        if not path:
            return False
        ok = self.current.grab().save(path, "PNG")
        if not ok:
            self._error("Cannot export", OSError(f"{path}: could not write the image"))
        return ok

    def about(self):
        QMessageBox.about(self, "About nnviz", versions_text(self.backend_name, self.device))

    # ---- closing ------------------------------------------------------------------------------
    def dirty_workspaces(self):
        out = []
        for ws in self.workspaces:
            try:
                if ws.is_dirty():
                    out.append(ws)
            except Exception:
                log.exception("is_dirty failed")
        return out

    def ask_close(self, dirty):
        """Save / Discard / Cancel; returns True to go on closing."""
        for ws in dirty:
            ans = ask_save_discard(self, getattr(ws, "title", "A workspace"))
            if ans == QMessageBox.Cancel:
                return False
            if ans == QMessageBox.Save:
                path, _ = QFileDialog.getSaveFileName(self, "Save model", "model.h5",
                                                      "nnviz models (*.h5)")
                if not path or not self._save(path, ws):
                    return False
        return True

    def shutdown(self):
        t0 = time.perf_counter()
        ok = True
        for ws in self.workspaces:
            try:
                r = ws.shutdown()
                ok = ok and r is not False
            except Exception:
                log.exception("shutdown of %s failed", getattr(ws, "title", ws))
                ok = False
        log.info("workers stopped in %.0f ms", 1000 * (time.perf_counter() - t0))
        return ok

    def closeEvent(self, ev):
        if self.confirm_close:
            dirty = self.dirty_workspaces()
            if dirty:
                for ws in dirty:   # pause while the question is open
                    c = getattr(ws, "controller", None)
                    if c is not None:
                        c.pause()
                if not self.ask_close(dirty):
                    ev.ignore()
                    return
        self.shutdown()
        saver = getattr(self, "autosaver", None)
        if saver is not None:
            saver.mark_clean_exit()
        ev.accept()
