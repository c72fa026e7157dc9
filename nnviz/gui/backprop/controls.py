"""The Backprop lab's controls: the bar (network, activations, loss, stepping, drawing), the
pages (graph with its text and tables, mini-batch, vanishing gradients) and the Examples tab.
The workspace (workspace.py) holds the behaviour; this mixin only builds and connects widgets."""
from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSlider,
    QSpinBox,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from nnviz.backprop import LabError, LabNet
from nnviz.backprop.names import fmt

from .. import style
from .activations import ActivationPage
from .fields import NumberTable
from .flow import FlowLayout, group
from .graph import GraphView
from .pages import BatchPage, VanishingPage

ACT_CHOICES = [("sigmoid", "sigmoid"), ("tanh", "tanh"), ("relu", "ReLU"), ("linear", "linear")]
LOSS_CHOICES = [("mse", "MSE"), ("xent", "softmax CE")]
PHASE_NAMES = {"forward": "Forward", "backward": "Backward", "update": "Update"}


def parse_sizes(text):
    """'2-2-2' or '3 4 4 3' -> (2, 2, 2); LabError naming what is expected."""
    parts = str(text).replace(",", " ").replace("-", " ").replace("\u2192", " ").split()
    try:
        sizes = tuple(int(p) for p in parts)
    except ValueError:
        raise LabError(f"network {text!r}: expected unit counts like 2-2-2 or 3-4-4-3") from None
    LabNet(sizes)      # validates the counts
    return sizes


def _combo(choices, current):
    c = QComboBox()
    for key, label in choices:
        c.addItem(label, key)
    c.setCurrentIndex([k for k, _ in choices].index(current))
    return c


