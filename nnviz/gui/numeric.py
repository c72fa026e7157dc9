"""Number fields that behave the same everywhere in the app.

Typing never applies a half-typed value: a value is applied on Enter, on leaving the
field, on an arrow key or mouse wheel, or on picking a preset.  Text that is not a
valid number (or is out of range) turns the field red, says why in its tooltip and is
not applied; leaving the field puts the last valid value back.
"""
from __future__ import annotations

import math

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QValidator
from PySide6.QtWidgets import QComboBox, QDoubleSpinBox, QSpinBox


def parse_number(text: str) -> float:
    """'2.5', ' 2,5 ', '1e-3', '−0.1' -> float; ValueError for anything else."""
    t = str(text).strip().replace("\u2212", "-").replace(",", ".")
    v = float(t)
    if not math.isfinite(v):
        raise ValueError(f"{text!r} is not a finite number")
    return v


def _mark(widget, invalid: bool, why: str = "") -> None:
    if bool(widget.property("invalid")) != invalid:
        widget.setProperty("invalid", invalid)
        widget.style().unpolish(widget)
        widget.style().polish(widget)
    widget.setToolTip(why if invalid else getattr(widget, "_tip", ""))


class _SpinMixin:
    """Apply on commit only; show invalid text in red instead of swallowing it."""

    def _init_field(self):
        self.setKeyboardTracking(False)        # valueChanged on Enter / focus out / arrows
        self.setCorrectionMode(QSpinBox.CorrectToPreviousValue)
        self.lineEdit().textEdited.connect(self._check)
        self.editingFinished.connect(lambda: _mark(self, False))

    def setToolTip(self, tip):
        if not self.property("invalid"):
            self._tip = tip
        super().setToolTip(tip)

    def _check(self, text):
        state = self.validate(text, 0)[0]
        ok = state == QValidator.Acceptable
        _mark(self, not ok, "" if ok else
              f"{text!r} is not a number from {self.minimum():g} to {self.maximum():g}")

    def is_invalid(self) -> bool:
        return bool(self.property("invalid"))


class NumberSpin(_SpinMixin, QSpinBox):
    def __init__(self, parent=None):
        super().__init__(parent)
        self._tip = ""
        self._init_field()


class NumberDoubleSpin(_SpinMixin, QDoubleSpinBox):
    def __init__(self, parent=None):
        super().__init__(parent)
        self._tip = ""
        self._init_field()

    def validate(self, text, pos):
        # accept "2,5" and "1e-3" as well as what the locale would
        try:
            v = parse_number(text.replace(self.suffix(), "").replace(self.prefix(), ""))
        except ValueError:
            return super().validate(text, pos)
        ok = self.minimum() <= v <= self.maximum()
        return (QValidator.Acceptable if ok else QValidator.Intermediate), text, pos

    def valueFromText(self, text):
        try:
            return parse_number(text.replace(self.suffix(), "").replace(self.prefix(), ""))
        except ValueError:
            return super().valueFromText(text)


class NumberCombo(QComboBox):
    """An editable combo box of presets that also takes any typed number in range.

    ``valueChanged(float)`` fires once per applied value.  Typed values are never added
    to the drop-down; arrow keys move to the neighbouring preset.
    """

    valueChanged = Signal(float)

    def __init__(self, presets, value, lo=0.0, hi=math.inf, parent=None, what="value"):
        super().__init__(parent)
        self.lo, self.hi, self.what = float(lo), float(hi), what
        self._tip = ""
        self.setEditable(True)
        self.setInsertPolicy(QComboBox.NoInsert)
        self.addItems([str(p) for p in presets])
        self._value = float(value)
        self._show(self._value)
        self.lineEdit().textEdited.connect(self._check)
        self.lineEdit().returnPressed.connect(self.commit)
        self.lineEdit().editingFinished.connect(self._finish)
        self.activated.connect(lambda i: self.commit(self.itemText(i)))

    def value(self) -> float:
        return self._value

    def setToolTip(self, tip):
        self._tip = tip
        super().setToolTip(tip)

    def is_invalid(self) -> bool:
        return bool(self.property("invalid"))

    def _parse(self, text):
        try:
            v = parse_number(text)
        except ValueError:
            return None, f"{text!r} is not a number"
        above_lo = v > self.lo if self.lo == 0 else v >= self.lo
        if not (above_lo and v <= self.hi):
            lo = f"above {self.lo:g}" if self.lo == 0 else f"from {self.lo:g}"
            return None, f"the {self.what} must be {lo} up to {self.hi:g}, not {v:g}"
        return v, ""

    def _check(self, text):
        v, why = self._parse(text)
        _mark(self, v is None, why)

    def _show(self, v):
        i = self.findText(f"{v:g}")
        self.blockSignals(True)
        if i >= 0:
            self.setCurrentIndex(i)
        self.setEditText(f"{v:g}")
        self.blockSignals(False)

    def setValue(self, v, emit=False):
        v = float(v)
        changed = v != self._value
        self._value = v
        self._show(v)
        _mark(self, False)
        if emit and changed:
            self.valueChanged.emit(v)

    def commit(self, text=None):
        """Apply the typed (or given) text when it is valid; True when applied."""
        text = self.currentText() if text is None or not isinstance(text, str) else text
        v, why = self._parse(text)
        if v is None:
            _mark(self, True, why)
            return False
        self.setValue(v, emit=True)
        return True

    def _finish(self):
        if self.lineEdit().hasFocus():    # Enter: commit() already ran; keep showing the text
            return
        if self.is_invalid():         # leaving with invalid text: show the value in use
            self._show(self._value)
            _mark(self, False)
        else:
            self.commit()

    def keyPressEvent(self, ev):
        if ev.key() in (Qt.Key_Up, Qt.Key_Down):
            self.step_preset(1 if ev.key() == Qt.Key_Up else -1)
            ev.accept()
            return
        super().keyPressEvent(ev)

    def wheelEvent(self, ev):
        if self.hasFocus():
            self.step_preset(1 if ev.angleDelta().y() > 0 else -1)
        ev.accept()

    def step_preset(self, direction):
        """Move to the next larger (+1) or smaller (-1) preset and apply it."""
        vals = sorted(float(self.itemText(i)) for i in range(self.count()))
        cur = self._value
        if direction > 0:
            nxt = next((v for v in vals if v > cur * (1 + 1e-9)), None)
        else:
            nxt = next((v for v in reversed(vals) if v < cur * (1 - 1e-9)), None)
        if nxt is not None:
            self.setValue(nxt, emit=True)
