"""The network drawn as in TF Playground: neurons as thumbnails of their activation
over the plane, weights as lines (width = |w|, colour = sign)."""
import numpy as np
from PySide6.QtCore import QLineF, Qt, Signal
from PySide6.QtGui import QColor, QFontMetrics, QImage, QPainter, QPen, QPixmap
from PySide6.QtWidgets import QGraphicsPixmapItem, QGraphicsScene, QGraphicsSimpleTextItem, QGraphicsView

from ..style import CLASS_COLORS, FONT_PT, px, ui_font
from .features import LABELS
from .session import diverging

THUMB = 48


def rgb_to_pixmap(rgb, size=None):
    """A (h, w, 3) image as a pixmap, `size` x `size` pixels when given (scaled smoothly)."""
    rgb = np.ascontiguousarray(rgb[::-1])     # row 0 is the bottom of the plane
    h, w, _ = rgb.shape
    img = QImage(rgb.data, w, h, 3 * w, QImage.Format_RGB888)
    if size is None:
        img = img.copy()
    else:
        img = img.scaled(size, size, Qt.IgnoreAspectRatio, Qt.SmoothTransformation)
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

    dropped = False      # dropped by the last training step (dropout): drawn greyed
    DROPPED = QColor(120, 120, 120, 205)

    def paint(self, painter, option, widget=None):
        super().paint(painter, option, widget)
        if self.dropped:     # over whatever pixmap the node holds, at whatever size
            painter.fillRect(self.boundingRect(), self.DROPPED)


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
        self.sizes, self.labels, self.heads, self.thumb = [], [], [], THUMB

    def setup(self, features, hidden, feature_images):
        """features: keys; hidden: neurons per layer; feature_images: (F, n, n) values."""
        sc = self.scene()
        sc.clear()
        self.features, self.hidden = list(features), list(hidden)
        self.sizes = sizes = [len(features)] + list(hidden) + [1]
        self.nodes, self.lines, self.pixmaps = [], [], {}
        self._pen_keys = None
        self.labels, self.heads = [], []
        for c, n in enumerate(sizes):
            col = []
            for i in range(n):
                node = _Node(self, c - 1, i)
                node.setZValue(2)
                sc.addItem(node)
                col.append(node)
                if c == 0:
                    t = QGraphicsSimpleTextItem(LABELS.get(features[i], features[i]))
                    sc.addItem(t)
                    self.labels.append(t)
            self.nodes.append(col)
            t = QGraphicsSimpleTextItem("")
            sc.addItem(t)
            self.heads.append(t)
        for c in range(len(sizes) - 1):
            a, b = self.nodes[c], self.nodes[c + 1]
            grid = np.empty((len(b), len(a)), dtype=object)
            for j in range(len(b)):
                for i in range(len(a)):
                    line = sc.addLine(QLineF(), QPen(QColor(180, 180, 180), 1))
                    line.setZValue(1)
                    grid[j, i] = line
            self.lines.append(grid)
        self.thumb = THUMB
        for i, img in enumerate(feature_images):
            self._set_node(0, i, diverging(img))
        blank = np.full((THUMB, THUMB, 3), 235, np.uint8)
        for c in range(1, len(sizes)):
            for i in range(sizes[c]):
                self._set_node(c, i, blank)
        self._layout()

    def painted_fonts(self):
        return [self._font()]

    def _font(self):
        return ui_font(FONT_PT)

    def _layout(self):
        """Place everything in view pixels: the text keeps its size whatever the window."""
        if not self.nodes:
            return
        vw, vh = max(self.viewport().width(), 120), max(self.viewport().height(), 80)
        font = self._font()
        fm = QFontMetrics(font)
        sizes = self.sizes
        n, tallest = len(sizes), max(sizes)
        left = max(fm.horizontalAdvance(t.text()) for t in self.labels) + 10 if self.labels else 0
        top = 2 * fm.height() + 6
        thumb = min(72.0, (vh - top - 4) / (tallest * 1.25), (vw - left) / (n * 1.6))
        thumb = float(max(int(thumb), 12))     # whole pixels: thumbnails drawn 1:1
        gap_x = (vw - left - thumb - 4) / max(n - 1, 1)
        gap_y = min(thumb * 1.6, (vh - top - thumb - 4) / max(tallest - 1, 1))
        self.thumb = thumb
        for c, col in enumerate(self.nodes):
            x = left + c * gap_x
            y0 = top + (tallest - len(col)) * gap_y / 2
            for i, node in enumerate(col):
                node.setPos(round(x), round(y0 + i * gap_y))     # on whole pixels too
                rgb = self.pixmaps.get((c - 1, i))
                if rgb is not None:
                    self._set_node(c, i, rgb)       # at the new size
            h = self.heads[c]
            h.setFont(font)
            if c == 0:
                text = "Input"
            elif c == n - 1:
                text = "Output"
            else:
                long = f"Hidden {c}\n{sizes[c]} neurons"
                text = long if fm.horizontalAdvance(f"{sizes[c]} neurons") < gap_x - 6 \
                    else f"H{c}\n{sizes[c]}"
            h.setText(text)
            w = h.boundingRect().width()
            h.setPos(min(max(x + thumb / 2 - w / 2, 0), vw - w), 2)
        for i, t in enumerate(self.labels):
            t.setFont(font)
            node = self.nodes[0][i]
            t.setPos(node.pos().x() - 6 - t.boundingRect().width(),
                     node.pos().y() + thumb / 2 - t.boundingRect().height() / 2)
        for c, grid in enumerate(self.lines):
            a, b = self.nodes[c], self.nodes[c + 1]
            for j, nb in enumerate(b):
                for i, na in enumerate(a):
                    grid[j, i].setLine(QLineF(na.pos().x() + thumb, na.pos().y() + thumb / 2,
                                              nb.pos().x(), nb.pos().y() + thumb / 2))
        self.scene().setSceneRect(0, 0, vw, vh)

    def _set_node(self, col, i, rgb):
        # scaled once here: a pixmap drawn scaled in the antialiased view cost ~3x as much
        # to paint, every frame, as one drawn 1:1
        size = max(1, int(round(self.thumb)))
        pm = rgb_to_pixmap(rgb, size)
        node = self.nodes[col][i]
        node.setPixmap(pm)
        node.setScale(self.thumb / size)
        self.pixmaps[(col - 1, i)] = rgb

    def update_snapshot(self, run_snap):
        self.set_dropped(run_snap.dropped)
        neurons = run_snap.neuron_rgb     # coloured in the worker thread
        for l, rgbs in enumerate(neurons):
            if l + 1 >= len(self.nodes) - 1:
                break
            for i, rgb in enumerate(rgbs[:len(self.nodes[l + 1])]):
                self._set_node(l + 1, i, rgb)
        out = run_snap.output_rgb
        if out is not None and self.nodes:
            self._set_node(len(self.nodes) - 1, 0, out)
        self.set_weights(run_snap.weights)

    PEN_LEVELS = 16     # |w| / max |w| in 16 steps: a line looks the same within one

    def set_weights(self, ws):
        """Line width and opacity from |w|, colour from the sign. The pens are quantised
        and shared: a line whose pen did not change is not repainted (antialiased thick
        lines were most of this view's paint)."""
        self._weights = ws
        keys = getattr(self, "_pen_keys", None)
        if keys is None or len(keys) != len(self.lines):
            keys = self._pen_keys = [None] * len(self.lines)
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
            level = np.rint(np.minimum(np.abs(W) / m, 1.0) * self.PEN_LEVELS).astype(np.int64)
            key = np.where(W >= 0, level + 1, -level - 1)      # sign and level in one
            old = keys[gap]
            todo = np.argwhere(key != old) if old is not None else np.argwhere(key == key)
            for j, i in todo:
                grid[j, i].setPen(self._pen(int(key[j, i])))
            keys[gap] = key

    def _pen(self, key):
        cache = self.__dict__.setdefault("_pens", {})
        pen = cache.get(key)
        if pen is None:
            r = (abs(key) - 1) / self.PEN_LEVELS
            col = QColor(*CLASS_COLORS[1 if key > 0 else 0])
            col.setAlpha(int(60 + 195 * r))
            pen = cache[key] = QPen(col, px(0.5 + 6.0 * r))
        return pen

    def set_dropped(self, dropped):
        """Grey the hidden units the last training step dropped, and fade their weights (the
        thinned net of the notes' figure): one bool array per hidden layer (RunSnapshot.dropped;
        None before a step)."""
        off = []
        for c in range(1, len(self.nodes) - 1):
            mask = dropped[c - 1] if c - 1 < len(dropped) else None
            n = len(self.nodes[c])
            off.append(np.zeros(n, bool) if mask is None or len(mask) != n else np.asarray(mask, bool))
        dropping = any(m.any() for m in off)
        if not off or not (dropping or getattr(self, "_faded", False)):
            return                       # no dropout: nothing to do at each frame
        self._faded = dropping
        self._fade_lines(off)
        for c, mask in enumerate(off, start=1):
            for node, on in zip(self.nodes[c], mask.tolist()):
                if node.dropped != on:
                    node.dropped = on
                    node.update()

    def _fade_lines(self, off):
        """Lines into and out of a dropped unit drawn faint (only those that change)."""
        cols = [np.zeros(len(self.nodes[0]), bool)] + off + [np.zeros(len(self.nodes[-1]), bool)]
        for gap, grid in enumerate(self.lines):
            faint = cols[gap + 1][:, None] | cols[gap][None, :]      # (out, in), as the grid
            if faint.shape != grid.shape:
                continue
            for (j, i), f in np.ndenumerate(faint):
                o = 0.12 if f else 1.0
                if grid[j, i].opacity() != o:
                    grid[j, i].setOpacity(o)

    def dropped_units(self):
        """Which hidden units are greyed now: one bool list per hidden layer."""
        return [[n.dropped for n in col] for col in self.nodes[1:-1]]

    def node_rgb(self, layer, index):
        return self.pixmaps.get((layer, index))

    def apply_scale(self):
        self._pens, self._pen_keys = {}, None      # widths in the new scale's pixels
        self.set_weights(getattr(self, "_weights", []))
        self._layout()

    def resizeEvent(self, ev):
        super().resizeEvent(ev)
        self._layout()

    def showEvent(self, ev):
        super().showEvent(ev)
        self._layout()
