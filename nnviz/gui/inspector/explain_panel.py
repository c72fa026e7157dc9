"""The inspector's "Explain" tab: why the network gave its answer for the selected input
(saliency, gradient x input, Grad-CAM, occlusion), what excites each filter (activation
maximisation), and every test image it gets wrong.  Also owns the weight/gradient
distribution recorder shown beside the gradient-flow curves.

Nothing here runs model math on the UI thread: weights are copied between two training
steps (controller.apply) and the explanations run on clones in JobThreads, only for the
view on screen, at most a few times a second.
"""
from __future__ import annotations

import threading
import time

import numpy as np
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QSpinBox,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from nnviz.explain import (
    ExplainError,
    HistogramHistory,
    conv_layers,
    default_cam_layer,
    explain,
    maximize,
    mistakes,
    occlusion,
)
from nnviz.explain.histograms import snapshot_arrays
from nnviz.explain.maximize import receptive_box

from ..style import FONT_PT, ui_font
from .compute import image_for_display
from .explain_images import base_rgb, colorbar, overlay, scaled
from .explain_jobs import JobThread, ModelMirror
from .explain_widgets import Cell, ExplainTile, export_widget, prob_text
from .histograms import DistributionsView
from .maximize_view import MaximizeView
from .mistakes import MistakesView
from .views import Gallery, PredictionView

EXPLAIN_EVERY_S = 0.5       # live refresh of the visible explanation while training
MISTAKES_EVERY_S = 5.0      # a full test-set pass: rarer
HIST_EVERY_S = 0.5          # distribution records (always, so the history has no holes)
FOLLOW_PAUSE_S = 2.0        # activation maximisation: pause between live reruns


def _controls(*widgets):
    w = QWidget()
    lay = QHBoxLayout(w)
    lay.setContentsMargins(0, 0, 0, 0)
    for x in widgets:
        lay.addWidget(x)
    lay.addStretch(1)
    return w


def _column(*items):
    """A widget stacking widgets and layouts; (item, stretch) pairs stretch."""
    w = QWidget()
    lay = QVBoxLayout(w)
    lay.setContentsMargins(2, 2, 2, 2)
    for it in items:
        it, stretch = it if isinstance(it, tuple) else (it, 0)
        (lay.addLayout if isinstance(it, QHBoxLayout) else lay.addWidget)(it, stretch)
    return w


