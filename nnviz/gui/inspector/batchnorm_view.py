"""The "Batch norm" view of the CNN inspector: for one BatchNorm layer, per channel, the
current training batch's mean and variance over (N, H, W) beside the running statistics,
and one channel's values entering the layer, normalised ((x − μ_B) / √(σ²_B + ε)) and leaving it (γ·x̂ + β).
The numbers come from nnviz.explain.batchnorm, computed in the worker's snapshot."""
from __future__ import annotations

import html

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QSizePolicy, QSplitter, QVBoxLayout, QWidget

from ..numeric import NumberSpin
from ..style import px, style_plot

NO_LAYER = ("This model has no BatchNorm layer: choose lenet5-bn under Model, or add a "
            "BatchNorm layer after a convolution in the Build tab.")
BATCH, RUNNING = (31, 119, 180), (255, 127, 14)
# entering, normalised, leaving
HIST_PENS = ((110, 110, 110), (31, 119, 180), (214, 39, 40))


def _r2(v):
    return f"{float(np.round(v, 2)) + 0.0:.2f}"      # never "-0.00"


def _values(s):
    """'64×28×28 = 50,176 values' (N×H×W), or '64 values' after a Dense layer."""
    shape = s.input_shape
    return (f"{s.batch}×{shape[1]}×{shape[2]} = {s.per_channel:,} values" if len(shape) == 3
            else f"{s.per_channel:,} values")


def _hex(rgb):
    return "#" + "".join(f"{v:02x}" for v in rgb)


