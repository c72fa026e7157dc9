"""The mistakes gallery: every test image the model gets wrong, most confident first,
each with "true→predicted" and the confidence; click one to explain it."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QLabel, QScrollArea, QVBoxLayout, QWidget

from .explain_widgets import CaptionedTiles, prob_text

MAX_SHOWN = 240            # thumbnails painted; the count above says how many there are


class MistakesView(QWidget):
    picked = Signal(int, int)       # test index, predicted class

    def __init__(self, parent=None):
        super().__init__(parent)
        self.header = QLabel("Mistakes on the test set appear here while you train.")
        self.header.setWordWrap(True)
        self.grid = CaptionedTiles(tile_px=90, fill_cols=2, max_px=140)
        self.grid.tileClicked.connect(self._clicked)
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        holder = QWidget()
        hl = QVBoxLayout(holder)
        hl.setContentsMargins(0, 0, 0, 0)
        hl.addWidget(self.grid)
        hl.addStretch(1)
        self.scroll.setWidget(holder)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addWidget(self.header)
        lay.addWidget(self.scroll, 1)
        self.result = None
        self._shown = np.zeros(0, np.int64)

    def set_mistakes(self, m, thumbs, class_names, epoch_note: str = ""):
        """m: nnviz.explain.Mistakes; thumbs(i) -> a display image of test image i."""
        self.result = m
        idx = m.index[:MAX_SHOWN]
        self._shown = idx
        names = list(class_names)

        def nm(c):
            return names[c] if c < len(names) else str(c)
        more = f" (showing the first {len(idx)})" if len(m) > len(idx) else ""
        self.header.setText(
            f"<b>{len(m)} of {m.n_total} test images wrong</b> ({m.accuracy:.1%} right){more}; "
            f"most confident first{epoch_note}. Click one to explain it.")
        caps = [f"true {nm(t)}\n{prob_text(c)} said {nm(p)}"    # long names: the end is elided
                for t, p, c in zip(m.true[:len(idx)], m.pred[:len(idx)],
                                   m.confidence[:len(idx)])]
        tips = [f"test #{i}: true {nm(t)}, predicted {nm(p)} with p = {c:.3f} "
                f"(true class p = {q:.3f})"
                for i, t, p, c, q in zip(idx, m.true, m.pred, m.confidence, m.true_prob)]
        # dark red for confident mistakes, orange for unsure ones
        cols = [(150, 20, 20) if c >= 0.9 else (200, 90, 20) if c >= 0.6 else (110, 110, 110)
                for c in m.confidence[:len(idx)]]
        self.grid.set_tiles([thumbs(int(i)) for i in idx], tips=tips)
        self.grid.set_captions(caps, cols)

    def clear(self, text="Mistakes on the test set appear here while you train."):
        self.result = None
        self._shown = np.zeros(0, np.int64)
        self.grid.set_tiles([])
        self.grid.set_captions([])
        self.header.setText(text)

    def shown(self) -> list[int]:
        return [int(i) for i in self._shown]

    def _clicked(self, i):
        if self.result is not None and i < len(self._shown):
            self.picked.emit(int(self._shown[i]), int(self.result.pred[i]))
