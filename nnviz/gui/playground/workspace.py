"""The Playground workspace: a TensorFlow-Playground-like page on the nnviz engine."""
import logging
import time

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from ..curves import CurvesWidget, smooth
from ..dialogs import ErrorBanner
from ..numeric import NumberCombo, NumberDoubleSpin, NumberSpin
from ..snapshots import CompareSnapshot, PlaygroundSnapshot
from ..style import DEPTH_COLORS
from ..worker import TrainingController
from ..workspace import Workspace
from . import dropout as drop
from .boundary import BoundaryPlot
from .features import FEATURES, feature_map
from .network import NetworkView
from .session import (
    ACTIVATIONS,
    COMPARE_RES,
    NEURON_RES,
    GroupTrainer,
    Run,
    Settings,
    dropout_runs,
    grid_points,
    make_group_snapshot_fn,
    make_snapshot_fn,
    trainers_of,
)
from .toydata import MULTICLASS, TOY_NAMES, make_toy

log = logging.getLogger("nnviz")

COMPARE_TEXT = "Compare depths"
# Compare depths starts with these: ReLU edges make the lecture's picture on `circle`
LECTURE = {"dataset": "circle", "activation": "ReLU", "width": 4, "lr": 0.03}
LR_CHOICES = ["0.00001", "0.0001", "0.001", "0.003", "0.01", "0.03", "0.1", "0.3", "1", "3", "10"]
REG_RATES = ["0", "0.001", "0.003", "0.01", "0.03", "0.1", "0.3", "1", "3", "10"]
MAX_LAYERS = 6


def _hms(seconds):
    seconds = int(seconds)
    return f"{seconds // 60:d}:{seconds % 60:02d}"


