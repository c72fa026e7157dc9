"""Convolution lab: padding, stride, convolution and pooling arithmetic made visible.

A student edits a small input grid and a kernel, steps the sliding window over
the (zero-padded) input and reads every output cell written out as a dot
product; the output-size formula, the parameter count of a Conv2D layer and a
pooling example sit beside it, and the same kernel is applied to a real image.

Every number shown comes from the engine's own Conv2D / MaxPool2D / AvgPool2D
layers through :mod:`nnviz.engine.convmath`; this module only displays them.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetrics, QPainter, QPen
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFrame,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from nnviz.engine import convmath as cm

__all__ = ["ConvLabWorkspace", "GridView", "KERNEL_PRESETS", "WORKED_INPUT", "POOL_INPUT"]

WORKED_INPUT = np.array([[3, 0, 1, 2, 7, 4],
                         [1, 5, 8, 9, 3, 1],
                         [2, 7, 2, 5, 1, 3],
                         [0, 1, 3, 1, 7, 8],
                         [4, 2, 1, 6, 2, 8],
                         [2, 4, 5, 2, 3, 9]], dtype=np.float64)
POOL_INPUT = np.array([[1, 3, 2, 1],
                       [2, 9, 1, 1],
                       [1, 3, 2, 3],
                       [5, 6, 1, 2]], dtype=np.float64)

KERNEL_PRESETS = {
    "vertical edge": [[1, 0, -1], [1, 0, -1], [1, 0, -1]],
    "horizontal edge": [[1, 1, 1], [0, 0, 0], [-1, -1, -1]],
    "Sobel vertical": [[1, 0, -1], [2, 0, -2], [1, 0, -1]],
    "Sobel horizontal": [[1, 2, 1], [0, 0, 0], [-1, -2, -1]],
    "identity": [[0, 0, 0], [0, 1, 0], [0, 0, 0]],
    "box blur": [[1 / 9] * 3] * 3,
    "sharpen": [[0, -1, 0], [-1, 5, -1], [0, -1, 0]],
}
_CUSTOM = "custom"

_POS = QColor(60, 120, 215)
_NEG = QColor(215, 75, 55)
_PAD_BG = QColor(222, 222, 222)
_PAD_FG = QColor(140, 140, 140)
_WINDOW = QColor(255, 150, 0)
_CELL = QColor(20, 160, 60)
_BIG = 13


def _big_font(pt=_BIG, bold=False):
    f = QFont()
    f.setPointSize(pt)
    f.setBold(bold)
    return f


def _tint(v, vmax):
    """White to blue for positive, white to red for negative values."""
    if vmax <= 0 or v == 0 or not np.isfinite(v):
        return QColor(255, 255, 255)
    t = 0.12 + 0.55 * min(1.0, abs(v) / vmax)
    base = _POS if v > 0 else _NEG
    return QColor(round(255 + (base.red() - 255) * t), round(255 + (base.green() - 255) * t),
                  round(255 + (base.blue() - 255) * t))


def _parse(text):
    return float(str(text).strip().replace("\u2212", "-").replace(",", "."))


class GridView(QTableWidget):
    """A grid of large numbers: sign colours, padded cells, window frame, hatched unused cells.

    `values` are the grid without padding; `pad` rows/columns of zeros are drawn
    around them in grey and cannot be edited. ``edited`` gives the unpadded
    (row, col) of a user edit and its value.
    """

    edited = Signal(int, int, float)

    def __init__(self, editable=False, parent=None, max_px=460, min_cell=30, max_cell=46):
        super().__init__(parent)
        self.editable = editable
        self.values = np.zeros((0, 0))
        self.pad = 0
        self.unused = 0
        self.frame = None   # (r0, c0, h, w, colour) in padded coordinates
        self.max_px, self.min_cell, self.max_cell = max_px, min_cell, max_cell
        self.horizontalHeader().hide()
        self.verticalHeader().hide()
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.setSelectionMode(QAbstractItemView.NoSelection)
        self.setFocusPolicy(Qt.StrongFocus if editable else Qt.NoFocus)
        self.setEditTriggers(QAbstractItemView.DoubleClicked | QAbstractItemView.EditKeyPressed
                             | QAbstractItemView.AnyKeyPressed if editable
                             else QAbstractItemView.NoEditTriggers)
        self.setSizePolicy(QSizePolicy.Fixed, QSizePolicy.Fixed)
        self.setStyleSheet("QTableWidget { gridline-color: #9a9a9a; background: white; }")
        self.itemChanged.connect(self._item_changed)

    # --- content ---------------------------------------------------------------
    def set_grid(self, values, pad=0, unused=0):
        values = np.asarray(values, dtype=np.float64)
        if values.ndim != 2:
            values = np.zeros((0, 0))
        self.values, self.pad, self.unused = values.copy(), int(pad), int(unused)
        rows, cols = values.shape[0] + 2 * self.pad, values.shape[1] + 2 * self.pad
        n = max(rows, cols, 1)
        cs = int(max(self.min_cell, min(self.max_cell, self.max_px // n)))
        font = _big_font(13 if cs >= 40 else 12, bold=False)
        vmax = float(np.max(np.abs(values))) if values.size else 0.0
        # widen the columns rather than elide a number ("0.11", "−16.5")
        metrics = QFontMetrics(font)
        texts = {cm.format_number(v) for v in values.ravel()} | {"0"}
        cw = max(cs, max(metrics.horizontalAdvance(t) for t in texts) + 12)
        self.blockSignals(True)
        self.clear()
        self.setRowCount(rows)
        self.setColumnCount(cols)
        for r in range(rows):
            self.setRowHeight(r, cs)
            for c in range(cols):
                inner = (self.pad <= r < rows - self.pad) and (self.pad <= c < cols - self.pad)
                v = values[r - self.pad, c - self.pad] if inner else 0.0
                it = QTableWidgetItem(cm.format_number(v))
                it.setTextAlignment(Qt.AlignCenter)
                it.setFont(font)
                flags = Qt.ItemIsEnabled
                if inner:
                    it.setBackground(QBrush(_tint(v, vmax)))
                    it.setForeground(QBrush(QColor(20, 20, 20)))
                    if self.editable:
                        flags |= Qt.ItemIsEditable | Qt.ItemIsSelectable
                else:
                    it.setBackground(QBrush(_PAD_BG, Qt.Dense4Pattern))
                    it.setForeground(QBrush(_PAD_FG))
                    f = QFont(font)
                    f.setItalic(True)
                    it.setFont(f)
                    it.setToolTip("padding: a zero added around the input")
                it.setFlags(flags)
                self.setItem(r, c, it)
        for c in range(cols):
            self.setColumnWidth(c, cw)
        self.blockSignals(False)
        fw = 2 * self.frameWidth()
        self.setFixedSize(cols * cw + fw + 1, rows * cs + fw + 1)
        self.viewport().update()

    def texts(self):
        """The displayed text of every cell (padded), as a list of rows."""
        return [[self.item(r, c).text() for c in range(self.columnCount())]
                for r in range(self.rowCount())]

    def set_frame(self, r0, c0, h, w, colour=_WINDOW):
        self.frame = (int(r0), int(c0), int(h), int(w), QColor(colour))
        self.viewport().update()

    def clear_frame(self):
        self.frame = None
        self.viewport().update()

    def _item_changed(self, it):
        r, c = it.row() - self.pad, it.column() - self.pad
        if not (0 <= r < self.values.shape[0] and 0 <= c < self.values.shape[1]):
            return
        try:
            v = _parse(it.text())
            if not np.isfinite(v):
                raise ValueError
        except ValueError:
            self.blockSignals(True)
            it.setText(cm.format_number(self.values[r, c]))
            self.blockSignals(False)
            return
        self.values[r, c] = v
        self.edited.emit(r, c, v)

    # --- painting ----------------------------------------------------------------
    def _rect(self, r0, c0, h, w):
        a = self.visualRect(self.model().index(r0, c0))
        b = self.visualRect(self.model().index(r0 + h - 1, c0 + w - 1))
        return a.united(b)

    def paintEvent(self, event):
        super().paintEvent(event)
        rows, cols = self.rowCount(), self.columnCount()
        if not rows or not cols:
            return
        p = QPainter(self.viewport())
        p.setRenderHint(QPainter.Antialiasing, True)
        if self.unused > 0:
            # never covered by a window: the last rows and columns of the padded input
            p.setPen(Qt.NoPen)
            p.setBrush(QBrush(QColor(120, 120, 120, 150), Qt.BDiagPattern))
            u = min(self.unused, rows, cols)
            p.drawRect(self._rect(rows - u, 0, u, cols))
            p.drawRect(self._rect(0, cols - u, rows - u, u))
        if self.frame is not None:
            r0, c0, h, w, colour = self.frame
            h, w = min(h, rows - r0), min(w, cols - c0)
            if h > 0 and w > 0 and r0 >= 0 and c0 >= 0:
                fill = QColor(colour)
                fill.setAlpha(25)
                p.setBrush(fill)
                p.setPen(QPen(colour, 4))
                p.drawRect(self._rect(r0, c0, h, w).adjusted(2, 2, -2, -2))
        p.end()


def _spin(lo, hi, value, tip="", suffix=""):
    s = QSpinBox()
    s.setRange(lo, hi)
    s.setValue(value)
    s.setFont(_big_font(12))
    if tip:
        s.setToolTip(tip)
    if suffix:
        s.setSuffix(suffix)
    return s


def _label(text="", pt=12, bold=False, wrap=False):
    lab = QLabel(text)
    lab.setFont(_big_font(pt, bold))
    lab.setWordWrap(wrap)
    lab.setTextInteractionFlags(Qt.TextSelectableByMouse)
    return lab


def _caption(text):
    lab = QLabel(text)
    lab.setFont(_big_font(12, bold=True))
    return lab


def _synthetic_images(size=28):
    """Digit-like 28x28 test images drawn with numpy (used when no dataset is available)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    c = (size - 1) / 2
    imgs, names = [], []
    r = np.hypot(yy - c, xx - c)
    ring = np.clip(1.6 - np.abs(r - size * 0.3), 0, 1)
    cross = ((np.abs(xx - c) < 2) | (np.abs(yy - c) < 2)) & (r < size * 0.4)
    imgs.append(np.maximum(ring, cross.astype(float)))
    names.append("cross and circle")
    sq = np.zeros((size, size))
    a, b = int(size * 0.22), int(size * 0.78)
    sq[a:b, a:b] = 1.0
    sq[a + 3:b - 3, a + 3:b - 3] = 0.0
    imgs.append(sq)
    names.append("square")
    seven = np.zeros((size, size))
    seven[5:8, 6:22] = 1.0
    for i in range(8, 24):
        j = int(round(21 - (i - 8) * 0.55))
        seven[i, j - 1:j + 2] = 1.0
    imgs.append(seven)
    names.append("seven")
    tri = ((yy > size * 0.2) & (yy < size * 0.8) & (np.abs(xx - c) < (yy - size * 0.2) * 0.6))
    imgs.append(tri.astype(float))
    names.append("triangle")
    stripes = (np.sin(xx * 0.9 + yy * 0.45) > 0).astype(float)
    imgs.append(stripes)
    names.append("stripes")
    return [np.ascontiguousarray(i) for i in imgs], names


