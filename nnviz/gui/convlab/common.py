"""Shared pieces of the convolution lab: the worked examples, cell colours, small widgets."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSpinBox

# the worked examples live with the arithmetic (Qt-free), so lessons and tests share them
from nnviz.engine.convmath import KERNEL_PRESETS, POOL_INPUT, WORKED_INPUT  # noqa: F401

from ..numeric import NumberSpin
from ..style import ui_font

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


def control_row(pairs) -> QHBoxLayout:
    """A row of controls, each after its label: [(text or None, widget), ...]."""
    bar = QHBoxLayout()
    for text, w in pairs:
        if text:
            bar.addWidget(label(text))
        bar.addWidget(w)
    bar.addStretch(1)
    return bar


def boxed(points=14) -> QLabel:
    """The written-out arithmetic of the current step, on a light panel."""
    lab = label("", points, wrap=True)
    lab.setStyleSheet("QLabel { background: #f4f7fb; border: 1px solid #c9d3e0; padding: 6px; }")
    return lab


def warning_box() -> QLabel:
    """An amber warning line, hidden until it has something to say."""
    lab = label("", 12, wrap=True)
    lab.setStyleSheet("QLabel { color: #8a3b00; background: #fff1d6; "
                      "border: 1px solid #e0a040; padding: 5px; }")
    lab.hide()
    return lab
