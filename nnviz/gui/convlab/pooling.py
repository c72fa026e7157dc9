"""The pooling panel: max or average pooling of a small grid, one window at a time."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QGroupBox, QHBoxLayout, QPushButton, QVBoxLayout

from nnviz.engine import convmath as cm

from .common import CELL, POOL_INPUT, WINDOW, label, spin
from .grid import GridView


class PoolingPanel(QGroupBox):
    """`conv_input` / `conv_output`: callables giving the convolution panel's grids."""

    def __init__(self, conv_input, conv_output, parent=None):
        super().__init__("Pooling (engine MaxPool2D / AvgPool2D)", parent)
        self._conv_input, self._conv_output = conv_input, conv_output
        self._out = None
        self._cell = (0, 0)
        self._note = ""
        lay = QVBoxLayout(self)
        row = QHBoxLayout()
        self.pool_mode = QComboBox()
        self.pool_mode.addItems(["max", "average"])
        self.pool_size = spin(1, 4, 2, "pooling window size")
        self.pool_stride = spin(1, 4, 2, "pooling stride")
        for w in (self.pool_mode, label("size"), self.pool_size, label("stride"),
                  self.pool_stride):
            row.addWidget(w)
        row.addStretch(1)
        lay.addLayout(row)
        self.from_input = QPushButton("Use conv input")
        self.from_output = QPushButton("Use conv output")
        self.example = QPushButton("Example")
        grids = QHBoxLayout()
        self.pool_grid = GridView(editable=True, max_px=200, min_cell=30, max_cell=40)
        self.pool_output_grid = GridView(editable=False, max_px=120, min_cell=34, max_cell=40)
        self.pool_output_grid.setToolTip("Click a cell to see its window")
        out_col = QVBoxLayout()
        out_col.addWidget(self.pool_output_grid)
        out_col.addStretch(1)
        buttons = QVBoxLayout()
        for b in (self.from_input, self.from_output, self.example):
            buttons.addWidget(b)
        buttons.addStretch(1)
        grids.addWidget(self.pool_grid, 0, Qt.AlignTop)
        grids.addWidget(label("\u2192", 18), 0, Qt.AlignTop)
        grids.addLayout(out_col)
        grids.addStretch(1)
        grids.addLayout(buttons)
        lay.addLayout(grids)
        self.pool_label = label("", 13, wrap=True)
        lay.addWidget(self.pool_label)
        lay.addStretch(1)
        self.pool_mode.currentIndexChanged.connect(self.recompute)
        self.pool_size.valueChanged.connect(self.recompute)
        self.pool_stride.valueChanged.connect(self.recompute)
        self.pool_grid.edited.connect(lambda *_: self.recompute())
        self.pool_output_grid.cellClicked.connect(self._clicked)
        self.from_input.clicked.connect(lambda: self.set_source(self._conv_input()))
        self.from_output.clicked.connect(lambda: self.set_source(self._conv_output()))
        self.example.clicked.connect(lambda: self.set_source(POOL_INPUT))
        self.set_source(POOL_INPUT)

    def set_source(self, grid):
        if grid is None:
            return False
        grid = np.asarray(grid, dtype=np.float64)
        if grid.ndim == 2 and grid.size:
            self.pool_grid.set_grid(grid)
            self.recompute()
        return True

    def values(self):
        return None if self._out is None else self._out.copy()

    def _mode(self):
        return "max" if self.pool_mode.currentText() == "max" else "avg"

    def recompute(self, *_):
        x = self.pool_grid.values
        k, s = self.pool_size.value(), self.pool_stride.value()
        value, floor, fits, unused = cm.output_size(x.shape[0], k, 0, s)
        try:
            self._out = cm.pool2d(x, k, s, self._mode())
        except (cm.LayerError, ValueError) as e:
            self._out = None
            self.pool_output_grid.set_grid(np.zeros((0, 0)))
            self.pool_grid.set_grid(x)
            self.pool_label.setText(str(e))
            return
        self.pool_grid.set_grid(x, unused=unused)
        self.pool_output_grid.set_grid(self._out)
        r, c = self._cell
        if r >= self._out.shape[0] or c >= self._out.shape[1]:
            self._cell = (0, 0)
        self._note = ("" if fits else
                      f"\n\u26a0 Stride {s} does not fit ({cm.format_number(value)}): the "
                      f"engine floors to {floor} and ignores the last {unused} "
                      f"row(s)/column(s) (hatched).")
        self._show_cell()

    def _clicked(self, r, c):
        self._cell = (r, c)
        self._show_cell()

    def _show_cell(self):
        if self._out is None:
            return
        r, c = self._cell
        k, s = self.pool_size.value(), self.pool_stride.value()
        self.pool_grid.set_frame(r * s, c * s, k, k, WINDOW)
        self.pool_output_grid.set_frame(r, c, 1, 1, CELL)
        vals = ", ".join(cm.format_number(v)
                         for v in cm.pool_window(self.pool_grid.values, k, s, r, c))
        fn = "max" if self._mode() == "max" else "mean"
        self.pool_label.setText(f"[{r}, {c}] = {fn}({vals}) = "
                                f"{cm.format_number(self._out[r, c])}" + self._note)
