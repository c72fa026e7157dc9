"""StepBar: Back / Step / Play / Reset over a numbered list of positions (a panel's stepper)."""
from __future__ import annotations

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import QHBoxLayout, QPushButton, QWidget


class StepBar(QWidget):
    """``moved(pos)`` after every change of position; ``used`` when a button is pressed
    (the workspace then sends PageDown / Space to this panel)."""

    moved = Signal(int)
    used = Signal()

    def __init__(self, interval_ms=650, parent=None):
        super().__init__(parent)
        self.count, self.pos = 0, 0
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._tick)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.back_button = QPushButton("\u25c0 Back")
        self.step_button = QPushButton("Step \u25b6")
        self.play_button = QPushButton("Play")
        self.reset_button = QPushButton("Reset")
        for b, fn in ((self.back_button, self.back), (self.step_button, self.step),
                      (self.play_button, self.start_pause), (self.reset_button, self.reset)):
            b.clicked.connect(self.used.emit)
            b.clicked.connect(fn)
            lay.addWidget(b)
        lay.addStretch(1)

    def set_count(self, count, pos=0):
        self.count = max(0, int(count))
        for b in (self.back_button, self.step_button, self.play_button):
            b.setEnabled(self.count > 0)
        self.go(pos)

    def go(self, pos):
        self.pos = min(max(0, int(pos)), max(0, self.count - 1))
        self.moved.emit(self.pos)

    def step(self):
        if self.count:
            self.go((self.pos + 1) % self.count)

    def back(self):
        if self.count:
            self.go((self.pos - 1) % self.count)

    def _tick(self):
        if self.pos + 1 >= self.count:
            self.stop()
        else:
            self.step()

    def is_playing(self):
        return self._timer.isActive()

    def start_pause(self):
        if self._timer.isActive() or not self.count:
            self.stop()
            return
        if self.pos + 1 >= self.count:
            self.go(0)
        self._timer.start()
        self.play_button.setText("Pause")

    def stop(self):
        self._timer.stop()
        self.play_button.setText("Play")

    def reset(self):
        self.stop()
        self.go(0)


class Stepped:
    """A panel with a StepBar ``self.steps``: the workspace's Step / Back / Play / Reset."""

    steps: StepBar

    def step(self):
        self.steps.step()

    def back(self):
        self.steps.back()

    def is_playing(self):
        return self.steps.is_playing()

    def start_pause(self):
        self.steps.start_pause()

    def stop(self):
        self.steps.stop()

    def reset(self):
        self.steps.reset()
