"""Shared pieces of the convolution lab: the worked examples, cell colours, small widgets."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QLabel, QSpinBox

from ..numeric import NumberSpin
from ..style import ui_font

WORKED_INPUT = np.array([[3, 0, 1, 2, 7, 4],
                         [1, 5, 8, 9, 3, 1],
                         [2, 7, 2, 5, 1, 3],
                         [0, 1, 3, 1, 7, 8],
                         [4, 2, 1, 6, 2, 8],
                         [2, 4, 5, 2, 3, 9]], dtype=np.float64)
POOL_INPUT = np.array([[1, 3, 2, 1],
                       [2, 9, 1, 1],
                       [1, 3, 2, 3],
                       [5, 6, 1, 2]], dtype=np.float64)

KERNEL_PRESETS = {
    "vertical edge": [[1, 0, -1], [1, 0, -1], [1, 0, -1]],
    "horizontal edge": [[1, 1, 1], [0, 0, 0], [-1, -1, -1]],
    "Sobel vertical": [[1, 0, -1], [2, 0, -2], [1, 0, -1]],
    "Sobel horizontal": [[1, 2, 1], [0, 0, 0], [-1, -2, -1]],
    "identity": [[0, 0, 0], [0, 1, 0], [0, 0, 0]],
    "box blur": [[1 / 9] * 3] * 3,
    "sharpen": [[0, -1, 0], [-1, 5, -1], [0, -1, 0]],
}
CUSTOM = "custom"

WINDOW = QColor(230, 120, 0)     # the sliding window's frame
CELL = QColor(0, 140, 90)        # the output cell it writes


def spin(lo, hi, value, tip="", suffix="") -> QSpinBox:
    s = NumberSpin()
    s.setRange(lo, hi)
    s.setValue(value)
    if tip:
        s.setToolTip(tip)
    if suffix:
        s.setSuffix(suffix)
    return s


def label(text="", points=12, bold=False, wrap=False) -> QLabel:
    lab = QLabel(text)
    lab.setFont(ui_font(points, bold))
    lab.setWordWrap(wrap)
    lab.setTextInteractionFlags(Qt.TextSelectableByMouse)
    return lab


def caption(text) -> QLabel:
    return label(text, 12, bold=True)