class _ImageSource:
    """Grey 2-D images from load_dataset('shapes') or, failing that, drawn with numpy."""

    def __init__(self):
        self.images, self.names, self.source = None, None, ""
        self.x = None
        self.labels = None
        self.class_names = None
        try:
            from nnviz.data import load_dataset
            ds = load_dataset("shapes")
            x = np.asarray(ds.x_test if len(ds.x_test) else ds.x_train)
            y = np.asarray(ds.y_test if len(ds.y_test) else ds.y_train)
            if x.ndim == 4 and len(x) and x.shape[2] >= 3 and x.shape[3] >= 3:
                self.x, self.labels = x, y
                self.class_names = list(getattr(ds, "class_names", []))
                self.source = f"dataset '{getattr(ds, 'name', 'shapes')}'"
        except Exception:   # dataset package missing or unreadable: draw our own images
            self.x = None
        if self.x is None:
            self.images, self.names = _synthetic_images()
            self.source = "synthetic 28\u00d728 images (no 'shapes' dataset installed)"

    def __len__(self):
        return len(self.x) if self.x is not None else len(self.images)

    def sample(self, i):
        """(C, H, W) float image and a caption."""
        i = int(np.clip(i, 0, len(self) - 1))
        if self.x is None:
            return self.images[i][None], self.names[i]
        img = np.asarray(self.x[i], dtype=np.float64)
        name = ""
        if self.labels is not None and self.class_names:
            lab = int(self.labels[i])
            name = self.class_names[lab] if 0 <= lab < len(self.class_names) else str(lab)
        return img, name


