"""Small reusable pieces: the non-modal error banner, About text, close prompt."""
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QMessageBox, QPushButton


class ErrorBanner(QFrame):
    """A dismissable, non-modal message strip (training diverged, bad setting, ...)."""

    dismissed = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("banner")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(10, 4, 6, 4)
        self.label = QLabel("")
        self.label.setObjectName("bannerText")
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.close_button = QPushButton("Dismiss")
        self.close_button.clicked.connect(self.dismiss)
        lay.addWidget(self.label, 1)
        lay.addWidget(self.close_button)
        self.hide()

    def show_message(self, text):
        self.label.setText(text)
        self.show()

    def text(self):
        return self.label.text() if self.isVisible() else ""

    def dismiss(self):
        self.hide()
        self.dismissed.emit()


def versions_text(backend_name="?", device="?"):
    import numba
    import numpy
    import pyqtgraph
    import PySide6

    import nnviz
    return (f"<h3>nnviz {nnviz.__version__}</h3>"
            "<p>Build, train and watch neural networks learn.</p>"
            f"<table><tr><td>numpy</td><td>{numpy.__version__}</td></tr>"
            f"<tr><td>numba</td><td>{numba.__version__}</td></tr>"
            f"<tr><td>PySide6</td><td>{PySide6.__version__}</td></tr>"
            f"<tr><td>pyqtgraph</td><td>{pyqtgraph.__version__}</td></tr>"
            f"<tr><td>backend</td><td>{backend_name}</td></tr>"
            f"<tr><td>device</td><td>{device}</td></tr></table>")


def ask_save_discard(parent, what):
    """Save / Discard / Cancel; returns the QMessageBox.StandardButton chosen."""
    return QMessageBox.question(
        parent, "Unsaved training",
        f"{what} has been trained but not saved.\nSave it before closing?",
        QMessageBox.Save | QMessageBox.Discard | QMessageBox.Cancel, QMessageBox.Save)
