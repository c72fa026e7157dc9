"""View > Show as code: the PyTorch and Keras source of the current network, copyable."""
from __future__ import annotations

from PySide6.QtGui import QFontDatabase, QGuiApplication
from PySide6.QtWidgets import QDialog, QHBoxLayout, QPlainTextEdit, QPushButton, QTabWidget, QVBoxLayout

from nnviz.engine.codegen import keras_code, pytorch_code


class CodeDialog(QDialog):
    """Two tabs of read-only, selectable code and a Copy button for the tab shown."""

    def __init__(self, model, parent=None):
        super().__init__(parent)
        self.setWindowTitle(f"{model.name} as code")
        lay = QVBoxLayout(self)
        self.tabs = QTabWidget()
        self.texts = {}
        mono = QFontDatabase.systemFont(QFontDatabase.FixedFont)
        for name, make in (("PyTorch", pytorch_code), ("Keras", keras_code)):
            try:
                code = make(model)
            except ValueError as e:      # a layer the framework has no equivalent for
                code = f"# {e}"
            box = QPlainTextEdit(code)
            box.setReadOnly(True)
            box.setFont(mono)
            self.texts[name] = box
            self.tabs.addTab(box, name)
        lay.addWidget(self.tabs)
        row = QHBoxLayout()
        copy = QPushButton("Copy")
        copy.clicked.connect(self.copy)
        close = QPushButton("Close")
        close.clicked.connect(self.accept)
        row.addStretch(1)
        row.addWidget(copy)
        row.addWidget(close)
        lay.addLayout(row)
        self.resize(640, 520)

    def code(self, name: str) -> str:
        return self.texts[name].toPlainText()

    def copy(self) -> None:
        QGuiApplication.clipboard().setText(self.code(self.tabs.tabText(self.tabs.currentIndex())))
