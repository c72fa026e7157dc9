"""Small widgets of the explanation views: a titled picture with a colour-bar legend, a
thumbnail grid with a caption on each tile, and PNG export."""
from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPen, QPixmap
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMenu,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from ..style import FONT_PT, np_to_qimage, ui_font
from .views import TileGrid


def export_widget(widget: QWidget, path: str | None = None, name: str = "nnviz.png") -> bool:
    """Save what the widget shows as a PNG (asks for a path when none is given)."""
    if path is None:
        path, _ = QFileDialog.getSaveFileName(widget, "Export as PNG", name, "PNG images (*.png)")
        if not path:
            return False
    return bool(widget.grab().save(path, "PNG"))


class Picture(QWidget):
    """An RGB picture scaled to fit, keeping its aspect (smooth: it is already enlarged)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self._img = None
        self.setMinimumSize(110, 110)
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Expanding)

    def set_image(self, a):
        self._img = None if a is None else np_to_qimage(a)
        self.update()

    def paintEvent(self, ev):
        p = QPainter(self)
        if self._img is None:
            p.setPen(QColor(120, 120, 120))
            p.drawText(self.rect(), Qt.AlignCenter, "…")
        else:
            p.setRenderHint(QPainter.SmoothPixmapTransform, True)
            s = min(self.width() / self._img.width(), self.height() / self._img.height())
            w, h = self._img.width() * s, self._img.height() * s
            p.drawImage(QRectF((self.width() - w) / 2, (self.height() - h) / 2, w, h), self._img)
        p.end()


class ExplainTile(QWidget):
    """A header (title, optional controls), the picture, a colour bar between its two end
    labels and a two-line caption; every tile has the same layout, so pictures in a grid
    come out the same size.  Right-click: export this tile as PNG."""

    def __init__(self, title: str, controls: QWidget | None = None, parent=None):
        super().__init__(parent)
        self.title = QLabel(title)
        self.title.setFont(ui_font(FONT_PT + 1, bold=True))
        head = QHBoxLayout()
        head.setContentsMargins(0, 0, 0, 0)
        head.addWidget(self.title)
        head.addStretch(1)
        if controls is not None:
            head.addWidget(controls)
        header = QWidget()
        header.setLayout(head)
        self.picture = Picture()
        self.bar = QLabel()
        self.lo = QLabel("")
        self.hi = QLabel("")
        self.lo.setAlignment(Qt.AlignRight | Qt.AlignVCenter)
        bar_row = QHBoxLayout()
        bar_row.setContentsMargins(0, 0, 0, 0)
        bar_row.addWidget(self.lo, 1)
        bar_row.addWidget(self.bar)
        bar_row.addWidget(self.hi, 1)
        self.bar_box = QWidget()
        self.bar_box.setLayout(bar_row)
        self.caption = QLabel("")
        self.caption.setWordWrap(True)
        self.caption.setAlignment(Qt.AlignHCenter | Qt.AlignTop)
        self.header = header
        lay = QVBoxLayout(self)
        lay.setContentsMargins(3, 3, 3, 3)
        lay.setSpacing(2)
        lay.addWidget(header)
        lay.addWidget(self.picture, 1)
        lay.addWidget(self.bar_box)
        lay.addWidget(self.caption)
        self.setContextMenuPolicy(Qt.CustomContextMenu)
        self.customContextMenuRequested.connect(self._menu)
        self.apply_scale()

    def apply_scale(self):
        """Fixed heights follow the font (presentation mode calls this on rescale)."""
        self.title.setFont(ui_font(FONT_PT + 1, bold=True))
        for lab in (self.lo, self.hi):
            lab.setFont(ui_font(FONT_PT - 1))
        h = self.caption.fontMetrics().height()
        self.bar_box.setFixedHeight(max(self.lo.fontMetrics().height(), 12) + 4)
        self.caption.setFixedHeight(2 * h + 4)
        self.header.setFixedHeight(max(self.header.sizeHint().height(), h + 12))

    def set_content(self, image, caption: str = "", bar=None, bar_labels=("", "")):
        self.picture.set_image(image)
        self.caption.setText(caption)
        self.caption.setToolTip(caption)
        if bar is None:
            self.bar.clear()
            self.lo.setText("")
            self.hi.setText("")
        else:
            self.bar.setPixmap(QPixmap.fromImage(np_to_qimage(bar)))
            self.lo.setText(bar_labels[0])
            self.hi.setText(bar_labels[1])

    def _menu(self, pos):
        m = QMenu(self)
        act = m.addAction("Export this picture as PNG…")
        if m.exec(self.mapToGlobal(pos)) is act:
            export_widget(self, name=self.title.text().split(":")[0].strip().lower()
                          .replace(" ", "-") + ".png")


class Cell(QWidget):
    """Holds one widget with a small, fixed size hint: a grid of cells with equal
    stretch then gives every cell the same size, whatever its content asks for."""

    def __init__(self, widget: QWidget, parent=None):
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(widget)
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Expanding)

    def sizeHint(self):
        return QSize(220, 220)

    def minimumSizeHint(self):
        return QSize(140, 150)

    def hasHeightForWidth(self):
        # word-wrapped captions inside would make the grid share height unevenly
        return False


class CaptionedTiles(TileGrid):
    """A TileGrid with a short caption painted on each tile (e.g. "7→2  97%")."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self._captions: list[str] = []
        self._colours: list = []

    def set_captions(self, captions, colours=None):
        self._captions = list(captions)
        self._colours = list(colours) if colours else []
        self.update()

    def paintEvent(self, ev):
        super().paintEvent(ev)
        if not self._captions:
            return
        p = QPainter(self)
        f = ui_font(max(8, FONT_PT - 2), bold=True)
        p.setFont(f)
        fm = p.fontMetrics()
        for i, text in enumerate(self._captions[:self.count()]):
            r = self.tile_rect(i)
            lines = text.count("\n") + 1
            band = QRectF(r.x(), r.bottom() - lines * fm.height() - 2, r.width(),
                          lines * fm.height() + 2)
            col = self._colours[i] if i < len(self._colours) else (30, 30, 30)
            p.fillRect(band, QColor(*col, 200))
            p.setPen(QPen(QColor(255, 255, 255)))
            text = "\n".join(fm.elidedText(line, Qt.ElideRight, int(r.width()) - 4)
                             for line in text.split("\n"))
            p.drawText(band, Qt.AlignCenter, text)
        p.end()


def prob_text(p: float) -> str:
    return f"{p:.0%}" if p >= 0.01 else f"{p:.1%}"

