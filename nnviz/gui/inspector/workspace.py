"""The "CNN inspector" workspace: build a CNN, train it in the background and watch
feature maps, filters, predictions, curves, the confusion matrix and gradient flow."""
from __future__ import annotations

import copy
import logging
import time

import numpy as np
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from nnviz.engine import LayerError, SpecError, model_from_spec, read_spec
from nnviz.explain.batchnorm import batchnorm_layers
from nnviz.train import Trainer

from .. import kernels
from ..curves import CurvesWidget
from ..numeric import NumberDoubleSpin, NumberSpin
from ..snapshots import InspectorSnapshot
from ..style import FONT_PT, ui_font
from ..worker import TrainingController
from ..workspace import Workspace
from .arch import DEFAULT_SPEC
from .batchnorm_view import BatchNormView
from .compute import SnapshotMaker, canvas_to_input, image_for_display, inspect_input, synthetic_dataset
from .editor import ArchitectureEditor
from .explain_panel import ExplainPanel
from .views import (
    ConfusionView,
    DrawingCanvas,
    FeatureMapView,
    FilterView,
    Gallery,
    GradientFlowView,
    PredictionView,
)

log = logging.getLogger("nnviz")

CUSTOM = "small CNN (custom)"


def _image_presets():
    """The CLI's model presets that take images (lenet5, lenet5-relu, lab7-cnn, ...)."""
    from nnviz.engine.spec import preset_names
    out = []
    for name in preset_names():
        try:
            if len(read_spec(name).get("input_shape", ())) == 3:
                out.append(name)
        except (SpecError, OSError, ValueError):
            continue
    return out


MODEL_CHOICES = [CUSTOM, *_image_presets()]
DEFAULT_DATASETS = ["shapes", "color-shapes", "mnist", "fashion-mnist", "cifar10"]
#: input shapes of the named datasets (the others are loaded to find out)
KNOWN_SHAPES = {"shapes": (1, 28, 28), "color-shapes": (3, 32, 32), "mnist": (1, 28, 28),
                "fashion-mnist": (1, 28, 28), "cifar10": (3, 32, 32)}
N_GALLERY = 16
CELL_HINT = "Click a cell to see its examples."
CONF_CAP = 2000
MAX_CELL_EXAMPLES = 48


def dataset_names():
    """The image data sets nnviz.data knows (the 2-D toy sets are the Playground's)."""
    try:
        from nnviz.data import list_datasets
        found = [d["name"] for d in list_datasets() if d.get("kind") != "toy"]
    except Exception:        # a broken data folder must not stop the inspector
        log.exception("listing data sets failed")
        return list(DEFAULT_DATASETS)
    return [n for n in DEFAULT_DATASETS if n in found] + [n for n in found
                                                         if n not in DEFAULT_DATASETS]


def load_named_dataset(name):
    """nnviz.data.load_dataset(name); a synthetic stand-in when that is not available."""
    try:
        from nnviz.data import load_dataset
    except Exception:
        load_dataset = None
    if load_dataset is not None:
        return load_dataset(name)
    if name == "color-shapes":
        return synthetic_dataset("color-shapes (synthetic)", (3, 32, 32), 10, 1000, 300)
    if name == "shapes":
        return synthetic_dataset("shapes (synthetic)", (1, 28, 28), 10, 1000, 300)
    raise FileNotFoundError(f"dataset {name!r}: nnviz.data.load_dataset is not available")


