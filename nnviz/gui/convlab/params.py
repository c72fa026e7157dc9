"""The parameter panel: output shape and parameter count of one Conv2D layer."""
from __future__ import annotations

from PySide6.QtWidgets import QGridLayout, QGroupBox, QVBoxLayout

from nnviz.engine import convmath as cm

from .common import label, spin


class ParamsPanel(QGroupBox):
    def __init__(self, parent=None):
        super().__init__("Parameters of a Conv2D layer", parent)
        lay = QVBoxLayout(self)
        g = QGridLayout()
        self.param_in = spin(1, 128, 3, "input channels")
        self.param_out = spin(1, 128, 10, "number of filters = output channels")
        self.param_k = spin(1, 11, 5, "filter size F\u00d7F")
        self.param_stride = spin(1, 4, 1, "stride")
        self.param_pad = spin(0, 5, 2, "zero padding")
        self.param_h = spin(1, 512, 32, "input height")
        self.param_w = spin(1, 512, 32, "input width")
        cells = (("in-channels", self.param_in), ("filters", self.param_out),
                 ("kernel F", self.param_k), ("stride", self.param_stride),
                 ("padding", self.param_pad), ("input H", self.param_h),
                 ("input W", self.param_w))
        for i, (text, w) in enumerate(cells):
            g.addWidget(label(text, 11), (i // 4) * 2, i % 4)
            g.addWidget(w, (i // 4) * 2 + 1, i % 4)
            w.valueChanged.connect(self.update_params)
        lay.addLayout(g)
        self.param_shape_label = label("", 13, wrap=True)
        self.param_label = label("", 15, bold=True, wrap=True)
        self.param_note_label = label("", 11, wrap=True)
        lay.addWidget(self.param_shape_label)
        lay.addWidget(self.param_label)
        lay.addWidget(self.param_note_label)
        lay.addStretch(1)
        self.update_params()

    def update_params(self, *_):
        cin, cout, k = self.param_in.value(), self.param_out.value(), self.param_k.value()
        s, p = self.param_stride.value(), self.param_pad.value()
        h, w = self.param_h.value(), self.param_w.value()
        formula = f"({k}\u00b7{k}\u00b7{cin} + 1)\u00b7{cout}"
        try:
            info = cm.conv_layer_summary(cin, cout, k, s, p, h, w)
        except cm.LayerError as e:
            self.param_shape_label.setText(f"Input {h}\u00d7{w}\u00d7{cin}: {e}")
            self.param_label.setText(f"{formula} = {cm.param_count(cin, cout, k)} parameters")
            self.param_note_label.setText("")
            return
        oh, ow, oc = info["output_shape"]
        self.param_shape_label.setText(
            f"Input {h}\u00d7{w}\u00d7{cin}  \u2192  output {oh}\u00d7{ow}\u00d7{oc}")
        self.param_label.setText(f"{formula} = {info['params']} parameters")
        note = (f"{info['weights']} weights + {info['biases']} biases (counted by the engine); "
                f"independent of the input size.")
        if info["notes"]:
            note += " Engine: " + "; ".join(info["notes"])
        self.param_note_label.setText(note)
