"""Lessons in the app: open, play (PageDown / PageUp), save; the caption banner; Help > Lessons.

A lesson step names a workspace and its state (nnviz.lessons). One adapter per workspace
reads the scene out of the workspace (Save lesson) and puts it back (Open lesson), through
the workspace's own controls, so that a lesson shows exactly what a lecturer would get by
setting those controls by hand.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFrame,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
)

from nnviz.engine import convmath as cm
from nnviz.lessons import Lesson, LessonError, LessonStep, builtin_lessons, load_lesson, save_lesson
from nnviz.lessons.examples import grid_of, kernel_of

from . import style
from .backprop.lesson import BackpropAdapter
from .experiments.lesson import ExperimentsAdapter

log = logging.getLogger("nnviz")
MAX_PRETRAIN_STEPS = 20000      # a lesson's train_steps: enough for any picture, bounded


def _int(state, key, lo, hi, default=None):
    v = state.get(key, default)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or int(v) != v or not lo <= v <= hi:
        raise LessonError(f"state.{key}: expected a whole number from {lo} to {hi}, got {v!r}")
    return int(v)


def _ints(state, key, n):
    v = state[key]
    if not isinstance(v, list) or len(v) != n or not all(isinstance(x, int) and x >= 0 for x in v):
        raise LessonError(f"state.{key}: expected a list of {n} whole numbers >= 0, got {v!r}")
    return v


def _small_square(state, key, default):
    """A grid of the transposed-convolution panel: square, 1x1 to 4x4."""
    if key not in state:
        return default
    a = grid_of(state[key], f"state.{key}")
    if a.shape[0] != a.shape[1] or a.shape[0] > 4:
        raise LessonError(f"state.{key}: expected a square grid of 1x1 to 4x4 numbers, got shape {a.shape}")
    return a


# ---- adapters: workspace <-> lesson state ------------------------------------------------------
class ConvlabAdapter:
    workspace = "convlab"

    def capture(self, ws) -> dict:
        c, p, q = ws.conv, ws.pool, ws.params
        name = c.kernel_name()
        return {"input": c.input_grid.values.tolist(),
                "kernel": name if name in cm.KERNEL_PRESETS else c.kernel().tolist(),
                "stride": c.stride.value(), "padding": c.padding.value(),
                "flip": c.flip_check.isChecked(),
                "pool_mode": p._mode(), "pool_k": p.pool_size.value(), "pool_stride": p.pool_stride.value(),
                "pool_input": p.pool_grid.values.tolist(),
                "param": [q.param_in.value(), q.param_out.value(), q.param_k.value(),
                          q.param_stride.value(), q.param_pad.value(), q.param_h.value()],
                **self._capture_more(ws)}

    @staticmethod
    def _capture_more(ws) -> dict:
        """The transposed-convolution and connectivity panels (lessons 6 and 8)."""
        t = ws.tconv
        return {"tconv_input": t.input_values().tolist(), "tconv_kernel": t.kernel().tolist(),
                "tconv_stride": t.stride_spin.value(), "tconv_padding": t.pad_spin.value(),
                "tconv_step": t.steps.pos + 1, "conn_n": ws.conn.field()[0], "conn_k": ws.conn.field()[1]}

    @staticmethod
    def _apply_more(ws, state: dict):
        """Lessons 6 and 8; returns the panel to show (None: neither was set)."""
        focus = None
        if any(k.startswith("tconv_") for k in state):
            t = ws.tconv
            x = _small_square(state, "tconv_input", t.input_values())
            k = _small_square(state, "tconv_kernel", t.kernel())
            stride = _int(state, "tconv_stride", 1, 3, t.stride_spin.value())
            pad = _int(state, "tconv_padding", 0, 2, t.pad_spin.value())
            if cm.transposed_size(len(x), len(k), pad, stride) <= 0:
                raise LessonError(f"state.tconv_padding: padding {pad} crops the whole output")
            step = _int(state, "tconv_step", 1, x.size, 1)
            t.set_problem(x, k, stride, pad, step - 1)
            ws.set_stepping(t)
            focus = t
        if "conn_n" in state or "conn_k" in state:
            n = _int(state, "conn_n", 2, 10, ws.conn.field()[0])
            k = _int(state, "conn_k", 1, 2 * n - 1, min(ws.conn.field()[1], 2 * n - 1))
            if k % 2 == 0:
                raise LessonError(f"state.conn_k: expected an odd receptive field, got {k}")
            ws.conn.set_field(n, k)
            focus = ws.conn
        return focus

    def apply(self, ws, state: dict) -> None:
        c, p, q = ws.conv, ws.pool, ws.params
        c.stop()
        ws.set_stepping(c)
        focus = c
        if "input" in state:
            c.set_input(grid_of(state["input"], "state.input"))
        if "kernel" in state:
            k = kernel_of(state["kernel"], "state.kernel")
            c._set_kernel(k, preset=state["kernel"] if isinstance(state["kernel"], str) else None)
        for key, spin, hi in (("stride", c.stride, 4), ("padding", c.padding, 3)):
            if key in state:
                spin.setValue(_int(state, key, 0 if key == "padding" else 1, hi))
        if "flip" in state:
            c.flip_check.setChecked(bool(state["flip"]))
        if "size" in state:
            n, f, pad, s = _ints(state, "size", 4)
            if n <= 12 and f <= 7 and pad <= 3 and 1 <= s <= 4:
                # small enough for the stepper: the worked grid, grown with seeded digits
                grid = np.random.default_rng(0).integers(0, 10, size=(n, n)).astype(float)
                m = min(n, 6)
                grid[:m, :m] = cm.WORKED_INPUT[:m, :m]
                c.set_input(grid)
                k = np.ones((f, f)) if f != 3 else np.asarray(cm.KERNEL_PRESETS["vertical edge"], float)
                c._set_kernel(k, preset="vertical edge" if f == 3 else None)
                c.padding.setValue(pad)
                c.stride.setValue(s)
            else:
                for spin, v in ((q.param_in, 1), (q.param_out, 1), (q.param_k, f), (q.param_pad, pad),
                                (q.param_stride, s), (q.param_h, n), (q.param_w, n)):
                    spin.setValue(v)
                focus = q
        c.recompute(keep_pos=False)
        if "pool_mode" in state:
            mode = state["pool_mode"]
            if mode not in ("max", "avg"):
                raise LessonError(f"state.pool_mode: expected 'max' or 'avg', got {mode!r}")
            p.pool_mode.setCurrentText("max" if mode == "max" else "average")
            p.pool_size.setValue(_int(state, "pool_k", 1, 4, 2))
            p.pool_stride.setValue(_int(state, "pool_stride", 1, 4, p.pool_size.value()))
            p.set_source(grid_of(state.get("pool_input", "pool"), "state.pool_input"))
            focus = p
        if "param" in state:
            vals = _ints(state, "param", 6)
            for spin, v in zip((q.param_in, q.param_out, q.param_k, q.param_stride, q.param_pad, q.param_h),
                               vals):
                spin.setValue(v)
            q.param_w.setValue(vals[5])
            focus = q
        if state.get("panel") == "image":
            focus = ws.image
        focus = self._apply_more(ws, state) or focus
        ws.show_panel(focus)


class InspectorAdapter:
    workspace = "inspector"

    def capture(self, ws) -> dict:
        from nnviz.engine import preset_names
        name = ws.model_combo.currentText()
        model = {"model": name} if name in preset_names() else {"spec": ws.editor.spec()}
        out = {**model, "dataset": ws.dataset.name,
               "lr": ws.lr_spin.value(), "batch_size": ws.batch_spin.value(),
               "optimizer": ws.opt_combo.currentText(),
               "train_steps": int(ws.trainer.steps) if ws.trainer is not None else 0,
               "view": self.views(ws)[ws.live_tabs.currentIndex()]}
        if ws.bn_view.current_layer() is not None:
            out["bn_layer"] = ws.bn_view.current_layer()
        return out

    @staticmethod
    def views(ws) -> list[str]:
        """The live views' names as a lesson writes them: "curves", "batch norm", ..."""
        tabs = ws.live_tabs
        return [tabs.tabText(i).replace("&&", "&").lower() for i in range(tabs.count())]

    def apply(self, ws, state: dict) -> None:
        from nnviz.engine import preset_names
        if "dataset" in state:
            try:
                ws.set_dataset(str(state["dataset"]))
            except Exception as e:
                raise LessonError(f"state.dataset: {e}") from None
        if "optimizer" in state:
            if state["optimizer"] not in ("sgd", "adam"):
                raise LessonError(f"state.optimizer: expected 'sgd' or 'adam', got {state['optimizer']!r}")
            ws.opt_combo.setCurrentText(state["optimizer"])
        if "lr" in state:
            ws.lr_spin.setValue(float(state["lr"]))
        if "batch_size" in state:
            ws.batch_spin.setValue(_int(state, "batch_size", 1, 4096))
        if "spec" in state:                     # an architecture of the lecturer's own
            from nnviz.engine import SpecError, model_from_spec
            try:
                model_from_spec(state["spec"])
            except (SpecError, ValueError, TypeError) as e:
                raise LessonError(f"state.spec: {e}") from None
            ws.set_spec(state["spec"])
        else:
            model = state.get("model", "lenet5")
            if model not in preset_names():
                raise LessonError(f"state.model: expected one of {', '.join(preset_names())}, got {model!r}")
            ws.select_model(model)
        n = _int(state, "train_steps", 0, MAX_PRETRAIN_STEPS, 0)
        if n:
            ws.train_sync(n)
        if "bn_layer" in state:
            have = ws.bn_view.layer_indices()
            v = state["bn_layer"]
            if isinstance(v, bool) or not isinstance(v, int) or not ws.bn_view.select_layer(v):
                raise LessonError(f"state.bn_layer: expected the index of a BatchNorm layer of this "
                                  f"model ({', '.join(map(str, have)) or 'it has none'}), got {v!r}")
        if "view" in state:
            views = self.views(ws)
            if state["view"] not in views:
                raise LessonError(f"state.view: expected one of {', '.join(views)}, got {state['view']!r}")
            ws.show_live_view(views.index(state["view"]), enlarge=True)


