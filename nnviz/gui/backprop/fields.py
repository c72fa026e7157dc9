"""Tables of numbers the user types into: valid text is applied, invalid text stays and is marked."""
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem

from ..numeric import parse_number

INVALID_BG = QColor("#fde2e1")


class NumberTable(QTableWidget):
    """Rows of cells; `editable` columns accept numbers. `edited(row, col, value)` on valid input."""

    edited = Signal(int, int, float)
    rejected = Signal(int, int, str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self._editable_cols = set()
        self._filling = False
        self.setEditTriggers(QAbstractItemView.DoubleClicked | QAbstractItemView.EditKeyPressed
                             | QAbstractItemView.AnyKeyPressed | QAbstractItemView.SelectedClicked)
        self.setSelectionMode(QAbstractItemView.SingleSelection)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.Stretch)
        # fixed row heights: ResizeToContents re-measured every row on each cell change
        self.verticalHeader().setSectionResizeMode(QHeaderView.Fixed)
        self.setAlternatingRowColors(True)
        self.itemChanged.connect(self._changed)

    def fill(self, headers, row_names, rows, editable_cols=()):
        """rows: lists of cell texts (already formatted)."""
        self._filling = True
        self._editable_cols = set(editable_cols)
        self.setColumnCount(len(headers))
        self.setHorizontalHeaderLabels(headers)
        self.setRowCount(len(rows))
        self.setVerticalHeaderLabels(row_names)
        self.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 6)
        for r, row in enumerate(rows):
            for c, text in enumerate(row):
                it = self.item(r, c)
                editable = c in self._editable_cols
                if it is None or bool(it.flags() & Qt.ItemIsEditable) != editable:
                    it = QTableWidgetItem()
                    it.setTextAlignment(Qt.AlignRight | Qt.AlignVCenter)
                    flags = Qt.ItemIsEnabled | Qt.ItemIsSelectable
                    if editable:
                        it.setFlags(flags | Qt.ItemIsEditable)
                        it.setToolTip("type a number")
                    else:
                        it.setFlags(flags)
                    self.setItem(r, c, it)
                if it.text() != text:
                    it.setText(text)
                if editable and it.background().color() == INVALID_BG:
                    it.setBackground(QColor("#ffffff"))
                    it.setToolTip("type a number")
        self._filling = False

    def texts(self, col):
        return [self.item(r, col).text() for r in range(self.rowCount())]

    def set_cell(self, row, col, text):
        """Type `text` into a cell as a user would (tests and scripts)."""
        self.item(row, col).setText(text)

    def _changed(self, it):
        if self._filling or it.column() not in self._editable_cols:
            return
        try:
            v = parse_number(it.text())
        except ValueError:
            self._filling = True
            it.setBackground(INVALID_BG)
            it.setToolTip(f"{it.text()!r} is not a number: not applied")
            self._filling = False
            self.rejected.emit(it.row(), it.column(), it.text())
            return
        self.edited.emit(it.row(), it.column(), v)
