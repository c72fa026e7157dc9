"""The network drawn as in TF Playground: neurons as thumbnails of their activation
over the plane, weights as lines (width = |w|, colour = sign)."""
import numpy as np
from PySide6.QtCore import QLineF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPen, QPixmap
from PySide6.QtWidgets import QGraphicsPixmapItem, QGraphicsScene, QGraphicsSimpleTextItem, QGraphicsView

from ..style import CLASS_COLORS
from .features import LABELS
from .session import diverging

THUMB = 48
COL_GAP = 150
ROW_GAP = 60


def rgb_to_pixmap(rgb):
    rgb = np.ascontiguousarray(rgb[::-1])     # row 0 is the bottom of the plane
    h, w, _ = rgb.shape
    img = QImage(rgb.data, w, h, 3 * w, QImage.Format_RGB888).copy()
    return QPixmap.fromImage(img)


class _Node(QGraphicsPixmapItem):
    def __init__(self, view, layer, index):
        super().__init__()
        self.view, self.layer, self.index = view, layer, index
        self.setCursor(Qt.PointingHandCursor)
        self.setTransformationMode(Qt.SmoothTransformation)
        self.setShapeMode(QGraphicsPixmapItem.BoundingRectShape)

    def mousePressEvent(self, ev):
        self.view.node_clicked.emit(self.layer, self.index)
        ev.accept()


class NetworkView(QGraphicsView):
    node_clicked = Signal(int, int)   # layer (-1 = inputs, len(hidden) = output), neuron

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setRenderHint(QPainter.Antialiasing)
        self.setRenderHint(QPainter.SmoothPixmapTransform)
        self.setScene(QGraphicsScene(self))
        self.setBackgroundBrush(QColor(255, 255, 255))
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.nodes = []       # per column: list of _Node
        self.lines = []       # per gap: (out, in) array of line items
        self.features, self.hidden = [], []
        self.pixmaps = {}     # (layer, index) -> latest QPixmap (for the enlarged view)

    def setup(self, features, hidden, feature_images):
        """features: keys; hidden: neurons per layer; feature_images: (F, n, n) values."""
        sc = self.scene()
        sc.clear()
        self.features, self.hidden = list(features), list(hidden)
        sizes = [len(features)] + list(hidden) + [1]
        tallest = max(sizes)
        self.nodes, self.lines, self.pixmaps = [], [], {}
        font = QFont()
        font.setPointSize(11)
        for c, n in enumerate(sizes):
            x = c * COL_GAP
            y0 = (tallest - n) * ROW_GAP / 2
            col = []
            for i in range(n):
                node = _Node(self, c - 1, i)
                node.setPos(x, y0 + i * ROW_GAP)
                node.setZValue(2)
                sc.addItem(node)
                col.append(node)
                if c == 0:
                    t = QGraphicsSimpleTextItem(LABELS.get(features[i], features[i]))
                    t.setFont(font)
                    t.setPos(x - 8 - t.boundingRect().width(), y0 + i * ROW_GAP + THUMB / 2 - 9)
                    sc.addItem(t)
            self.nodes.append(col)
            head = ("Input" if c == 0 else "Output" if c == len(sizes) - 1
                    else f"Hidden {c}\n{n} neurons")
            t = QGraphicsSimpleTextItem(head)
            t.setFont(font)
            t.setPos(x + THUMB / 2 - t.boundingRect().width() / 2, -12 - t.boundingRect().height())
            sc.addItem(t)
        for c in range(len(sizes) - 1):
            a, b = self.nodes[c], self.nodes[c + 1]
            grid = np.empty((len(b), len(a)), dtype=object)
            for j, nb in enumerate(b if c + 1 < len(sizes) - 1 else b):
                for i, na in enumerate(a):
                    p1 = na.pos() + na.boundingRect().center()
                    line = sc.addLine(QLineF(na.pos().x() + THUMB, na.pos().y() + THUMB / 2,
                                             nb.pos().x(), nb.pos().y() + THUMB / 2),
                                      QPen(QColor(180, 180, 180), 1))
                    line.setZValue(1)
                    grid[j, i] = line
                    del p1
            self.lines.append(grid)
        for i, img in enumerate(feature_images):
            self._set_node(0, i, diverging(img))
        blank = np.full((THUMB, THUMB, 3), 235, np.uint8)
        for c in range(1, len(sizes)):
            for i in range(sizes[c]):
                self._set_node(c, i, blank)
        sc.setSceneRect(sc.itemsBoundingRect().adjusted(-10, -10, 10, 10))
        self._fit()

    def _set_node(self, col, i, rgb):
        pm = rgb_to_pixmap(rgb)
        node = self.nodes[col][i]
        node.setPixmap(pm)
        node.setScale(THUMB / pm.width())
        self.pixmaps[(col - 1, i)] = rgb

    def update_snapshot(self, run_snap):
        neurons = run_snap.neuron_rgb     # coloured in the worker thread
        for l, rgbs in enumerate(neurons):
            if l + 1 >= len(self.nodes) - 1:
                break
            for i, rgb in enumerate(rgbs[:len(self.nodes[l + 1])]):
                self._set_node(l + 1, i, rgb)
        out = run_snap.output_rgb
        if out is not None and self.nodes:
            self._set_node(len(self.nodes) - 1, 0, out)
        ws = run_snap.weights
        for gap, W in enumerate(ws):
            if gap >= len(self.lines):
                break
            grid = self.lines[gap]
            if W.shape[0] != grid.shape[0]:
                # output column shows one node: draw the class-1 minus class-0 weights
                W = (W[1] - W[0])[None, :] if W.shape[0] == 2 else W.mean(0, keepdims=True)
            if W.shape != grid.shape:
                continue
            m = float(np.abs(W).max()) or 1.0
            for j in range(W.shape[0]):
                for i in range(W.shape[1]):
                    w = W[j, i]
                    col = QColor(*CLASS_COLORS[1 if w >= 0 else 0])
                    col.setAlpha(int(60 + 195 * min(1.0, abs(w) / m)))
                    grid[j, i].setPen(QPen(col, 0.5 + 6.0 * abs(w) / m))

    def node_rgb(self, layer, index):
        return self.pixmaps.get((layer, index))

    def _fit(self):
        r = self.scene().sceneRect()
        if r.isValid():
            self.fitInView(r, Qt.KeepAspectRatio)

    def resizeEvent(self, ev):
        super().resizeEvent(ev)
        self._fit()

    def showEvent(self, ev):
        super().showEvent(ev)
        self._fit()