class InspectorWorkspace(Workspace):
    """See the module docstring.  `dataset` (a Dataset) skips loading the default one."""

    title = "CNN inspector"

    def __init__(self, parent=None, dataset=None):
        super().__init__(parent)
        # the steps run in Numba kernels that release the GIL: the UI paints alongside
        # them (no hand-off), and 12 frames a second leave most of the time to training
        self.controller = TrainingController(self, max_fps=12, train_share=0.85, handoff=False)
        self.controller.snapshot.connect(self._on_snapshot)
        self.controller.state_changed.connect(self._on_state)
        self.controller.diverged.connect(lambda m: self._banner(f"Training diverged: {m}"))
        self.controller.failed.connect(lambda m: self._banner(f"Training failed: {m}"))
        self.dataset = None
        self.trainer = None
        self.maker = None
        self._datasets = {}
        self._opened = False               # the model came from a file: keep its weights
        self._spec = copy.deepcopy(DEFAULT_SPEC)
        self._trainable = False
        self._inspect = (None, 0)          # (x, token) read by the worker thread
        self._inspect_label = None
        self._inspect_what = ""
        self._shown_input = None           # (token, dataset) of the input picture shown
        self._token = 0
        self._gallery_idx = np.zeros(0, int)
        self._confusion = None
        self._clean_steps = 0
        self._last_snapshot = None
        self._filters = []
        self._model_name = CUSTOM
        self._defer_refresh = False
        self._cell_idx = np.zeros(0, int)
        self._t_ui = time.perf_counter()
        self._rebuild_timer = QTimer(self)
        self._rebuild_timer.setSingleShot(True)
        self._rebuild_timer.setInterval(200)
        self._rebuild_timer.timeout.connect(self.rebuild_now)
        self._build_ui()
        if dataset is None:
            try:
                dataset = load_named_dataset("shapes")
            except Exception as e:  # no data installed: a synthetic set keeps the app usable
                log.warning("shapes dataset not available (%s); using a synthetic set", e)
                dataset = synthetic_dataset("shapes (synthetic)", (1, 28, 28), 10, 1000, 300)
        self.set_dataset(dataset, rebuild=False)
        self.editor.set_spec(self._spec, self.dataset.input_shape, self.dataset.num_classes)
        # the first snapshot (feature maps, confusion: ~0.5 s) waits for the event loop, so
        # the main window shows without it
        self._defer_refresh = True
        self.rebuild_now()
        self._defer_refresh = False

    # ================================================================= UI
    def _build_ui(self):
        f = self.font()
        f.setPointSize(max(FONT_PT, f.pointSize()))
        self.setFont(f)
        # --- toolbar
        self.model_combo = QComboBox()
        self.model_combo.addItems(MODEL_CHOICES)
        self.model_combo.activated.connect(lambda i: self._on_model_combo(self.model_combo.itemText(i)))
        self.data_combo = QComboBox()
        self.data_combo.addItems(dataset_names())
        self.data_combo.activated.connect(lambda i: self._on_data_combo(self.data_combo.itemText(i)))
        self.play_btn = QPushButton("▶ Train")
        self.play_btn.setObjectName("play")
        self.play_btn.setCheckable(True)
        self.play_btn.clicked.connect(self.start_pause)
        self.step_btn = QPushButton("Step")
        self.step_btn.clicked.connect(self.step)
        self.reset_btn = QPushButton("Reset")
        self.reset_btn.setToolTip("New random weights, cleared history")
        self.reset_btn.clicked.connect(self.reset)
        self.opt_combo = QComboBox()
        self.opt_combo.addItems(["sgd", "adam"])
        self.opt_combo.currentTextChanged.connect(self._on_optimizer)
        self.lr_spin = NumberDoubleSpin()
        self.lr_spin.setDecimals(4)
        self.lr_spin.setRange(1e-4, 2.0)
        self.lr_spin.setSingleStep(0.005)
        self.lr_spin.setValue(self.LR)
        self.lr_spin.valueChanged.connect(self._on_lr)
        self.batch_spin = NumberSpin()
        self.batch_spin.setRange(1, 1024)
        self.batch_spin.setValue(64)
        self.batch_spin.valueChanged.connect(self._on_batch)
        self.status_label = QLabel("")
        self.status_label.setFont(ui_font(FONT_PT, bold=True))
        self.status_label.setWordWrap(True)
        self.status_label.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Preferred)
        # two rows: what is trained (and the buttons), then how; fits 1024 px
        bar = QVBoxLayout()
        row1, row2 = QHBoxLayout(), QHBoxLayout()
        for w in (QLabel("Model:"), self.model_combo, QLabel("Data:"), self.data_combo,
                  self.play_btn, self.step_btn, self.reset_btn):
            row1.addWidget(w)
        row1.addStretch(1)
        for w in (QLabel("Optimizer:"), self.opt_combo, QLabel("Learning rate:"), self.lr_spin,
                  QLabel("Batch:"), self.batch_spin):
            row2.addWidget(w)
        row2.addSpacing(12)
        row2.addWidget(self.status_label, 1)
        bar.addLayout(row1)
        bar.addLayout(row2)
        self.banner = QLabel("")
        self.banner.setWordWrap(True)
        self.banner.setStyleSheet("color: #8a1c12; background: #fde2e1; padding: 4px;"
                                  " font-weight: bold;")
        self.banner.hide()

        # --- build tab
        self.editor = ArchitectureEditor()
        self.editor.specChanged.connect(self._on_spec)

        # --- inspect tab
        self.gallery = Gallery(tile_px=32, title="Test images: click one to inspect it",
                               fill_cols=4, max_px=54)
        self.gallery.picked.connect(lambda i: self.select_test_input(int(self._gallery_idx[i])))
        self.canvas = DrawingCanvas()
        self.canvas.changed.connect(self._on_drawn)
        self.clear_btn = QPushButton("Clear")
        self.clear_btn.clicked.connect(lambda: self.canvas.clear())
        self.draw_note = QLabel("Draw with the mouse; the prediction updates when you let go.")
        self.draw_note.setWordWrap(True)
        draw = QWidget()
        dl = QVBoxLayout(draw)
        dl.setContentsMargins(2, 2, 2, 2)
        dl.addWidget(self.draw_note)
        dl.addWidget(self.canvas, 1)
        dl.addWidget(self.clear_btn)
        self.input_tabs = QTabWidget()
        self.input_tabs.addTab(self.gallery, "Test images")
        self.input_tabs.addTab(draw, "Draw")
        self.prediction = PredictionView()
        left = QSplitter(Qt.Vertical)
        left.addWidget(self.input_tabs)
        left.addWidget(self.prediction)
        left.setSizes([420, 380])

        self.features = FeatureMapView()
        self.filters = FilterView()
        self.curves = CurvesWidget()
        self.confusion = ConfusionView()
        self.confusion.cellClicked.connect(self.show_cell)
        self.cell_gallery = Gallery(tile_px=48, title=CELL_HINT)
        self.cell_gallery.picked.connect(
            lambda i: self.select_test_input(int(self._cell_idx[i])) if i < len(self._cell_idx)
            else None)
        conf = QSplitter(Qt.Horizontal)
        conf.addWidget(self.confusion)
        conf.addWidget(self.cell_gallery)
        conf.setSizes([520, 280])
        self.gradflow = GradientFlowView()
        self.live_tabs = QTabWidget()
        self.live_tabs.addTab(self.curves, "Curves")
        self.live_tabs.addTab(conf, "Confusion matrix")
        self.live_tabs.addTab(self.gradflow, "Gradient flow")
        self.explain = ExplainPanel(self)
        self.live_tabs.addTab(self.explain.distributions, "Weights && gradients")
        self.bn_view = BatchNormView()
        self.bn_view.wanted.connect(self._on_bn_wanted)
        self.live_tabs.addTab(self.bn_view, "Batch norm")
        bottom = QSplitter(Qt.Horizontal)
        bottom.addWidget(self.filters)
        bottom.addWidget(self.live_tabs)
        bottom.setSizes([380, 700])
        center = QSplitter(Qt.Vertical)
        center.addWidget(self.features)
        center.addWidget(bottom)
        center.setSizes([400, 400])
        self._center_split, self._bottom_split = center, bottom
        inspect = QSplitter(Qt.Horizontal)
        inspect.addWidget(left)
        inspect.addWidget(center)
        inspect.setSizes([320, 1080])
        inspect.setStretchFactor(1, 1)

        self.tabs = QTabWidget()
        self.tabs.addTab(self.editor, "1 · Build the network")
        self.tabs.addTab(inspect, "2 · Train and inspect")
        self.tabs.addTab(self.explain, "3 · Explain")
        self.tabs.setCurrentIndex(1)

        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addLayout(bar)
        lay.addWidget(self.banner)
        lay.addWidget(self.tabs, 1)

    def show_live_view(self, index, enlarge=False):
        """Bring live view `index` (Curves, ..., Batch norm) to the front; `enlarge` gives
        it most of the Train and inspect tab (a lesson showing it on a small screen)."""
        self.tabs.setCurrentIndex(1)
        self.live_tabs.setCurrentIndex(index)
        if enlarge:
            for split, share in ((self._center_split, 0.65), (self._bottom_split, 0.75)):
                total = sum(split.sizes())
                first = total - int(total * share)
                if split is self._center_split:
                    need = split.widget(0).minimumSizeHint().height()
                    # the feature maps at their smallest, or collapsed when the view would
                    # be left under 320 px (a small screen)
                    first = max(first, need) if total - need >= 320 else 0
                split.setSizes([first, total - first])

    def _banner(self, text):
        self.banner.setText(text)
        self.banner.setVisible(bool(text))

    # ================================================================= data
    def _on_model_combo(self, name):
        if not self.confirm_replace():      # a trained, unsaved model: Save / Discard / Cancel
            self._select_combo(self.model_combo, self._model_name)
            return
        self.select_model(name)

    def _on_data_combo(self, name):
        if self.dataset is not None and name != self.dataset.name and not self.confirm_replace():
            self._select_combo(self.data_combo, self.dataset.name)
            return
        try:
            self.set_dataset(name)
        except Exception as e:
            self._banner(f"Cannot load dataset {name!r}: {e}")
            if self.dataset is not None:
                self._select_combo(self.data_combo, self.dataset.name)

    @staticmethod
    def _select_combo(combo, text):
        i = combo.findText(text)
        if i < 0:
            combo.addItem(text)
            i = combo.count() - 1
        combo.blockSignals(True)
        combo.setCurrentIndex(i)
        combo.blockSignals(False)

    def set_dataset(self, ds, rebuild=True):
        """A Dataset or a name; the model's input and classes adapt to it."""
        if isinstance(ds, str):
            name = ds
            ds = self._datasets.get(name) or load_named_dataset(name)
            self._datasets[name] = ds
        else:
            self._datasets[ds.name] = ds
        if len(ds.input_shape) != 3:
            raise ValueError(f"dataset {ds.name!r} has inputs {ds.input_shape}: "
                             "the CNN inspector needs images (C, H, W)")
        self.controller.stop(1000)
        self.dataset = ds
        self._set_default_lr(ds.name)
        self._select_combo(self.data_combo, ds.name)
        self._banner("")
        grey = ds.input_shape[0] == 1
        self.canvas.clear(emit=False)      # an old drawing would not be the input shown
        self.canvas.setEnabled(grey)
        self.clear_btn.setEnabled(grey)
        self.draw_note.setText("Draw with the mouse; the prediction updates when you let go."
                               if grey else "Drawing needs a greyscale (1-channel) dataset.")
        self._make_gallery()
        self._confusion = None
        self.confusion.matrix = None
        self.confusion.update()
        self.cell_gallery.set_images([], title=CELL_HINT)
        if len(self._gallery_idx):
            self.select_test_input(int(self._gallery_idx[0]), refresh=False)
        if rebuild and self._opened and self.trainer is not None and \
                self._fits(ds, self.trainer.model):
            # a model from a file keeps its weights on any dataset that fits it
            self._install_trainer(self._new_trainer(self.trainer.model))
        elif rebuild:
            self.editor.set_input(ds.input_shape, ds.num_classes)
            self.rebuild_now()

    LR = 0.05      # SGD's learning rate for the image sets without one of their own

    def _set_default_lr(self, name):
        """The data set's own learning rate (nnviz.data.default_lr), unless the user chose
        one: the spin box still shows the default of the set before."""
        from nnviz.data import default_lr
        before = getattr(self, "_default_lr", self.LR)
        self._default_lr = default_lr(name, self.LR)
        if self.lr_spin.value() == before and self.opt_combo.currentText() == "sgd":
            self.lr_spin.setValue(self._default_lr)

    def _new_trainer(self, model):
        return Trainer(model, self.dataset, optimizer=self.opt_combo.currentText(),
                       lr=self.lr_spin.value(), momentum=0.9,
                       batch_size=min(self.batch_spin.value(), len(self.dataset.y_train)))

    def _make_gallery(self):
        y = self.dataset.y_test
        picked = []
        for c in range(self.dataset.num_classes):      # one per class first, then more
            hit = np.flatnonzero(y == c)
            if len(hit):
                picked.append(int(hit[0]))
        for i in range(len(y)):
            if len(picked) >= N_GALLERY:
                break
            if i not in picked:
                picked.append(i)
        self._gallery_idx = np.asarray(sorted(picked[:N_GALLERY]), int)
        names = self.dataset.class_names
        self.gallery.set_images(
            [self.thumb(i) for i in self._gallery_idx],
            tips=[f"test #{i}: {names[y[i]]}" for i in self._gallery_idx])

    def thumb(self, i):
        return image_for_display(self.dataset.x_test[i], self.dataset.normalization)

    # ================================================================= model
    def select_model(self, name):
        self._model_name = name
        self._select_combo(self.model_combo, name)
        spec = copy.deepcopy(DEFAULT_SPEC) if name == CUSTOM else read_spec(name)
        spec.pop("description", None)
        self.editor.set_spec(spec, self.dataset.input_shape, self.dataset.num_classes)
        self.rebuild_now()

    def set_spec(self, spec):
        self.editor.set_spec(spec, self.dataset.input_shape, self.dataset.num_classes)
        self.rebuild_now()

    def _on_spec(self, spec, trainable):
        self._spec = spec
        self._trainable = trainable
        self._update_buttons()
        if trainable:
            self._rebuild_timer.start()
        else:
            self._rebuild_timer.stop()

    def _update_buttons(self):
        ok = self._trainable and self.trainer is not None
        self.play_btn.setEnabled(self._trainable)
        self.step_btn.setEnabled(ok)
        self.play_btn.setToolTip("" if self._trainable else
                                 "Fix the architecture first (see the Build tab)")

    def rebuild_now(self):
        """New model from the editor's spec (fresh weights), new trainer; views refresh."""
        self._rebuild_timer.stop()
        self.controller.stop(1000)
        self._opened = False
        spec = self.editor.spec()
        if not self.editor.trainable():
            self.trainer = None
            self._update_buttons()
            return False
        try:
            model = model_from_spec(spec, seed=0)
            trainer = Trainer(model, self.dataset, loss="softmax_xent",
                              optimizer=self.opt_combo.currentText(), lr=self.lr_spin.value(),
                              momentum=0.9, batch_size=min(self.batch_spin.value(),
                                                           len(self.dataset.y_train)), seed=0)
        except (LayerError, SpecError, ValueError) as e:
            self._banner(str(e))
            self.trainer = None
            self._update_buttons()
            return False
        self._banner("")
        self._install_trainer(trainer)
        return True

    def _install_trainer(self, trainer):
        self.trainer = trainer
        self.maker = SnapshotMaker(self.dataset, lambda: self._inspect, conf_cap=CONF_CAP)
        self.controller.set_trainer(trainer, self.maker)
        self._clean_steps = trainer.steps
        self._confusion = None
        self.gradflow.clear_series()
        self.bn_view.set_layers(batchnorm_layers(trainer.model))
        self._on_bn_wanted(refresh=False)     # refresh_all below computes them
        self.explain.model_changed()
        self.curves.clear()
        self._update_buttons()
        if self._defer_refresh:
            # after the window shows, once the convolution kernels are compiled
            kernels.when_ready("cnn", self.refresh_all)
        else:
            self.refresh_all()

    def _on_bn_wanted(self, refresh=True):
        """The Batch norm view shows (or not) or its layer changed: tell the worker's
        snapshots, and compute the statistics once now (between two steps)."""
        if self.maker is None:
            return
        idx = self.maker.bn_layer = self.bn_view.requested()
        if refresh and idx is not None and self.trainer is not None:
            maker = self.maker
            self.bn_view.set_stats(*self.controller.run_locked(lambda tr: maker.batchnorm(tr, idx)),
                                   force=True)

    def refresh_all(self):
        """A full snapshot now (between steps when training runs), applied at once."""
        if self.trainer is None:
            return
        maker = self.maker
        snap = self.controller.run_locked(lambda tr: maker(tr, with_confusion=True))
        self._apply(snap)

    # ================================================================= inputs
    def select_test_input(self, idx, refresh=True):
        x = self.dataset.x_test[idx]
        self._token += 1
        self._inspect = (x, self._token)
        self._inspect_label = int(self.dataset.y_test[idx])
        self._inspect_what = f"test image #{idx}"
        if idx in self._gallery_idx:
            self.gallery.select(int(np.flatnonzero(self._gallery_idx == idx)[0]))
        else:
            self.gallery.select(None)
        if refresh:
            self.refresh_inspection()

    def select_input(self, x, label=None, what="drawn input"):
        self._token += 1
        self._inspect = (np.asarray(x, np.float32), self._token)
        self._inspect_label = label
        self._inspect_what = what
        self.refresh_inspection()

    def refresh_inspection(self):
        """Forward the selected input once (between two steps) and update its views."""
        x, token = self._inspect
        if self.trainer is None or x is None:
            return
        res = self.controller.run_locked(lambda tr: inspect_input(tr.model, x, token))
        self._apply_inspect(res)

    def _on_drawn(self):
        if self.dataset is None or self.dataset.input_shape[0] != 1:
            return
        x = canvas_to_input(self.canvas.array(), self.dataset.input_shape,
                            self.dataset.normalization)
        self.select_input(x, None, "your drawing")

    # ================================================================= snapshots
    def _on_snapshot(self, snap):
        self._apply(snap)

    def _apply(self, snap):
        if not isinstance(snap, InspectorSnapshot):
            return
        self._last_snapshot = snap
        if snap.inspect is not None and snap.inspect.token == self._inspect[1]:
            self._apply_inspect(snap.inspect)
        self._filters = snap.filters
        self.filters.set_filters(snap.filters)
        self.gradflow.set_series(snap.grad_steps, snap.grad_norms)
        self.curves.update_history(snap.history)
        if snap.batchnorm is not None or snap.batchnorm_error:
            self.bn_view.set_stats(snap.batchnorm, snap.batchnorm_error)
        if snap.confusion is not None:
            self._apply_confusion(snap.confusion)
        st = snap.status
        running = bool(st.running)
        speed = f"{st.steps_per_s:,.0f} steps/s" if running else "paused"
        acc = ""
        e = snap.history.epochs
        if len(e.get("test_accuracy", [])):
            # the whole test set at the end of each epoch (the confusion matrix says its own)
            acc = (f" · test accuracy {e['test_accuracy'][-1]:.1%} "
                   f"(all {len(self.dataset.y_test):,} test images, epoch {int(e['epoch'][-1])})")
        self.status_label.setText(f"epoch {snap.epoch:,} · step {snap.step:,} · {speed}{acc}")
        self.status.emit({"steps_per_s": float(st.steps_per_s), "running": running,
                          "epoch": int(snap.epoch), "step": int(snap.step),
                          "elapsed": float(st.elapsed if st.elapsed else snap.seconds)})

    def _apply_inspect(self, res):
        # the input picture changes only with the selection (a new token): redraw it then
        key = (res.token, id(self.dataset))
        if key != self._shown_input:
            self._shown_input = key
            disp = image_for_display(res.input, self.dataset.normalization)
            self.features.set_maps(res.maps, disp)
            self.features.input_view.set_image(disp, f"input: {self._inspect_what}")
        else:
            self.features.set_maps(res.maps)
        self.prediction.set_probs(res.probs, self.dataset.class_names, self._inspect_label)

    def _apply_confusion(self, conf):
        self._confusion = conf
        n, total = int(conf.matrix.sum()), int(conf.n_total)
        note = (f"all {n:,} test images, epoch {conf.epoch}" if n >= total else
                f"{n:,} of {total:,} test images (a fixed random subset), epoch {conf.epoch}")
        self.confusion.set_matrix(conf.matrix, self.dataset.class_names,
                                  f"{note}, accuracy {conf.accuracy:.1%}")
        if self.confusion.selected is None:
            self.cell_gallery.set_images([], title=f"{CELL_HINT}\nClasses: "
                                                   f"{self.confusion.class_key()}")
        if self.confusion.selected is not None:
            self.show_cell(*self.confusion.selected)

    def show_cell(self, t, p):
        """List the test images of true class t predicted as p (thumbnails)."""
        conf = self._confusion
        if conf is None:
            return []
        self.confusion.selected = (t, p)
        self.confusion.update()
        mask = (conf.y == t) & (conf.pred == p)
        idx = conf.index[mask]
        self._cell_idx = idx[:MAX_CELL_EXAMPLES]
        names = self.dataset.class_names
        kind = "correct" if t == p else "misclassified"
        more = f", showing {len(self._cell_idx)}" if len(idx) > len(self._cell_idx) else ""
        if len(idx):
            title = (f"true {names[t]}, predicted {names[p]}: {len(idx)} {kind}{more}. "
                     "Click one to inspect it.")
        else:
            title = f"No test image of class {names[t]} was predicted as {names[p]}."
        self.cell_gallery.set_images(
            [self.thumb(i) for i in self._cell_idx],
            tips=[f"test #{i}: {names[t]}" for i in self._cell_idx], title=title)
        return list(idx)

    # ================================================================= training
    def _on_state(self, state):
        running = state == "running"
        self.play_btn.setChecked(running)
        self.play_btn.setText("❚❚ Pause" if running else "▶ Train")
        if state == "paused":        # (a stopped worker takes no more requests)
            self._on_bn_wanted()     # live snapshots skip some steps: show where it stopped

    def start_pause(self):
        if self.trainer is None and (not self._trainable or not self.rebuild_now()):
            self.play_btn.setChecked(False)
            return
        self.controller.toggle()
        self._on_state("running" if self.controller.running else "paused")
        if self.controller.running and self.tabs.currentIndex() == 0:
            self.tabs.setCurrentIndex(1)

    def step(self):
        if self.trainer is not None:
            self.controller.step()

    def reset(self):
        self.rebuild_now()

    def _on_lr(self, v):
        self.controller.apply(lambda tr: setattr(tr, "lr", float(v)))

    def _on_optimizer(self, name):
        lr = self.lr_spin.value()
        kw = {"lr": lr} if name == "adam" else {"lr": lr, "momentum": 0.9}
        self.controller.apply(lambda tr: tr.set_optimizer(name, **kw))

    def _on_batch(self, b):
        def setb(tr):
            tr.batch_size = min(int(b), len(tr.dataset.y_train))
        self.controller.apply(setb)

    def train_sync(self, n_steps):
        """Train n steps now (between steps of the worker, which is paused), recording epochs."""
        if self.trainer is None:
            return
        self.controller.pause()

        def run(tr):
            for _ in range(int(n_steps)):
                ep = tr.epoch
                tr.step()
                if tr.epoch != ep:
                    tr.record_epoch()
        self.controller.run_locked(run, timeout_s=600)
        self.refresh_all()

    # ================================================================= workspace protocol
    def shutdown(self):
        self._rebuild_timer.stop()
        self.explain.shutdown()
        return self.controller.stop(1000)

    def is_dirty(self):
        return self.trainer is not None and self.trainer.steps != self._clean_steps

    def mark_saved(self):
        if self.trainer is not None:
            self._clean_steps = self.trainer.steps

    def current_model(self):
        return self.trainer.model if self.trainer is not None else None

    def save_payload(self):
        if self.trainer is None:
            return None
        return self.trainer.model, self.trainer, self.dataset

    def first_conv_filters(self):
        """The first Conv2D weights of the last snapshot (copied in the worker), once trained."""
        if self.trainer is None or self.trainer.steps == 0 or not self._filters:
            return None
        return np.array(self._filters[0][1], copy=True)

    def open_loaded(self, loaded):
        """Restore a saved CNN: architecture, weights, history, dataset.  False if not a CNN."""
        get = (lambda k, d=None: loaded.get(k, d)) if isinstance(loaded, dict) else \
            (lambda k, d=None: getattr(loaded, k, d))
        model = get("model")
        meta = get("meta") or {}
        if model is None or len(getattr(model, "input_shape", ())) != 3:
            return False
        self.controller.stop(1000)
        ds_name = (meta.get("dataset") or {}).get("name") if isinstance(meta.get("dataset"),
                                                                        dict) else None
        ds = get("dataset")
        try:
            if ds is not None and tuple(ds.input_shape) == tuple(model.input_shape):
                self.set_dataset(ds, rebuild=False)
            elif ds_name and (self.dataset is None or self.dataset.name != ds_name):
                self.set_dataset(ds_name, rebuild=False)
        except Exception as e:
            self._banner(f"Dataset {ds_name!r} not available: {e}")
        if not self._fits(self.dataset, model):
            self._find_dataset_for(model)       # raises, naming the shape needed
        spec = model.to_spec()
        self._model_name = spec.get("name") if spec.get("name") in MODEL_CHOICES else CUSTOM
        self._select_combo(self.model_combo, self._model_name)
        self.editor.blockSignals(True)
        self.editor.set_spec(spec)
        self.editor.blockSignals(False)
        self._spec, self._trainable = self.editor.spec(), self.editor.trainable()
        self._rebuild_timer.stop()
        trainer = get("trainer")
        if trainer is None or getattr(trainer, "model", None) is not model:
            tcfg = meta.get("training") if isinstance(meta.get("training"), dict) else {}
            try:
                trainer = self._new_trainer(model)
            except Exception as e:
                self._banner(f"Cannot train the loaded model on {self.dataset.name}: {e}")
                return False
            state = get("trainer_state") or tcfg.get("state")
            if isinstance(state, dict):
                try:
                    trainer.load_state_dict(state)
                except Exception as e:
                    log.warning("trainer state not restored: %s", e)
            hist = tcfg.get("history") or meta.get("history")
            if isinstance(hist, dict) and "steps" in hist:
                try:
                    from nnviz.train.history import History
                    trainer.history = History.from_dict({"steps": hist["steps"],
                                                         "epochs": hist.get("epochs", {}),
                                                         **{k: v for k, v in hist.items()
                                                            if k in ("stride", "max_points")}})
                    if trainer.steps == 0 and len(trainer.history.steps["step"]):
                        trainer.steps = int(trainer.history.steps["step"][-1])
                    if trainer.epoch == 0 and len(trainer.history.epochs["epoch"]):
                        trainer.epoch = int(trainer.history.epochs["epoch"][-1])
                except Exception as e:
                    log.warning("history not restored: %s", e)
        self._install_trainer(trainer)
        self._opened = True
        self._banner("")
        return True

    @staticmethod
    def _fits(ds, model):
        return ds is not None and tuple(ds.input_shape) == tuple(model.input_shape) and \
            tuple(model.output_shape) == (ds.num_classes,)

    def _find_dataset_for(self, model):
        """Switch to the first dataset whose inputs and classes fit an opened model."""
        shape = tuple(model.input_shape)
        for name in [n for n in dataset_names() if KNOWN_SHAPES.get(n) in (None, shape)]:
            try:
                ds = self._datasets.get(name) or load_named_dataset(name)
            except Exception as e:
                log.info("dataset %s not available: %s", name, e)
                continue
            self._datasets[ds.name] = ds
            if self._fits(ds, model):
                self.set_dataset(ds, rebuild=False)
                return ds
        c, h, w = shape
        raise ValueError(f"this model needs inputs of shape {shape} ({c} channel"
                         f"{'s' if c > 1 else ''}, {h}×{w} pixels) and {model.output_shape[0]} "
                         f"classes; no dataset nnviz has fits: open one with File ▸ Open dataset…")

    def prepare_screenshot(self, steps=300):
        """LeNet-5 on shapes, trained ~300 steps, an input selected, a map enlarged."""
        try:
            if self.dataset is None or not self.dataset.name.startswith("shapes"):
                self.set_dataset("shapes", rebuild=False)
        except Exception as e:
            log.warning("screenshot: %s", e)
        self.select_model("lenet5")
        self.tabs.setCurrentIndex(1)
        self.train_sync(steps)
        if len(self._gallery_idx) > 3:
            self.select_test_input(int(self._gallery_idx[3]))
        maps = self.features.layers()
        if maps:
            self.features._enlarge(maps[0][0], 0, emit=False)
        app = QApplication.instance()
        if app is not None:
            app.processEvents()
