"""The lab's second and third pages: the mini-batch table with the update, vanishing gradients."""
import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from nnviz.backprop import CHAIN_ACTIVATIONS, layer_profile
from nnviz.backprop.names import fmt

from .. import style
from .fields import NumberTable

DEPTHS = np.array([*range(1, 11), *range(12, 31, 2)])
CHAIN_COLOURS = {"sigmoid": (220, 80, 30), "tanh": (120, 80, 200), "relu": (8, 119, 189)}


def wrapped(text=""):
    lab = QLabel(text)
    lab.setWordWrap(True)
    lab.setTextInteractionFlags(Qt.TextSelectableByMouse)
    return lab


class BatchPage(QWidget):
    """Rows = parameters, columns = examples, then the average and θ − η·avg."""

    apply_update = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        v = QVBoxLayout(self)
        self.intro = wrapped()
        v.addWidget(self.intro)
        self.table = NumberTable()
        v.addWidget(self.table, 1)
        self.update_label = wrapped()
        v.addWidget(self.update_label)
        row = QHBoxLayout()
        self.apply_button = QPushButton("Apply update  \u03b8 \u2190 \u03b8 \u2212 \u03b7\u00b7avg")
        self.apply_button.clicked.connect(self.apply_update.emit)
        row.addWidget(self.apply_button)
        row.addStretch(1)
        v.addLayout(row)

    def show_table(self, names, table, up, digits, examples=()):
        """`examples`: one short text per example (its inputs and target)."""
        f = lambda v: fmt(v, digits)
        n = table.per_example.shape[1]
        headers = [f"ex {e + 1}" for e in range(n)] + ["avg", "\u03b8", "\u03b8 \u2212 \u03b7\u00b7avg"]
        rows = [[f(g) for g in table.per_example[r]] + [f(table.average[r]), f(up.before[r]), f(up.after[r])]
                for r in range(len(names))]
        self.table.fill(headers, [f"\u2202L/\u2202{nm}" for nm in names], rows)
        self.intro.setText(
            f"Each column is one example's gradient \u2202L\u2091/\u2202\u03b8 (the engine's backward on that "
            f"example alone); <b>avg</b> is the gradient of the mean loss over the {n} "
            f"example{'s' if n > 1 else ''}. The update is one SGD step with \u03b7 = {f(up.lr)}."
            + ("<br>" + ";  ".join(f"ex {e + 1}: {t}" for e, t in enumerate(examples)) if examples else ""))
        n = len(table.losses)
        terms = " + ".join(f(v) for v in table.losses)
        cost = (f"C = (1/{n})\u00b7\u03a3 L\u2091 = ({terms}) / {n} = <b>{f(table.loss)}</b>" if n > 1
                else f"L = <b>{f(table.loss)}</b>")
        self.update_label.setText(
            f"Loss before the update: {cost}.  After one step: <b>{f(up.loss_after)}</b> "
            f"({'lower' if up.loss_after < up.loss_before else 'not lower: try a smaller η'}). "
            f"Edit the examples on the Examples tab of the first page.")


class VanishingPage(QWidget):
    """A chain of k Dense + activation layers: each layer's gradient size, log scale."""

    def __init__(self, parent=None):
        super().__init__(parent)
        v = QVBoxLayout(self)
        v.addWidget(wrapped(
            "A chain of k layers (16 units each, the engine's default initialisation) and one output, "
            "MSE on a random batch; the geometric mean of 4 random chains. "
            "Left: the size \u2016\u2202L/\u2202W\u2097\u2016 of each layer's "
            "weight gradient, first layer on the left. Right: the first layer's gradient as the chain "
            "grows. \u03c3\u2032(z) \u2264 0.25, so each sigmoid layer shrinks the gradient; ReLU passes it "
            "through where the unit is active."))
        row = QHBoxLayout()
        row.addWidget(QLabel("Layers k:"))
        self.depth = QSpinBox()
        self.depth.setRange(1, 30)
        self.depth.setValue(10)
        row.addWidget(self.depth)
        self.checks = {}
        for act in CHAIN_ACTIVATIONS:
            cb = QCheckBox(act)
            cb.setChecked(True)
            cb.toggled.connect(self.refresh)
            self.checks[act] = cb
            row.addWidget(cb)
        row.addStretch(1)
        v.addLayout(row)
        plots = QHBoxLayout()
        self.per_layer = pg.PlotWidget()
        self.per_layer.setLogMode(False, True)
        self.per_layer.setLabel("bottom", "layer (1 = next to the input)")
        self.per_layer.setLabel("left", "\u2016\u2202L/\u2202W\u2016")
        style.style_plot(self.per_layer)
        style.add_legend(self.per_layer, offset=(-10, -10))
        self.sweep = pg.PlotWidget()
        self.sweep.setLogMode(False, True)
        self.sweep.setLabel("bottom", "layers in the chain k")
        self.sweep.setLabel("left", "first layer \u2016\u2202L/\u2202W\u2081\u2016")
        style.style_plot(self.sweep)
        plots.addWidget(self.per_layer)
        plots.addWidget(self.sweep)
        v.addLayout(plots, 1)
        self.summary = wrapped()
        v.addWidget(self.summary)
        self.depth.valueChanged.connect(self.refresh)
        self._sweep_done = []        # {activation: first-layer gradient} per depth in DEPTHS
        self._sweep_timer = QTimer(self)
        self._sweep_timer.setInterval(0)
        self._sweep_timer.timeout.connect(self._sweep_tick)
        self.data = {}

    def refresh(self, *_):
        k = self.depth.value()
        self.per_layer.clear()
        self.data = {}
        parts = []
        for act, cb in self.checks.items():
            if not cb.isChecked():
                continue
            g = layer_profile(act, k)
            self.data[act] = g
            pen = pg.mkPen(CHAIN_COLOURS[act], width=3)
            self.per_layer.plot(np.arange(1, k + 1), g, pen=pen, symbol="o", symbolSize=8,
                                symbolBrush=CHAIN_COLOURS[act], name=act)
            parts.append(f"{act}: first layer {fmt(g[0], 3)}, last {fmt(g[-1], 3)} "
                         f"(\u00d7{fmt(g[0] / g[-1], 3)})")
        self.summary.setText(f"k = {k}:  " + ";  ".join(parts))
        self._draw_sweep()
        if len(self._sweep_done) < len(DEPTHS) and not self._sweep_timer.isActive():
            self._sweep_timer.start()

    def _sweep_tick(self):
        """One more depth of the right-hand plot per tick, so the window never stalls (~1 s in all)."""
        i = len(self._sweep_done)
        if i >= len(DEPTHS):
            self._sweep_timer.stop()
            return
        k = int(DEPTHS[i])
        self._sweep_done.append({act: layer_profile(act, k)[0] for act in CHAIN_ACTIVATIONS})
        self._draw_sweep()

    def stop(self):
        self._sweep_timer.stop()

    def sweep_complete(self):
        return len(self._sweep_done) == len(DEPTHS)

    def _draw_sweep(self):
        self.sweep.clear()
        n = len(self._sweep_done)
        for act, cb in self.checks.items():
            if cb.isChecked() and n:
                pen = pg.mkPen(CHAIN_COLOURS[act], width=3)
                self.sweep.plot(DEPTHS[:n], [d[act] for d in self._sweep_done], pen=pen, symbol="o",
                                symbolSize=6, symbolBrush=CHAIN_COLOURS[act])