class PlaygroundAdapter:
    workspace = "playground"
    FIELDS = ("dataset", "noise", "n_points", "test_fraction", "classes", "seed", "hidden", "activation",
              "features", "lr", "batch_size", "optimizer", "reg", "reg_rate", "dropout")
    COMPARE = ("depths", "dropout")     # state.compare: false, true (= "depths") or one of these

    def capture(self, ws) -> dict:
        s = ws.settings
        out = {k: getattr(s, k) for k in self.FIELDS}
        out["hidden"] = list(out["hidden"])
        out["features"] = list(out["features"])
        out["compare"] = (ws.compare_variant if ws.compare_variant == "dropout" else True) \
            if ws.in_compare else False
        tr = ws.trainer
        out["train_steps"] = int(tr.steps) if tr is not None and not ws.in_compare else 0
        return out

    def _check(self, state):
        from nnviz.data.toy import TOY_NAMES
        num = {"noise": (0.0, 2.0), "test_fraction": (0.0, 0.9), "lr": (1e-9, 100.0), "reg_rate": (0.0, 10.0),
               "dropout": (0.0, 0.9)}
        for k, (lo, hi) in num.items():
            v = state.get(k)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi):
                raise LessonError(f"state.{k}: expected a number from {lo:g} to {hi:g}, got {v!r}")
        for k, lo, hi in (("n_points", 10, 5000), ("classes", 2, 8), ("seed", 0, 2**31 - 1),
                          ("batch_size", 1, 1024)):
            if k in state:
                _int(state, k, lo, hi)
        for k, allowed in (("dataset", TOY_NAMES), ("optimizer", ("sgd", "adam"))):
            if k in state and state[k] not in allowed:
                raise LessonError(f"state.{k}: expected one of {', '.join(allowed)}, got {state[k]!r}")
        c = state.get("compare", False)
        if not (isinstance(c, bool) or (isinstance(c, str) and c in self.COMPARE)):
            raise LessonError(f"state.compare: expected true, false, 'depths' or 'dropout', got {state['compare']!r}")

    def apply(self, ws, state: dict) -> None:
        from nnviz.gui.playground.session import ACTIVATIONS, Settings
        self._check(state)
        s = Settings(**{k: getattr(ws.settings, k) for k in self.FIELDS})
        for k in self.FIELDS:
            if k in state:
                setattr(s, k, state[k])
        if s.activation not in ACTIVATIONS:
            raise LessonError(f"state.activation: expected one of {', '.join(ACTIVATIONS)}, got {s.activation!r}")
        if not isinstance(s.hidden, list) or len(s.hidden) > 6 or not all(
                isinstance(h, int) and 1 <= h <= 16 for h in s.hidden):
            raise LessonError(f"state.hidden: expected up to 6 layer widths from 1 to 16, got {s.hidden!r}")
        if ws.in_compare:
            ws.leave_compare()
        ws.single.stop(1000)
        ws.settings = s
        try:
            ws.raw = ws._make_raw()
        except ValueError as e:
            raise LessonError(f"state.dataset: {e}") from None
        ws._sync_controls()
        ws.rebuild()
        n = _int(state, "train_steps", 0, MAX_PRETRAIN_STEPS, 0)
        if state.get("compare"):
            # the lesson's own settings, not Compare's first-use defaults, and paused until
            # train_steps are done: the same scene every time
            ws.start_compare(lecture_defaults=False, autostart=False,
                             variant="dropout" if state["compare"] == "dropout" else "depths")
        if n:
            pretrain(ws.controller, n)
            ws.controller.refresh()


