"""The lab's fourth page: an activation function f and its derivative f', the factor backprop
multiplies by at each unit, with the saturated and dead regions shaded and a point x to move.
Every number comes from the engine's activation layers (nnviz.backprop.activations)."""
import html

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from nnviz.backprop import activations as act
from nnviz.backprop.names import fmt, sub

from .. import style
from .flow import FlowLayout, group
from .pages import wrapped

F_COLOUR = (0, 114, 178)
DF_COLOUR = (213, 94, 0)
REGION_BRUSH = {"dead": (150, 150, 150, 90), "saturated": (230, 159, 0, 60), "small slope": (0, 158, 115, 45)}
REGION_TEXT = {"dead": "dead: f\u2032 = 0", "saturated": "saturated", "small slope": "f\u2032 = \u03b1"}
STEPS = 100           # slider steps per unit of x
_SUP = str.maketrans("0123456789", "\u2070\u00b9\u00b2\u00b3\u2074\u2075\u2076\u2077\u2078\u2079")


class ActivationPage(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        v = QVBoxLayout(self)
        bar = QWidget()
        flow = FlowLayout(bar)
        self.function = QComboBox()
        for key, label in act.FUNCTIONS.items():
            self.function.addItem(label, key)
        self.slope = QDoubleSpinBox()
        self.slope.setRange(0.0, 0.99)
        self.slope.setSingleStep(0.01)
        self.slope.setDecimals(2)
        self.slope.setValue(act.DEFAULT_SLOPE)
        self.slope.setToolTip("leaky ReLU's slope \u03b1 for x < 0")
        self.slope_label = QLabel("\u03b1")
        lo, hi = act.X_RANGE
        self.x_slider = QSlider(Qt.Horizontal)
        self.x_slider.setRange(int(lo * STEPS), int(hi * STEPS))
        self.x_slider.setMinimumWidth(160)
        self.x_spin = QDoubleSpinBox()
        self.x_spin.setRange(lo, hi)
        self.x_spin.setSingleStep(0.1)
        self.x_spin.setDecimals(2)
        self.x_spin.setToolTip("the unit's input x (or drag the vertical line in the plot)")
        self.chain = QSpinBox()
        self.chain.setRange(1, act.MAX_CHAIN)
        self.chain.setValue(10)
        self.chain.setToolTip("layers in the chain read-out below the plot")
        flow.addWidget(group(QLabel("Function"), self.function, self.slope_label, self.slope))
        flow.addWidget(group(QLabel("x"), self.x_slider, self.x_spin))
        flow.addWidget(group(QLabel("chain of n layers"), self.chain))
        v.addWidget(bar)

        body = QHBoxLayout()
        self.plot = pg.PlotWidget()
        self.plot.setLabel("bottom", "x")
        self.plot.showGrid(x=True, y=True, alpha=0.25)
        self.plot.setMouseEnabled(False, False)
        self.plot.hideButtons()
        # a coloured title, not a legend: a legend box would hide part of a curve
        style.style_plot(self.plot, title=f"<span style='color:rgb{F_COLOUR}'>f(x) \u2014\u2014</span>"
                                          f"&nbsp;&nbsp;&nbsp;<span style='color:rgb{DF_COLOUR}'>"
                                          f"f\u2032(x) - - -</span>")
        self.f_curve = self.plot.plot([], [])
        self.df_curve = self.plot.plot([], [])
        self.marker = pg.ScatterPlotItem()
        self.plot.addItem(self.marker)
        self.x_line = pg.InfiniteLine(angle=90, movable=True, pen=pg.mkPen(60, 60, 60, width=2),
                                      hoverPen=pg.mkPen(0, 0, 0, width=4))
        self.x_line.setToolTip("drag to move x")
        self.plot.addItem(self.x_line)
        self._shades = []
        body.addWidget(self.plot, 5)

        side = QWidget()
        sv = QVBoxLayout(side)
        sv.setContentsMargins(0, 0, 0, 0)
        self.readout = QLabel()
        self.readout.setFont(style.ui_font(style.FONT_PT + 4, bold=True))
        self.readout.setTextInteractionFlags(Qt.TextSelectableByMouse)
        sv.addWidget(self.readout)
        self.chain_label = wrapped()
        self.chain_label.setFont(style.ui_font(style.FONT_PT + 1))
        sv.addWidget(self.chain_label)
        self.notes = wrapped()
        self.notes.setFont(style.ui_font(style.FONT_PT + 1))
        self.notes.setAlignment(Qt.AlignTop | Qt.AlignLeft)
        for lab in (self.readout, self.chain_label, self.notes):
            lab.setTextFormat(Qt.RichText)
        sv.addWidget(self.notes, 1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        scroll.setFrameShape(QScrollArea.NoFrame)
        scroll.setWidget(side)
        body.addWidget(scroll, 3)
        v.addLayout(body, 1)

        self.shown = {}
        self._curve_key = None
        self.function.currentIndexChanged.connect(self.refresh)
        self.slope.valueChanged.connect(self.refresh)
        self.chain.valueChanged.connect(self.refresh)
        self.x_spin.valueChanged.connect(self._x_from_spin)
        self.x_slider.valueChanged.connect(lambda i: self.x_spin.setValue(i / STEPS))
        self.x_line.sigPositionChanged.connect(lambda line: self.x_spin.setValue(line.value()))
        self.refresh()

    # ---- state ------------------------------------------------------------------------------
    def function_name(self):
        return self.function.currentData()

    def set_state(self, function, slope, x, chain):
        """All four at once, drawn once (a lesson step)."""
        widgets = (self.function, self.slope, self.x_spin, self.x_slider, self.chain)
        for w in widgets:
            w.blockSignals(True)
        self.function.setCurrentIndex(self.function.findData(function))
        self.slope.setValue(slope)
        self.x_spin.setValue(x)
        self.x_slider.setValue(round(self.x_spin.value() * STEPS))
        self.chain.setValue(chain)
        for w in widgets:
            w.blockSignals(False)
        self.refresh()

    def state(self):
        return {"function": self.function_name(), "slope": round(self.slope.value(), 4),
                "x": round(self.x_spin.value(), 4), "chain": self.chain.value()}

    def _x_from_spin(self, x):
        self.x_slider.blockSignals(True)
        self.x_slider.setValue(round(x * STEPS))
        self.x_slider.blockSignals(False)
        self.refresh()

    def apply_scale(self):
        """Presentation mode: thicker lines and larger markers."""
        self._curve_key = None
        self.refresh()

    # ---- drawing ----------------------------------------------------------------------------
    def refresh(self, *_):
        name, slope, x = self.function_name(), self.slope.value(), self.x_spin.value()
        leaky = name == "leaky_relu"
        self.slope.setEnabled(leaky)
        self.slope_label.setEnabled(leaky)
        self.shown = act.state_numbers(self.state())
        if self._curve_key != (name, slope, style.scale()):
            self._draw_curves(name, slope)
        f, df = self.shown["f"], self.shown["df"]
        self.x_line.blockSignals(True)
        self.x_line.setValue(x)
        self.x_line.blockSignals(False)
        self.marker.setData([x, x], [f, df], size=style.px(14), pen=pg.mkPen("k", width=style.px(1.5)),
                            brush=[pg.mkBrush(*F_COLOUR), pg.mkBrush(*DF_COLOUR)])
        self.readout.setText(f"x = {fmt(x, 4)}<br><span style='color:rgb{F_COLOUR}'>f(x) = {fmt(f)}</span>"
                             f"<br><span style='color:rgb{DF_COLOUR}'>f\u2032(x) = {fmt(df)}</span>")
        self._chain_text(name, x)
        self.notes.setText(html.escape(act.NOTES[name]).replace("|x|", "<nobr>|x|</nobr>") + self._region_text())

    def _draw_curves(self, name, slope):
        self._curve_key = (name, slope, style.scale())
        xs = act.grid()
        f, df = act.evaluate(name, xs, slope)
        self.f_curve.setData(xs, f, pen=pg.mkPen(F_COLOUR, width=style.px(3)))
        self.df_curve.setData(xs, df, pen=pg.mkPen(DF_COLOUR, width=style.px(3), style=Qt.DashLine))
        for item in self._shades:
            self.plot.removeItem(item)
        self._shades = []
        self.regions = act.regions(xs, df)
        lo, hi = float(min(f.min(), df.min())), float(max(f.max(), df.max()))
        pad = 0.08 * (hi - lo)
        self.plot.setXRange(*act.X_RANGE, padding=0.02)
        self.plot.setYRange(lo - pad, hi + 2.5 * pad, padding=0)
        for r in self.regions:
            shade = pg.LinearRegionItem((r.lo, r.hi), movable=False, brush=pg.mkBrush(*REGION_BRUSH[r.kind]),
                                        pen=pg.mkPen(None))
            shade.setZValue(-10)
            # a region at either end of the plot: its label starts at (or ends at) that end
            where = 0 if r.lo <= xs[0] else 1 if r.hi >= xs[-1] else 0.5
            label = pg.TextItem(REGION_TEXT[r.kind], color=(40, 40, 40), anchor=(where, 0))
            label.setFont(style.ui_font(style.FONT_PT))
            label.setPos(r.lo + where * (r.hi - r.lo), hi + 2.3 * pad)
            for item in (shade, label):
                self.plot.addItem(item)
                self._shades.append(item)

    def _region_text(self):
        parts = []
        for r in self.regions:
            span = f"x from {fmt(r.lo, 3)} to {fmt(r.hi, 3)}"
            if r.kind == "dead":
                parts.append(f"<b>Dead</b> ({span}): f\u2032 = 0, no gradient passes.")
            elif r.kind == "saturated":
                parts.append(f"<b>Saturated</b> ({span}): |f\u2032| below {act.THRESHOLD:g} of its maximum "
                             f"{fmt(self.shown['max_df'])}.")
            else:
                parts.append(f"<b>Small slope</b> ({span}): f\u2032 = \u03b1 = {fmt(self.slope.value())}, "
                             "small but never zero.")
        return "<br><br>" + "<br>".join(parts) if parts else ""

    def _chain_text(self, name, x):
        n = self.chain.value()
        g = self.shown["chain_df"]
        text = (f"<b>Chain of {n} layer{'s' if n > 1 else ''}</b> of one unit each (weight 1, bias 0) "
                f"from x = {fmt(x, 4)}: \u2202out/\u2202x = f\u2032(z\u2081)\u00b7\u2026\u00b7f\u2032(z{sub(n)}) "
                f"= <b>{fmt(g, 4)}</b>")
        if name == "sigmoid":
            text += f"; at most 0.25{str(n).translate(_SUP)} = {fmt(0.25 ** n, 4)}"
        self.chain_label.setText(text + ".")