def _image_box(layout, row, col, title):
    layout.addLabel(title, row=row, col=col, size="11pt", color="#303030")
    vb = layout.addViewBox(row=row + 1, col=col, lockAspect=True, enableMouse=False)
    vb.invertY(True)
    item = pg.ImageItem(axisOrder="row-major")
    vb.addItem(item)
    return vb, item


def _show(vb, item, img, diverging):
    img = np.asarray(img, dtype=np.float64)
    if diverging:
        m = float(np.max(np.abs(img))) if img.size else 1.0
        m = m if m > 0 else 1.0
        # reversed so that, as in the number grids, positive is blue and negative red
        cmap = pg.colormap.get("CET-D1")
        cmap.reverse()
        item.setColorMap(cmap)
        item.setImage(img, levels=(-m, m))
    else:
        lo, hi = (float(img.min()), float(img.max())) if img.size else (0.0, 1.0)
        if hi <= lo:
            hi = lo + 1.0
        item.setColorMap(pg.colormap.get("CET-L1"))
        item.setImage(img, levels=(lo, hi))
    vb.autoRange(padding=0.02)


class ConvLabWorkspace(QWidget):
    """The convolution lab workspace (see module docstring)."""

    title = "Convolution lab"
    status = Signal(dict)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.controller = None
        self._rng = np.random.default_rng(0)
        self._kernel = np.array(KERNEL_PRESETS["vertical edge"], dtype=np.float64)
        self._output = None
        self._pool_out = None
        self._pos = 0
        self._pool_cell = (0, 0)
        self._pool_note = ""
        self._trained = None
        self._images = None
        self._updating = False
        self._timer = QTimer(self)
        self._timer.setInterval(650)
        self._timer.timeout.connect(self._tick)

        self._build_ui()
        self.input_grid.set_grid(WORKED_INPUT)
        self.pool_grid.set_grid(POOL_INPUT)
        self._set_kernel(self._kernel)
        self._recompute()
        self._recompute_pool()
        self._update_params()

    # ------------------------------------------------------------------ UI --
    def _build_ui(self):
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.NoFrame)
        outer.addWidget(scroll)
        body = QWidget()
        scroll.setWidget(body)
        page = QVBoxLayout(body)
        page.setContentsMargins(10, 8, 10, 8)
        page.setSpacing(8)
        main = QHBoxLayout()
        main.setSpacing(14)
        page.addLayout(main)
        left = QVBoxLayout()
        right = QVBoxLayout()
        main.addLayout(left, 1)
        main.addLayout(right, 0)
        bottom = QHBoxLayout()
        bottom.setSpacing(14)
        page.addLayout(bottom, 1)

        # controls ---------------------------------------------------------
        self.input_size = _spin(3, 12, 6, "input grid size N")
        self.random_button = QPushButton("Random input")
        self.example_button = QPushButton("Worked example")
        self.example_button.setToolTip("6\u00d76 input, vertical-edge kernel, padding 0, stride 1")
        self.misfit_button = QPushButton("7\u00d77, stride 3")
        self.misfit_button.setToolTip("An example where the stride does not fit")
        self.kernel_size = _spin(1, 7, 3, "kernel size F")
        self.kernel_preset = QComboBox()
        self.kernel_preset.addItems(list(KERNEL_PRESETS) + [_CUSTOM])
        self.padding = _spin(0, 3, 0, "zero padding P")
        self.stride = _spin(1, 4, 1, "stride S")
        self.flip_check = QCheckBox("Flip kernel (true convolution)")
        self.flip_check.setToolTip("Deep-learning libraries, and the nnviz engine, compute "
                                   "cross-correlation: the kernel is not flipped. Tick to flip "
                                   "it and compute a mathematical convolution.")
        for row in (((("Input N", self.input_size), (None, self.random_button),
                      (None, self.example_button), (None, self.misfit_button))),
                    (("Kernel F", self.kernel_size), (None, self.kernel_preset),
                     ("Padding P", self.padding), ("Stride S", self.stride),
                     (None, self.flip_check))):
            bar = QHBoxLayout()
            for text, w in row:
                if text:
                    bar.addWidget(_label(text))
                w.setFont(_big_font(12))
                bar.addWidget(w)
            bar.addStretch(1)
            left.addLayout(bar)

        # grids --------------------------------------------------------------
        grids = QHBoxLayout()
        grids.setSpacing(16)
        col = QVBoxLayout()
        self.input_caption = _caption("Input (padding in grey)")
        col.addWidget(self.input_caption)
        self.input_grid = GridView(editable=True, max_px=500, max_cell=40)
        self.input_grid.setToolTip("Double-click or type to edit a value")
        col.addWidget(self.input_grid)
        col.addStretch(1)
        grids.addLayout(col)

        col = QVBoxLayout()
        col.addWidget(_caption("Kernel (editable)"))
        self.kernel_grid = GridView(editable=True, max_px=200, min_cell=36)
        col.addWidget(self.kernel_grid)
        self.flipped_caption = _caption("Flipped kernel (applied)")
        col.addWidget(self.flipped_caption)
        self.flipped_grid = GridView(editable=False, max_px=200, min_cell=36)
        col.addWidget(self.flipped_grid)
        col.addStretch(1)
        grids.addLayout(col)

        col = QVBoxLayout()
        self.output_caption = _caption("Output")
        col.addWidget(self.output_caption)
        self.output_grid = GridView(editable=False, max_px=330)
        self.output_grid.setToolTip("Click a cell to move the window there")
        col.addWidget(self.output_grid)
        col.addStretch(1)
        grids.addLayout(col)
        grids.addStretch(1)
        left.addLayout(grids)

        # stepping -------------------------------------------------------------
        steps = QHBoxLayout()
        self.back_button = QPushButton("\u25c0 Back")
        self.step_button = QPushButton("Step \u25b6")
        self.play_button = QPushButton("Play")
        self.reset_button = QPushButton("Reset")
        for b in (self.back_button, self.step_button, self.play_button, self.reset_button):
            b.setFont(_big_font(12))
            steps.addWidget(b)
        self.position_label = _label("", 12)
        steps.addWidget(self.position_label)
        steps.addStretch(1)
        left.addLayout(steps)
        self.dot_label = _label("", 14, wrap=True)
        self.dot_label.setStyleSheet("QLabel { background: #f4f7fb; border: 1px solid #c9d3e0;"
                                     " padding: 6px; }")
        left.addWidget(self.dot_label)
        self.formula_label = _label("", 14, bold=True, wrap=True)
        left.addWidget(self.formula_label)
        self.warning_label = _label("", 12, wrap=True)
        self.warning_label.setStyleSheet("QLabel { color: #8a3b00; background: #fff1d6; "
                                         "border: 1px solid #e0a040; padding: 5px; }")
        self.warning_label.hide()
        left.addWidget(self.warning_label)

        left.addStretch(1)

        # right column: pooling and parameters; below: the real image -------------
        right.addWidget(self._build_pool_box())
        right.addWidget(self._build_param_box())
        right.addStretch(1)
        bottom.addWidget(self._build_image_box(), 3)
        bottom.addWidget(self._build_trained_box(), 2)

        # signals -------------------------------------------------------------------
        self.input_size.valueChanged.connect(self._input_size_changed)
        self.random_button.clicked.connect(self.randomize_input)
        self.example_button.clicked.connect(self.load_worked_example)
        self.misfit_button.clicked.connect(self.load_misfit_example)
        self.kernel_size.valueChanged.connect(self._kernel_size_changed)
        self.kernel_preset.currentTextChanged.connect(self._preset_chosen)
        self.padding.valueChanged.connect(self._geometry_changed)
        self.stride.valueChanged.connect(self._geometry_changed)
        self.flip_check.toggled.connect(self._flip_toggled)
        self.input_grid.edited.connect(lambda *_: self._recompute(keep_pos=True))
        self.kernel_grid.edited.connect(self._kernel_edited)
        self.output_grid.cellClicked.connect(self._output_clicked)
        self.back_button.clicked.connect(self.back)
        self.step_button.clicked.connect(self.step)
        self.play_button.clicked.connect(self.start_pause)
        self.reset_button.clicked.connect(self.reset)

    def _build_image_box(self):
        box = QGroupBox("Apply the kernel to a real image (engine Conv2D, same padding and stride)")
        box.setFont(_big_font(12, bold=True))
        lay = QVBoxLayout(box)
        row = QHBoxLayout()
        row.addWidget(_label("Sample"))
        self.sample_spin = _spin(0, 0, 0, "which image of the dataset")
        row.addWidget(self.sample_spin)
        self.image_source_label = _label("", 11)
        row.addWidget(self.image_source_label)
        row.addStretch(1)
        lay.addLayout(row)
        self.image_view = pg.GraphicsLayoutWidget()
        self.image_view.setBackground("w")
        self.image_view.setMinimumHeight(200)
        self.image_view.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Ignored)
        self._in_vb, self._in_img = _image_box(self.image_view.ci, 0, 0, "input (grey)")
        self._fm_vb, self._fm_img = _image_box(self.image_view.ci, 0, 1,
                                               "feature map (red \u2212, blue +)")
        lay.addWidget(self.image_view, 1)
        self.feature_label = _label("", 11)
        self.feature_label.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Preferred)
        lay.addWidget(self.feature_label)
        self.sample_spin.valueChanged.connect(self._update_image)
        return box

    def _build_pool_box(self):
        box = QGroupBox("Pooling (engine MaxPool2D / AvgPool2D)")
        box.setFont(_big_font(12, bold=True))
        box.setMinimumWidth(470)
        lay = QVBoxLayout(box)
        row = QHBoxLayout()
        self.pool_mode = QComboBox()
        self.pool_mode.addItems(["max", "average"])
        self.pool_mode.setFont(_big_font(12))
        self.pool_size = _spin(1, 4, 2, "pooling window size")
        self.pool_stride = _spin(1, 4, 2, "pooling stride")
        row.addWidget(self.pool_mode)
        row.addWidget(_label("size"))
        row.addWidget(self.pool_size)
        row.addWidget(_label("stride"))
        row.addWidget(self.pool_stride)
        row.addStretch(1)
        lay.addLayout(row)
        self.pool_from_input = QPushButton("Use conv input")
        self.pool_from_output = QPushButton("Use conv output")
        self.pool_example = QPushButton("Example")
        grids = QHBoxLayout()
        self.pool_grid = GridView(editable=True, max_px=220, min_cell=30, max_cell=42)
        self.pool_output_grid = GridView(editable=False, max_px=150, min_cell=34, max_cell=42)
        self.pool_output_grid.setToolTip("Click a cell to see its window")
        out_col = QVBoxLayout()
        out_col.addWidget(self.pool_output_grid)
        for b in (self.pool_from_input, self.pool_from_output, self.pool_example):
            b.setFont(_big_font(11))
            out_col.addWidget(b)
        out_col.addStretch(1)
        grids.addWidget(self.pool_grid, 0, Qt.AlignTop)
        grids.addWidget(_label("\u2192", 18), 0, Qt.AlignTop)
        grids.addLayout(out_col)
        grids.addStretch(1)
        lay.addLayout(grids)
        self.pool_label = _label("", 13, wrap=True)
        lay.addWidget(self.pool_label)
        self.pool_mode.currentIndexChanged.connect(self._recompute_pool)
        self.pool_size.valueChanged.connect(self._recompute_pool)
        self.pool_stride.valueChanged.connect(self._recompute_pool)
        self.pool_grid.edited.connect(lambda *_: self._recompute_pool())
        self.pool_output_grid.cellClicked.connect(self._pool_clicked)
        self.pool_from_input.clicked.connect(lambda: self._pool_source(self.input_grid.values))
        self.pool_from_output.clicked.connect(
            lambda: self._output is not None and self._pool_source(self._output))
        self.pool_example.clicked.connect(lambda: self._pool_source(POOL_INPUT))
        return box

    def _build_param_box(self):
        box = QGroupBox("Parameters of a Conv2D layer")
        box.setFont(_big_font(12, bold=True))
        box.setMinimumWidth(470)
        lay = QVBoxLayout(box)
        g = QGridLayout()
        self.param_in = _spin(1, 128, 3, "input channels")
        self.param_out = _spin(1, 128, 10, "number of filters = output channels")
        self.param_k = _spin(1, 11, 5, "filter size F\u00d7F")
        self.param_stride = _spin(1, 4, 1, "stride")
        self.param_pad = _spin(0, 5, 2, "zero padding")
        self.param_h = _spin(1, 512, 32, "input height")
        self.param_w = _spin(1, 512, 32, "input width")
        cells = (("in-channels", self.param_in), ("filters (out)", self.param_out),
                 ("kernel F", self.param_k), ("stride", self.param_stride),
                 ("padding", self.param_pad), ("input H", self.param_h),
                 ("input W", self.param_w))
        for i, (text, w) in enumerate(cells):
            w.setMaximumWidth(90)
            g.addWidget(_label(text, 11), (i // 4) * 2, i % 4)
            g.addWidget(w, (i // 4) * 2 + 1, i % 4)
            w.valueChanged.connect(self._update_params)
        lay.addLayout(g)
        self.param_shape_label = _label("", 13, wrap=True)
        self.param_label = _label("", 15, bold=True, wrap=True)
        self.param_note_label = _label("", 11, wrap=True)
        lay.addWidget(self.param_shape_label)
        lay.addWidget(self.param_label)
        lay.addWidget(self.param_note_label)
        return box

    def _build_trained_box(self):
        box = QGroupBox("What a trained first layer learns")
        box.setFont(_big_font(12, bold=True))
        lay = QVBoxLayout(box)
        self.trained_info = _label("No trained CNN yet: train a CNN in the inspector and the "
                                   "filters of its first Conv2D layer, with their feature maps "
                                   "on the image at the left, appear here.", 12, wrap=True)
        lay.addWidget(self.trained_info, 0, Qt.AlignTop)
        self.trained_view = pg.GraphicsLayoutWidget()
        self.trained_view.setBackground("w")
        self.trained_view.setMinimumHeight(170)
        self.trained_view.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Ignored)
        self.trained_view.hide()
        lay.addWidget(self.trained_view, 1)
        lay.addStretch(0)
        return box

    # ----------------------------------------------------------- kernel --
    def kernel(self):
        """The kernel as edited (before any flip)."""
        return self._kernel.copy()

    def applied_kernel(self):
        return cm.flipped(self._kernel) if self.flip_check.isChecked() else self._kernel.copy()

    def _set_kernel(self, k, preset=None):
        self._kernel = np.array(k, dtype=np.float64)
        self._updating = True
        self.kernel_size.setValue(self._kernel.shape[0])
        if preset is not None:
            self.kernel_preset.setCurrentText(preset)
        self._updating = False
        self.kernel_grid.set_grid(self._kernel)
        self.flipped_grid.set_grid(cm.flipped(self._kernel))

    def set_preset(self, name):
        self.kernel_preset.setCurrentText(name)

    def _preset_chosen(self, name):
        if self._updating or name not in KERNEL_PRESETS:
            return
        self._set_kernel(KERNEL_PRESETS[name])
        self._recompute(keep_pos=True)

    def _kernel_edited(self, r, c, v):
        self._kernel = self.kernel_grid.values.copy()
        self.flipped_grid.set_grid(cm.flipped(self._kernel))
        self.kernel_grid.set_grid(self._kernel)
        self._updating = True
        self.kernel_preset.setCurrentText(self._matching_preset())
        self._updating = False
        self._recompute(keep_pos=True)

    def _matching_preset(self):
        for name, k in KERNEL_PRESETS.items():
            k = np.asarray(k, dtype=np.float64)
            if k.shape == self._kernel.shape and np.allclose(k, self._kernel):
                return name
        return _CUSTOM

    def _kernel_size_changed(self, n):
        if self._updating:
            return
        old = self._kernel
        new = np.zeros((n, n))
        # keep the centre of the old kernel
        m = min(n, old.shape[0])
        so, sn = (old.shape[0] - m) // 2, (n - m) // 2
        new[sn:sn + m, sn:sn + m] = old[so:so + m, so:so + m]
        self._kernel = new
        self.kernel_grid.set_grid(new)
        self.flipped_grid.set_grid(cm.flipped(new))
        self._updating = True
        self.kernel_preset.setCurrentText(self._matching_preset())
        self._updating = False
        self._recompute(keep_pos=False)

    def _flip_toggled(self, on):
        self._recompute(keep_pos=True)

    # ----------------------------------------------------------- input --
    def set_input(self, grid):
        grid = np.asarray(grid, dtype=np.float64)
        self._updating = True
        self.input_size.setValue(grid.shape[0])
        self._updating = False
        self.input_grid.set_grid(grid)
        self._recompute(keep_pos=False)

    def randomize_input(self):
        n = self.input_size.value()
        self.set_input(self._rng.integers(0, 10, size=(n, n)).astype(np.float64))

    def load_worked_example(self):
        self.stop()
        self._updating = True
        self.padding.setValue(0)
        self.stride.setValue(1)
        self.flip_check.setChecked(False)
        self._updating = False
        self._set_kernel(KERNEL_PRESETS["vertical edge"], preset="vertical edge")
        self.set_input(WORKED_INPUT)
        self._pool_source(POOL_INPUT)

    def load_misfit_example(self):
        """7x7 input, 3x3 kernel, stride 3: (7 - 3)/3 + 1 = 2.33 does not fit."""
        self.load_worked_example()
        self._updating = True
        self.stride.setValue(3)
        self._updating = False
        grid = np.zeros((7, 7))
        grid[:6, :6] = WORKED_INPUT
        grid[6, :] = [1, 2, 0, 3, 4, 1, 2]
        grid[:6, 6] = [5, 2, 6, 0, 1, 3]
        self.set_input(grid)

    def _input_size_changed(self, n):
        if self._updating:
            return
        old = self.input_grid.values
        new = self._rng.integers(0, 10, size=(n, n)).astype(np.float64)
        m = min(n, old.shape[0])
        new[:m, :m] = old[:m, :m]
        self.input_grid.set_grid(new)
        self._recompute(keep_pos=False)

    def _geometry_changed(self, *_):
        if self._updating:
            return
        self._recompute(keep_pos=False)

    # ------------------------------------------------------ computation --
    def output_shape(self):
        return None if self._output is None else self._output.shape

    def output_values(self):
        return None if self._output is None else self._output.copy()

    def _recompute(self, keep_pos=False):
        x = self.input_grid.values
        n, f = x.shape[0], self._kernel.shape[0]
        p, s = self.padding.value(), self.stride.value()
        flip = self.flip_check.isChecked()
        self.flipped_caption.setVisible(flip)
        self.flipped_grid.setVisible(flip)
        formula, warning = cm.size_explanation(n, f, p, s)
        value, floor, fits, unused = cm.output_size(n, f, p, s)
        self.formula_label.setText("Output size: " + formula)
        try:
            self._output = cm.conv2d(x, self._kernel, stride=s, padding=p, flip=flip)
        except (cm.LayerError, ValueError) as e:
            self._output = None
            warning = warning or str(e)
        self.warning_label.setText(warning)
        self.warning_label.setVisible(bool(warning))
        self.input_grid.set_grid(x, pad=p, unused=unused if floor > 0 else 0)
        if self._output is None:
            self.output_grid.set_grid(np.zeros((0, 0)))
            self.output_caption.setText("Output: none")
            self._pos = 0
            self._show_position()
            self._update_image()
            return
        oh, ow = self._output.shape
        self.output_grid.set_grid(self._output)
        self.output_caption.setText(f"Output {oh}\u00d7{ow}")
        self.input_caption.setText(
            f"Input {n}\u00d7{n}" + (f", padded to {n + 2 * p}\u00d7{n + 2 * p} (grey zeros)"
                                     if p else ""))
        if not keep_pos or self._pos >= oh * ow:
            self._pos = 0
        self._show_position()
        self._update_image()

    def _cell(self):
        ow = self._output.shape[1]
        return divmod(self._pos, ow)

    def current_cell(self):
        return None if self._output is None else self._cell()

    def _show_position(self):
        for b in (self.back_button, self.step_button, self.play_button):
            b.setEnabled(self._output is not None)
        if self._output is None:
            self.input_grid.clear_frame()
            self.output_grid.clear_frame()
            self.dot_label.setText("The kernel does not fit into the padded input.")
            self.position_label.setText("")
            return
        r, c = self._cell()
        s, p = self.stride.value(), self.padding.value()
        f = self._kernel.shape[0]
        self.input_grid.set_frame(r * s, c * s, f, f, _WINDOW)
        self.output_grid.set_frame(r, c, 1, 1, _CELL)
        flip = self.flip_check.isChecked()
        terms, total = cm.dot_product_terms(self.input_grid.values, self._kernel, s, p, r, c,
                                            flip=flip)
        engine = float(self._output[r, c])
        text = cm.format_dot(terms, engine)
        self.dot_label.setText(f"Output[{r}, {c}] = {text}")
        oh, ow = self._output.shape
        self.position_label.setText(f"window {self._pos + 1} of {oh * ow}: rows {r * s}\u2013"
                                    f"{r * s + f - 1}, columns {c * s}\u2013{c * s + f - 1} "
                                    f"of the padded input")
        self.status.emit({"workspace": "convlab", "cell": (r, c), "value": engine,
                          "message": f"Convolution lab: output[{r}, {c}] = "
                                     f"{cm.format_number(engine)}"})

    def set_cell(self, r, c):
        if self._output is None:
            return
        oh, ow = self._output.shape
        if 0 <= r < oh and 0 <= c < ow:
            self._pos = r * ow + c
            self._show_position()

    def _output_clicked(self, r, c):
        self.stop()
        self.set_cell(r, c)

    # ------------------------------------------------------- animation --
    def step(self):
        """Move the window to the next output cell (wraps to the first)."""
        if self._output is None:
            return
        self._pos = (self._pos + 1) % self._output.size
        self._show_position()

    def back(self):
        if self._output is None:
            return
        self._pos = (self._pos - 1) % self._output.size
        self._show_position()

    def _tick(self):
        if self._output is None:
            self.stop()
            return
        if self._pos + 1 >= self._output.size:
            self.stop()
            return
        self.step()

    def is_playing(self):
        return self._timer.isActive()

    def start_pause(self):
        if self._timer.isActive():
            self.stop()
            return
        if self._output is None:
            return
        if self._pos + 1 >= self._output.size:
            self._pos = 0
            self._show_position()
        self._timer.start()
        self.play_button.setText("Pause")

    def stop(self):
        self._timer.stop()
        self.play_button.setText("Play")

    def reset(self):
        self.stop()
        self._pos = 0
        if self._output is not None:
            self._show_position()

    # ---------------------------------------------------------- pooling --
    def _pool_source(self, grid):
        grid = np.asarray(grid, dtype=np.float64)
        if grid.ndim == 2 and grid.size:
            self.pool_grid.set_grid(grid)
            self._recompute_pool()
        return True

    def pool_values(self):
        return None if self._pool_out is None else self._pool_out.copy()

    def _recompute_pool(self, *_):
        x = self.pool_grid.values
        k, s = self.pool_size.value(), self.pool_stride.value()
        mode = "max" if self.pool_mode.currentText() == "max" else "avg"
        value, floor, fits, unused = cm.output_size(x.shape[0], k, 0, s)
        try:
            self._pool_out = cm.pool2d(x, k, s, mode)
        except (cm.LayerError, ValueError) as e:
            self._pool_out = None
            self.pool_output_grid.set_grid(np.zeros((0, 0)))
            self.pool_grid.set_grid(x)
            self.pool_label.setText(str(e))
            return
        self.pool_grid.set_grid(x, unused=unused)
        self.pool_output_grid.set_grid(self._pool_out)
        r, c = self._pool_cell
        if r >= self._pool_out.shape[0] or c >= self._pool_out.shape[1]:
            self._pool_cell = (0, 0)
        self._pool_note = ("" if fits else
                           f"\n\u26a0 Stride {s} does not fit ({cm.format_number(value)}): the "
                           f"engine floors to {floor} and ignores the last {unused} "
                           f"row(s)/column(s) (hatched).")
        self._show_pool_cell()

    def _pool_clicked(self, r, c):
        self._pool_cell = (r, c)
        self._show_pool_cell()

    def _show_pool_cell(self):
        if self._pool_out is None:
            return
        r, c = self._pool_cell
        k, s = self.pool_size.value(), self.pool_stride.value()
        self.pool_grid.set_frame(r * s, c * s, k, k, _WINDOW)
        self.pool_output_grid.set_frame(r, c, 1, 1, _CELL)
        vals = ", ".join(cm.format_number(v) for v in cm.pool_window(self.pool_grid.values, k, s,
                                                                     r, c))
        fn = "max" if self.pool_mode.currentText() == "max" else "mean"
        self.pool_label.setText(f"[{r}, {c}] = {fn}({vals}) = "
                                f"{cm.format_number(self._pool_out[r, c])}" + self._pool_note)

    # ------------------------------------------------------- parameters --
    def _update_params(self, *_):
        cin, cout, k = self.param_in.value(), self.param_out.value(), self.param_k.value()
        s, p = self.param_stride.value(), self.param_pad.value()
        h, w = self.param_h.value(), self.param_w.value()
        try:
            info = cm.conv_layer_summary(cin, cout, k, s, p, h, w)
        except cm.LayerError as e:
            self.param_shape_label.setText(f"Input {h}\u00d7{w}\u00d7{cin}: {e}")
            self.param_label.setText(
                f"({k}\u00b7{k}\u00b7{cin} + 1)\u00b7{cout} = {cm.param_count(cin, cout, k)} "
                f"parameters")
            self.param_note_label.setText("")
            return
        oh, ow, oc = info["output_shape"]
        self.param_shape_label.setText(
            f"Input {h}\u00d7{w}\u00d7{cin}  \u2192  output {oh}\u00d7{ow}\u00d7{oc}")
        self.param_label.setText(f"({k}\u00b7{k}\u00b7{cin} + 1)\u00b7{cout} = "
                                 f"{info['params']} parameters")
        note = (f"{info['weights']} weights + {info['biases']} biases (counted by the engine); "
                f"independent of the input size.")
        if info["notes"]:
            note += " Engine: " + "; ".join(info["notes"])
        self.param_note_label.setText(note)

    # ----------------------------------------------------------- image --
    def _ensure_images(self):
        if self._images is None:
            self._images = _ImageSource()
            self.sample_spin.blockSignals(True)
            self.sample_spin.setRange(0, max(0, len(self._images) - 1))
            self.sample_spin.blockSignals(False)
            self.image_source_label.setText(f"of {len(self._images)} \u2014 "
                                            f"{self._images.source}")
            self.image_source_label.setToolTip(self._images.source)
        return self._images

    def current_image(self):
        img, name = self._ensure_images().sample(self.sample_spin.value())
        return img.mean(axis=0) if img.ndim == 3 else img, name, img

    def _update_image(self, *_):
        grey, name, full = self.current_image()
        _show(self._in_vb, self._in_img, grey, diverging=False)
        s, p = self.stride.value(), self.padding.value()
        try:
            fm = cm.apply_to_image(grey, self._kernel, s, p, flip=self.flip_check.isChecked())
        except (cm.LayerError, ValueError) as e:
            self._fm_img.clear()
            self.feature_label.setText(str(e))
            return
        _show(self._fm_vb, self._fm_img, fm, diverging=True)
        what = self.kernel_preset.currentText()
        text = (f"{name + ': ' if name else ''}{grey.shape[0]}\u00d7{grey.shape[1]} \u2192 "
                f"{fm.shape[0]}\u00d7{fm.shape[1]} feature map, {what} kernel"
                f"{' (flipped)' if self.flip_check.isChecked() else ''}, P={p}, S={s}; "
                f"values {cm.format_number(fm.min())} \u2026 {cm.format_number(fm.max())}")
        self.feature_label.setText(text)
        self.feature_label.setToolTip(text)
        self._update_trained(full)

    def set_trained_filters(self, weights):
        """Show trained first-layer filters (out, in, kh, kw) and their feature maps; None clears."""
        if weights is None:
            self._trained = None
        else:
            w = np.asarray(weights, dtype=np.float64)
            if w.ndim != 4 or not w.size:
                raise ValueError(f"trained filters must be (out, in, kh, kw), got shape {w.shape}")
            self._trained = w
        self._update_trained(self.current_image()[2])

    def _update_trained(self, image):
        view = self.trained_view
        if self._trained is None:
            view.hide()
            self.trained_info.setText(
                "No trained CNN yet: train a CNN in the inspector and the filters of its first "
                "Conv2D layer, with their feature maps on the image at the left, appear here.")
            return
        w = self._trained[:8]
        try:
            maps = cm.conv2d_multi(image, w, stride=1, padding=w.shape[2] // 2)
        except (cm.LayerError, ValueError) as e:
            view.hide()
            self.trained_info.setText(f"Trained filters {self._trained.shape}: {e}")
            return
        view.clear()
        ci = view.ci
        cols = len(w)
        for i in range(cols):
            vb, item = _image_box(ci, 0, i, f"filter {i}")
            _show(vb, item, w[i].mean(axis=0), diverging=True)
            vb, item = _image_box(ci, 2, i, "map")
            _show(vb, item, maps[i], diverging=True)
        shown = f"the first {cols} of {len(self._trained)}" if len(self._trained) > cols else \
            f"all {cols}"
        self.trained_info.setText(
            f"Trained first layer: {shown} filters ({self._trained.shape[1]} input channel(s), "
            f"{self._trained.shape[2]}\u00d7{self._trained.shape[3]}, shown as the mean over "
            f"input channels) and their feature maps on the current image.")
        view.show()

    # -------------------------------------------------- workspace protocol --
    def shutdown(self):
        self._timer.stop()

    def is_dirty(self):
        return False

    def save_payload(self):
        return None

    def open_loaded(self, loaded):
        return False

    def prepare_screenshot(self):
        """The worked example, window at output (0, 0), vertical edges of an image."""
        self.load_worked_example()
        self.sample_spin.setValue(0)
        self.reset()
        self._update_image()