ADAPTERS = {a.workspace: a for a in (ConvlabAdapter(), InspectorAdapter(), PlaygroundAdapter(),
                                     BackpropAdapter(), ExperimentsAdapter())}


_KEYS = {"PlaygroundWorkspace": "playground", "InspectorWorkspace": "inspector",
         "ConvLabWorkspace": "convlab", "BackpropWorkspace": "backprop",
         "ExperimentsWorkspace": "experiments"}


def workspace_key(ws) -> str | None:
    """The lesson name of a workspace ("playground", ...), None for one lessons don't know."""
    key = _KEYS.get(type(ws).__name__)
    return key if key in ADAPTERS else None


def pretrain(controller, n: int) -> None:
    """n training steps in the worker thread (the caller waits): a lesson's trained picture."""
    def run(tr):
        for t in getattr(tr, "trainers", [tr]):
            for _ in range(n):
                ep = t.epoch
                t.step()
                if t.epoch != ep:
                    t.record_epoch()
    controller.run_locked(run, timeout_s=600)


# ---- the banner ---------------------------------------------------------------------------
class LessonBanner(QFrame):
    """Caption and question of the current step, with back / next; larger in presentation mode."""

    back = Signal()
    next = Signal()
    closed = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("lessonBanner")
        self.setFrameShape(QFrame.StyledPanel)
        self.setStyleSheet("#lessonBanner { background: #fff6d5; border: 1px solid #d9b84a; }")
        # title and buttons share the top row, so the caption gets the whole width (fewer lines)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(10, 4, 10, 6)
        lay.setSpacing(2)
        top = QHBoxLayout()
        self.title = QLabel()
        self.caption = QLabel()
        self.question = QLabel()
        for w in (self.title, self.caption, self.question):
            w.setWordWrap(True)
            w.setTextInteractionFlags(Qt.TextSelectableByMouse)
        top.addWidget(self.title, 1)
        self.back_btn = QPushButton("\u25c0 Back")
        self.next_btn = QPushButton("Next \u25b6")
        self.close_btn = QPushButton("Close")
        for b, sig in ((self.back_btn, self.back), (self.next_btn, self.next), (self.close_btn, self.closed)):
            b.setFocusPolicy(Qt.NoFocus)     # PageDown / PageUp stay with the window
            b.clicked.connect(sig.emit)
            top.addWidget(b, 0, Qt.AlignVCenter)
        lay.addLayout(top)
        lay.addWidget(self.caption)
        lay.addWidget(self.question)
        self.hide()

    def show_step(self, lesson: Lesson, i: int) -> None:
        step = lesson.steps[i]
        n = len(lesson.steps)
        base = style.px(15)
        self.title.setText(f"<b>{lesson.title}</b> \u2014 step {i + 1} of {n}")
        self.caption.setText(step.caption)
        self.question.setText(f"<i>Question: {step.question}</i>" if step.question else "")
        self.question.setVisible(bool(step.question))
        f = self.caption.font()
        f.setPixelSize(int(round(base * 1.15)))
        self.caption.setFont(f)
        self.back_btn.setEnabled(i > 0)
        self.next_btn.setEnabled(i + 1 < n)
        self.show()


