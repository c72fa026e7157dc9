"""Loss / accuracy curves vs steps (or epochs), reusable by every workspace.

``CurvesWidget`` shows two plots side by side (loss, accuracy) with a legend,
a log-scale toggle for the loss, a crosshair read-out and automatic
downsampling so long runs stay fast.
"""
import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QCheckBox, QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from .style import PALETTE, add_legend, px, style_plot

TRAIN_PEN = PALETTE["train"]
TEST_PEN = PALETTE["test"]
# Points drawn per pixel of plot width (pyqtgraph's "peak" downsampling keeps two per bin).
# A thick line's cost is per segment: pyqtgraph's default, 5, made a Compare frame's curves
# ~12 ms of stroking; 0.5 (one point per pixel) draws the same picture in ~2.5 ms.
POINTS_PER_PIXEL = 0.5


def _finite(x, y):
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    n = min(len(x), len(y))
    x, y = x[:n], y[:n]
    ok = np.isfinite(y)
    return x[ok], y[ok]


class _Crosshair:
    """Vertical line + label that follows the mouse and reads out every curve."""

    def __init__(self, plot, owner):
        self.plot, self.owner = plot, owner
        self.vline = pg.InfiniteLine(angle=90, movable=False,
                                     pen=pg.mkPen((120, 120, 120), width=1, style=Qt.DashLine))
        self.label = pg.TextItem("", anchor=(0, 1), color=(20, 20, 20),
                                 fill=pg.mkBrush(255, 255, 255, 220), border=pg.mkPen(150, 150, 150))
        self.label.setZValue(100)
        self.vline.setZValue(99)
        plot.addItem(self.vline, ignoreBounds=True)
        plot.addItem(self.label, ignoreBounds=True)
        self.vline.hide()
        self.label.hide()
        self.proxy = pg.SignalProxy(plot.scene().sigMouseMoved, rateLimit=30, slot=self._moved)

    def _moved(self, evt):
        pos = evt[0]
        vb = self.plot.getViewBox()
        if not self.plot.sceneBoundingRect().contains(pos):
            self.vline.hide()
            self.label.hide()
            return
        p = vb.mapSceneToView(pos)
        x = p.x()
        lines = []
        for name, item in self.owner._items_of(self.plot):
            xd, yd = item.xData, item.yData
            if xd is None or len(xd) == 0:
                continue
            i = int(np.clip(np.searchsorted(xd, x), 0, len(xd) - 1))
            y = yd[i]
            if self.owner.log_loss and self.plot is self.owner.loss_plot:
                y = 10 ** y if item.opts.get("_logged") else y
            lines.append(f"{name}: {y:.4g}")
        if not lines:
            self.label.hide()
            return
        unit = self.owner.x_label
        self.label.setText(f"{unit} {x:,.0f}\n" + "\n".join(lines))
        self.vline.setPos(x)
        self.label.setPos(p.x(), p.y())
        self.vline.show()
        self.label.show()