class LabControls:
    """Mixin for BackpropWorkspace: builds the widgets it works with."""

    def _build_ui(self):
        outer = QVBoxLayout(self)
        outer.setContentsMargins(6, 4, 6, 4)
        outer.setSpacing(4)
        bar = QWidget()
        flow = FlowLayout(bar)          # wraps onto more lines when narrow or in presentation mode
        self.arch = QLineEdit("2-2-2")
        self.arch.setToolTip("units per layer: inputs, hidden layers, outputs (1 to 4 each), e.g. 3-4-4-3")
        self.arch.setMaximumWidth(90)
        self.arch.editingFinished.connect(self._settings_changed)
        self.hidden = _combo(ACT_CHOICES, "sigmoid")
        self.output = _combo(ACT_CHOICES, "sigmoid")
        self.loss = _combo(LOSS_CHOICES, "mse")
        self.loss.setToolTip("MSE: mean of (o − t)² over outputs and examples; softmax CE: −log softmax(z)ᵧ, "
                             "the mean over examples")
        flow.addWidget(group(QLabel("Network"), self.arch, QLabel("hidden"), self.hidden))
        flow.addWidget(group(QLabel("output"), self.output, QLabel("loss"), self.loss))
        for c in (self.hidden, self.output, self.loss):
            c.currentIndexChanged.connect(self._settings_changed)
        self.tutorial_button = QPushButton("Worked example")
        self.tutorial_button.setToolTip("the 2-2-2 sigmoid network of the classic backprop tutorial")
        self.tutorial_button.clicked.connect(self.load_tutorial)
        flow.addWidget(self.tutorial_button)
        self.random_button = QPushButton("New weights")
        self.random_button.clicked.connect(self.randomize)
        flow.addWidget(self.random_button)
        self.export_button = QPushButton("Export PNG\u2026")
        self.export_button.setToolTip("the graph as it is now, as a PNG image for slides")
        self.export_button.clicked.connect(lambda: self.export_graph())
        flow.addWidget(self.export_button)
        self.home_button = QPushButton("Home")
        self.back_button = QPushButton("\u25c0 Back")
        self.next_button = QPushButton("Next \u25b6")
        self.play_button = QPushButton("Play")
        self.play_button.setObjectName("play")
        self.play_button.setCheckable(True)
        self.home_button.clicked.connect(self.restart)
        self.back_button.clicked.connect(self.back_step)
        self.next_button.clicked.connect(self.next_step)
        self.play_button.clicked.connect(lambda _=False: self.start_pause())
        for b in (self.home_button, self.back_button, self.next_button, self.play_button):
            b.setFocusPolicy(Qt.NoFocus)
        self.speed = QSlider(Qt.Horizontal)
        self.speed.setRange(1, 10)
        self.speed.setValue(4)
        self.speed.setMaximumWidth(110)
        self.speed.setToolTip("auto-play: steps per 5 seconds")
        self.speed.valueChanged.connect(self._speed_changed)
        flow.addWidget(group(self.home_button, self.back_button, self.next_button, self.play_button,
                             QLabel("speed"), self.speed))
        self.progress = QLabel()
        self.progress.setMinimumWidth(self.progress.fontMetrics().horizontalAdvance("141 / 141 backward") + 8)
        flow.addWidget(self.progress)
        self.apply_button = QPushButton("Apply update")
        self.apply_button.setToolTip("\u03b8 \u2190 \u03b8 \u2212 \u03b7\u00b7avg \u2202L/\u2202\u03b8: one SGD step, "
                                     "then the forward pass starts again with the new weights")
        self.apply_button.setFocusPolicy(Qt.NoFocus)
        self.apply_button.clicked.connect(self.apply_update)
        flow.addWidget(self.apply_button)
        self.detailed_box = QCheckBox("each multiply")
        self.detailed_box.setChecked(True)
        self.detailed_box.setToolTip("draw every weight, multiply and bias as its own node")
        self.detailed_box.toggled.connect(self._detail_toggled)
        self.labels_box = QCheckBox("all derivatives")
        self.labels_box.setToolTip("write the local derivative on every edge that has one")
        self.labels_box.toggled.connect(self._labels_toggled)
        flow.addWidget(group(self.detailed_box, self.labels_box))
        outer.addWidget(bar)
        self.error_label = QLabel()
        self.error_label.setObjectName("bannerText")
        self.error_label.setWordWrap(True)
        self.error_label.hide()
        outer.addWidget(self.error_label)

        self.pages = QTabWidget()
        outer.addWidget(self.pages, 1)
        # page 1: graph above; explanation and tables below
        step_page = QSplitter(Qt.Vertical)
        self.graph = GraphView()
        self.graph.node_clicked.connect(self.jump_to_node)
        step_page.addWidget(self.graph)
        bottom = QSplitter(Qt.Horizontal)
        self.explain = QLabel()
        self.explain.setWordWrap(True)
        self.explain.setTextFormat(Qt.RichText)
        self.explain.setAlignment(Qt.AlignTop | Qt.AlignLeft)
        self.explain.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.explain.setFont(style.ui_font(style.FONT_PT + 2))     # the text read aloud
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        scroll.setWidget(self.explain)
        bottom.addWidget(scroll)
        self.side = QTabWidget()
        self.params_table = NumberTable()
        self.params_table.edited.connect(self._param_edited)
        self.params_table.rejected.connect(self._rejected)
        self.side.addTab(self.params_table, "\u03b8 and gradient check")
        self.side.addTab(self._examples_tab(), "Examples")
        bottom.addWidget(self.side)
        bottom.setStretchFactor(0, 5)
        bottom.setStretchFactor(1, 4)
        step_page.addWidget(bottom)
        bottom.setSizes([520, 480])
        step_page.setSizes([430, 230])
        self.pages.addTab(step_page, "Forward and backward")
        self.batch_page = BatchPage()
        self.batch_page.apply_update.connect(self.apply_update)
        self.pages.addTab(self.batch_page, "Mini-batch and update")
        self.vanishing = VanishingPage()
        self.pages.addTab(self.vanishing, "Vanishing gradients")
        self.activations = ActivationPage()
        self.pages.addTab(self.activations, "Activation functions")
        self.pages.currentChanged.connect(self._page_changed)

        def keys(seqs, slot):
            for s in seqs:
                sc = QShortcut(QKeySequence(s), self)
                sc.setContext(Qt.WindowShortcut)     # active while this tab is shown
                sc.activated.connect(slot)
        # PageDown / PageUp come from the main window (step_forward / step_back)
        keys([Qt.Key_Right], self.next_step)
        keys([Qt.Key_Left], self.back_step)
        keys([Qt.Key_Home], self.restart)
        self._speed_changed(self.speed.value())

    def _examples_tab(self):
        w = QWidget()
        v = QVBoxLayout(w)
        form = QFormLayout()
        self.n_examples = QSpinBox()
        self.n_examples.setRange(1, 8)
        self.n_examples.setToolTip("examples in the mini-batch (the update uses their average gradient)")
        self.n_examples.valueChanged.connect(self._n_examples_changed)
        self.shown = QSpinBox()
        self.shown.setRange(1, 1)
        self.shown.setToolTip("the example drawn in the graph")
        self.shown.valueChanged.connect(self._shown_changed)
        self.lr_field = QLineEdit(fmt(self.lr))
        self.lr_field.setToolTip("learning rate \u03b7 (a number > 0)")
        self.lr_field.editingFinished.connect(self._lr_edited)
        row = QHBoxLayout()
        row.addWidget(self.n_examples)
        row.addWidget(QLabel("shown"))
        row.addWidget(self.shown)
        row.addWidget(QLabel("\u03b7"))
        row.addWidget(self.lr_field)
        form.addRow("examples", row)
        v.addLayout(form)
        self.examples_table = NumberTable()
        self.examples_table.edited.connect(self._example_edited)
        self.examples_table.rejected.connect(self._rejected)
        v.addWidget(self.examples_table, 1)
        return w
