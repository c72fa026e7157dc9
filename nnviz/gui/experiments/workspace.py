"""Experiments: two networks trained side by side on the same data, with the view that
shows why they differ (nnviz.experiments holds the data, nets and probes).

One worker thread steps both arms in turn (a SideBySide runner), like Compare depths in the
Playground: the arms stay at the same step, and the UI thread only draws the snapshots.
"""
from __future__ import annotations

import time

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from nnviz.experiments import EXPERIMENTS, ExperimentError, make_experiment

from ..curves import CurvesWidget, smooth
from ..dialogs import ErrorBanner
from ..snapshots import HistoryCopier
from ..worker import TrainingController
from ..workspace import Workspace
from .views import ExperimentSnapshot, GradNormView, SamplesView, arm_color

PAGES = {"grad_norms": 0, "samples": 1}


class ExperimentsWorkspace(Workspace):
    title = "Experiments"
    CURVES_EVERY_S = 0.1      # curves at most ten times a second while training

    def __init__(self, parent=None):
        super().__init__(parent)
        self.experiment = None
        self.run = None
        self.last_snapshot: ExperimentSnapshot | None = None
        self._token = 0
        self._slow_t = 0.0
        self._syncing = False
        self._ctrl = TrainingController(self, max_fps=25)
        self._ctrl.snapshot.connect(self._on_snapshot)
        self._ctrl.state_changed.connect(self._on_state)
        self._ctrl.diverged.connect(self._on_error)
        self._ctrl.failed.connect(self._on_error)
        self._build_ui()
        self.load("vanishing")

    # ---- workspace protocol --------------------------------------------------------------
    @property
    def controller(self):
        return self._ctrl

    def start_pause(self):
        self._ctrl.toggle()
        self._on_state("running" if self._ctrl.running else "paused")

    def step(self):
        self._ctrl.step()

    def reset(self):
        self.load(self.experiment.name, self.experiment.options)

    def shutdown(self):
        return bool(self._ctrl.stop(1000))

    def activated(self, workspaces):
        if self.last_snapshot is None:
            self._ctrl.refresh()

    def prepare_screenshot(self):
        self.load("vanishing")
        self.train_sync(200)

    # ---- UI ------------------------------------------------------------------------------
    def _build_ui(self):
        root = QVBoxLayout(self)
        root.setContentsMargins(6, 6, 6, 6)
        root.setSpacing(6)
        top = QHBoxLayout()
        self.exp_combo = QComboBox()
        for name, cls in EXPERIMENTS.items():
            self.exp_combo.addItem(cls.title, name)
        self.exp_combo.currentIndexChanged.connect(self._experiment_chosen)
        self.play_button = QPushButton("▶  Train")
        self.play_button.setObjectName("play")
        self.play_button.setCheckable(True)
        self.play_button.clicked.connect(lambda: self.start_pause())
        self.step_button = QPushButton("Step")
        self.step_button.clicked.connect(self.step)
        self.reset_button = QPushButton("Reset")
        self.reset_button.setToolTip("New nets from the same seed: the same run again")
        self.reset_button.clicked.connect(self.reset)
        self.step_label = QLabel("Step 0")
        self.step_label.setObjectName("metric")
        top.addWidget(QLabel("Experiment:"))
        top.addWidget(self.exp_combo)
        top.addSpacing(10)
        for w in (self.play_button, self.step_button, self.reset_button):
            top.addWidget(w)
        top.addSpacing(10)
        top.addWidget(self.step_label)
        top.addStretch(1)
        root.addLayout(top)

        opts = QHBoxLayout()
        self.depth_spin = QSpinBox()
        self.depth_spin.setRange(1, 60)
        self.depth_spin.setToolTip("hidden layers of each net")
        self.act_combo = QComboBox()
        self.act_combo.addItems(["tanh", "sigmoid"])
        self.pad_combo = QComboBox()
        self.pad_combo.addItem("full (k − 1), no biases", "full")
        self.pad_combo.addItem("same, with biases", "same")
        self.pad_combo.setToolTip("the CNN's padding: 'same' padding with biases lets the border show")
        self.vanishing_opts = self._row(opts, ("Hidden layers:", self.depth_spin), ("Activation:", self.act_combo))
        self.translation_opts = self._row(opts, ("CNN padding:", self.pad_combo))
        self.depth_spin.valueChanged.connect(lambda v: self._option("depth", int(v)))
        self.act_combo.currentTextChanged.connect(lambda t: self._option("activation", t))
        self.pad_combo.currentIndexChanged.connect(
            lambda i: self._option("cnn_padding", self.pad_combo.itemData(i)))
        self.result_label = QLabel("")
        opts.addWidget(self.result_label, 1)
        root.addLayout(opts)

        self.caption = QLabel()
        self.caption.setWordWrap(True)
        self.caption.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.caption.setStyleSheet("QLabel { background: #f4f7fb; border: 1px solid #d5dde8; "
                                   "border-radius: 5px; padding: 6px; }")
        root.addWidget(self.caption)
        self.banner = ErrorBanner()
        root.addWidget(self.banner)

        split = QSplitter(Qt.Vertical)
        self.curves = CurvesWidget()
        self.curves.x_axis_changed.connect(self._x_axis_changed)
        split.addWidget(self.curves)
        self.diag = QStackedWidget()
        self.grads = GradNormView()
        self.samples = SamplesView()
        self.diag.addWidget(self.grads)
        self.diag.addWidget(self.samples)
        split.addWidget(self.diag)
        split.setSizes([330, 270])
        root.addWidget(split, 1)

    @staticmethod
    def _row(lay, *pairs):
        box = QWidget()
        row = QHBoxLayout(box)
        row.setContentsMargins(0, 0, 0, 0)
        for text, w in pairs:
            row.addWidget(QLabel(text))
            row.addWidget(w)
            row.addSpacing(8)
        lay.addWidget(box)
        return box

    # ---- loading an experiment -----------------------------------------------------------
    def load(self, name: str, options: dict | None = None) -> None:
        """Build experiment `name` with `options` (ExperimentError names a bad option)."""
        exp = make_experiment(name, **(options or {}))
        self._ctrl.stop(1000)
        self.experiment = exp
        self.run = exp.build()
        self._token += 1
        self.last_snapshot = None
        self.banner.dismiss()
        self._sync_controls()
        self.caption.setText(exp.describe())
        self.curves.clear()
        # the residual net's first losses are large: on a log axis the plain net's stall still shows
        self.curves.set_log(exp.name == "vanishing")
        self.grads.clear()
        self.grads.set_labels([a.label for a in self.run.arms])
        self.diag.setCurrentIndex(PAGES[exp.diagnostic])
        if exp.diagnostic == "samples":
            self.samples.set_samples(*exp.samples())
        self.result_label.setText("")
        self._show_steps(0, 0.0, False)
        self._ctrl.set_trainer(self.run, self._snapshot_fn())
        self._on_state("paused")
        self.changed.emit()

    def _sync_controls(self):
        exp = self.experiment
        self._syncing = True
        try:
            self.exp_combo.setCurrentIndex(self.exp_combo.findData(exp.name))
            o = exp.options
            if exp.name == "vanishing":
                self.depth_spin.setValue(o["depth"])
                self.act_combo.setCurrentText(o["activation"])
            else:
                self.pad_combo.setCurrentIndex(self.pad_combo.findData(o["cnn_padding"]))
            self.vanishing_opts.setVisible(exp.name == "vanishing")
            self.translation_opts.setVisible(exp.name == "translation")
        finally:
            self._syncing = False

    def _experiment_chosen(self, i):
        if not self._syncing:
            self.load(self.exp_combo.itemData(i))

    def _option(self, key, value):
        if self._syncing or self.experiment is None:
            return
        try:
            self.load(self.experiment.name, {**self.experiment.options, key: value})
        except ExperimentError as e:
            self.banner.show_message(str(e))

    def train_sync(self, n: int) -> None:
        """n steps now, in the worker thread (the caller waits): a lesson's trained scene."""
        self._ctrl.pause()
        self._ctrl.run_locked(lambda run: run.run(int(n)), timeout_s=600)
        self._ctrl.refresh()

    # ---- snapshots (made in the worker thread) -------------------------------------------
    def _snapshot_fn(self):
        token, exp = self._token, self.experiment
        copiers = [HistoryCopier() for _ in self.run.arms]
        samples = exp.samples()[0] if exp.diagnostic == "samples" else None

        def make(run):
            snap = ExperimentSnapshot(token=token, labels=[a.label for a in run.arms],
                                      histories=[c.copy(a.trainer.history) for c, a in zip(copiers, run.arms)])
            if exp.diagnostic == "grad_norms":
                snap.grad_norms = [run.probes[a.key]["layer_grad_norms"].copy() for a in run.arms]
                empty = (np.zeros(0), np.zeros(0))
                snap.first_grad = [run.series[a.key]["first_layer_grad_norm"].arrays()
                                   if "first_layer_grad_norm" in run.series[a.key] else empty for a in run.arms]
            if samples is not None:
                snap.sample_probs = [a.model.predict_proba(samples)[:, 1].astype(np.float64) for a in run.arms]
            return snap
        return make

    def _on_snapshot(self, snap):
        if not isinstance(snap, ExperimentSnapshot) or snap.token != self._token:
            return
        self.last_snapshot = snap
        st = snap.status
        now = time.perf_counter()
        if now - self._slow_t >= self.CURVES_EVERY_S or not st.running:
            self._slow_t = now
            for i, (label, hist) in enumerate(zip(snap.labels, snap.histories)):
                self._draw_history(label, hist, arm_color(i))
            self.grads.update_snapshot(snap)
        if snap.sample_probs:
            self.samples.set_probs(snap.labels, snap.sample_probs)
        accs = [h.last_test_accuracy() for h in snap.histories]
        if all(a is not None for a in accs):
            self.result_label.setText("Test accuracy: " + ", ".join(
                f"{label} {a:.0%}" for label, a in zip(snap.labels, accs)))
        self._show_steps(st.steps, st.steps_per_s, st.running, st.epoch, st.elapsed)

    def _draw_history(self, label, hist, color):
        """Train per step (smoothed, in the legend) and test per epoch (dashed, the caption says)."""
        st, ep = hist.steps, hist.epochs
        by_epoch = self.curves.x_mode == "epochs"
        ex = ep.get("epoch" if by_epoch else "step", [])
        for key in ("loss", "accuracy"):
            if by_epoch:
                self.curves.set_curve(key, label, ex, ep.get(f"train_{key}", []), color)
            else:
                self.curves.set_curve(key, label, st.get("step", []), smooth(st.get(key, [])), color)
            self.curves.set_curve(key, f"{label} test", ex, ep.get(f"test_{key}", []), color,
                                  style="dash", legend=False)

    def _x_axis_changed(self, _):
        self.curves.clear()
        snap = self.last_snapshot
        if snap is not None:
            for i, (label, hist) in enumerate(zip(snap.labels, snap.histories)):
                self._draw_history(label, hist, arm_color(i))

    def _show_steps(self, steps, sps, running, epoch=0, elapsed=0.0):
        self.step_label.setText(f"Step {steps:,}")
        self.status.emit({"steps_per_s": sps, "running": bool(running), "epoch": epoch, "step": steps,
                          "elapsed": elapsed})

    def _on_state(self, state):
        running = self._ctrl.running
        self.play_button.setChecked(running)
        self.play_button.setText("❚❚  Pause" if running else "▶  Train")

    def _on_error(self, msg):
        self._on_state("paused")
        self.banner.show_message(f"{msg}. Training paused: press Reset to start again.")
