"""The main window: workspaces in tabs, menus, status bar, open/save, close handling."""
import logging
import os
import time

from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QFileDialog,
    QFrame,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMessageBox,
    QPlainTextEdit,
    QScrollArea,
    QSizePolicy,
    QTabWidget,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)

from . import style
from .dialogs import ask_save_discard, versions_text
from .workspace import Workspace, workspace_classes

log = logging.getLogger("nnviz")


PREFERRED_SIZE = (1400, 900)
SETTINGS_SCALE = "view/scale"


def app_settings():
    """The user's settings (presentation scale); XDG_CONFIG_HOME moves them (tests do)."""
    return QSettings("nnviz", "nnviz")


def typing_in_field():
    """True while the keyboard focus is in a text or number field."""
    w = QApplication.focusWidget()
    if isinstance(w, QComboBox):
        return w.isEditable()
    return isinstance(w, (QLineEdit, QAbstractSpinBox, QTextEdit, QPlainTextEdit))


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
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        # a lesson's caption banner sits above the tabs (hidden without a lesson)
        from .lessons import LessonBanner, LessonPlayer
        central = QWidget()
        col = QVBoxLayout(central)
        col.setContentsMargins(0, 0, 0, 0)
        col.setSpacing(0)
        self.lesson_banner = LessonBanner()
        col.addWidget(self.lesson_banner)
        # The tabs scroll rather than grow the window past the screen: a lesson banner or
        # presentation mode on a 1024x768 projector must not push the status bar off it.
        self.tab_scroll = QScrollArea()
        self.tab_scroll.setWidgetResizable(True)
        self.tab_scroll.setFrameShape(QFrame.NoFrame)
        self.tab_scroll.setWidget(self.tabs)
        col.addWidget(self.tab_scroll, 1)
        self.setCentralWidget(central)
        self.lessons = LessonPlayer(self, self.lesson_banner)
        self.workspaces: list[Workspace] = []
        self._last_status = {}
        for cls in workspace_classes():
            try:
                ws = cls(parent=self)
            except Exception as exc:   # a broken tab must not take the app down
                log.exception("workspace %s failed to start", cls.__name__)
                QTimer.singleShot(0, lambda e=exc, c=cls: self.statusBar().showMessage(
                    f"{c.title} could not start: {e}", 10000))
                continue
            self.add_workspace(ws)
        self._build_menus()
        self._build_status()
        self.tabs.currentChanged.connect(self._tab_changed)
        self._fit_to_screen()
        self._tab_changed(self.tabs.currentIndex())
        self._start_autosave()
        self._restore_scale()

    def _fit_to_screen(self):
        """Open at the preferred size, or at the screen's available size when smaller."""
        screen = self.screen() or QApplication.primaryScreen()
        w, h = PREFERRED_SIZE
        if screen is not None:
            avail = screen.availableGeometry()
            w, h = min(w, avail.width()), min(h, avail.height())
            self.resize(w, h)
            self.move(avail.x() + (avail.width() - w) // 2, avail.y() + (avail.height() - h) // 2)
        else:
            self.resize(w, h)

    # ---- autosave and crash recovery ----------------------------------------------------
    def _start_autosave(self):
        """Look for a checkpoint left by a crashed session, then start this session's marker."""
        from nnviz.io.autosave import Autosaver, find_crash_checkpoint
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
        if self.autosaver is None:
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
            self.current.set_file(None)   # a checkpoint is not the user's file: Save asks
        return ok

    def set_autosave(self, on):
        if self.autosaver is not None:
            self.autosaver.enabled = bool(on)

    def _autosave_tick(self, ws, d):
        """Called with each status of a workspace: save once per new epoch, in the worker."""
        saver = self.autosaver
        if saver is None or not saver.enabled or "epoch" not in d:
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
        saver = self.autosaver
        ws = ws or self.current
        ctrl = ws.controller
        if saver is None or ctrl is None:
            return None
        name = ws.title.replace(" ", "-").lower()

        def save(tr):
            from nnviz.train import Trainer
            if not isinstance(tr, Trainer):
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
    def add_workspace(self, ws: Workspace):
        self.workspaces.append(ws)
        self.tabs.addTab(ws, ws.title)
        ws.status.connect(lambda d, ws=ws: self._on_status(ws, d))
        ws.status.connect(lambda d, ws=ws: self._autosave_tick(ws, d))
        ws.changed.connect(self.update_title)
        ws.confirm_replace = lambda ws=ws: self._may_replace(ws)

    def workspace(self, title):
        for ws in self.workspaces:
            if ws.title == title:
                return ws
        return None

    @property
    def current(self) -> Workspace:
        return self.tabs.currentWidget()

    @property
    def playground(self):
        return self.workspace("Playground")

    @property
    def model_path(self):
        """The file the current tab's model came from (None: Save asks for a name)."""
        ws = self.current
        return ws.file_path() if ws is not None else None

    def update_title(self):
        """'file.h5[*] - Playground - nnviz'; [*] shows as * when trained work is unsaved."""
        ws = self.current
        if ws is None:
            self.setWindowTitle("nnviz")
            return
        path = ws.file_path()
        name = os.path.basename(path) if path else ("untitled" if ws.current_model() is not None
                                                    else "")
        head = f"{name}[*] - " if name else ""
        self.setWindowTitle(f"{head}{ws.title} - nnviz")
        self.setWindowModified(bool(name) and ws.is_dirty())

    # ---- menus ------------------------------------------------------------------------------
    def _action(self, menu, text, slot, shortcuts=(), guard=False):
        """A menu action; `guard`: its key is not taken while typing in a field."""
        a = QAction(text, self)
        if shortcuts:
            a.setShortcuts([QKeySequence(s) for s in shortcuts])
            a.setShortcutContext(Qt.WindowShortcut)
        if guard:
            a.triggered.connect(lambda *_: None if typing_in_field() else slot())
        else:
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
        self._action(f, "Export &ONNX…", self.export_onnx)
        f.addSeparator()
        self._action(f, "&Export view as PNG…", self.export_png, ["Ctrl+E"])
        f.addSeparator()
        self._action(f, "Open &lesson…", self.open_lesson, ["Ctrl+L"])
        self._action(f, "Save lesson…", self.save_lesson)
        f.addSeparator()
        self._action(f, "&Quit", self.close, [QKeySequence.Quit])
        t = mb.addMenu("&Training")
        # PageDown/PageUp/B: what presentation clickers send
        self.start_action = self._action(t, "Start / Pause", self.start_pause, ["Space"],
                                         guard=True)
        self._action(t, "Pause", self.pause, ["B"], guard=True)
        self._action(t, "Step", self.step, ["S", "Ctrl+Right"], guard=True)
        self._action(t, "Back one stage", self.step_back, ["Ctrl+Left"], guard=True)
        # the clicker's keys: the next / previous scene of an open lesson, else Step / Back
        self._action(t, "Next (clicker)", self.page_down, ["PgDown"], guard=True)
        self._action(t, "Previous (clicker)", self.page_up, ["PgUp"], guard=True)
        self._action(t, "Reset", self.reset, ["R", "Ctrl+R"], guard=True)
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
        v = mb.addMenu("&View")
        self.presentation_action = self._action(v, "&Presentation mode (larger text and lines)",
                                                self.toggle_presentation, ["F5"])
        self.presentation_action.setCheckable(True)
        self._action(v, "&Larger", lambda: self.set_scale(self._next_scale(+1)),
                     ["Ctrl+=", "Ctrl++"])
        self._action(v, "&Smaller", lambda: self.set_scale(self._next_scale(-1)), ["Ctrl+-"])
        self._action(v, "&Normal size", lambda: self.set_scale(1.0), ["Ctrl+0"])
        h = mb.addMenu("&Help")
        self._action(h, "&Lessons…", self.show_lessons, ["F1"])
        v.addSeparator()
        self._action(v, "Show as &code…", self.show_code)
        self._action(h, "&About nnviz", self.about)

    # ---- presentation mode --------------------------------------------------------------------
    def _next_scale(self, direction):
        cur = style.scale()
        if direction > 0:
            return next((s for s in style.SCALES if s > cur + 1e-6), style.SCALES[-1])
        return next((s for s in reversed(style.SCALES) if s < cur - 1e-6), style.SCALES[0])

    def set_scale(self, value, remember=True):
        """Scale fonts, line widths and markers (1 = normal, up to 2); kept between runs."""
        s = style.set_scale(value)
        self.presentation_action.setChecked(s > 1.0)
        if remember:
            app_settings().setValue(SETTINGS_SCALE, s)
            self.statusBar().showMessage(f"text and lines at {s:.0%}", 3000)
        return s

    def toggle_presentation(self, on):
        return self.set_scale(1.5 if on else 1.0)

    def _restore_scale(self):
        try:
            s = float(app_settings().value(SETTINGS_SCALE, 1.0))
        except (TypeError, ValueError):
            s = 1.0
        if s != style.scale():
            self.set_scale(s, remember=False)
        self.presentation_action.setChecked(style.scale() > 1.0)

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
        self._last_status[id(ws)] = d
        if ws is self.current:
            self._show_status(d)
            self.update_title()      # the model may be new (no file) or newly modified

    def _show_status(self, d):
        if "epoch" not in d:      # a workspace that does not train: its message, no counters
            self.speed_label.setText("")
            self.epoch_label.setText("")
            self.elapsed_label.setText("")
            if d.get("message"):
                self.statusBar().showMessage(d["message"], 5000)
            return
        sps = d.get("steps_per_s") or 0
        running = d.get("running", bool(sps))
        self.speed_label.setText(f"{sps:,.0f} steps/s" if running and sps else "paused")
        self.epoch_label.setText(f"epoch {d.get('epoch', 0):,}  step {d.get('step', 0):,}")
        el = float(d.get("elapsed", 0) or 0)
        self.elapsed_label.setText(f"elapsed {int(el) // 60}:{int(el) % 60:02d}")

    def _tab_changed(self, _):
        ws = self.current
        # Only the shown tab's minimum size counts (QStackedWidget takes the largest of all
        # pages): a compact tab then fits under a lesson banner on a 768 px screen.
        for other in self.workspaces:
            p = QSizePolicy.Preferred if other is ws else QSizePolicy.Ignored
            other.setSizePolicy(p, p)
        self.tabs.updateGeometry()
        self._show_status(self._last_status.get(id(ws), {}))
        if ws is not None:
            ws.activated(list(self.workspaces))
        self.update_title()

    # ---- training shortcuts (forwarded to the current tab) ------------------------------------
    def start_pause(self):
        self.current.start_pause()

    def pause(self):
        self.current.pause()

    def step(self):
        self.current.step_forward()

    def step_back(self):
        return self.current.step_back()

    def page_down(self):
        if not (self.lessons.active and self.lessons.next()):
            self.step()

    def page_up(self):
        if not (self.lessons.active and self.lessons.back()):
            self.step_back()

    # ---- lessons ------------------------------------------------------------------------------
    def open_lesson(self, path=None):
        from .lessons import open_lesson_file
        if path is None:
            path, _ = QFileDialog.getOpenFileName(self, "Open lesson", "", "Lessons (*.json)")
            if not path:
                return False
        return open_lesson_file(self, path)

    def save_lesson(self, path=None, caption=None):
        from .lessons import save_lesson_file
        return save_lesson_file(self, path, caption)

    def show_lessons(self, title=None):
        from .lessons import show_lessons_dialog
        return show_lessons_dialog(self, title)

    def show_code(self):
        from .codeview import CodeDialog
        model = self.current.current_model()
        if model is None:
            self.statusBar().showMessage("This tab has no network to show as code", 5000)
            return None
        dlg = CodeDialog(model, self)
        dlg.show()
        return dlg

    def reset(self):
        self.current.reset()

    # ---- files --------------------------------------------------------------------------------
    def _may_replace(self, ws):
        """Ask before unsaved trained work in `ws` is replaced; True to go on."""
        if not self.confirm_close or not ws.is_dirty():
            return True
        return self.ask_close([ws])

    def new(self):
        ws = self.current
        if not self._may_replace(ws):
            return False
        ws.reset()
        ws.set_file(None)
        return True

    def _error(self, title, exc):
        log.warning("%s: %s", title, exc)
        QMessageBox.warning(self, title, str(exc) or type(exc).__name__)

    def open_model(self, path=None, input_scaling=None):
        """nnviz or Keras .h5, Keras .keras, .onnx (chosen by content); an imported model asks
        for its input scaling when opened from the dialog (or takes `input_scaling`)."""
        ask = not path
        if not path:
            path, _ = QFileDialog.getOpenFileName(
                self, "Open model", "", "Models (*.h5 *.hdf5 *.keras *.onnx);;All files (*)")
        if not path:
            return False
        try:
            from nnviz.io import load_model
            from nnviz.io.scaling import set_input_scaling
            loaded = load_model(path)
            if ask and input_scaling is None and loaded.meta.get("format") != "nnviz HDF5":
                from .import_dialog import ask_input_scaling
                input_scaling = ask_input_scaling(self, loaded)
                if input_scaling is None:
                    return False
            if input_scaling not in (None, "keep"):
                loaded.model = set_input_scaling(loaded.model, input_scaling)
        except Exception as exc:
            self._error("Cannot open model", exc)
            return False
        order = [self.current] + [w for w in self.workspaces if w is not self.current]
        dirty = [w for w in self.workspaces if w.is_dirty()]
        if dirty and not self._may_replace_any(dirty):
            return False
        for ws in order:
            try:
                ok = ws.open_loaded(loaded)
            except Exception as exc:
                self._error("Cannot open model", exc)
                return False
            if ok:
                self.tabs.setCurrentWidget(ws)
                imported = loaded.meta.get("format") != "nnviz HDF5"
                ws.set_file(None if imported else path)    # Save asks where (as .h5)
                notes = "; ".join(loaded.meta.get("notes") or [])
                self.statusBar().showMessage(f"opened {path}" + (f" — {notes}" if notes else ""),
                                             10000)
                return True
        self._error("Cannot open model", ValueError(
            f"{path}: no workspace can show this model"))
        return False

    def _may_replace_any(self, dirty):
        return not self.confirm_close or self.ask_close(dirty)

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
        if target is None or len(ds.input_shape) != 3:
            self._error("Cannot open dataset", ValueError(
                f"{path}: inputs of shape {tuple(ds.input_shape)}; the CNN inspector needs "
                "images (channels, height, width)"))
            return False
        if not self._may_replace(target):
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
        """Save to the file this model came from; without one, ask (Save As)."""
        path = path or self.model_path
        if not path:
            return self.save_model_as()
        return self._save(path)

    def _ask_save_path(self, ws):
        default = ws.file_path() or f"{ws.title.replace(' ', '-').lower()}.h5"
        path, _ = QFileDialog.getSaveFileName(self, f"Save {ws.title} model", default,
                                              "nnviz models (*.h5)")
        return path

    def save_model_as(self, path=None):
        if not path:
            path = self._ask_save_path(self.current)
        if not path:
            return False
        return self._save(path)

    def _save(self, path, ws=None):
        ws = ws or self.current
        ctrl = ws.controller

        def save(_trainer):
            payload = ws.save_payload()
            if payload is None:
                raise ValueError(f"{ws.title} has no model to save")
            model, trainer, dataset = payload
            from nnviz.io import save_model
            save_model(path, model, trainer=trainer, dataset=dataset)
        try:
            ctrl.run_locked(save) if ctrl is not None else save(None)
        except Exception as exc:
            self._error("Cannot save model", exc)
            return False
        ws.mark_saved()
        ws.set_file(path)
        self.statusBar().showMessage(f"saved {path}", 5000)
        return True

    def export_onnx(self, path=None):
        """The current tab's model as ONNX (nnviz.io.export_model picks the format)."""
        path = str(path or QFileDialog.getSaveFileName(self, "Export ONNX", "model.onnx",
                                                       "ONNX models (*.onnx)")[0])
        if path and not path.lower().endswith(".onnx"):
            path += ".onnx"
        ws = self.current

        def export(_trainer):
            from nnviz.io import export_model
            payload = ws.save_payload()
            if payload is None:
                raise ValueError(f"{ws.title} has no model to export")
            export_model(payload[0], path)
        try:
            if path:
                ws.controller.run_locked(export) if ws.controller is not None else export(None)
        except Exception as exc:
            self._error("Cannot export ONNX", exc)
            return False
        if path:
            self.statusBar().showMessage(f"exported {path}", 5000)
        return bool(path)

    def export_png(self, path=None):
        if not path:
            path, _ = QFileDialog.getSaveFileName(self, "Export view as PNG", "nnviz.png",
                                                  "PNG images (*.png)")
        if not path:
            return False
        ok = self.current.export_image().save(path, "PNG")
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
        """Save / Discard / Cancel for each workspace in `dirty`; True to go on."""
        for ws in dirty:
            ws.pause()         # nothing changes while the question is open
            ans = ask_save_discard(self, ws.title)
            if ans == QMessageBox.Cancel:
                return False
            if ans == QMessageBox.Save:
                path = ws.file_path() or self._ask_save_path(ws)
                if not path or not self._save(path, ws):
                    return False
        return True

    def shutdown(self):
        t0 = time.perf_counter()
        ok = True
        for ws in self.workspaces:
            try:
                ok = ws.shutdown() is not False and ok
            except Exception:
                log.exception("shutdown of %s failed", ws.title)
                ok = False
        log.info("workers stopped in %.0f ms", 1000 * (time.perf_counter() - t0))
        return ok

    def closeEvent(self, ev):
        if self.confirm_close:
            dirty = self.dirty_workspaces()
            if dirty and not self.ask_close(dirty):
                ev.ignore()
                return
        self.shutdown()
        if self.autosaver is not None:
            self.autosaver.mark_clean_exit()
        ev.accept()