class BatchNormView(QWidget):
    """set_layers([(index, label)]) when the model changes; set_stats(stats, error) per
    snapshot.  `wanted` fires when what the view needs changes: requested() says it."""

    wanted = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.stats = None
        self._shown = False
        self.layer = QComboBox()
        self.layer.setSizeAdjustPolicy(QComboBox.AdjustToContents)
        self.layer.currentIndexChanged.connect(lambda *_: self.wanted.emit())
        self.channel = NumberSpin()
        self.channel.setRange(0, 0)
        self.channel.setToolTip("The channel whose values the histograms show "
                                "(or click its bars)")
        self.channel.valueChanged.connect(lambda *_: self._redraw())
        self.info = QLabel(NO_LAYER)
        self.info.setTextFormat(Qt.RichText)
        self.info.setWordWrap(True)
        self.info.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.info.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Preferred)   # never widens the tab
        top = QHBoxLayout()
        for w in (QLabel("BatchNorm layer:"), self.layer, QLabel("Channel:"), self.channel):
            top.addWidget(w)
        top.addStretch(1)

        self.mean_plot, self.var_plot, self.hist = pg.PlotWidget(), pg.PlotWidget(), pg.PlotWidget()
        self.bars = {}
        for pw, what in ((self.mean_plot, "mean"), (self.var_plot, "variance")):
            pi = style_plot(pw, what.capitalize())
            pw.setToolTip(f"The {what} of each channel: over this batch (N, H, W) and the "
                          "running average used at test time. Click a channel to see its values.")
            pw.setMouseEnabled(False, False)
            pi.hideButtons()
            pi.showGrid(y=True, alpha=0.25)
            for name, colour, dx in (("batch", BATCH, -0.2), ("running", RUNNING, 0.2)):
                bar = pg.BarGraphItem(x=[], height=[], width=0.4, brush=pg.mkBrush(*colour),
                                      pen=pg.mkPen(None))
                bar._dx = dx
                pi.addItem(bar)
                self.bars[(what, name)] = bar
            sel = pg.LinearRegionItem((0, 0), movable=False, brush=pg.mkBrush(255, 200, 0, 70),
                                      pen=pg.mkPen(None))
            sel.setZValue(-10)
            pi.addItem(sel)
            self.bars[(what, "selected")] = sel
            pw.scene().sigMouseClicked.connect(lambda ev, pi=pi: self._clicked(pi, ev))
        self.hist_pi = style_plot(self.hist, "Channel 0")
        self.hist.setToolTip("The chosen channel's values over the batch: entering the layer, "
                             "normalised ((x − μ_B) / √(σ²_B + ε): mean 0, variance 1) and leaving it "
                             "(scaled by γ and shifted by β)")
        self.hist.setMouseEnabled(False, False)
        self.hist_pi.hideButtons()
        self.curves = [self.hist.plot([], [], stepMode="center", pen=pg.mkPen(c, width=px(2)))
                       for c in HIST_PENS]

        split = QSplitter(Qt.Horizontal)
        for pw in (self.mean_plot, self.var_plot, self.hist):
            pw.setMinimumWidth(110)
            split.addWidget(pw)
        split.setSizes([300, 300, 400])
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addLayout(top)
        lay.addWidget(self.info)
        lay.addWidget(split, 1)

    # ---- what the workspace asks ------------------------------------------------------
    def set_layers(self, layers):
        """[(index, label)] of the model's BatchNorm layers; keeps the chosen index if any."""
        old = self.layer.currentData()
        self.layer.blockSignals(True)
        self.layer.clear()
        for i, _label in layers:
            self.layer.addItem(f"layer {i}", i)
        k = self.layer.findData(old)
        self.layer.setCurrentIndex(k if k >= 0 else 0)
        self.layer.blockSignals(False)
        self.layer.setEnabled(bool(layers))
        self.channel.setEnabled(bool(layers))
        self.set_stats(None, "" if layers else NO_LAYER, force=True)

    def layer_indices(self):
        return [self.layer.itemData(i) for i in range(self.layer.count())]

    def select_layer(self, index):
        """Show BatchNorm layer `index` (a model layer index); False if there is none."""
        k = self.layer.findData(int(index))
        if k < 0:
            return False
        self.layer.setCurrentIndex(k)
        return True

    def current_layer(self):
        return self.layer.currentData()

    def requested(self):
        """The layer index to compute in the snapshots, None when hidden or nothing to show."""
        return self.current_layer() if self._shown else None

    def showEvent(self, ev):
        super().showEvent(ev)
        self._shown = True
        self.wanted.emit()

    def hideEvent(self, ev):
        super().hideEvent(ev)
        self._shown = False
        self.wanted.emit()

    # ---- drawing ----------------------------------------------------------------------
    def set_stats(self, stats, error="", force=False):
        """New statistics; a snapshot's older than those shown (still in flight when they
        were asked for) are ignored unless `force` (an answer to the view's own request)."""
        if stats is not None and stats.layer != self.current_layer():
            return                        # an older request's answer
        if (not force and stats is not None and self.stats is not None
                and stats.layer == self.stats.layer and stats.step < self.stats.step):
            return
        self.stats = stats
        if stats is not None:
            self.channel.setRange(0, stats.channels - 1)
        self._redraw(error)

    def _clicked(self, pi, ev):
        if self.stats is None:
            return
        x = pi.vb.mapSceneToView(ev.scenePos()).x()
        if pi.vb.sceneBoundingRect().contains(ev.scenePos()) and -0.5 <= x < self.stats.channels - 0.5:
            self.channel.setValue(int(round(x)))

    def _redraw(self, error=""):
        s = self.stats
        if s is None:
            for key, item in self.bars.items():
                if key[1] == "selected":
                    item.setRegion((0, 0))
                else:
                    item.setOpts(x=[], height=[])
            for c in self.curves:
                c.setData([], [])
            if error or not self.layer.count():
                self.info.setText(html.escape(error or NO_LAYER))
            return
        k = min(self.channel.value(), s.channels - 1)
        ch = np.arange(s.channels, dtype=float)
        for what, batch, running in (("mean", s.mean, s.running_mean), ("variance", s.var, s.running_var)):
            for name, v in (("batch", batch), ("running", running)):
                bar = self.bars[(what, name)]
                bar.setOpts(x=ch + bar._dx, height=np.asarray(v, float))
            self.bars[(what, "selected")].setRegion((k - 0.5, k + 0.5))
        for pi in (self.mean_plot, self.var_plot):
            pi.setXRange(-0.6, s.channels - 0.4, padding=0)
        for c, h in zip(self.curves, (s.hist_in, s.hist_norm, s.hist_out)):
            edges, counts = h.edges[k], h.counts[k].astype(float)
            width = np.diff(edges)
            c.setData(edges, counts / max(counts.sum(), 1.0) / np.where(width > 0, width, 1.0))
        self.hist_pi.setTitle(f"Channel {k}")
        self.info.setText(self.summary(k))
        self.info.setToolTip(self.describe(k))

    def summary(self, k):
        """Three short coloured lines of the chosen channel's numbers; the colours are the
        plots' (describe() says it all in words, in the tooltip)."""
        s = self.stats
        (grey, blue, red), orange = (_hex(c) for c in HIST_PENS), _hex(RUNNING)
        return "<br>".join((
            f'<span style="color:{_hex(BATCH)}">&#9632; this batch ({_values(s)}): mean '
            f"{s.mean[k]:.3g}, variance {s.var[k]:.3g}</span>",
            f'<span style="color:{orange}">&#9632; running: mean {s.running_mean[k]:.3g} → '
            f"{s.running_mean_next[k]:.3g}, variance {s.running_var[k]:.3g} → "
            f"{s.running_var_next[k]:.3g}</span>",
            f'<span style="color:{grey}">&#8212; entering</span> &nbsp;<span style="color:{blue}">'
            f"&#8212; normalised: mean {_r2(s.norm_mean[k])}, variance {_r2(s.norm_var[k])}</span>"
            f' &nbsp;<span style="color:{red}">&#8212; leaving: γ {s.gamma[k]:.3g}, '
            f"β {s.beta[k]:.3g}</span>"))

    def describe(self, k):
        """The chosen channel's numbers in words (what the plots show)."""
        s = self.stats
        m = s.momentum
        over = "N×H×W" if len(s.input_shape) == 3 else "N"
        return (f"Layer {s.label}, channel {k} of {s.channels}: this batch ({over} = {_values(s)}) "
                f"has mean μ_B = {s.mean[k]:.4g} and variance "
                f"σ²_B = {s.var[k]:.4g}; normalised they have mean {_r2(s.norm_mean[k])}, variance "
                f"{s.norm_var[k]:.3g}.  Running mean {s.running_mean[k]:.4g} → "
                f"{s.running_mean_next[k]:.4g}, running variance {s.running_var[k]:.4g} → "
                f"{s.running_var_next[k]:.4g} after this batch (running ← {1 - m:g}·running + "
                f"{m:g}·batch, the variance unbiased, as in PyTorch).  γ = {s.gamma[k]:.4g}, "
                f"β = {s.beta[k]:.4g}.")
