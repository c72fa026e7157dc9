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
        self.action_button = QPushButton("")    # an optional fix, e.g. after divergence
        self.action_button.clicked.connect(self._run_action)
        self.action_button.hide()
        self._action = None
        self.close_button = QPushButton("Dismiss")
        self.close_button.clicked.connect(self.dismiss)
        lay.addWidget(self.label, 1)
        lay.addWidget(self.action_button)
        lay.addWidget(self.close_button)
        self.hide()

    def show_message(self, text, action_text=None, action=None):
        """Show `text`; with `action`, a button labelled `action_text` runs it and dismisses."""
        self.label.setText(text)
        self._action = action
        self.action_button.setText(action_text or "")
        self.action_button.setVisible(action is not None)
        self.show()

    def _run_action(self):
        action, self._action = self._action, None
        self.dismiss()
        if action is not None:
            action()

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