# ---- playing a lesson ---------------------------------------------------------------------
class LessonPlayer(QObject):
    """Holds the open lesson and its step; applies a step to the main window's workspaces."""

    def __init__(self, window, banner: LessonBanner):
        super().__init__(window)
        self.window = window
        self.banner = banner
        self.lesson: Lesson | None = None
        self.index = 0
        banner.back.connect(self.back)
        banner.next.connect(self.next)
        banner.closed.connect(self.close)

    @property
    def active(self) -> bool:
        return self.lesson is not None and len(self.lesson.steps) > 1

    def workspace_for(self, key):
        for ws in self.window.workspaces:
            if workspace_key(ws) == key:
                return ws
        return None

    def open(self, lesson: Lesson, index: int = 0) -> None:
        self.lesson = lesson
        self.go(index)

    def go(self, i: int) -> None:
        lesson = self.lesson
        step = lesson.steps[i]
        ws = self.workspace_for(step.workspace)
        where = f"{lesson.path or lesson.title}: steps[{i}]"
        if ws is None:
            raise LessonError(f"{where}.workspace: the {step.workspace} workspace is not available")
        self.window.tabs.setCurrentWidget(ws)
        try:
            ADAPTERS[step.workspace].apply(ws, step.state)
            model = step.model_path(lesson.path)
            if model is not None:
                from nnviz.io import load_model
                ws.open_loaded(load_model(model))
                ws.set_file(model)
        except LessonError as e:
            raise LessonError(f"{where}.{e}") from None
        except (ValueError, TypeError, KeyError) as e:   # what the workspace itself refused
            raise LessonError(f"{where}.state: {type(e).__name__}: {e}") from None
        self.index = i
        self.banner.show_step(lesson, i)

    def next(self) -> bool:
        if self.lesson is None or self.index + 1 >= len(self.lesson.steps):
            return False
        self.go(self.index + 1)
        return True

    def back(self) -> bool:
        if self.lesson is None or self.index == 0:
            return False
        self.go(self.index - 1)
        return True

    def close(self) -> None:
        self.lesson = None
        self.banner.hide()

    def capture(self, ws, caption="", question="") -> Lesson:
        key = workspace_key(ws)
        if key is None:
            raise LessonError(f"the {ws.title} has no lesson state to save")
        step = LessonStep(workspace=key, caption=caption, question=question,
                          state=ADAPTERS[key].capture(ws))
        return Lesson(title=caption.split(".")[0][:60] or ws.title, topic="My lessons", steps=[step])


