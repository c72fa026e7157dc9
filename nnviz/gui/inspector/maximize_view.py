"""Activation maximisation view: for every filter of a chosen convolution, or every class,
the input that excites it most (gradient ascent from seeded noise, in a background
thread, with progress and Cancel)."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..style import style_plot
from .explain_images import image_tiles
from .explain_widgets import CaptionedTiles, ExplainTile


class MaximizeView(QWidget):
    """Controls + grid.  `run_requested` asks the panel to start a run with settings()."""
    run_requested = Signal()
    cancel_requested = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.target = QComboBox()
        self.target.setToolTip("Which units to visualise: every filter of one convolution, "
                               "or every class (its logit)")
        self.steps = QSpinBox()
        self.steps.setRange(10, 2000)
        self.steps.setValue(200)
        self.steps.setSingleStep(50)
        self.l2 = QDoubleSpinBox()
        self.l2.setDecimals(3)
        self.l2.setRange(0.0, 0.2)
        self.l2.setSingleStep(0.005)
        self.l2.setValue(0.05)
        self.l2.setToolTip("L2 decay per step: pulls pixels back towards the average image")
        self.blur = QCheckBox("blur")
        self.blur.setChecked(True)
        self.blur.setToolTip("A small Gaussian blur every 4 steps: removes pixel noise")
        self.jitter = QSpinBox()
        self.jitter.setRange(0, 4)
        self.jitter.setValue(1)
        self.jitter.setToolTip("Random shift of up to this many pixels each step")
        self.seed = QSpinBox()
        self.seed.setRange(0, 9999)
        self.run_btn = QPushButton("Run")
        self.run_btn.clicked.connect(self.run_requested)
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.setEnabled(False)
        self.cancel_btn.clicked.connect(self.cancel_requested)
        self.follow = QCheckBox("follow training")
        self.follow.setChecked(True)
        self.follow.setToolTip("Run again with the newest weights while the network trains")
        self.bar = QProgressBar()
        self.bar.setRange(0, 1)
        self.bar.setFormat("%v / %m steps")
        row1 = QHBoxLayout()
        for w in (QLabel("Maximise:"), self.target):
            row1.addWidget(w)
        row1.addStretch(1)
        for w in (self.run_btn, self.cancel_btn, self.follow):
            row1.addWidget(w)
        row2 = QHBoxLayout()
        for w in (QLabel("steps"), self.steps, QLabel("L2"), self.l2, self.blur,
                  QLabel("jitter"), self.jitter, QLabel("seed"), self.seed):
            row2.addWidget(w)
        row2.addWidget(self.bar, 1)
        self.note = QLabel("")
        self.note.setWordWrap(True)
        self.note.setMinimumHeight(2 * self.fontMetrics().height() + 4)
        self.grid = CaptionedTiles(tile_px=96, max_px=140)
        holder = QWidget()
        hl = QVBoxLayout(holder)
        hl.setContentsMargins(0, 0, 0, 0)
        hl.addWidget(self.grid)
        hl.addStretch(1)
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setWidget(holder)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addLayout(row1)
        lay.addLayout(row2)
        lay.addWidget(self.note)
        # one unit enlarged, with its objective over the steps (click a tile; hidden until then)
        self.detail = ExplainTile("")
        self.trace_plot = pg.PlotWidget()
        style_plot(self.trace_plot)
        self.trace_plot.getPlotItem().getAxis("bottom").setLabel("step")
        self.trace_plot.setMouseEnabled(False, False)
        self.trace_plot.setMaximumHeight(150)
        self.trace_curve = self.trace_plot.plot([], [], pen=pg.mkPen((0, 114, 178), width=2))
        close = QPushButton("Close")
        close.clicked.connect(lambda: (self.side.hide(), QTimer.singleShot(0, self._refit)))
        self.side = QWidget()
        sl = QVBoxLayout(self.side)
        sl.setContentsMargins(0, 0, 0, 0)
        sl.addWidget(self.detail, 1)
        sl.addWidget(self.trace_plot)
        sl.addWidget(close)
        self.side.setMaximumWidth(260)
        self.side.hide()
        self.grid.tileClicked.connect(self.show_unit)
        body = QHBoxLayout()
        body.addWidget(self.scroll, 1)
        body.addWidget(self.side)
        lay.addLayout(body, 1)
        self._names = None
        self._choices: list[tuple[int | None, str]] = []
        self.result = None

    def set_layers(self, convs: list[tuple[int, str, int]], default: int | None):
        """convs: [(layer index, label, filter count)]; keeps the current choice if it exists."""
        choices = [(i, f"every filter of layer {i} {label} ({n})") for i, label, n in convs]
        choices.append((None, "every class (its logit)"))
        if choices == self._choices:
            return
        old = self.choice() if self._choices else default
        self._choices = choices
        self.target.blockSignals(True)
        self.target.clear()
        self.target.addItems([t for _, t in choices])
        keys = [k for k, _ in choices]
        pick = old if old in keys else default
        self.target.setCurrentIndex(keys.index(pick) if pick in keys else 0)
        self.target.blockSignals(False)

    def _fit(self, n: int) -> int:
        """The largest tile (52..160 px) with which n tiles fit the visible area."""
        vp = self.scroll.viewport().size()
        gap = self.grid.gap
        for t in range(160, 52, -4):
            cols = max(1, (vp.width() - gap) // (t + gap))
            if -(-n // cols) * (t + gap) + gap <= vp.height():
                return t
        return 52

    def resizeEvent(self, ev):
        super().resizeEvent(ev)
        self._refit()

    def _refit(self):
        n = self.grid.count()
        if n and self._fit(n) != self.grid.tile_px:
            self.grid.tile_px = self.grid.min_px = self._fit(n)
            self.grid._fit()
            self.grid.update()

    def clear(self):
        self.result = None
        self.side.hide()
        self.grid.set_tiles([])
        self.grid.set_captions([])
        self.bar.setRange(0, 1)
        self.bar.setValue(0)
        self.note.setText("Press Run: gradient ascent on the input, from seeded noise.")

    def choice(self):
        i = self.target.currentIndex()
        return self._choices[i][0] if 0 <= i < len(self._choices) else None

    def settings(self) -> dict:
        return {"layer": self.choice(), "steps": self.steps.value(), "l2": self.l2.value(),
                # classes see the whole image: a wider blur; a filter's patch is small
                "blur_sigma": (0.0 if not self.blur.isChecked() else
                               1.0 if self.choice() is None else 0.5),
                "jitter": self.jitter.value(), "seed": self.seed.value()}

    def set_running(self, on: bool):
        self.run_btn.setEnabled(not on)
        self.cancel_btn.setEnabled(on)

    def show_progress(self, step: int, total: int, images=None, box=None, names=None):
        self.bar.setRange(0, total)
        self.bar.setValue(step)
        if images is not None:
            self._show(images, None, names, box=box)

    def show_result(self, r, names, what: str):
        self.result = r
        self._names = names
        self.bar.setRange(0, max(r.steps, 1))
        self.bar.setValue(r.steps)
        self._show(r.images, r.units, names, r.final, r.box)
        if self.side.isVisible() and self.grid.selected is not None:
            self.show_unit(self.grid.selected)
        state = "cancelled after" if r.cancelled else "after"
        gain = float(np.mean(r.final - r.start))
        self.note.setText(f"{what}: {state} {r.steps} steps the mean "
                          f"{'logit' if r.layer is None else 'activation'} rose by {gain:.3g} "
                          f"(from {float(np.mean(r.start)):.3g}). "
                          + ("" if r.layer is None else
                             f"Each filter's centre neuron sees {r.box[1] - r.box[0]}×"
                             f"{r.box[3] - r.box[2]} input pixels: that part is shown. ")
                          + "Each image has its own contrast.")

    def show_unit(self, k: int):
        """Tile k of the latest result, enlarged, with its objective at every step."""
        r = self.result
        if r is None or k >= len(r.units):
            return
        u = r.units[k]
        what = f"class {self._names[u]}" if r.layer is None and self._names else \
            f"layer {r.layer}, filter {u}"
        self.detail.title.setText(what)
        self.detail.set_content(image_tiles(r.images[k:k + 1], r.box, size=220)[0],
                                f"{'logit' if r.layer is None else 'centre activation'}: "
                                f"{r.start[k]:.3g} → {r.final[k]:.3g}")
        self.trace_curve.setData(np.arange(1, len(r.trace) + 1), r.trace[:, k])
        self.side.show()
        QTimer.singleShot(0, self._refit)          # the grid has less room now

    def _show(self, images, units, names, final=None, box=None):
        units = list(units) if units is not None else list(range(len(images)))
        tile = self._fit(len(images))
        tips = [(f"class {names[u]}" if names else f"filter {u}") +
                (f": {final[k]:.3g}" if final is not None else "") for k, u in enumerate(units)]
        self.grid.set_tiles(image_tiles(images, box), tile_px=tile, tips=tips)
        self.grid.set_captions([names[u] if names else str(u) for u in units])