class CurvesWidget(QWidget):
    """Two plots: loss and accuracy. Curves are keyed by name (e.g. "train loss")."""

    x_axis_changed = Signal(str)

    MIN_INTERVAL_S = 0.1   # redraw at most 10 times a second (thick lines are costly)

    def __init__(self, parent=None, show_accuracy=True, title_loss="Loss",
                 title_accuracy="Accuracy", x_label="step"):
        super().__init__(parent)
        self.x_label = x_label
        self.log_loss = False
        self._curves = {}          # (plot_key, name) -> PlotDataItem
        self._data = {}            # (plot_key, name) -> (x, y)
        self._x_end = {}           # id(view box) -> right end of the x axis we set
        self._y_top = {}           # id(view box) -> top of the (linear) loss axis we set
        self._auto_x = {}          # id(view box) -> False once the user zoomed or panned
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(2)
        bar = QHBoxLayout()
        bar.setContentsMargins(4, 0, 4, 0)
        self.log_box = QCheckBox("log-scale loss")
        self.log_box.toggled.connect(self.set_log)
        self.x_combo = QComboBox()
        self.x_combo.addItems(["steps", "epochs"])
        self.x_combo.currentTextChanged.connect(self._x_changed)
        bar.addWidget(QLabel("x axis:"))
        bar.addWidget(self.x_combo)
        bar.addSpacing(12)
        bar.addWidget(self.log_box)
        bar.addStretch(1)
        lay.addLayout(bar)
        self.glw = pg.GraphicsLayoutWidget()
        self.glw.setBackground("w")
        lay.addWidget(self.glw, 1)
        self.loss_plot = self.glw.addPlot()
        self.acc_plot = self.glw.addPlot() if show_accuracy else None
        style_plot(self.loss_plot, title_loss)
        if self.acc_plot is not None:
            style_plot(self.acc_plot, title_accuracy)
        for p in self.plots():
            p.showGrid(x=True, y=True, alpha=0.25)
            for ax in ("left", "bottom"):   # no sub-minor grid: fewer lines to paint per frame
                p.getAxis(ax).setStyle(maxTickLevel=1)
            p.setLabel("bottom", x_label)
            # loss falls and accuracy rises: each legend sits where its curves are not
            add_legend(p, offset=(-10, 10) if p is self.loss_plot else (-10, -10))
            p.setDownsampling(auto=True, mode="peak")
            p.setClipToView(True)
            p.getViewBox().setMouseEnabled(x=True, y=False)
            p.getViewBox().sigRangeChangedManually.connect(self._manual)
            cache_axes(p)
        if self.acc_plot is not None:
            self.acc_plot.setYRange(0, 1.02)
            self.acc_plot.enableAutoRange(axis="y", enable=False)
        self._cross = [_Crosshair(p, self) for p in self.plots()]

    # ---- API -------------------------------------------------------------------
    def plots(self):
        return [p for p in (self.loss_plot, self.acc_plot) if p is not None]

    @property
    def x_mode(self):
        return self.x_combo.currentText()

    def _x_changed(self, text):
        self.x_label = "epoch" if text == "epochs" else "step"
        self._x_end.clear()
        for p in self.plots():
            p.setLabel("bottom", self.x_label)
        self.x_axis_changed.emit(text)

    def _plot(self, key):
        return self.loss_plot if key == "loss" else self.acc_plot

    def _items_of(self, plot):
        return [(name, item) for (k, name), item in self._curves.items()
                if self._plot(k) is plot and item.isVisible()]

    def set_curve(self, key, name, x, y, color=None, style="solid", width=2.5, legend=True):
        """Create or update the curve `name` on the "loss" or "accuracy" plot."""
        plot = self._plot(key)
        if plot is None:
            return None
        x, y = _finite(x, y)
        self._data[(key, name)] = (x, y)
        item = self._curves.get((key, name))
        if item is None:
            pen = pg.mkPen(color if color is not None else PALETTE["train"], width=px(width),
                           style=Qt.DashLine if style == "dash" else Qt.SolidLine)
            pen.setCosmetic(True)
            item = plot.plot([], [], pen=pen, name=name if legend else None, antialias=False,
                             skipFiniteCheck=True, autoDownsampleFactor=POINTS_PER_PIXEL)
            item.base_width = width
            item.setDownsampling(auto=True, method="peak")
            item.setClipToView(True)
            self._curves[(key, name)] = item
        self._apply(key, item, x, y)
        return item

    def apply_scale(self):
        """Presentation mode changed: thicker (or thinner) lines."""
        for item in self._curves.values():
            pen = pg.mkPen(item.opts["pen"])
            pen.setWidthF(px(item.base_width))
            item.setPen(pen)

    def _apply(self, key, item, x, y):
        if key == "loss" and self.log_loss:
            ok = y > 0
            item.setData(x[ok], np.log10(y[ok]))
            item.opts["_logged"] = True
        else:
            item.setData(x, y)
            item.opts["_logged"] = False
        if len(x):
            self._grow_x(self._plot(key), float(x[-1]))
            if key == "loss" and not self.log_loss:
                self._grow_y(self._plot(key), float(np.max(y)))

    def _grow_x(self, plot, x_last):
        """While the user has not zoomed, the x axis ends at a round number ahead of the
        data: it changes a few times per decade rather than on every redraw (a new range
        makes the axes and the grid be laid out and painted again)."""
        vb = plot.getViewBox()
        if not self._auto_x.get(id(vb), True):
            return
        end = self._x_end.get(id(vb))
        if end is not None and x_last <= end:
            return
        end = _round_up(max(x_last * 1.2, 1.0))
        self._x_end[id(vb)] = end
        vb.setXRange(0, end, padding=0.02)

    def _grow_y(self, plot, y_max):
        """The loss axis runs from 0 to a round number: it changes when the loss first
        exceeds it, not every time the newest (smallest) loss moves the data's range."""
        vb = plot.getViewBox()
        top = self._y_top.get(id(vb))
        if top is not None and y_max <= top:
            return
        top = _round_up(max(y_max * 1.05, 1e-6))
        self._y_top[id(vb)] = top
        vb.setYRange(0, top, padding=0.02)

    def _manual(self, *_):
        for p in self.plots():       # the user zoomed or panned: leave the x axis to them
            self._auto_x[id(p.getViewBox())] = False

    def set_log(self, on):
        self.log_loss = bool(on)
        if self.log_box.isChecked() != self.log_loss:
            self.log_box.setChecked(self.log_loss)
        self.loss_plot.setLogMode(y=False)
        self._y_top.clear()
        if self.log_loss:               # log10 values may be negative: pyqtgraph fits them
            self.loss_plot.enableAutoRange(axis="y")
        for (key, name), item in self._curves.items():
            if key == "loss":
                x, y = self._data[(key, name)]
                self._apply(key, item, x, y)
        self.loss_plot.setLabel("left", "log10 loss" if self.log_loss else "")

    def curve_names(self, key="loss"):
        return [name for (k, name) in self._curves if k == key]

    def curve_data(self, key, name):
        return self._data.get((key, name))

    def clear(self):
        for (key, _), item in list(self._curves.items()):
            plot = self._plot(key)
            plot.removeItem(item)
            if plot.legend is not None:
                plot.legend.removeItem(item)
        self._curves.clear()
        self._data.clear()
        self._x_end.clear()
        self._y_top.clear()
        self._auto_x.clear()

    def update_history(self, hist, prefix="", color_train=None, color_test=None):
        """Draw a trainer's history (a snapshots.HistoryCopy: ``steps`` / ``epochs``
        tables): train per step, test per epoch."""
        steps, epochs = hist.steps, hist.epochs
        ct = color_train or TRAIN_PEN
        ce = color_test or TEST_PEN
        by_epoch = self.x_mode == "epochs"
        pre = f"{prefix} " if prefix else ""
        if by_epoch:
            ex = epochs.get("epoch", [])
            self.set_curve("loss", f"{pre}train", ex, epochs.get("train_loss", []), ct)
            self.set_curve("accuracy", f"{pre}train", ex, epochs.get("train_accuracy", []), ct)
        else:
            sx = steps.get("step", [])
            self.set_curve("loss", f"{pre}train", sx, smooth(steps.get("loss", [])), ct)
            self.set_curve("accuracy", f"{pre}train", sx, smooth(steps.get("accuracy", [])), ct)
            ex = epochs.get("step", [])
        if len(epochs.get("test_loss", [])):
            self.set_curve("loss", f"{pre}test", ex, epochs.get("test_loss", []), ce, style="dash")
            self.set_curve("accuracy", f"{pre}test", ex, epochs.get("test_accuracy", []), ce,
                           style="dash")


