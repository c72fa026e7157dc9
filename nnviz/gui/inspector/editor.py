"""Layer-list editor and live architecture table (shapes, arithmetic, parameters, RF)."""
from __future__ import annotations

import copy
import json

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from nnviz.engine import adapt_spec

from ..numeric import NumberDoubleSpin, NumberSpin
from ..style import FONT_PT, ui_font
from .arch import FIELDS, LAYER_KINDS, analyze, get_field, set_field

COLUMNS = ["#", "layer", "output H×W×C", "(N − F + 2P)/S + 1", "parameters", "receptive field",
           "notes"]


class ArchitectureEditor(QWidget):
    """Edits a list of layer configs; emits specChanged(spec, ok) after every edit."""
    specChanged = Signal(dict, bool)

    def __init__(self, parent=None):
        super().__init__(parent)
        self._spec = {"name": "model", "input_shape": [1, 28, 28], "layers": []}
        self._num_classes = None
        self.result = None
        self._updating = False

        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.setWordWrap(False)
        hh = self.table.horizontalHeader()
        for i in range(len(COLUMNS) - 1):
            hh.setSectionResizeMode(i, QHeaderView.ResizeToContents)
        hh.setSectionResizeMode(len(COLUMNS) - 1, QHeaderView.Stretch)
        self.table.itemSelectionChanged.connect(self._on_select)

        self.message = QLabel("")
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.total = QLabel("")
        self.total.setFont(ui_font(FONT_PT + 1, bold=True))

        # list operations
        self.add_kind = QComboBox()
        self.add_kind.addItems(list(LAYER_KINDS))
        self.add_btn = QPushButton("Add after selected")
        self.remove_btn = QPushButton("Remove")
        self.up_btn = QPushButton("Move up")
        self.down_btn = QPushButton("Move down")
        self.add_btn.clicked.connect(lambda: self.add_layer(self.add_kind.currentText()))
        self.remove_btn.clicked.connect(lambda: self.remove_layer(self.selected_row()))
        self.up_btn.clicked.connect(lambda: self.move_layer(self.selected_row(), -1))
        self.down_btn.clicked.connect(lambda: self.move_layer(self.selected_row(), +1))
        ops = QHBoxLayout()
        for w in (QLabel("Layer:"), self.add_kind, self.add_btn, self.remove_btn, self.up_btn,
                  self.down_btn):
            ops.addWidget(w)
        ops.addStretch(1)

        # edit form for the selected layer
        self.form_box = QGroupBox("Selected layer")
        form = QFormLayout(self.form_box)
        self.type_combo = QComboBox()
        self.type_combo.addItems(list(LAYER_KINDS))
        self.type_combo.currentTextChanged.connect(self._on_type)
        form.addRow("type", self.type_combo)
        self.field_widgets = {}
        keys = []
        for fields in FIELDS.values():
            for key, label, lo, hi in fields:
                if key not in keys:
                    keys.append(key)
                    if isinstance(lo, float):
                        w = NumberDoubleSpin()
                        w.setDecimals(2)
                        w.setSingleStep(0.05)
                    else:
                        w = NumberSpin()
                    w.setRange(lo, hi)
                    w.valueChanged.connect(lambda v, key=key: self._on_field(key, v))
                    lab = QLabel(label)
                    form.addRow(lab, w)
                    self.field_widgets[key] = (lab, w)

        self.json_view = QPlainTextEdit()
        self.json_view.setReadOnly(True)
        self.json_view.setMaximumHeight(140)
        jf = self.json_view.font()
        jf.setFamily("monospace")
        jf.setPointSize(FONT_PT - 1 if FONT_PT > 11 else FONT_PT)
        self.json_view.setFont(jf)

        bottom = QHBoxLayout()
        bottom.addWidget(self.form_box)
        jbox = QGroupBox("JSON spec")
        jl = QVBoxLayout(jbox)
        jl.addWidget(self.json_view)
        bottom.addWidget(jbox, 1)

        lay = QVBoxLayout(self)
        lay.addLayout(ops)
        lay.addWidget(self.table, 1)
        lay.addWidget(self.total)
        lay.addWidget(self.message)
        lay.addLayout(bottom)
        self._sync_form()

    # ------------------------------------------------------------------ spec
    def spec(self):
        return copy.deepcopy(self._spec)

    def is_valid(self):
        return bool(self.result and self.result["ok"])

    def set_spec(self, spec, input_shape=None, num_classes=None):
        spec = copy.deepcopy(spec)
        spec.pop("description", None)
        if input_shape is not None or num_classes is not None:
            spec = adapt_spec(spec, input_shape, num_classes)
        if num_classes is not None:
            self._num_classes = num_classes
        self._spec = spec
        self._refresh(select=0)

    def set_input(self, input_shape, num_classes):
        self._num_classes = num_classes
        self._spec = adapt_spec(self._spec, input_shape, num_classes)
        self._refresh(select=self.selected_row())

    def layers(self):
        return self._spec["layers"]

    def selected_row(self):
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        return rows[0].row() if rows else (len(self.layers()) - 1 if self.layers() else -1)

    def select_row(self, i):
        if 0 <= i < self.table.rowCount():
            self.table.selectRow(i)

    # ------------------------------------------------------------------ operations
    def add_layer(self, kind, at=None):
        cfg = copy.deepcopy(LAYER_KINDS[kind])
        layers = self._spec["layers"]
        i = (self.selected_row() + 1) if at is None else int(at)
        i = max(0, min(i, len(layers)))
        layers.insert(i, cfg)
        self._refresh(select=i)
        return i

    def remove_layer(self, i):
        layers = self._spec["layers"]
        if 0 <= i < len(layers):
            del layers[i]
            self._refresh(select=min(i, len(layers) - 1))

    def move_layer(self, i, delta):
        layers = self._spec["layers"]
        j = i + delta
        if 0 <= i < len(layers) and 0 <= j < len(layers):
            layers[i], layers[j] = layers[j], layers[i]
            self._refresh(select=j)

    def set_layer(self, i, cfg):
        self._spec["layers"][i] = copy.deepcopy(cfg)
        self._refresh(select=i)

    def edit_field(self, i, key, value):
        self._spec["layers"][i] = set_field(self._spec["layers"][i], key, value)
        self._refresh(select=i)

    # ------------------------------------------------------------------ UI sync
    def _on_select(self):
        if not self._updating:
            self._sync_form()

    def _on_type(self, kind):
        if self._updating:
            return
        i = self.selected_row()
        if 0 <= i < len(self.layers()) and self.layers()[i].get("type") != kind:
            self.set_layer(i, LAYER_KINDS[kind])

    def _on_field(self, key, value):
        if self._updating:
            return
        i = self.selected_row()
        if 0 <= i < len(self.layers()):
            self.edit_field(i, key, value)

    def _sync_form(self):
        i = self.selected_row()
        layers = self.layers()
        self._updating = True
        try:
            has = 0 <= i < len(layers)
            self.form_box.setEnabled(has)
            self.form_box.setTitle(f"Selected layer: #{i}" if has else "Selected layer")
            kind = layers[i].get("type") if has else None
            if has and self.type_combo.findText(kind) >= 0:
                self.type_combo.setCurrentText(kind)
            shown = {k for k, *_ in FIELDS.get(kind, [])}
            for key, (lab, w) in self.field_widgets.items():
                vis = key in shown
                lab.setVisible(vis)
                w.setVisible(vis)
                if vis:
                    v = get_field(layers[i], key)
                    w.setValue(float(v) if isinstance(w, NumberDoubleSpin) else int(v))
            for b in (self.remove_btn, self.up_btn, self.down_btn):
                b.setEnabled(has)
        finally:
            self._updating = False

    def _refresh(self, select=None):
        self.result = r = analyze(self._spec)
        self._updating = True
        try:
            self.table.setRowCount(len(r["rows"]))
            bad = QBrush(QColor(255, 190, 190))
            for row in r["rows"]:
                i = row["index"]
                rf = row["rf"]
                cells = [str(i), row["title"], row["shape_text"], row["arithmetic"],
                         row["params_text"], rf, "; ".join(row["notes"]) or (row["error"] or "")]
                for c, text in enumerate(cells):
                    item = QTableWidgetItem(text)
                    if row["error"]:
                        item.setBackground(bad)
                        item.setToolTip(row["error"])
                    elif row["notes"]:
                        item.setToolTip("; ".join(row["notes"]))
                    if c in (0, 4, 5):
                        item.setTextAlignment(Qt.AlignRight | Qt.AlignVCenter)
                    self.table.setItem(i, c, item)
        finally:
            self._updating = False
        if select is not None and 0 <= select < self.table.rowCount():
            self.table.selectRow(select)
        if r["ok"]:
            out = r["output_shape"]
            self.total.setText(f"input {tuple(self._spec['input_shape'])} → output {out}:  "
                               f"{r['total_params']:,} parameters")
            self.message.setText("")
            self.message.setStyleSheet("")
            if self._num_classes and out != (self._num_classes,):
                self.message.setText(f"The last layer gives {out}; the dataset has "
                                     f"{self._num_classes} classes: end with Dense "
                                     f"{self._num_classes}.")
                self.message.setStyleSheet("color: #b00000; font-weight: bold;")
        else:
            self.total.setText(f"input {tuple(self._spec.get('input_shape', ()))}: invalid model")
            self.message.setText(f"⚠ {r['error']}")
            self.message.setStyleSheet("color: #b00000; font-weight: bold;")
        self.json_view.setPlainText(json.dumps(self._spec, indent=None)
                                    .replace('{"type"', '\n {"type"'))
        self._sync_form()
        self.specChanged.emit(self.spec(), self.trainable())

    def trainable(self):
        """Valid and the output matches the number of classes."""
        if not self.is_valid():
            return False
        return not self._num_classes or self.result["output_shape"] == (self._num_classes,)