# ---- menus --------------------------------------------------------------------------------
class LessonsDialog(QDialog):
    """Help > Lessons: the built-in lessons grouped by topic; double-click or Open."""

    def __init__(self, lessons: list[Lesson], parent=None):
        super().__init__(parent)
        self.setWindowTitle("Lessons")
        self.chosen: Lesson | None = None
        lay = QVBoxLayout(self)
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["Lesson", "Steps"])
        topics: dict[str, QTreeWidgetItem] = {}
        for lesson in lessons:
            top = topics.get(lesson.topic)
            if top is None:
                top = topics[lesson.topic] = QTreeWidgetItem(self.tree, [lesson.topic])
                top.setExpanded(True)
            item = QTreeWidgetItem(top, [lesson.title, str(len(lesson.steps))])
            item.setData(0, Qt.UserRole, lesson)
            item.setToolTip(0, lesson.steps[0].caption)
        self.tree.resizeColumnToContents(0)
        self.tree.itemDoubleClicked.connect(lambda *_: self._accept())
        lay.addWidget(self.tree)
        buttons = QDialogButtonBox(QDialogButtonBox.Open | QDialogButtonBox.Cancel)
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        lay.addWidget(buttons)
        self.resize(560, 480)

    def select(self, title: str) -> bool:
        for item in self.tree.findItems(title, Qt.MatchExactly | Qt.MatchRecursive, 0):
            if item.data(0, Qt.UserRole) is not None:
                self.tree.setCurrentItem(item)
                return True
        return False

    def _accept(self):
        item = self.tree.currentItem()
        lesson = item.data(0, Qt.UserRole) if item is not None else None
        if lesson is not None:
            self.chosen = lesson
            self.accept()


def open_lesson_file(window, path) -> bool:
    """File > Open lesson / `nnviz lesson.json`: one-line error in a dialog, app keeps running."""
    try:
        window.lessons.open(load_lesson(path))
        return True
    except (LessonError, OSError, ValueError) as e:
        window._error("Cannot open lesson", e)
        return False


def save_lesson_file(window, path=None, caption=None) -> Path | None:
    from PySide6.QtWidgets import QFileDialog
    ws = window.current
    if caption is None:
        caption, ok = QInputDialog.getText(window, "Save lesson", "Caption (what to look at):")
        if not ok:
            return None
    if path is None:
        path, _ = QFileDialog.getSaveFileName(window, "Save lesson", "lesson.json", "Lessons (*.json)")
        if not path:
            return None
    try:
        return save_lesson(path, window.lessons.capture(ws, caption=caption))
    except (LessonError, OSError, ValueError) as e:
        window._error("Cannot save lesson", e)
        return None


def show_lessons_dialog(window, title=None) -> Lesson | None:
    try:
        lessons = builtin_lessons()
    except LessonError as e:
        window._error("Lessons", e)
        return None
    dlg = LessonsDialog(lessons, window)
    if title is not None:       # tests and `nnviz --lesson NAME` pick one without a click
        if dlg.select(title):
            dlg._accept()
    elif dlg.exec() != QDialog.Accepted:
        return None
    if dlg.chosen is not None:
        try:
            window.lessons.open(dlg.chosen)
        except LessonError as e:
            window._error("Cannot open lesson", e)
            return None
    return dlg.chosen