class ExplainPanel(QWidget):
    def __init__(self, workspace, parent=None):
        super().__init__(parent)
        self.ws = workspace
        self.mirror = ModelMirror()
        self.history = HistogramHistory()
        self.distributions = DistributionsView(self.history)
        self._threads: dict[str, JobThread] = {}
        self._last = None              # the latest explanation result
        self._dataset = None
        self._model = None
        self._t = {"explain": 0.0, "mistakes": 0.0, "hist": 0.0}
        self._want_mistakes = True
        self._max_stop = threading.Event()
        self._follow_timer = QTimer(self)
        self._follow_timer.setSingleShot(True)
        self._follow_timer.timeout.connect(self._follow_rerun)
        self._tick_timer = QTimer(self)
        self._tick_timer.setSingleShot(True)
        self._tick_timer.timeout.connect(self._tick)
        self._build()
        workspace.controller.snapshot.connect(self._on_snapshot)

    # ================================================================ UI
    def _build(self):
        # --- left: what to explain
        self.input_label = QLabel("")
        self.input_label.setWordWrap(True)
        self.input_label.setFont(ui_font(FONT_PT + 1, bold=True))
        self.gallery = Gallery(tile_px=40, title="Click a test image to explain it",
                               fill_cols=3, max_px=110)
        self.gallery.picked.connect(self._gallery_picked)
        self.mistakes = MistakesView()
        self.mistakes.picked.connect(self._mistake_picked)
        self.left_tabs = self._tabs((self.gallery, "Test set"), (self.mistakes, "Mistakes"))
        left = _column(self.input_label, (self.left_tabs, 1))

        # --- right: the views
        self.class_combo = QComboBox()
        self.class_combo.setToolTip("The class whose score is explained")
        self.class_combo.activated.connect(lambda *_: self.request())
        self.on_input = QCheckBox("on the input")
        self.on_input.setChecked(True)
        self.on_input.setToolTip("Blend the maps over the input, or show them alone")
        self.opacity = QSlider(Qt.Horizontal)
        self.opacity.setRange(10, 100)
        self.opacity.setValue(75)
        self.opacity.setMaximumWidth(140)
        self.opacity.setToolTip("Opacity of the maps over the input")
        for w in (self.on_input, self.opacity):
            (w.toggled if w is self.on_input else w.valueChanged).connect(lambda *_: self._render())
        self.export_btn = QPushButton("Export PNG…")
        self.export_btn.clicked.connect(lambda: self.export_png())
        bar = QHBoxLayout()
        for w in (QLabel("Explain class:"), self.class_combo, self.on_input, QLabel("opacity"),
                  self.opacity):
            bar.addWidget(w)
        bar.addStretch(1)
        bar.addWidget(self.export_btn)

        self.cam_layer = QComboBox()
        self.cam_layer.setToolTip("The convolution whose maps Grad-CAM weighs")
        self.cam_layer.setSizeAdjustPolicy(QComboBox.AdjustToContents)
        self.cam_layer.activated.connect(lambda *_: self.request())
        self.occ_size = QSpinBox()
        self.occ_size.setRange(1, 64)
        self.occ_size.setValue(4)
        self.occ_size.setPrefix("patch ")
        self.occ_size.setSuffix(" px")
        self.occ_stride = QSpinBox()
        self.occ_stride.setRange(1, 32)
        self.occ_stride.setValue(2)
        self.occ_stride.setPrefix("stride ")
        self.occ_stride.setSuffix(" px")
        self.occ_fill = QComboBox()
        self.occ_fill.addItems(["grey patch", "black patch"])
        self.occ_fill.setToolTip("The patch: mid-grey, or black (on a black background, "
                                 "black removes ink where grey would add some)")
        self.occ_fill.activated.connect(lambda *_: self.request())
        for s in (self.occ_size, self.occ_stride):
            s.valueChanged.connect(lambda *_: self.request())
        self.t_input = ExplainTile("Input")
        self.t_sal = ExplainTile("Saliency |∂ score / ∂ pixel|")
        self.t_gxi = ExplainTile("Gradient × input")
        self.t_cam = ExplainTile("Grad-CAM")
        self.t_occ = ExplainTile("Occlusion")
        self.probs = PredictionView()
        self.why = QWidget()
        wl = QVBoxLayout(self.why)
        wl.setContentsMargins(2, 2, 2, 2)
        wl.addWidget(_controls(QLabel("Grad-CAM at"), self.cam_layer, QLabel("   Occlusion:"),
                               self.occ_size, self.occ_stride, self.occ_fill))
        g = QGridLayout()
        wl.addLayout(g, 1)
        g.setContentsMargins(0, 0, 0, 0)
        g.setSpacing(4)
        for k, w in enumerate((self.t_input, self.t_sal, self.t_gxi, self.probs, self.t_cam,
                               self.t_occ)):
            g.addWidget(Cell(w), k // 3, k % 3)
        for k in range(3):
            g.setColumnStretch(k, 1)
        for k in range(2):
            g.setRowStretch(k, 1)
        self.maxview = MaximizeView()
        self.maxview.run_requested.connect(self.run_maximize)
        self.maxview.cancel_requested.connect(self.cancel_maximize)
        self.views = self._tabs((self.why, "Why this answer?"),
                                (self.maxview, "What excites a filter?"))
        right = _column(bar, (self.views, 1))
        split = QSplitter(Qt.Horizontal)
        split.addWidget(left)
        split.addWidget(right)
        split.setStretchFactor(1, 1)
        split.setSizes([240, 900])
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(split)

    def _tabs(self, *pages):
        tabs = QTabWidget()
        for w, name in pages:
            tabs.addTab(w, name)
        tabs.currentChanged.connect(lambda *_: self._tick())   # the new page may need work
        return tabs

    # ================================================================ threads
    def _thread(self, which: str) -> JobThread:
        t = self._threads.get(which)
        if t is None:
            t = JobThread(self.mirror, self)
            t.done.connect(self._done)
            t.failed.connect(self._failed)
            t.progress.connect(self._progress)
            t.start()
            self._threads[which] = t
        return t

    def shutdown(self):
        self._follow_timer.stop()
        self._tick_timer.stop()
        ok = all(t.stop() for t in self._threads.values())
        self._threads.clear()
        return ok

    def busy(self) -> bool:
        return any(t.busy(k) for t in self._threads.values()
                   for k in ("explain", "mistakes", "hist", "maximize"))

    # ================================================================ state
    def _dataset_changed(self):
        ds = self.ws.dataset
        if ds is self._dataset:
            return
        self._dataset = ds
        self._last = None
        idx = getattr(self.ws, "_gallery_idx", np.zeros(0, int))
        names = ds.class_names
        self.gallery.set_images([self.ws.thumb(i) for i in idx],
                                tips=[f"test #{i}: {names[ds.y_test[i]]}" for i in idx])
        self.class_combo.clear()
        self.class_combo.addItems(["predicted class", "true class"] +
                                  [f"class {n}" for n in names])
        self.mistakes.clear()
        self._want_mistakes = True
        self.occ_size.setMaximum(min(ds.input_shape[1:]))
        self.occ_stride.setMaximum(max(ds.input_shape[1:]))

    def _input(self):
        x, token = getattr(self.ws, "_inspect", (None, 0))
        return x, token, getattr(self.ws, "_inspect_label", None), \
            getattr(self.ws, "_inspect_what", "")

    def _target(self, label):
        i = self.class_combo.currentIndex()
        if i <= 0:
            return None
        if i == 1:
            return label
        return i - 2

    def _norm(self):
        """(mean, std) per channel of the dataset's normalisation, or None."""
        norm = self.ws.dataset.normalization or {}
        if "mean" not in norm or "std" not in norm:
            return None
        s = np.asarray(norm["std"], np.float32).ravel()
        return np.asarray(norm["mean"], np.float32).ravel(), np.where(s == 0, 1, s)

    def _pixel(self, v):
        """Raw pixel value v (0 black .. 1 white) in the model's input units, per channel."""
        ms = self._norm()
        return v if ms is None else (v - ms[0]) / ms[1]

    def _fill(self):
        return self._pixel(0.5)          # mid-grey: the occlusion patch

    def _black(self):
        return self._pixel(0.0)          # the baseline of gradient x input

    def _bounds(self):
        """Pixels 0..1 in the model's input units (the range of real images)."""
        if self._norm() is None:
            return None
        return float(np.min(self._pixel(0.0))), float(np.max(self._pixel(1.0)))

    def _visible(self, what):
        if not self.isVisible():
            return False
        if what == "explain":
            return self.views.currentWidget() is self.why
        if what == "mistakes":
            return self.left_tabs.currentWidget() is self.mistakes
        if what == "maximize":
            return self.views.currentWidget() is self.maxview
        return True

    # ================================================================ requests
    def _explain_job(self):
        x, token, label, what = self._input()
        if x is None:
            return None
        req = {"x": np.array(x, np.float32), "token": token, "label": label, "what": what,
               "target": self._target(label), "cam": self.cam_layer.currentData(),
               "size": self.occ_size.value(), "stride": self.occ_stride.value(),
               "fill": self._fill() if self.occ_fill.currentIndex() == 0 else self._black(),
               "black": self._black()}

        def run(job):
            model = job.model()
            if model is None or tuple(model.input_shape) != req["x"].shape:
                return None
            convs = conv_layers(model) if len(model.input_shape) == 3 else []
            cam = req["cam"] if req["cam"] in convs else (default_cam_layer(model) if convs
                                                          else None)
            e = explain(model, req["x"], req["target"], cam_layer=cam, baseline=req["black"])
            occ = occlusion(model, req["x"], int(e.target[0]), req["size"], req["stride"],
                            req["fill"]) if len(model.input_shape) == 3 else None
            return {**req, "exp": e, "occ": occ}
        return run

    def _mistakes_job(self):
        ds = self.ws.dataset

        def run(job):
            model = job.model()
            if model is None or tuple(model.input_shape) != tuple(ds.input_shape):
                return None
            return {"dataset": ds, "result": mistakes(model, ds.x_test, ds.y_test, 256)}
        return run

    def _pull(self, explain_=False, mistakes_=False, hist=False, maxim=None):
        """Copy the weights between two training steps, then queue the jobs."""
        if self.ws.trainer is None:
            return
        self._dataset_changed()
        self._model_changed()
        quick = self._thread("quick")
        jobs = []
        if explain_:
            jobs.append(("explain", self._explain_job()))
        if mistakes_:
            jobs.append(("mistakes", self._mistakes_job()))
        if maxim is not None:
            jobs.append(("maximize", maxim))
        history = self.history

        def in_training_thread(tr):
            self.mirror.update(tr)
            if hist and tr.steps > 0 and (not history.steps or history.steps[-1] != tr.steps):
                step, arrays = int(tr.steps), snapshot_arrays(tr.model)
                quick.submit("hist", lambda job: history.add(step, arrays) or "hist")
            for kind, fn in jobs:
                if fn is not None:
                    (self._threads["slow"] if kind == "maximize" else quick).submit(kind, fn)
        if maxim is not None:
            self._thread("slow")
        self.ws.controller.apply(in_training_thread)

    def request(self):
        """The visible explanation now (after a change of input, class or setting)."""
        self._t["explain"] = time.monotonic()
        self._pull(explain_=True)

    def refresh_now(self, mistakes_=True):
        """Every explanation and the mistakes, visible or not (tests, screenshots)."""
        self._t["explain"] = self._t["mistakes"] = time.monotonic()
        self._pull(explain_=True, mistakes_=mistakes_, hist=True)

    def _tick(self):
        now = time.monotonic()
        want = {}
        if self._visible("explain") and now - self._t["explain"] >= EXPLAIN_EVERY_S:
            want["explain_"] = True
        if self._visible("mistakes") and (self._want_mistakes or
                                          now - self._t["mistakes"] >= MISTAKES_EVERY_S):
            want["mistakes_"] = True
        if now - self._t["hist"] >= HIST_EVERY_S:
            want["hist"] = True
        for k, key in (("explain_", "explain"), ("mistakes_", "mistakes"), ("hist", "hist")):
            if k in want:
                self._t[key] = now
        if "mistakes_" in want:
            self._want_mistakes = False
        if want:
            self._pull(**want)
        if self.distributions.isVisible():
            self.distributions.refresh()
        # the last snapshot of a burst must not be dropped by the throttle
        if self._visible("explain") and "explain_" not in want:
            self._tick_timer.start(int(1000 * EXPLAIN_EVERY_S))

    def _on_snapshot(self, snap):
        self._tick()

    def showEvent(self, ev):
        super().showEvent(ev)
        self._dataset_changed()
        self._model_changed()
        self._t["explain"] = 0.0
        QTimer.singleShot(0, self._tick)

    # ================================================================ selection
    def _gallery_picked(self, i):
        idx = getattr(self.ws, "_gallery_idx", [])
        if i < len(idx):
            self.ws.select_test_input(int(idx[i]))
            self.request()

    def _mistake_picked(self, idx, pred):
        self.ws.select_test_input(int(idx))
        self.class_combo.setCurrentIndex(0)
        self.views.setCurrentWidget(self.why)
        self.gallery.select(None)
        self.request()

    # ================================================================ maximisation
    def cancel_maximize(self):
        self._max_stop.set()      # also stops a run still on its way to the thread
        if "slow" in self._threads:
            self._threads["slow"].cancel("maximize")

    def run_maximize(self):
        self._model_changed()
        s = self.maxview.settings()
        bounds = self._bounds()
        self._max_stop.set()
        stop = self._max_stop = threading.Event()

        def run(job):
            model = job.model()
            if model is None:
                return None
            layer = s["layer"] if s["layer"] in conv_layers(model) else None
            box = receptive_box(model, layer)

            last = {"bar": 0.0, "preview": time.monotonic()}

            def progress(step, total, images):
                # throttled: a signal per step would flood the UI's event queue
                now = time.monotonic()
                if now - last["bar"] < 0.05 and step < total:
                    return
                last["bar"] = now
                preview = None
                if now - last["preview"] >= 0.4:
                    last["preview"] = now
                    preview = (images.copy(), box)
                job.progress(step, total, preview)
            r = maximize(model, layer=layer, steps=s["steps"], l2=s["l2"],
                         blur_sigma=s["blur_sigma"], jitter=s["jitter"], seed=s["seed"],
                         bounds=bounds, progress=progress,
                         cancel=lambda: stop.is_set() or job.cancelled())
            return {"result": r, "step": self.mirror.step}
        self.maxview.set_running(True)
        self.maxview.show_progress(0, s["steps"])
        self._pull(maxim=run)

    def _follow_rerun(self):
        if (self.maxview.follow.isChecked() and self._visible("maximize")
                and self.ws.controller.running):
            self.run_maximize()

    # ================================================================ results
    def _names(self):
        return list(self.ws.dataset.class_names) if self.ws.dataset is not None else []

    def _done(self, kind, res):
        if kind == "explain":
            x, token = self._input()[:2]
            if res["token"] == token:
                self._last = res
                self._render()
        elif kind == "mistakes":
            if res["dataset"] is self.ws.dataset:
                self.mistakes.set_mistakes(res["result"], self.ws.thumb, self._names(),
                                           f", step {self.mirror.step}")
        elif kind == "maximize":
            r = res["result"]
            self.maxview.set_running(False)
            what = ("every class" if r.layer is None else f"layer {r.layer}") + \
                f", weights of step {res['step']}"
            self.maxview.show_result(r, self._names() if r.layer is None else None, what)
            if self.maxview.follow.isChecked() and not r.cancelled:
                self._follow_timer.start(int(1000 * FOLLOW_PAUSE_S))
        elif kind == "hist" and self.distributions.isVisible():
            self.distributions.refresh()

    def _failed(self, kind, msg):
        if kind == "maximize":
            self.maxview.set_running(False)
            self.maxview.note.setText(f"Activation maximisation failed: {msg}")
        elif kind == "explain":
            self.t_input.set_content(None, f"Cannot explain: {msg}")

    def _progress(self, kind, step, total, preview):
        if kind == "maximize":
            names = self._names() if self.maxview.choice() is None else None
            images, box = preview if preview is not None else (None, None)
            self.maxview.show_progress(step, total, images, box, names)

    def model_changed(self):
        """The workspace installed a new network: drop what was shown, refresh if visible."""
        self._model_changed()
        if self.isVisible():
            self._t["explain"] = 0.0
            QTimer.singleShot(0, self._tick)

    def _model_changed(self):
        """Refill the layer choices when the network changes (structure only: safe to read
        from the UI thread, the training thread changes weights, not shapes)."""
        tr = self.ws.trainer
        model = getattr(tr, "model", None)
        if model is None or model is self._model:
            return
        self._model = model
        self._last = None               # pictures of another network: gone
        for t in (self.t_input, self.t_sal, self.t_gxi, self.t_cam, self.t_occ):
            t.set_content(None)
        self.maxview.clear()
        self.mistakes.clear()
        self._want_mistakes = True
        convs = conv_layers(model) if len(model.input_shape) == 3 else []
        default = default_cam_layer(model) if convs else None
        self.cam_layer.blockSignals(True)
        self.cam_layer.clear()
        for i in convs:
            o = model.layers[i].output_shape
            self.cam_layer.addItem(f"layer {i} ({o[1]}×{o[2]})", i)
        k = self.cam_layer.findData(default)
        if k >= 0:
            self.cam_layer.setCurrentIndex(k)
        self.cam_layer.blockSignals(False)
        self.maxview.set_layers([(i, "Conv2D", model.layers[i].output_shape[0]) for i in convs],
                                default)

    def _render(self):
        res = self._last
        if res is None:
            return
        ds = self.ws.dataset
        names = self._names()
        e, occ = res["exp"], res["occ"]
        t = int(e.target[0])
        cname = names[t] if t < len(names) else str(t)
        label = res["label"]
        disp = image_for_display(res["x"], ds.normalization)
        op, on = self.opacity.value() / 100.0, self.on_input.isChecked()
        p = e.probs[0]
        pred = int(p.argmax())
        truth = f", true {names[label]}" if label is not None and label < len(names) else ""
        self.input_label.setText(f"Explaining {res['what']}{truth}")
        pname = names[pred] if pred < len(names) else str(pred)
        self.t_input.set_content(base_rgb(disp).astype(np.uint8),
                                 f"predicted {pname} ({prob_text(p[pred])})" +
                                 ("" if t == pred else
                                  f"\nexplaining {cname} ({prob_text(p[t])})"))
        self.probs.set_probs(p, names, label)
        img = disp if disp.ndim == 2 else disp
        _, top = scaled(e.saliency[0], False)
        self.t_sal.set_content(overlay(img, e.saliency[0], "inferno", False, op, on),
                               f"a small change here moves “{cname}” most",
                               colorbar("inferno", False), ("0", f"{top:.2g}"))
        self.t_gxi.set_content(overlay(img, e.grad_x_input[0], "diverging", True, op, on),
                               f"blue ink pushes towards “{cname}”, red away",
                               colorbar("diverging", True),
                               ("against", "for"))
        if e.grad_cam is not None:
            hw = e.cam_maps.shape[2:]
            self.t_cam.title.setText(f"Grad-CAM: layer {e.cam_layer}")
            self.t_cam.set_content(overlay(img, e.grad_cam[0], "inferno", False, op, on),
                                   f"{e.cam_maps.shape[1]} maps of {hw[0]}×{hw[1]}, weighted "
                                   f"for “{cname}”", colorbar("inferno", False),
                                   ("0", "strongest"))
        else:
            self.t_cam.set_content(None, "Grad-CAM needs a convolution layer")
        if occ is not None:
            drop = float(occ.drop.max())
            self.t_occ.title.setText(f"Occlusion: {occ.size}×{occ.size}, stride {occ.stride}")
            self.t_occ.set_content(overlay(img, occ.heatmap, "diverging", True, op, on),
                                   f"p(“{cname}”) = {occ.prob:.2f}; covering blue "
                                   f"lowers it, by up to {drop:.2f}",
                                   colorbar("diverging", True),
                                   ("raises p", "lowers p"))

    # ================================================================ export
    def export_png(self, path=None) -> bool:
        return export_widget(self.views.currentWidget(), path,
                             "explain.png" if self.views.currentWidget() is self.why else
                             "maximise.png")


__all__ = ["ExplainPanel", "ExplainError"]
