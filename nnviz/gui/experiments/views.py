"""The Experiments tab's diagnostic views: gradient norm per layer (log scale) and sample
images with both nets' answers. They draw what a snapshot carries; no training math here."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QGridLayout, QLabel, QVBoxLayout, QWidget

from ..snapshots import HistoryCopy, Snapshot
from ..style import np_to_qimage, px, series_color, style_plot

FLOOR = 1e-30          # a gradient of exactly 0 still has a place on the log axis


def arm_color(i: int):
    return series_color(1 - i if i < 2 else i)     # first arm vermillion, second blue


def coloured(labels: list[str]) -> str:
    """The arms' names in their colours: a legend that covers no data."""
    return ", ".join("<span style='color:#{:02x}{:02x}{:02x}'>{}</span>".format(*arm_color(i), label)
                     for i, label in enumerate(labels))


@dataclass(kw_only=True)
class ExperimentSnapshot(Snapshot):
    """Copies made in the worker thread: one entry per arm in every list."""
    token: int
    labels: list[str]
    histories: list[HistoryCopy]
    grad_norms: list[np.ndarray] = field(default_factory=list)       # per layer, latest step
    first_grad: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)   # (steps, norms)
    sample_probs: list[np.ndarray] = field(default_factory=list)     # P(centre) per sample image


class GradNormView(QWidget):
    """Left: each layer's weight-gradient norm now, first layer on the left. Right: the first
    layer's over the steps. Both on a log axis, one line per net."""

    def __init__(self, parent=None):
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.glw = pg.GraphicsLayoutWidget()
        self.glw.setBackground("w")
        lay.addWidget(self.glw)
        self.layers_plot = self.glw.addPlot()
        self.time_plot = self.glw.addPlot()
        style_plot(self.layers_plot, "Gradient norm per layer (now)")
        style_plot(self.time_plot, "First layer's gradient norm")
        self.layers_plot.setLabel("bottom", "layer (1 = next to the input)")
        self.time_plot.setLabel("bottom", "step")
        for p in (self.layers_plot, self.time_plot):
            p.setLogMode(x=False, y=True)
            p.showGrid(x=True, y=True, alpha=0.25)
            p.getViewBox().setMouseEnabled(x=True, y=False)
        self._items: dict[tuple[str, int], pg.PlotDataItem] = {}

    def clear(self) -> None:
        for p in (self.layers_plot, self.time_plot):
            p.clear()
        self._items.clear()

    def set_labels(self, labels: list[str]) -> None:
        names = coloured(labels)
        style_plot(self.layers_plot, f"Gradient norm per layer now: {names}")
        style_plot(self.time_plot, f"First layer's gradient norm: {names}")

    def _item(self, plot, kind, i, symbol):
        item = self._items.get((kind, i))
        if item is None:
            kw = dict(symbol="o", symbolBrush=arm_color(i), symbolPen=None) if symbol else {}
            item = plot.plot([], [], **kw)
            self._items[(kind, i)] = item
            self._restyle(item, i)
        return item

    @staticmethod
    def _restyle(item, i):
        item.setPen(pg.mkPen(arm_color(i), width=px(2.5)))
        if item.opts.get("symbol"):
            item.setSymbolSize(px(7))

    def apply_scale(self) -> None:
        """Presentation mode changed the scale: thicker lines and dots."""
        for (_, i), item in self._items.items():
            self._restyle(item, i)

    def update_snapshot(self, snap: ExperimentSnapshot) -> None:
        for i, g in enumerate(snap.grad_norms):
            if len(g) and np.any(g > 0):
                x = np.arange(1, len(g) + 1, dtype=float)
                self._item(self.layers_plot, "layers", i, True).setData(x, np.maximum(g, FLOOR))
        for i, (s, v) in enumerate(snap.first_grad):
            if len(s):
                self._item(self.time_plot, "time", i, False).setData(s, np.maximum(v, FLOOR))

    def layer_data(self, i: int):
        """(layers, norms) drawn for arm i (tests)."""
        item = self._items.get(("layers", i))
        return None if item is None else (item.xData, item.yData)   # log mode keeps the raw data


class SamplesView(QWidget):
    """Sample images, each with its label and both nets' probability that it is the centre."""

    CELL = 64
    COLUMNS = 8

    def __init__(self, parent=None):
        super().__init__(parent)
        self.grid = QGridLayout(self)
        self.grid.setContentsMargins(6, 6, 6, 6)
        self.title = QLabel("<b>Sample images</b> with each net's probability that the lit pixel is the centre "
                            "(✓ right, ✗ wrong)")
        self.grid.addWidget(self.title, 0, 0, 1, self.COLUMNS)
        self.images: list[QLabel] = []
        self.texts: list[QLabel] = []
        self._x = np.zeros((0, 1, 1, 1), np.float32)
        self._labels = np.zeros(0, np.int64)
        self._shown: tuple[list[str], list[np.ndarray]] = ([], [])

    def set_samples(self, x: np.ndarray, y: np.ndarray) -> None:
        """x (n, 1, H, W) in 0..1, y the labels (1 = centre)."""
        for w in self.images + self.texts:
            self.grid.removeWidget(w)
            w.deleteLater()
        self.images, self.texts = [], []
        self._x, self._labels = np.asarray(x), np.asarray(y)
        cols = self.COLUMNS
        for k in range(len(x)):
            img = np.kron(255 - (x[k, 0] * 255).astype(np.uint8), np.ones((8, 8), np.uint8))
            img[::8, :] = np.minimum(img[::8, :], 200)       # faint pixel grid
            img[:, ::8] = np.minimum(img[:, ::8], 200)
            pic = QLabel()
            pic.setPixmap(QPixmap.fromImage(np_to_qimage(img)).scaled(
                int(px(self.CELL)), int(px(self.CELL)), Qt.KeepAspectRatio, Qt.FastTransformation))
            pic.setAlignment(Qt.AlignCenter)
            text = QLabel()
            text.setAlignment(Qt.AlignHCenter | Qt.AlignTop)
            r, c = divmod(k, cols)
            self.grid.addWidget(pic, 1 + 2 * r, c)
            self.grid.addWidget(text, 2 + 2 * r, c)
            self.images.append(pic)
            self.texts.append(text)
        self.grid.setRowStretch(1 + 2 * ((len(x) - 1) // cols + 1), 1)    # the cells stay at the top
        self.set_probs([], [])

    def set_probs(self, names: list[str], probs: list[np.ndarray]) -> None:
        self._shown = (names, probs)
        for k, text in enumerate(self.texts):
            truth = "centre" if self._labels[k] == 1 else "elsewhere"
            lines = [f"<b>{truth}</b>"]
            for i, (name, p) in enumerate(zip(names, probs)):
                ok = (p[k] > 0.5) == (self._labels[k] == 1)
                col = "#{:02x}{:02x}{:02x}".format(*arm_color(i))
                lines.append(f"<span style='color:{col}'>{name} {p[k]:.2f}</span> {'✓' if ok else '✗'}")
            text.setText("<br>".join(lines))

    def apply_scale(self) -> None:
        """Presentation mode: the pictures again, at the new size."""
        names, probs = self._shown
        self.set_samples(self._x, self._labels)
        self.set_probs(names, probs)

    def text_of(self, k: int) -> str:
        return self.texts[k].text()
