"""A layout that wraps its widgets onto more lines when the window is narrow (Qt's flow layout
example): the lab's controls fit 1024 px wide also with presentation-size text."""
from PySide6.QtCore import QPoint, QRect, QSize, Qt
from PySide6.QtWidgets import QHBoxLayout, QLayout, QWidget


class FlowLayout(QLayout):
    def __init__(self, parent=None, spacing=6):
        super().__init__(parent)
        self._items = []
        self.setSpacing(spacing)
        self.setContentsMargins(0, 0, 0, 0)

    def addItem(self, item):
        self._items.append(item)

    def count(self):
        return len(self._items)

    def itemAt(self, i):
        return self._items[i] if 0 <= i < len(self._items) else None

    def takeAt(self, i):
        return self._items.pop(i) if 0 <= i < len(self._items) else None

    def expandingDirections(self):
        return Qt.Orientation(0)

    def hasHeightForWidth(self):
        return True

    def heightForWidth(self, width):
        return self._place(QRect(0, 0, width, 0), move=False)

    def setGeometry(self, rect):
        super().setGeometry(rect)
        self._place(rect, move=True)

    def sizeHint(self):
        return self.minimumSize()

    def minimumSize(self):
        size = QSize()
        for it in self._items:
            size = size.expandedTo(it.minimumSize())
        m = self.contentsMargins()
        return size + QSize(m.left() + m.right(), m.top() + m.bottom())

    def _place(self, rect, move):
        """Lay items out in lines, each item centred vertically in its line; returns the height."""
        gap = self.spacing()
        lines, line, x = [], [], rect.x()
        for it in self._items:
            w = it.sizeHint().width()
            if line and x + w > rect.right() + 1:
                lines.append(line)
                line, x = [], rect.x()
            line.append(it)
            x += w + gap
        if line:
            lines.append(line)
        y = rect.y()
        for line in lines:
            h = max(it.sizeHint().height() for it in line)
            x = rect.x()
            for it in line:
                hint = it.sizeHint()
                if move:
                    it.setGeometry(QRect(QPoint(x, y + (h - hint.height()) // 2), hint))
                x += hint.width() + gap
            y += h + gap
        return max(0, y - gap - rect.y())


def group(*widgets):
    """Widgets kept together on one line of a FlowLayout (a label and its field)."""
    w = QWidget()
    row = QHBoxLayout(w)
    row.setContentsMargins(0, 0, 0, 0)
    row.setSpacing(4)
    for x in widgets:
        row.addWidget(x)
    return w
