"""GridView: a grid of large editable numbers, the convolution lab's main picture."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetrics, QPainter, QPen
from PySide6.QtWidgets import QAbstractItemView, QSizePolicy, QTableWidget, QTableWidgetItem

from nnviz.engine import convmath as cm

from ..numeric import parse_number
from ..style import px, ui_font
from .common import WINDOW

_POS = QColor(60, 120, 215)
_NEG = QColor(215, 75, 55)
_PAD_BG = QColor(222, 222, 222)
_PAD_FG = QColor(110, 110, 110)


def _tint(v, vmax):
    """White to blue for positive, white to red for negative values."""
    if vmax <= 0 or v == 0 or not np.isfinite(v):
        return QColor(255, 255, 255)
    t = 0.12 + 0.55 * min(1.0, abs(v) / vmax)
    base = _POS if v > 0 else _NEG
    return QColor(round(255 + (base.red() - 255) * t), round(255 + (base.green() - 255) * t),
                  round(255 + (base.blue() - 255) * t))


class GridView(QTableWidget):
    """A grid of large numbers: sign colours, padded cells, window frame, hatched unused cells.

    `values` are the grid without padding; `pad` rows/columns of zeros are drawn
    around them in grey and cannot be edited. ``edited`` gives the unpadded
    (row, col) of a user edit and its value. `crop` greys the outer `crop` rows and
    columns of `values` themselves (a transposed convolution's output that its padding
    cuts off): they keep their numbers.
    """

    edited = Signal(int, int, float)
    rejected = Signal(str)          # invalid text typed into a cell (the old value stays)

    def __init__(self, editable=False, parent=None, max_px=460, min_cell=30, max_cell=46):
        super().__init__(parent)
        self.editable = editable
        self.values = np.zeros((0, 0))
        self.pad = 0
        self.unused = 0
        self.crop = 0
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
    def set_grid(self, values, pad=0, unused=0, crop=0):
        values = np.asarray(values, dtype=np.float64)
        if values.ndim != 2:
            values = np.zeros((0, 0))
        self.values, self.pad, self.unused, self.crop = values.copy(), int(pad), int(unused), int(crop)
        kept = self.pad + self.crop
        rows, cols = values.shape[0] + 2 * self.pad, values.shape[1] + 2 * self.pad
        n = max(rows, cols, 1)
        cs = int(px(max(self.min_cell, min(self.max_cell, self.max_px // n))))
        font = ui_font(13 if cs >= 40 else 12)
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
                inner = (kept <= r < rows - kept) and (kept <= c < cols - kept)
                inside = (self.pad <= r < rows - self.pad) and (self.pad <= c < cols - self.pad)
                v = values[r - self.pad, c - self.pad] if inside else 0.0
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
                    it.setToolTip("cropped: the padding P cuts this row/column off" if inside
                                  else "padding: a zero added around the input")
                it.setFlags(flags)
                self.setItem(r, c, it)
        for c in range(cols):
            self.setColumnWidth(c, cw)
        self.blockSignals(False)
        fw = 2 * self.frameWidth()
        self.setFixedSize(cols * cw + fw + 1, rows * cs + fw + 1)
        self.viewport().update()

    def apply_scale(self):
        """Presentation mode changed: cells and numbers follow the new scale."""
        self.set_grid(self.values, self.pad, self.unused, self.crop)

    def texts(self):
        """The displayed text of every cell (padded), as a list of rows."""
        return [[self.item(r, c).text() for c in range(self.columnCount())]
                for r in range(self.rowCount())]

    def set_frame(self, r0, c0, h, w, colour=WINDOW):
        self.frame = (int(r0), int(c0), int(h), int(w), QColor(colour))
        self.viewport().update()

    def clear_frame(self):
        self.frame = None
        self.viewport().update()

    def _item_changed(self, it):
        r, c = it.row() - self.pad, it.column() - self.pad
        if not (0 <= r < self.values.shape[0] and 0 <= c < self.values.shape[1]):
            return
        typed = it.text()
        try:
            v = parse_number(typed)
        except ValueError:
            old = cm.format_number(self.values[r, c])
            self.blockSignals(True)
            it.setText(old)
            self.blockSignals(False)
            self.rejected.emit(f"{typed!r} is not a number: cell [{r}, {c}] keeps {old}")
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
                p.setPen(QPen(colour, px(4)))
                p.drawRect(self._rect(r0, c0, h, w).adjusted(2, 2, -2, -2))
        p.end()
