"""The image panel: the lab's kernel applied by the engine to a real image."""
from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QGroupBox, QHBoxLayout, QSizePolicy, QVBoxLayout

from nnviz.engine import convmath as cm

from .common import label, spin
from .images import ImageSource, image_box, show_image


class ImagePanel(QGroupBox):
    """``image_changed(full image)`` fires after the sample changes (for the trained panel)."""

    image_changed = Signal(object)

    def __init__(self, parent=None):
        super().__init__("The kernel on a real image", parent)
        self.setToolTip("The engine's Conv2D with the kernel, padding and stride above")
        self._images = None
        self._conv = None          # (kernel, stride, padding, flip, name) last shown
        lay = QVBoxLayout(self)
        row = QHBoxLayout()
        row.addWidget(label("Sample"))
        self.sample_spin = spin(0, 0, 0, "which image of the dataset")
        row.addWidget(self.sample_spin)
        self.image_source_label = label("", 11, wrap=True)
        row.addWidget(self.image_source_label, 1)
        lay.addLayout(row)
        self.image_view = pg.GraphicsLayoutWidget()
        self.image_view.setBackground("w")
        self.image_view.setMinimumHeight(200)
        self.image_view.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Ignored)
        self._in_vb, self._in_img = image_box(self.image_view.ci, 0, 0, "input (grey)")
        self._fm_vb, self._fm_img = image_box(self.image_view.ci, 0, 1,
                                              "feature map (red \u2212, blue +)")
        lay.addWidget(self.image_view, 1)
        self.feature_label = label("", 11, wrap=True)
        lay.addWidget(self.feature_label)
        self.sample_spin.valueChanged.connect(lambda _: self._refresh())

    def _source(self):
        if self._images is None:
            self._images = ImageSource()
            self.sample_spin.blockSignals(True)
            self.sample_spin.setRange(0, max(0, len(self._images) - 1))
            self.sample_spin.blockSignals(False)
            self.image_source_label.setText(f"of {len(self._images)} \u2014 "
                                            f"{self._images.source}")
        return self._images

    def current_image(self):
        """(grey 2-D image, class name, full (C, H, W) image)."""
        img, name = self._source().sample(self.sample_spin.value())
        return img.mean(axis=0) if img.ndim == 3 else img, name, img

    def set_sample(self, i):
        self.sample_spin.setValue(int(i))

    def show_kernel(self, kernel, stride, padding, flip, name):
        self._conv = (kernel, stride, padding, flip, name)
        self._refresh()

    def _refresh(self):
        grey, cls, full = self.current_image()
        show_image(self._in_vb, self._in_img, grey, diverging=False)
        if self._conv is not None:
            kernel, s, p, flip, what = self._conv
            try:
                fm = cm.apply_to_image(grey, kernel, s, p, flip=flip)
            except (cm.LayerError, ValueError) as e:
                self._fm_img.clear()
                self.feature_label.setText(str(e))
            else:
                show_image(self._fm_vb, self._fm_img, fm, diverging=True)
                self.feature_label.setText(
                    f"{cls + ': ' if cls else ''}{grey.shape[0]}\u00d7{grey.shape[1]} \u2192 "
                    f"{fm.shape[0]}\u00d7{fm.shape[1]} feature map, {what} kernel"
                    f"{' (flipped)' if flip else ''}, P={p}, S={s}; values "
                    f"{cm.format_number(fm.min())} \u2026 {cm.format_number(fm.max())}")
        self.image_changed.emit(full)
