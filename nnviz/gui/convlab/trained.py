"""The trained-filters panel: the first Conv2D layer of the inspector's model, and its
feature maps on the image panel's image."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QGroupBox, QSizePolicy, QVBoxLayout

from nnviz.engine import convmath as cm

from .common import label
from .images import image_box, show_image

EMPTY_TEXT = ("No trained CNN yet: train a CNN in the CNN inspector tab and the filters of its "
              "first Conv2D layer, with their feature maps on the image at the left, appear here.")
MAX_SHOWN = 8
PER_ROW = 4


class TrainedPanel(QGroupBox):
    def __init__(self, parent=None):
        super().__init__("What a trained first layer learns", parent)
        self.weights = None
        self.source = ""
        lay = QVBoxLayout(self)
        self.trained_info = label(EMPTY_TEXT, 12, wrap=True)
        lay.addWidget(self.trained_info, 0, Qt.AlignTop)
        self.trained_view = pg.GraphicsLayoutWidget()
        self.trained_view.setBackground("w")
        self.trained_view.setMinimumHeight(320)
        self.trained_view.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Ignored)
        self.trained_view.hide()
        lay.addWidget(self.trained_view, 1)
        self._image = None

    def set_filters(self, weights, source=""):
        """Trained first-layer filters (out, in, kh, kw); None clears."""
        if weights is None:
            self.weights = None
        else:
            w = np.asarray(weights, dtype=np.float64)
            if w.ndim != 4 or not w.size:
                raise ValueError(f"trained filters must be (out, in, kh, kw), got shape {w.shape}")
            self.weights = w
        self.source = source
        self.show_on(self._image)

    def show_on(self, image):
        """Draw the filters and their maps on `image` (C, H, W)."""
        self._image = image
        view = self.trained_view
        if self.weights is None or image is None:
            view.hide()
            self.trained_info.setText(EMPTY_TEXT)
            return
        w = self.weights[:MAX_SHOWN]
        try:
            maps = cm.conv2d_multi(image, w, stride=1, padding=w.shape[2] // 2)
        except (cm.LayerError, ValueError) as e:
            view.hide()
            self.trained_info.setText(f"Trained filters {self.weights.shape}: {e}")
            return
        view.clear()
        # one row when the panel is wide enough for its labels, else rows of four (1024 px)
        cols = len(w) if self.width() >= 100 * len(w) or len(w) <= PER_ROW else PER_ROW
        for i in range(len(w)):
            r, c = divmod(i, cols)
            vb, item = image_box(view.ci, 4 * r, c, f"filter {i}")
            show_image(vb, item, w[i].mean(axis=0), diverging=True)
            vb, item = image_box(view.ci, 4 * r + 2, c, "map")
            show_image(vb, item, maps[i], diverging=True)
        n = len(self.weights)
        shown = f"the first {len(w)} of {n}" if n > len(w) else f"all {n}"
        src = f" of {self.source}" if self.source else ""
        self.trained_info.setText(
            f"Trained first layer{src}: {shown} filters ({self.weights.shape[1]} input "
            f"channel(s), {self.weights.shape[2]}\u00d7{self.weights.shape[3]}, shown as the mean "
            f"over input channels) and their feature maps on the current image.")
        view.show()
