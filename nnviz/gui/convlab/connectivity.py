"""The connectivity panel: a 1-D layer drawn three ways -- dense, sparse (receptive field k),
sparse with tied weights (a 1-D convolution) -- each weight its own colour, tied weights one
colour, the weight matrix W (s = W x) under each and its parameter count beside it."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import QGridLayout, QGroupBox, QSizePolicy, QWidget

from nnviz.engine import convmath as cm

from ..style import px, ui_font
from .common import control_row, label, spin

TITLES = {"dense": "Dense (fully connected)", "sparse": "Sparse (receptive field {k})",
          "tied": "Sparse + tied weights = 1-D convolution"}
# the tied layer's few weights: Okabe-Ito colours, far apart for colour-blind viewers too
_TIED = [QColor(0, 114, 178), QColor(213, 94, 0), QColor(0, 158, 115), QColor(204, 121, 167),
         QColor(230, 159, 0), QColor(86, 180, 233), QColor(120, 94, 240), QColor(160, 160, 40)]


def colour(kind, weight_id):
    """Tied weights from a small distinct palette; otherwise every weight its own hue."""
    if kind == "tied" and weight_id < len(_TIED):
        return _TIED[weight_id]
    hue = (weight_id * 0.618034) % 1.0          # golden-ratio steps keep neighbours apart
    return QColor.fromHsvF(hue, 0.75, 0.8 - 0.25 * ((weight_id // 7) % 2))


class ConnectivityView(QWidget):
    """Inputs x1..xn at the bottom, outputs s1..sn at the top, the edges coloured by weight;
    the (n, n) weight matrix below, the same colours."""

    def __init__(self, kind, parent=None):
        super().__init__(parent)
        self.kind = kind
        self.ids = np.full((1, 1), -1)
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)
        self.setMinimumWidth(int(px(150)))

    def set_field(self, n, k):
        self.ids = cm.connection_ids(n, k, self.kind)
        self.apply_scale()

    def apply_scale(self):
        self.setMinimumWidth(int(px(150)))
        self.setFixedHeight(int(px(150) + self._cell() * len(self.ids) + px(30)))
        self.update()

    def _cell(self):
        return min(px(22), px(150) / max(1, len(self.ids)))

    def paintEvent(self, ev):
        n = len(self.ids)
        p = QPainter(self)
        p.setRenderHint(QPainter.Antialiasing, True)
        w = self.width()
        r = min(px(13), w / (2.6 * n))
        xs = [w * (i + 0.5) / n for i in range(n)]
        top, bottom = px(18), px(125)
        for i in range(n):           # output i <- input j
            for j in range(n):
                wid = self.ids[i, j]
                if wid >= 0:
                    p.setPen(QPen(colour(self.kind, int(wid)), px(2.5)))
                    p.drawLine(QPointF(xs[j], bottom - r), QPointF(xs[i], top + r))
        font = ui_font(9 if r < px(12) else 10)
        p.setFont(font)
        for row_y, name in ((top, "s"), (bottom, "x")):
            for i, x in enumerate(xs):
                p.setPen(QPen(QColor(40, 40, 40), px(1.5)))
                p.setBrush(QColor(255, 255, 255))
                box = QRectF(x - r, row_y - r, 2 * r, 2 * r)
                p.drawEllipse(box)
                p.drawText(box, Qt.AlignCenter, f"{name}{i + 1}")
        cell = self._cell()
        x0, y0 = (w - cell * n) / 2, px(150)
        p.setPen(QPen(QColor(150, 150, 150), 1))
        for i in range(n):
            for j in range(n):
                wid = self.ids[i, j]
                p.setBrush(colour(self.kind, int(wid)) if wid >= 0 else QColor(250, 250, 250))
                p.drawRect(QRectF(x0 + j * cell, y0 + i * cell, cell, cell))
        p.setPen(QColor(60, 60, 60))
        p.drawText(QRectF(0, y0 + n * cell + px(4), w, px(24)), Qt.AlignHCenter | Qt.AlignTop,
                   "W, with s = W x (empty: no weight)")
        p.end()


class ConnectivityPanel(QGroupBox):
    """See the module docstring. ``counts()`` gives the three parameter counts shown."""

    def __init__(self, parent=None):
        super().__init__("Connectivity: dense, sparse, tied weights (1-D)", parent)
        lay = QGridLayout(self)
        self.n_spin = spin(2, 10, 5, "inputs x1..xn and outputs s1..sn")
        self.k_spin = spin(1, 9, 3, "receptive field k: how many inputs each output sees (odd)")
        self.k_spin.setSingleStep(2)
        lay.addLayout(control_row((("n", self.n_spin), ("receptive field k", self.k_spin))), 0, 0, 1, 3)
        self.views, self.titles, self.count_labels, self.formula_labels = {}, {}, {}, {}
        for c, kind in enumerate(cm.CONNECTIVITY_KINDS):
            self.titles[kind] = label("", 12, bold=True, wrap=True)
            self.views[kind] = ConnectivityView(kind)
            self.count_labels[kind] = label("", 15, bold=True)
            self.formula_labels[kind] = label("", 11, wrap=True)
            for r, w in enumerate((self.titles[kind], self.views[kind], self.count_labels[kind],
                                   self.formula_labels[kind])):
                lay.addWidget(w, r + 1, c, Qt.AlignTop)
            lay.setColumnStretch(c, 1)
        self.conv_label = label("", 12, wrap=True)
        lay.addWidget(self.conv_label, 5, 0, 1, 3)
        self.n_spin.valueChanged.connect(self.recompute)
        self.k_spin.valueChanged.connect(self.recompute)
        self.recompute()

    def set_field(self, n, k):
        self.n_spin.setValue(int(n))
        self.k_spin.setValue(int(k))
        self.recompute()

    def field(self):
        return self.n_spin.value(), self.k_spin.value()

    def counts(self):
        n, k = self.field()
        return {kind: cm.connectivity_count(n, k, kind) for kind in cm.CONNECTIVITY_KINDS}

    def recompute(self, *_):
        n = self.n_spin.value()
        self.k_spin.setMaximum(2 * n - 1)
        k = self.k_spin.value()
        if k % 2 == 0:                 # typed: a centred receptive field is odd
            self.k_spin.setValue(k + 1 if k + 1 <= 2 * n - 1 else k - 1)
            return
        for kind in cm.CONNECTIVITY_KINDS:
            self.titles[kind].setText(TITLES[kind].format(k=k))
            self.views[kind].set_field(n, k)
            c = cm.connectivity_count(n, k, kind)
            self.count_labels[kind].setText(f"{c} weight{'s' if c != 1 else ''}")
            self.formula_labels[kind].setText(cm.connectivity_formula(n, k, kind) + (
                " (edges falling off the ends are missing)" if kind == "sparse" and k > 1 else ""))
        w, x = np.arange(1.0, k + 1), np.arange(1.0, n + 1)
        fmt = ", ".join
        dense = cm.tied_matrix(w, n) @ x
        engine = cm.conv1d(x, w)
        self.conv_label.setText(
            f"Tied weights w = ({fmt(cm.format_number(v) for v in w)}) on x = "
            f"({fmt(cm.format_number(v) for v in x)}): W x = ({fmt(cm.format_number(v) for v in dense)}); "
            f"the engine's convolution of x with w (padding {(k - 1) // 2}) gives "
            f"({fmt(cm.format_number(v) for v in engine)}). A convolution is a dense layer with "
            f"most weights zero and the rest shared.")