class PlaygroundWorkspace(Workspace):
    title = "Playground"

    def __init__(self, parent=None):
        super().__init__(parent)
        self.settings = Settings()
        self.opts = {"discretize": False}
        self.raw = None
        self.run = None
        self.group = None
        self.last_snapshot = None
        self.last_compare = None
        self.selected = (None, None)
        self._clean_steps = 0
        self._compared = False
        self._compared_dropout = False
        self.compare_variant = "depths"    # or "dropout": the same net with and without it
        self._building = False
        self._slow_t = 0.0
        self.single = TrainingController(self, max_fps=25)
        # Compare depths: ONE worker steps the three trainers round-robin (GroupTrainer).
        # Three threads would fight over the GIL and the 2 cores with the UI thread, and
        # round-robin keeps the three nets at exactly the same step count, which is what a
        # fair side-by-side comparison needs.
        self.compare = TrainingController(self, max_fps=25)
        self.last_divergence = None
        for c in (self.single, self.compare):
            c.diverged.connect(self._on_diverged)
            c.failed.connect(self._on_error)
            c.state_changed.connect(self._on_state)
        self.single.snapshot.connect(self._on_snapshot)
        self.compare.snapshot.connect(self._on_compare_snapshot)
        self._build_ui()
        self._fit_side_panel()
        self._update_neuron_spins()
        self.regenerate()

    # ---- workspace protocol ----------------------------------------------------------
    @property
    def controller(self):
        return self.compare if self.in_compare else self.single

    @property
    def in_compare(self):
        return self.stack.currentIndex() == 1

    @property
    def trainer(self):
        return self.run.trainer if self.run is not None else None

    def shutdown(self):
        ok1 = self.single.stop(1000)
        ok2 = self.compare.stop(1000)
        return ok1 and ok2

    def current_model(self):
        return self.run.model if self.run is not None else None

    def is_dirty(self):
        return self.run is not None and self.run.trainer.steps != self._clean_steps

    def mark_saved(self):
        if self.run is not None:
            self._clean_steps = self.run.trainer.steps

    def save_payload(self):
        if self.run is None:
            return None
        return self.run.model, self.run.trainer, self.run.data

    def start_pause(self):
        self.controller.toggle()

    def step(self):
        self.controller.step()

    def reset(self):
        if self.in_compare:
            self.start_compare(lecture_defaults=False)
        else:
            self.rebuild()

    def open_loaded(self, loaded):
        model = getattr(loaded, "model", None)
        if model is None or len(model.input_shape) != 1:
            return False
        types = [l.type for l in model.layers]
        if any(t not in ("Dense", "Dropout") + tuple(a for a in ACTIVATIONS.values() if a)
               for t in types):
            return False
        n_in = model.input_shape[0]
        keys = {2: ["x1", "x2"], 7: [k for k, _ in FEATURES]}.get(n_in)
        if keys is None:
            return False
        meta = getattr(loaded, "meta", {}) or {}
        ds = (meta.get("dataset") or {}).get("name")
        acts = [t for t in types if t not in ("Dense", "Dropout")]
        rates = [l.p for l in model.layers if l.type == "Dropout"]
        if not drop.playground_layout(types, rates):
            return False
        s = self.settings
        s.dropout = rates[0] if rates else 0.0
        s.features = keys
        s.hidden = [l.out_features for l in model.layers if l.type == "Dense"][:-1]
        s.activation = acts[0] if acts else "Linear"
        if ds in TOY_NAMES:
            s.dataset = ds
        s.classes = model.output_shape[0] if s.dataset in MULTICLASS else 2
        self._sync_controls()
        self.raw = self._make_raw()
        self.rebuild(model=model, training=meta.get("training"))
        return True

    # ---- UI -----------------------------------------------------------------------------
    def _build_ui(self):
        root = QVBoxLayout(self)
        root.setContentsMargins(6, 6, 6, 6)
        root.setSpacing(6)
        # top bar
        top = QHBoxLayout()
        self.play_button = QPushButton("▶  Train")
        self.play_button.setObjectName("play")
        self.play_button.setCheckable(True)
        self.play_button.clicked.connect(self._play_clicked)
        self.step_button = QPushButton("Step")
        self.step_button.clicked.connect(self.step)
        self.reset_button = QPushButton("Reset")
        self.reset_button.clicked.connect(self.reset)
        self.epoch_label = QLabel("Epoch 0")
        self.epoch_label.setObjectName("metric")
        self.step_label = QLabel("Step 0")
        self.step_label.setObjectName("metric")
        self.speed_label = QLabel("")
        self.speed_label.setToolTip("training steps per second (while training)")
        self.compare_button = QPushButton(COMPARE_TEXT)
        self.compare_button.setToolTip("Train 0, 1 and 2 hidden layers side by side")
        self.compare_button.clicked.connect(
            lambda: self.start_compare(variant=None if self.in_compare else "depths"))
        self.dropout_button = QPushButton("Compare dropout")
        self.dropout_button.setToolTip("Train the same net with and without dropout side by side")
        self.dropout_button.clicked.connect(lambda: self.start_compare(variant="dropout"))
        self.back_button = QPushButton("◀  One network")
        self.back_button.setToolTip("Back to the single network")
        self.back_button.clicked.connect(self.leave_compare)
        self.back_button.hide()
        for w in (self.play_button, self.step_button, self.reset_button):
            top.addWidget(w)
        top.addSpacing(20)
        top.addWidget(self.epoch_label)
        top.addSpacing(16)
        top.addWidget(self.step_label)
        top.addSpacing(16)
        top.addWidget(self.speed_label)
        top.addStretch(1)
        self._reserve_speed_width()
        top.addWidget(self.compare_button)
        top.addWidget(self.dropout_button)
        top.addWidget(self.back_button)
        root.addLayout(top)
        self.banner = ErrorBanner(self)
        root.addWidget(self.banner)

        body = QHBoxLayout()
        body.setSpacing(8)
        root.addLayout(body, 1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.side_scroll = scroll
        panel = QWidget()
        scroll.setWidget(panel)
        pl = QVBoxLayout(panel)
        pl.setContentsMargins(2, 2, 8, 2)
        pl.addWidget(self._data_group())
        pl.addWidget(self._features_group())
        pl.addWidget(self._network_group())
        pl.addWidget(self._training_group())
        pl.addWidget(self._view_group())
        pl.addStretch(1)
        self._side_panel = panel
        body.addWidget(scroll)

        self.stack = QStackedWidget()
        body.addWidget(self.stack, 1)
        # single page
        single = QWidget()
        sl = QGridLayout(single)
        sl.setContentsMargins(0, 0, 0, 0)
        netbox = QGroupBox("Network")
        nl = QVBoxLayout(netbox)
        self.network = NetworkView()
        self.network.node_clicked.connect(self._node_clicked)
        nl.addWidget(self.network, 1)
        self.dropout_hint = QLabel("Grey: units dropped in the last training step")
        self.dropout_hint.setToolTip("for the first example of that step's batch (each example "
                                     "draws its own units); evaluation uses every unit")
        self.dropout_hint.setWordWrap(True)
        self.dropout_hint.setStyleSheet("color:#555")
        self.dropout_hint.hide()
        nl.addWidget(self.dropout_hint)
        zoom = QHBoxLayout()
        self.zoom_image = QLabel()
        self.zoom_image.setFixedSize(96, 96)
        self.zoom_image.setScaledContents(True)
        self.zoom_caption = QLabel("Click a neuron to enlarge it")
        self.zoom_caption.setWordWrap(True)
        zoom.addWidget(self.zoom_image)
        zoom.addWidget(self.zoom_caption, 1)
        nl.addLayout(zoom)
        outbox = QGroupBox("Output: decision boundary")
        ol = QVBoxLayout(outbox)
        self.boundary = BoundaryPlot()
        self.boundary.setMinimumSize(260, 260)
        ol.addWidget(self.boundary, 1)
        self.curves = CurvesWidget()
        self.curves.setMinimumHeight(200)
        self.curves.x_axis_changed.connect(lambda _: self._redraw_curves())
        sl.addWidget(netbox, 0, 0)
        sl.addWidget(outbox, 0, 1)
        sl.addWidget(self.curves, 1, 0, 1, 2)
        sl.setColumnStretch(0, 5)
        sl.setColumnStretch(1, 4)
        sl.setRowStretch(0, 3)
        sl.setRowStretch(1, 2)
        self.stack.addWidget(single)
        # compare page
        comp = QWidget()
        cl = QVBoxLayout(comp)
        cl.setContentsMargins(0, 0, 0, 0)
        self.compare_info = QLabel("")
        self.compare_info.setWordWrap(True)
        cl.addWidget(self.compare_info)
        row = QHBoxLayout()
        self.compare_plots = []
        for k in range(3):
            bp = BoundaryPlot(title=f"{k} hidden layer{'s' if k != 1 else ''}", point_size=6)
            bp.setMinimumSize(200, 200)
            self.compare_plots.append(bp)
            row.addWidget(bp, 1)
        cl.addLayout(row, 3)
        self.compare_curves = CurvesWidget(title_loss="Training loss (solid) / test loss (dashed)",
                                           title_accuracy="Test accuracy")
        self.compare_curves.setMinimumHeight(200)
        self.compare_curves.x_axis_changed.connect(lambda _: self._redraw_compare_curves())
        cl.addWidget(self.compare_curves, 2)
        self.stack.addWidget(comp)

    def _data_group(self):
        g = QGroupBox("Data")
        f = QFormLayout(g)
        self.dataset_combo = QComboBox()
        self.dataset_combo.addItems(TOY_NAMES)
        self.dataset_combo.setCurrentText(self.settings.dataset)
        self.noise_spin = NumberDoubleSpin()
        self.noise_spin.setRange(0, 0.5)
        self.noise_spin.setSingleStep(0.05)
        self.noise_spin.setValue(self.settings.noise)
        self.points_spin = NumberSpin()
        self.points_spin.setRange(50, 5000)
        self.points_spin.setSingleStep(50)
        self.points_spin.setValue(self.settings.n_points)
        self.ratio_spin = NumberSpin()
        self.ratio_spin.setRange(10, 90)
        self.ratio_spin.setSuffix(" % train")
        self.ratio_spin.setValue(int(round(100 * (1 - self.settings.test_fraction))))
        self.classes_spin = NumberSpin()
        self.classes_spin.setRange(2, 6)
        self.classes_spin.setValue(self.settings.classes)
        self.regen_button = QPushButton("Regenerate")
        self.regen_button.clicked.connect(lambda: self.regenerate(new_seed=True))
        for w in (self.dataset_combo,):
            w.currentTextChanged.connect(lambda _: self.regenerate())
        for w in (self.noise_spin, self.points_spin, self.ratio_spin, self.classes_spin):
            w.valueChanged.connect(lambda _: self.regenerate())   # on Enter / arrows only
        f.addRow("Dataset", self.dataset_combo)
        f.addRow("Noise", self.noise_spin)
        f.addRow("Points", self.points_spin)
        f.addRow("Split", self.ratio_spin)
        f.addRow("Classes", self.classes_spin)
        f.addRow(self.regen_button)
        return g

    def _features_group(self):
        g = QGroupBox("Input features")
        gl = QGridLayout(g)
        self.feature_boxes = {}
        for i, (key, label) in enumerate(FEATURES):
            cb = QCheckBox(label)
            cb.setChecked(key in self.settings.features)
            cb.toggled.connect(self._arch_changed)
            self.feature_boxes[key] = cb
            gl.addWidget(cb, i // 2, i % 2)
        return g

    def _network_group(self):
        g = QGroupBox("Hidden layers")
        lay = QVBoxLayout(g)
        row = QHBoxLayout()
        self.layer_buttons = []
        for n in (0, 1, 2):
            b = QPushButton(str(n))
            b.setCheckable(True)
            b.setToolTip(f"{n} hidden layer{'s' if n != 1 else ''}")
            b.clicked.connect(lambda _=False, n=n: self.set_hidden_layers(n))
            self.layer_buttons.append(b)
            row.addWidget(b)
        self.layers_spin = NumberSpin()
        self.layers_spin.setRange(0, MAX_LAYERS)
        self.layers_spin.setValue(len(self.settings.hidden))
        self.layers_spin.setToolTip(f"number of hidden layers (0 to {MAX_LAYERS})")
        self.layers_spin.valueChanged.connect(self._arch_changed)
        row.addWidget(self.layers_spin)
        lay.addLayout(row)
        form = QFormLayout()
        self.act_combo = QComboBox()
        self.act_combo.addItems(list(ACTIVATIONS))
        self.act_combo.setCurrentText(self.settings.activation)
        self.act_combo.currentTextChanged.connect(self._arch_changed)
        form.addRow("Activation", self.act_combo)
        lay.addLayout(form)
        lay.addWidget(QLabel("Neurons per layer"))
        grid = QGridLayout()
        self.neuron_spins = []
        for i in range(MAX_LAYERS):
            sp = NumberSpin()
            sp.setRange(1, 16)
            sp.setValue(8)
            sp.setToolTip(f"neurons in hidden layer {i + 1}")
            sp.valueChanged.connect(self._arch_changed)
            self.neuron_spins.append(sp)
            grid.addWidget(sp, i // 3, i % 3)
        lay.addLayout(grid)
        return g

    def _training_group(self):
        g = QGroupBox("Training")
        f = QFormLayout(g)
        self.lr_combo = NumberCombo(LR_CHOICES, self.settings.lr, lo=0.0, hi=100.0,
                                    what="learning rate")
        self.lr_combo.setToolTip("type a value and press Enter, or pick one; \u2191/\u2193 step")
        self.lr_combo.valueChanged.connect(self.set_lr)
        self.batch_spin = NumberSpin()
        self.batch_spin.setRange(1, 1000)
        self.batch_spin.setValue(self.settings.batch_size)
        self.batch_spin.valueChanged.connect(self.set_batch_size)
        self.opt_combo = QComboBox()
        self.opt_combo.addItems(["SGD", "Adam"])
        self.opt_combo.setCurrentText("Adam" if self.settings.optimizer == "adam" else "SGD")
        self.opt_combo.currentTextChanged.connect(self._opt_changed)
        self.reg_combo = QComboBox()
        self.reg_combo.addItems(["None", "L1", "L2"])
        self.reg_combo.currentTextChanged.connect(self._opt_changed)
        self.reg_rate_combo = QComboBox()
        self.reg_rate_combo.addItems(REG_RATES)
        self.reg_rate_combo.setCurrentText(f"{self.settings.reg_rate:g}")
        self.reg_rate_combo.currentTextChanged.connect(self._opt_changed)
        f.addRow("Learning rate", self.lr_combo)
        f.addRow("Batch size", self.batch_spin)
        f.addRow("Optimizer", self.opt_combo)
        f.addRow("Regularizer", self.reg_combo)
        f.addRow("Reg. rate", self.reg_rate_combo)
        self.dropout_combo = QComboBox()
        self.dropout_combo.addItems(drop.RATES)
        self.dropout_combo.setCurrentText(f"{self.settings.dropout:g}")
        self.dropout_combo.setToolTip("share of each hidden layer's units switched off at each "
                                      "training step (never when evaluating)")
        self.dropout_combo.currentTextChanged.connect(self._arch_changed)
        f.addRow("Dropout", self.dropout_combo)
        return g

    def _view_group(self):
        g = QGroupBox("View")
        v = QVBoxLayout(g)
        self.discretize_box = QCheckBox("Discretize output")
        self.discretize_box.toggled.connect(self.set_discretize)
        self.test_box = QCheckBox("Show test data")
        self.test_box.setChecked(True)
        self.test_box.toggled.connect(self._show_test)
        v.addWidget(self.discretize_box)
        v.addWidget(self.test_box)
        hint = QLabel("Train points: white edge\nTest points: black edge")
        hint.setStyleSheet("color:#555")
        v.addWidget(hint)
        return g

    def _sync_controls(self):
        s = self.settings
        self._building = True
        try:
            self.dataset_combo.setCurrentText(s.dataset)
            self.noise_spin.setValue(s.noise)
            self.points_spin.setValue(s.n_points)
            self.ratio_spin.setValue(int(round(100 * (1 - s.test_fraction))))
            self.lr_combo.setValue(s.lr)
            self.batch_spin.setValue(s.batch_size)
            self.opt_combo.setCurrentText("Adam" if s.optimizer == "adam" else "SGD")
            self.reg_combo.setCurrentText(s.reg)
            self.reg_rate_combo.setCurrentText(f"{s.reg_rate:g}")
            self.classes_spin.setValue(s.classes)
            self.layers_spin.setValue(len(s.hidden))
            for sp, n in zip(self.neuron_spins, s.hidden):
                sp.setValue(n)
            self.act_combo.setCurrentText(s.activation)
            self._show_dropout_rate(s.dropout)
            for k, cb in self.feature_boxes.items():
                cb.setChecked(k in s.features)
        finally:
            self._building = False
        self._update_neuron_spins()

    def _show_dropout_rate(self, p):
        text = f"{float(p):g}"
        if self.dropout_combo.findText(text) < 0:      # a lesson's own rate
            self.dropout_combo.addItem(text)
        self.dropout_combo.setCurrentText(text)

    def _reserve_speed_width(self):
        """Room for the longest read-out, so the unit is never cut."""
        fm = self.speed_label.fontMetrics()
        self.speed_label.setMinimumWidth(fm.horizontalAdvance("99,999 steps/s") + 8)

    def _fit_side_panel(self):
        """The settings column is as wide as its widest row (never cut, never scrolled)."""
        sb = self.side_scroll.verticalScrollBar().sizeHint().width()
        self.side_scroll.setFixedWidth(self._side_panel.minimumSizeHint().width() + sb + 4)

    def apply_scale(self):
        self._reserve_speed_width()
        self._fit_side_panel()

    def _update_neuron_spins(self):
        n = self.layers_spin.value()
        for i, sp in enumerate(self.neuron_spins):
            sp.setVisible(i < n)
        for b, k in zip(self.layer_buttons, (0, 1, 2)):
            b.setCheckable(True)
            b.setChecked(k == n)

    # ---- settings -> model -----------------------------------------------------------------
    def _read_settings(self):
        s = self.settings
        s.dataset = self.dataset_combo.currentText()
        s.noise = self.noise_spin.value()
        s.n_points = self.points_spin.value()
        s.test_fraction = 1 - self.ratio_spin.value() / 100
        s.classes = self.classes_spin.value() if s.dataset in MULTICLASS else 2
        s.hidden = [sp.value() for sp in self.neuron_spins[:self.layers_spin.value()]]
        s.activation = self.act_combo.currentText()
        s.features = [k for k, cb in self.feature_boxes.items() if cb.isChecked()]
        s.optimizer = self.opt_combo.currentText().lower()
        s.reg = self.reg_combo.currentText()
        try:
            s.reg_rate = float(self.reg_rate_combo.currentText())
        except ValueError:
            pass
        s.batch_size = self.batch_spin.value()
        s.dropout = float(self.dropout_combo.currentText())
        self.classes_spin.setEnabled(s.dataset in MULTICLASS)
        return s

    def _make_raw(self):
        s = self.settings
        return make_toy(s.dataset, n=s.n_points, noise=s.noise, seed=s.seed,
                        test_fraction=s.test_fraction, classes=s.classes)

    def regenerate(self, new_seed=False):
        if self._building:
            return
        if new_seed:
            self.settings.seed += 1
        self._read_settings()
        try:
            self.raw = self._make_raw()
        except Exception as exc:
            self.banner.show_message(f"Could not make the data: {exc}")
            return
        self.rebuild()
        if self.in_compare:
            self.start_compare(lecture_defaults=False)

    def _arch_changed(self, *_):
        if self._building:
            return
        self._update_neuron_spins()
        if not any(cb.isChecked() for cb in self.feature_boxes.values()):
            self.banner.show_message("Select at least one input feature.")
            return
        self.rebuild()
        if self.in_compare:     # new nets for the comparison too: curves start again
            self.start_compare(lecture_defaults=False)

    def set_hidden_layers(self, n):
        self.layers_spin.setValue(int(n))

    def rebuild(self, model=None, training=None):
        """New model + trainer from the current settings (training stops, paused)."""
        if self._building:
            return
        s = self._read_settings()
        if self.raw is None:
            self.raw = self._make_raw()
        try:
            run = Run(self.raw, s, s.hidden, seed=s.seed)
            if model is not None:
                run = _adopt_model(run, model, training)
        except Exception as exc:
            log.exception("playground: cannot build the model")
            self.banner.show_message(f"Cannot build this network: {exc}")
            return
        self.run = run
        self._clean_steps = run.trainer.steps
        self.last_snapshot = None
        self.single.set_trainer(run.trainer, make_snapshot_fn(run, self.opts))
        self.boundary.set_points(self.raw, run.extent)
        feats = feature_map(grid_points(run.extent, NEURON_RES), run.features)
        self.network.setup(run.features, run.hidden,
                           feats.T.reshape(len(run.features), NEURON_RES, NEURON_RES))
        self.selected = (None, None)
        self.zoom_image.clear()
        self.zoom_caption.setText("Click a neuron to enlarge it")
        self.curves.clear()
        self.dropout_hint.setVisible(run.dropout > 0)
        self._update_labels(0, 0, 0.0, 0.0)
        self.single.refresh()

    # ---- hyper-parameters (applied in the worker at the next step) ------------------------
    def set_lr(self, v):
        v = float(v)
        self.settings.lr = v
        if self.lr_combo.value() != v:
            self.lr_combo.setValue(v)
        self._compare_caption()

        def apply(tr):
            for t in trainers_of(tr):
                t.lr = v
        for c in (self.single, self.compare):
            c.apply(apply)

    def set_batch_size(self, b):
        self.settings.batch_size = int(b)

        def apply(tr):
            for t in trainers_of(tr):
                t.batch_size = min(int(b), len(t.dataset.y_train))
        for c in (self.single, self.compare):
            c.apply(apply)
        self._compare_caption()

    def _opt_changed(self, *_):
        if self._building:
            return
        s = self._read_settings()
        from .session import optimizer_kwargs
        kw = optimizer_kwargs(s)
        kw.setdefault("weight_decay", 0.0)
        kw.setdefault("l1", 0.0)
        name = s.optimizer

        def apply(tr):
            for t in trainers_of(tr):
                t.set_optimizer(name, **kw)
        for c in (self.single, self.compare):
            c.apply(apply)
        self._compare_caption()

    def set_discretize(self, on):
        self.opts["discretize"] = bool(on)
        self.single.refresh()
        self.compare.refresh()

    def _show_test(self, on):
        for b in [self.boundary] + self.compare_plots:
            b.set_show_test(on)

    # ---- running ----------------------------------------------------------------------------
    def _play_clicked(self, checked):
        if checked:
            self.controller.start()
        else:
            self.controller.pause()

    def start(self):
        self.controller.start()
        self.play_button.setChecked(True)

    def pause(self):
        self.controller.pause()

    def _on_state(self, state):
        running = self.controller.running
        self.play_button.setChecked(running)
        self.play_button.setText("❚❚  Pause" if running else "▶  Train")

    def _on_error(self, msg):
        self.play_button.setChecked(False)
        self.play_button.setText("▶  Train")
        self.banner.show_message(f"{msg}. Training paused: lower the learning rate, then "
                                 "press Reset or Train.")

    RESTORE_TEXT = "Restore last good weights and lower the learning rate (÷10)"

    def _on_diverged(self, msg):
        """Training paused; say what happened (step, learning rate) and offer the fix."""
        self.last_divergence = msg
        self.play_button.setChecked(False)
        self.play_button.setText("▶  Train")
        self.banner.show_message(f"{msg}. Training paused.", self.RESTORE_TEXT,
                                 self.restore_and_lower_lr)

    def restore_and_lower_lr(self):
        """Put back the last finite weights (at a step boundary) and divide the lr by 10."""
        new_lr = float(self.settings.lr) / 10.0

        def restore(tr):
            for t in trainers_of(tr):
                t.restore_last_good()
        self.controller.apply(restore)
        self.set_lr(new_lr)
        self.last_divergence = None
        self.controller.refresh()
        return new_lr

    def _update_labels(self, epoch, step, sps, elapsed, running=False):
        self.epoch_label.setText(f"Epoch {epoch:,}")
        self.step_label.setText(f"Step {step:,}")
        self.speed_label.setText(f"{sps:,.0f} steps/s" if running and sps else
                                 ("paused" if step else ""))
        self.status.emit({"steps_per_s": sps, "running": bool(running), "epoch": epoch,
                          "step": step, "elapsed": elapsed})

    CURVES_EVERY_S = 0.03     # curves and thumbnails: at most ~33 redraws a second

    def _on_snapshot(self, snap):
        if not isinstance(snap, PlaygroundSnapshot) or self.run is None:
            return
        run_snap = snap.run
        self.last_snapshot = run_snap
        self.boundary.set_snapshot(run_snap, final=not snap.status.running)
        now = time.perf_counter()
        if now - self._slow_t > self.CURVES_EVERY_S or not snap.status.running:
            self._slow_t = now
            # each in its own turn of the event loop, painted there (short turns)
            self.single.defer(lambda: self._show_neurons(run_snap))
            self.single.defer(self._redraw_curves)
        if not self.in_compare:
            st = snap.status
            self._update_labels(st.epoch, st.steps, st.steps_per_s, st.elapsed, st.running)

    def _show_neurons(self, run_snap):
        self.network.update_snapshot(run_snap)
        self._refresh_zoom()

    def _redraw_curves(self):
        if self.last_snapshot is not None:
            self.curves.update_history(self.last_snapshot.history)

    # ---- neurons --------------------------------------------------------------------------
    def _node_clicked(self, layer, index):
        self.selected = (layer, index)
        self._refresh_zoom()

    def _refresh_zoom(self):
        layer, index = self.selected
        if layer is None or self.run is None:
            return
        rgb = self.network.node_rgb(layer, index)
        if rgb is None:
            return
        rgb = np.ascontiguousarray(rgb[::-1])
        h, w, _ = rgb.shape
        self.zoom_image.setPixmap(QPixmap.fromImage(
            QImage(rgb.data, w, h, 3 * w, QImage.Format_RGB888).copy()))
        if layer < 0:
            from .features import LABELS
            what = f"input feature {LABELS.get(self.run.features[index], '')}"
        elif layer >= len(self.run.hidden):
            what = "output (blue = class 1, orange = class 0)"
        else:
            what = f"hidden layer {layer + 1}, neuron {index + 1}"
        self.zoom_caption.setText(f"<b>{what}</b><br>activation over the input plane "
                                  "(blue positive, orange negative)")

    # ---- compare depths ---------------------------------------------------------------------
    def _apply_lecture_defaults(self):
        """The settings that draw the lecture's picture (see LECTURE)."""
        self._building = True
        try:
            self.dataset_combo.setCurrentText(LECTURE["dataset"])
            self.act_combo.setCurrentText(LECTURE["activation"])
            for sp in self.neuron_spins:
                sp.setValue(LECTURE["width"])
        finally:
            self._building = False
        self.set_lr(LECTURE["lr"])
        self._read_settings()
        self.raw = self._make_raw()
        self.rebuild()

    def _apply_dropout_defaults(self):
        """The settings where the net without dropout overfits (drop.LECTURE)."""
        d = drop.LECTURE
        s = self._read_settings()
        s.dataset, s.noise, s.n_points, s.activation = d["dataset"], d["noise"], d["n_points"], d["activation"]
        s.hidden, s.lr, s.dropout = list(d["hidden"]), d["lr"], d["dropout"]
        self._sync_controls()
        self.raw = self._make_raw()
        self.rebuild()

    def start_compare(self, lecture_defaults=None, variant=None, autostart=True):
        """Train 0-, 1- and 2-hidden-layer nets side by side with the same settings, or
        (variant "dropout") the same net without and with dropout; None: the variant shown.

        The first time (or with lecture_defaults=True) the settings switch to LECTURE:
        a straight line, a convex polygon, then a combination of such regions (dropout:
        drop.LECTURE, where the net without dropout overfits). autostart=False: built, paused."""
        variant = variant or self.compare_variant
        self.compare_variant = variant
        dropout = variant == "dropout"
        if lecture_defaults is None:
            lecture_defaults = not (self._compared_dropout if dropout else self._compared)
        if dropout:
            self._compared_dropout = True
        else:
            self._compared = True
        self.single.pause()
        if lecture_defaults and dropout:
            self._apply_dropout_defaults()
        elif lecture_defaults:
            self._apply_lecture_defaults()
        s = self._read_settings()
        if self.raw is None:
            self.raw = self._make_raw()
        n = s.hidden[0] if s.hidden else self.neuron_spins[0].value()
        try:
            runs = dropout_runs(self.raw, s, COMPARE_RES) if dropout else [
                Run(self.raw, s, [n] * k, seed=s.seed, label=f"{k} hidden", res=COMPARE_RES)
                for k in (0, 1, 2)]
        except Exception as exc:
            self.banner.show_message(f"Cannot build the comparison: {exc}")
            return
        self.group = GroupTrainer(runs)
        self.last_compare = None
        self._slow_t = 0.0            # draw the first curves at once
        self.compare.set_trainer(self.group, make_group_snapshot_fn(self.group, self.opts))
        for k, bp in enumerate(self.compare_plots):
            bp.setVisible(k < len(runs))
            if k >= len(runs):
                continue
            title = runs[k].label if dropout else f"{k} hidden layer{'s' if k != 1 else ''}"
            if bp.title != title:
                bp.title = title
                bp._style_title(force=True)
        for bp, r in zip(self.compare_plots, runs):
            bp.set_points(self.raw, r.extent)
        self.compare_curves.clear()
        self._compare_width = n
        self._compare_rate = runs[-1].dropout
        self._compare_caption()
        self.stack.setCurrentIndex(1)
        self.back_button.show()
        self.dropout_button.hide()
        self.compare_button.setText("Restart")
        if autostart:
            self.compare.start()
            self.play_button.setChecked(True)
        else:
            self.compare.refresh()

    def _compare_caption(self):
        """What is compared (with the settings in use now) and what to look for."""
        if not hasattr(self, "compare_info"):
            return
        s, n = self.settings, getattr(self, "_compare_width", 4)
        if self.compare_variant == "dropout":
            self.compare_info.setText(drop.compare_caption(s, getattr(self, "_compare_rate", 0.5)))
            return
        relu = s.activation == "ReLU"
        look = ("<b>Look for:</b> 0 hidden layers draw one straight line; 1 hidden layer "
                + (f"draws a convex polygon with at most {n} edges (one per neuron)"
                   if relu else "draws one convex region")
                + "; 2 hidden layers combine such regions (more edges, not always convex).")
        self.compare_info.setText(
            f"<b>Compare depths</b> on <b>{s.dataset}</b>: 0, 1 and 2 hidden layers of {n} "
            f"{s.activation} neurons, learning rate {s.lr:g}, batch {s.batch_size}, "
            f"{s.optimizer.upper()}; same data, trained together.<br>{look}")

    def leave_compare(self):
        self.compare.pause()
        self.stack.setCurrentIndex(0)
        self.back_button.hide()
        self.dropout_button.show()
        self.compare_button.setText(COMPARE_TEXT)
        self._on_state("paused")
        tr = self.run.trainer if self.run is not None else None
        if tr is not None:     # the single network's counters, not the comparison's
            self._update_labels(tr.epoch, tr.steps, 0.0, self.single.worker.elapsed()
                                if self.single.worker is not None else 0.0)

    def _on_compare_snapshot(self, snap):
        if not isinstance(snap, CompareSnapshot):
            return
        self.last_compare = snap
        for bp, rs in zip(self.compare_plots, snap.runs):
            bp.set_snapshot(rs, final=not snap.status.running)
        now = time.perf_counter()
        if now - self._slow_t > self.CURVES_EVERY_S or not snap.status.running:
            self._slow_t = now
            self.compare.defer(self._redraw_compare_curves)     # in a turn of its own
        if self.in_compare:
            st = snap.status
            self._update_labels(st.epoch, st.steps, st.steps_per_s, st.elapsed, st.running)

    def _redraw_compare_curves(self):
        snap = self.last_compare
        if snap is None:
            return
        cw = self.compare_curves
        by_epoch = cw.x_mode == "epochs"
        for k, rs in enumerate(snap.runs):
            h, col = rs.history, DEPTH_COLORS[k]
            name = rs.label
            e = h.epochs
            if by_epoch:
                cw.set_curve("loss", name, e["epoch"], e["train_loss"], col)
            else:
                cw.set_curve("loss", name, h.steps["step"], smooth(h.steps["loss"]), col)
            x = e["epoch"] if by_epoch else e["step"]
            cw.set_curve("loss", f"{name} (test)", x, e["test_loss"], col, style="dash", width=2,
                         legend=False)
            cw.set_curve("accuracy", name, x, e["test_accuracy"], col)

    # ---- pictures ---------------------------------------------------------------------------
    def boundary_image(self):
        return self.boundary.image_array()


def _adopt_model(run, model, training):
    """Swap a loaded model (and its training state) into a freshly built Run."""
    from nnviz.train import Trainer
    s = run.settings
    run.model = model
    run.trainer = Trainer(model, run.data, loss="softmax_xent", optimizer=s.optimizer, lr=s.lr,
                          batch_size=min(s.batch_size, len(run.data.y_train)), seed=s.seed)
    if training:
        try:
            run.trainer.load_state_dict(training)
        except Exception as exc:  # keep the weights even when the training state is odd
            log.warning("playground: training state not restored: %s", exc)
    return run