def cache_axes(plot_item):
    """Paint each axis (ticks, labels, its grid lines) into a cached pixmap: redrawing a
    curve then blits the axes instead of laying out their text again (measured: axes were
    a third of a Playground frame). The cache is rebuilt when the range changes."""
    from PySide6.QtWidgets import QGraphicsItem
    for name in ("left", "bottom", "right", "top"):
        ax = plot_item.getAxis(name)
        if ax is not None:
            ax.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)


def _round_up(v):
    """The smallest 1, 2 or 5 times a power of ten that is >= v."""
    e = 10.0 ** np.floor(np.log10(v))
    return float(next(m * e for m in (1, 2, 5, 10) if m * e >= v))


def smooth(y, frac=0.02):
    """Moving average over ~2% of the run (per-batch losses are noisy on a projector)."""
    y = np.asarray(y, dtype=float)
    n = max(1, int(len(y) * frac))
    if n < 2 or len(y) < 3:
        return y
    c = np.cumsum(np.insert(np.nan_to_num(y), 0, 0.0))
    out = np.empty_like(y)
    k = np.arange(1, len(y) + 1)
    lo = np.maximum(0, k - n)
    out[:] = (c[k] - c[lo]) / (k - lo)
    return out


def history_copy(history):
    """Copies of a nnviz.train.History's tables (safe to hand to the UI thread)."""
    from .snapshots import HistoryCopy
    return HistoryCopy(**history.to_arrays(float))
