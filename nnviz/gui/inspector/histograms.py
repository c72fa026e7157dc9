"""Weights and gradients over time, per layer: each column is the histogram of one
layer's values at a training step (darker = more values there), with the median and
the 5 % / 95 % quantiles drawn on top: TensorBoard's "distributions", live."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from ..style import style_plot
from .explain_widgets import export_widget

# white -> dark blue: empty bins vanish into the white plot background
_LUT = np.stack([np.interp(np.linspace(0, 1, 256), [0, 0.5, 1], c)
                 for c in ((255, 107, 8), (255, 174, 48), (255, 214, 107))], 1).astype(np.uint8)
QS = (0.05, 0.5, 0.95)


class DistributionsView(QWidget):
    def __init__(self, history, parent=None):
        super().__init__(parent)
        self.history = history
        self.layer = QComboBox()
        self.layer.setMinimumContentsLength(12)
        self.layer.currentIndexChanged.connect(lambda *_: self.refresh(force=True))
        self.export_btn = QPushButton("Export PNG…")
        self.export_btn.clicked.connect(lambda: export_widget(self, name="distributions.png"))
        self.note = QLabel("")
        self.note.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Preferred)   # never widens the tab
        top = QHBoxLayout()
        top.addWidget(QLabel("Layer:"))
        top.addWidget(self.layer)
        top.addWidget(self.note, 1)
        top.addWidget(self.export_btn)
        self.plots = {}
        row = QHBoxLayout()
        for kind, title in (("weights", "Weights"), ("gradients", "Gradients ∂loss/∂w")):
            pw = pg.PlotWidget()
            pw.setMinimumWidth(120)
            pi = style_plot(pw, title)
            pi.getAxis("bottom").setLabel("step")
            pw.setMouseEnabled(False, False)
            pi.hideButtons()
            img = pg.ImageItem()
            img.setLookupTable(_LUT)
            pw.addItem(img)
            lines = [pw.plot([], [], pen=pg.mkPen((200, 60, 20), width=2 if q == 0.5 else 1,
                                                  style=pg.QtCore.Qt.SolidLine if q == 0.5
                                                  else pg.QtCore.Qt.DashLine)) for q in QS]
            self.plots[kind] = (pw, img, lines)
            row.addWidget(pw)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addLayout(top)
        lay.addLayout(row, 1)
        self._version = -1

    def refresh(self, force=False):
        h = self.history
        if not force and h.version == self._version:
            return
        self._version = h.version
        layers = h.layers()
        if layers != [self.layer.itemText(i) for i in range(self.layer.count())]:
            old = self.layer.currentText()
            self.layer.blockSignals(True)
            self.layer.clear()
            self.layer.addItems(layers)
            if old in layers:
                self.layer.setCurrentText(old)
            self.layer.blockSignals(False)
        name = self.layer.currentText()
        n = len(h.steps)
        self.note.setText(f"{n} records; median and 5–95 % band in orange" if n else
                          "no records yet: train")
        for kind, (pw, img, lines) in self.plots.items():
            if not name:
                steps = np.zeros(0)
            else:   # the 1..99 % range: a few outliers would squash the picture to a line
                _, lim = h.quantiles(kind, name, (0.01, 0.99))
                lo, hi = (float(lim[:, 0].min()), float(lim[:, 1].max())) if len(lim) else (0, 0)
                pad = 0.15 * (hi - lo)
                steps, edges, dens = h.density(kind, name, 60, (lo - pad, hi + pad))
            if len(steps) == 0:
                img.clear()
                for ln in lines:
                    ln.setData([], [])
                pw.setXRange(0, 100, padding=0)
                pw.setYRange(-1, 1, padding=0)
                continue
            top = float(dens.max()) or 1.0
            img.setImage(np.sqrt(dens / top), autoLevels=False, levels=(0, 1))
            # one column per record, centred on its step
            dx = (float(steps[-1]) - float(steps[0])) / max(len(steps) - 1, 1) or 1.0
            x0, width = float(steps[0]) - dx / 2, dx * len(steps)
            img.setRect(QRectF(x0, float(edges[0]), width, float(edges[-1] - edges[0])))
            qsteps, qv = h.quantiles(kind, name, QS)
            for k, ln in enumerate(lines):
                ln.setData(qsteps.astype(float), qv[:, k])
            pw.setXRange(x0, x0 + width, padding=0)
            pw.setYRange(float(edges[0]), float(edges[-1]), padding=0.02)

    def clear(self):
        self._version = -1
        self.refresh(force=True)
