"""Data-driven view widgets of the CNN inspector: each takes plain numpy arrays."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRect, QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFontMetrics, QImage, QPainter, QPen
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QSizePolicy,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from ..style import (
    FONT_PT,
    PALETTE,
    add_legend,
    colormap_rgb,
    np_to_qimage,
    px,
    series_color,
    style_plot,
    ui_font,
)
from .compute import downsample, filter_tiles, map_tiles


class TileGrid(QWidget):
    """A grid of small images painted with nearest-neighbour scaling; click = tileClicked."""
    tileClicked = Signal(int)

    def __init__(self, parent=None, tile_px=64, gap=3, fill_cols=None, max_px=120):
        super().__init__(parent)
        self.fill_cols = fill_cols   # when set: tiles grow to fill the width in this many columns
        self.max_px = max_px
        self.min_px = tile_px
        self._images = []
        self._tips = []
        self.tile_px = tile_px
        self.gap = gap
        self.ncols = None
        self.selected = None
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Fixed)
        self.setMouseTracking(True)

    def set_tiles(self, tiles, ncols=None, tile_px=None, tips=None):
        self._images = [np_to_qimage(t) for t in tiles]
        self._tips = list(tips) if tips else []
        self.ncols = ncols
        if tile_px is not None:
            self.tile_px = self.min_px = int(tile_px)
        if self.selected is not None and self.selected >= len(self._images):
            self.selected = None
        self._fit()
        self.update()

    def count(self):
        return len(self._images)

    def _tile_for(self, width):
        if self.fill_cols:
            cols = max(1, min(self.fill_cols, len(self._images) or 1))
            t = (width - self.gap * (cols + 1)) // cols
            return int(max(self.min_px, min(self.max_px, t)))
        return self.tile_px

    def _cols(self, width=None):
        width = self.width() if width is None else width
        if self.fill_cols:
            self.tile_px = self._tile_for(width)
        fit = max(1, (width + self.gap) // (self.tile_px + self.gap))
        if self.ncols:
            return max(1, min(self.ncols, fit)) if self.ncols <= fit else fit
        return fit

    def _rows(self, width=None):
        n = len(self._images)
        return -(-n // self._cols(width)) if n else 0

    def heightForWidth(self, w):
        if self.fill_cols:
            self.tile_px = self._tile_for(w)
        r = self._rows(w)
        return r * (self.tile_px + self.gap) + self.gap if r else 4

    def hasHeightForWidth(self):
        return True

    def sizeHint(self):
        cols = min(len(self._images) or 1, self.ncols or 8)
        w = cols * (self.tile_px + self.gap)
        return QSize(w, self.heightForWidth(w))

    def minimumSizeHint(self):
        return QSize(self.tile_px + 2 * self.gap, self.heightForWidth(self.tile_px + 2 * self.gap))

    def _fit(self):
        # setFixedHeight resizes at once, which calls resizeEvent again: once is enough
        if getattr(self, "_fitting", False):
            return
        h = self.heightForWidth(max(self.width(), self.tile_px + 2 * self.gap))
        if h != self.height() or self.minimumHeight() != h:
            self._fitting = True
            try:
                self.setFixedHeight(h)
            finally:
                self._fitting = False

    def resizeEvent(self, ev):
        super().resizeEvent(ev)
        self._fit()

    def tile_rect(self, i):
        cols = self._cols()
        r, c = divmod(i, cols)
        step = self.tile_px + self.gap
        return QRectF(self.gap + c * step, self.gap + r * step, self.tile_px, self.tile_px)

    def index_at(self, pos):
        for i in range(len(self._images)):
            if self.tile_rect(i).contains(QPointF(pos)):
                return i
        return None

    def paintEvent(self, ev):
        p = QPainter(self)
        p.setRenderHint(QPainter.SmoothPixmapTransform, False)
        for i, img in enumerate(self._images):
            r = self.tile_rect(i)
            # keep the aspect ratio inside the square cell
            s = min(r.width() / img.width(), r.height() / img.height())
            w, h = img.width() * s, img.height() * s
            target = QRectF(r.x() + (r.width() - w) / 2, r.y() + (r.height() - h) / 2, w, h)
            p.drawImage(target, img)
            p.setPen(QPen(QColor(150, 150, 150), 1))
            p.drawRect(target)
            if i == self.selected:
                p.setPen(QPen(QColor(255, 140, 0), 3))
                p.drawRect(r.adjusted(-1, -1, 1, 1))
        p.end()

    def mousePressEvent(self, ev):
        i = self.index_at(ev.position().toPoint())
        if i is not None:
            self.selected = i
            self.update()
            self.tileClicked.emit(i)

    def mouseMoveEvent(self, ev):
        i = self.index_at(ev.position().toPoint())
        self.setToolTip(self._tips[i] if i is not None and i < len(self._tips) else "")


class ImageView(QWidget):
    """One image scaled to fit (nearest neighbour), with a caption above."""

    def __init__(self, parent=None, caption=""):
        super().__init__(parent)
        self._img = None
        self.caption = caption
        self.setMinimumSize(120, 120)

    def painted_fonts(self):
        return [ui_font()]

    def set_image(self, a, caption=None):
        self._img = None if a is None else np_to_qimage(a)
        if caption is not None:
            self.caption = caption
        self.update()

    def paintEvent(self, ev):
        p = QPainter(self)
        p.setFont(ui_font())
        fm = p.fontMetrics()
        top = 0
        if self.caption:       # wrapped, never cut, however narrow the panel
            box = fm.boundingRect(QRect(0, 0, max(self.width() - 8, 20), 1000),
                                  int(Qt.TextWordWrap), self.caption)
            p.drawText(QRectF(4, 2, self.width() - 8, box.height()), int(Qt.TextWordWrap),
                       self.caption)
            top = box.height() + 6
        if self._img is not None:
            avail = QRectF(0, top, self.width(), self.height() - top)
            s = min(avail.width() / self._img.width(), avail.height() / self._img.height())
            w, h = self._img.width() * s, self._img.height() * s
            p.drawImage(QRectF((self.width() - w) / 2, top, w, h), self._img)
        p.end()


# ----------------------------------------------------------------------------- feature maps
class FeatureMapView(QWidget):
    """Every 3-D layer's channels as a grid of small images; click one to enlarge."""
    mapClicked = Signal(str, int)

    def __init__(self, parent=None):
        super().__init__(parent)
        self._maps = []
        self._rows = []          # (label widget, TileGrid)
        self._structure = None
        self._enlarged = None    # (layer label, channel)
        top = QHBoxLayout()
        self.scaling = QComboBox()
        self.scaling.addItems(["scale each map", "scale whole layer"])
        self.scaling.setToolTip("Colour scaling: each map to its own min..max, or one range per layer")
        self.cmap = QComboBox()
        self.cmap.addItems(["viridis", "grey", "inferno"])
        self.info = QLabel("")
        for w in (self.scaling, self.cmap):
            w.currentIndexChanged.connect(self._redraw)
        top.addWidget(QLabel("Feature maps"))
        top.addWidget(self.scaling)
        top.addWidget(self.cmap)
        top.addWidget(self.info, 1)
        self.input_view = ImageView(caption="input")
        self.detail = ImageView(caption="click a map to enlarge it")
        side = QSplitter(Qt.Vertical)
        side.addWidget(self.input_view)
        side.addWidget(self.detail)
        side.setMinimumWidth(160)
        self.inner = QWidget()
        self.inner_layout = QVBoxLayout(self.inner)
        self.inner_layout.setContentsMargins(4, 4, 4, 4)
        self.inner_layout.addStretch(1)
        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setWidget(self.inner)
        self._stale = set()      # rows not drawn since the last maps: out of sight
        self.scroll.verticalScrollBar().valueChanged.connect(self._draw_stale)
        split = QSplitter(Qt.Horizontal)
        split.addWidget(side)
        split.addWidget(self.scroll)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 4)
        split.setSizes([200, 800])
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(top)
        lay.addWidget(split, 1)

    # data ---------------------------------------------------------------------
    def set_maps(self, maps, input_image=None):
        """maps: [(label, (C, H, W) array)]; input_image: uint8 (H, W) or (H, W, 3)."""
        self._maps = [(str(l), np.asarray(a, np.float32)) for l, a in maps]
        if input_image is not None:
            self.input_view.set_image(input_image, "input")
        self._redraw()

    def layers(self):
        """[(label, number of maps, (h, w))] as shown."""
        return [(l, a.shape[0], tuple(a.shape[1:])) for l, a in self._maps]

    def shown_tiles(self):
        """[(label, tile count)] actually painted."""
        return [(lab.property("layer"), g.count()) for lab, g in self._rows]

    def _ensure_rows(self):
        structure = [(l, a.shape) for l, a in self._maps]
        if structure == self._structure:
            return
        self._structure = structure
        for lab, grid in self._rows:
            for wdg in (lab, grid):
                wdg.hide()
                self.inner_layout.removeWidget(wdg)
                wdg.setParent(None)
                wdg.deleteLater()
        self._rows = []
        for label, a in self._maps:
            c, h, w = a.shape
            lab = QLabel(f"{label}  —  {c} map{'s' if c != 1 else ''} of {h}×{w}")
            lab.setFont(ui_font(FONT_PT, bold=True))
            lab.setProperty("layer", label)
            tile = int(np.clip(5 * max(h, w), 26, 84))
            grid = TileGrid(tile_px=tile)
            grid.tileClicked.connect(lambda ch, label=label: self._enlarge(label, ch))
            self.inner_layout.insertWidget(self.inner_layout.count() - 1, lab)
            self.inner_layout.insertWidget(self.inner_layout.count() - 1, grid)
            self._rows.append((lab, grid))

    def _redraw(self, *_):
        before = self._structure
        self._ensure_rows()
        # Rows scrolled out of sight are drawn when they come into view (the 120 one-pixel
        # maps of LeNet-5's third convolution were most of a frame). A new structure, or a
        # view not on screen (tests, a hidden tab), draws every row: the sizes stay right.
        lazy = self._structure == before and self.isVisible()
        self._stale = set()
        for i, (_, grid) in enumerate(self._rows):
            if lazy and grid.visibleRegion().isEmpty():
                self._stale.add(i)
            else:
                self._draw_row(i)
        self.info.setText(f"{len(self._maps)} layers" if self._maps else "no image layers")
        if self._enlarged is not None:
            self._enlarge(*self._enlarged, emit=False)

    def _draw_row(self, i):
        (label, a), grid = self._maps[i], self._rows[i][1]
        lo, hi = a.min(axis=(1, 2)).tolist(), a.max(axis=(1, 2)).tolist()   # one pass per layer
        tips = [f"{label} map {k}: min {m:.3g}, max {x:.3g}" for k, (m, x) in enumerate(zip(lo, hi))]
        grid.set_tiles(map_tiles(a, self.cmap.currentText(), self.scaling.currentIndex() == 0),
                       tips=tips)

    def showEvent(self, ev):
        super().showEvent(ev)
        QTimer.singleShot(0, self._draw_stale)     # after the layout has placed the rows

    def resizeEvent(self, ev):
        super().resizeEvent(ev)
        QTimer.singleShot(0, self._draw_stale)

    def _draw_stale(self, *_):
        for i in sorted(self._stale):
            if i < len(self._rows) and not self._rows[i][1].visibleRegion().isEmpty():
                self._stale.discard(i)
                self._draw_row(i)

    def _enlarge(self, label, ch, emit=True):
        for l, a in self._maps:
            if l == label and ch < a.shape[0]:
                m = a[ch]
                self._enlarged = (label, ch)
                per_map = self.scaling.currentIndex() == 0
                lo, hi = (None, None) if per_map else (float(a.min()), float(a.max()))
                self.detail.set_image(colormap_rgb(m, self.cmap.currentText(), lo, hi),
                                      f"{label}, map {ch}  ({m.shape[0]}×{m.shape[1]})\n"
                                      f"min {m.min():.3g}   max {m.max():.3g}")
                if emit:
                    self.mapClicked.emit(label, ch)
                return


# ----------------------------------------------------------------------------- filters
class FilterView(QWidget):
    """Kernels of a conv layer: RGB composites for 3-channel inputs, else per input channel."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self._filters = []
        self.layer = QComboBox()
        self.layer.currentIndexChanged.connect(self._redraw)
        self.rgb = QCheckBox("RGB composite")
        self.rgb.setChecked(True)
        self.rgb.toggled.connect(self._redraw)
        self.info = QLabel("")
        self.info.setWordWrap(True)
        self.grid = TileGrid(tile_px=28, max_px=90)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        holder = QWidget()
        hl = QVBoxLayout(holder)
        hl.addWidget(self.grid)
        hl.addStretch(1)
        scroll.setWidget(holder)
        top = QHBoxLayout()
        top.addWidget(QLabel("Filters of"))
        top.addWidget(self.layer, 1)
        top.addWidget(self.rgb)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addLayout(top)
        lay.addWidget(self.info)
        lay.addWidget(scroll, 1)

    def set_filters(self, filters):
        """filters: [(parameter name, weight (out, in, kh, kw))]."""
        # names and shapes: a new model often names its first convolution "0.weight" too
        names = [(n, tuple(np.shape(w))) for n, w in filters]
        if names != [(n, w.shape) for n, w in self._filters]:
            cur = self.layer.currentIndex()
            self.layer.blockSignals(True)
            self.layer.clear()
            for n, w in filters:
                self.layer.addItem(f"layer {n.rsplit('.', 1)[0]}: {w.shape[0]}× "
                                   f"{w.shape[2]}×{w.shape[3]}×{w.shape[1]}")
            self.layer.setCurrentIndex(cur if 0 <= cur < len(filters) else 0)
            self.layer.blockSignals(False)
        self._filters = [(n, np.asarray(w, np.float32)) for n, w in filters]
        self._redraw()

    def current(self):
        i = self.layer.currentIndex()
        return self._filters[i] if 0 <= i < len(self._filters) else None

    def _redraw(self, *_):
        cur = self.current()
        if cur is None:
            self.grid.set_tiles([])
            self.info.setText("no convolution layers")
            return
        name, w = cur
        out_c, in_c, kh, kw = w.shape
        self.rgb.setVisible(in_c == 3)
        limit_out = min(out_c, max(1, 256 // in_c))
        shown = w[:limit_out, :min(in_c, 32)]
        tiles, ncols = filter_tiles(shown, rgb=self.rgb.isChecked())
        if in_c == 3 and self.rgb.isChecked():
            text = f"{out_c} filters, RGB composite (each normalised)"
        elif in_c == 1:
            text = f"{out_c} filters {kh}×{kw} (red < 0 < blue)"
        else:
            text = (f"rows: filters ({limit_out} of {out_c}), columns: input channels "
                    f"({shown.shape[1]} of {in_c});  red < 0 < blue")
        self.info.setText(text)
        self.grid.fill_cols = ncols
        self.grid.set_tiles(tiles, ncols=ncols, tile_px=int(np.clip(4 * kh, 14, 28)))


# ----------------------------------------------------------------------------- prediction
class PredictionView(QWidget):
    """Softmax probabilities as horizontal bars; the true class in another colour."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.title = QLabel("Prediction")
        self.title.setFont(ui_font(FONT_PT, bold=True))
        self.title.setWordWrap(True)
        self.plot = pg.PlotWidget()
        self.pi = style_plot(self.plot)
        self.plot.setMouseEnabled(False, False)
        self.pi.hideButtons()
        self.pi.setMenuEnabled(False)
        self.plot.setXRange(0, 1.0, padding=0.04)
        self.pi.getAxis("bottom").setTicks([[(v, f"{v:g}") for v in (0, 0.25, 0.5, 0.75, 1)]])
        pred, true = ("#{:02x}{:02x}{:02x}".format(*PALETTE[k]) for k in ("predicted", "true"))
        # the legend is the axis title: one row less on a small screen
        self.pi.getAxis("bottom").setLabel(f'<span style="color:{pred}">■</span> predicted '
                                           f'&nbsp;<span style="color:{true}">■</span> true')
        self.bars = pg.BarGraphItem(x0=[], y=[], height=[], width=[], brushes=[])
        self.plot.addItem(self.bars)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addWidget(self.title)
        lay.addWidget(self.plot, 1)
        self.probs = None
        self.true_class = None
        self._names = None

    def set_probs(self, probs, class_names, true_class=None):
        p = np.asarray(probs, float)
        k = len(p)
        self.probs, self.true_class = p, true_class
        y = np.arange(k)[::-1]      # first class on top
        pred = int(p.argmax()) if k else -1
        brushes = []
        for i in range(k):
            if true_class is not None and i == true_class:
                brushes.append(pg.mkBrush(*PALETTE["true"]))
            elif i == pred:
                brushes.append(pg.mkBrush(*PALETTE["predicted"]))
            else:
                brushes.append(pg.mkBrush(*PALETTE["other"]))
        self.bars.setOpts(x0=np.zeros(k), y=y, height=np.full(k, 0.75), width=p, brushes=brushes)
        names = list(class_names)[:k] + [str(i) for i in range(len(class_names), k)]
        if names != self._names:
            self._names = names
            left = self.pi.getAxis("left")
            left.setTicks([[(int(y[i]), names[i]) for i in range(k)]])
            fm = QFontMetrics(ui_font(FONT_PT - 1))
            left.setWidth(min(170, max(fm.horizontalAdvance(n) for n in names) + 16))
            self.plot.setYRange(-0.6, k - 0.4, padding=0)
            # one class name per bar: tall enough that the names never overlap
            self.plot.setMinimumHeight(k * fm.height() + 48)
        text = f"Prediction: {names[pred]} ({p[pred]:.0%})" if k else "Prediction"
        if true_class is not None and 0 <= true_class < k:
            ok = "✔" if true_class == pred else "✘"
            text += f"  {ok} true: {names[true_class]}"
        self.title.setText(text)

    def predicted(self):
        return None if self.probs is None else int(np.argmax(self.probs))


# ----------------------------------------------------------------------------- confusion
class ConfusionView(QWidget):
    """Confusion matrix heat map with counts; click a cell -> cellClicked(true, predicted)."""
    cellClicked = Signal(int, int)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.matrix = None
        self.names = []
        self.note = ""
        self.selected = None
        self.setMinimumSize(260, 220)

    def set_matrix(self, m, class_names, note=""):
        self.matrix = np.asarray(m, np.int64)
        self.names = list(class_names)
        self.note = note
        self.update()

    def painted_fonts(self):
        return [ui_font(FONT_PT - 1), self._count_font()]

    def _count_font(self):
        return ui_font(FONT_PT - 2)       # 9 pt: 12 px, the smallest text on screen

    def _geometry(self):
        """(classes, left label width, top, cell size, bottom label height, names shown).

        Class names label the rows and (written upwards) the columns when the cells are
        tall enough for them; otherwise class numbers do (``class_key`` names them)."""
        k = self.matrix.shape[0]
        fm = QFontMetrics(ui_font(FONT_PT - 1))
        note = fm.boundingRect(QRect(0, 0, max(self.width() - 8, 20), 1000),
                               int(Qt.TextWordWrap), self.note)
        top = note.height() + fm.height() + 8
        for names in (True, False):
            labels = self.labels(names)
            widest = max((fm.horizontalAdvance(n) for n in labels), default=20)
            label_w = min(widest + 10, 130)
            bottom = (min(widest, 110) if names else fm.height()) + 8
            size = min((self.width() - label_w - 6) / k, (self.height() - top - bottom) / k)
            if size >= fm.height() or not names:
                return k, label_w, top, max(size, 4), bottom, names

    def labels(self, names=True):
        k = 0 if self.matrix is None else self.matrix.shape[0]
        return [(self.names[i] if i < len(self.names) else str(i)) if names else str(i)
                for i in range(k)]

    def class_key(self):
        """'0 horizontal, 1 vertical, ...' for when the matrix shows class numbers."""
        return ", ".join(f"{i} {n}" for i, n in enumerate(self.names))

    def paintEvent(self, ev):
        p = QPainter(self)
        font = ui_font(FONT_PT - 1)
        p.setFont(font)
        fm = QFontMetrics(font)
        if self.matrix is None:
            p.drawText(self.rect(), Qt.AlignCenter, "confusion matrix: after the first\n"
                       "snapshot and after each epoch")
            p.end()
            return
        m = self.matrix
        k, lw, top, cs, bottom, with_names = self._geometry()
        labels = self.labels(with_names)
        p.drawText(QRectF(4, 2, self.width() - 8, top), int(Qt.TextWordWrap), self.note)
        p.drawText(int(lw), int(top - 4), "predicted \u2192   (rows: true class)")
        rowsum = np.maximum(m.sum(axis=1, keepdims=True), 1)
        frac = m / rowsum
        lut = colormap_rgb(frac, "inferno", 0, 1) if m.size else None
        cfont = self._count_font()
        cfm = QFontMetrics(cfont)
        widest = max(cfm.horizontalAdvance(str(int(v))) for v in m.ravel()) if m.size else 0
        show_counts = cs >= max(cfm.height(), widest + 4)
        for t in range(k):
            y = top + t * cs
            p.setFont(font)
            name = fm.elidedText(labels[t], Qt.ElideRight, int(lw - 8))
            p.drawText(QRectF(0, y, lw - 6, cs), Qt.AlignRight | Qt.AlignVCenter, name)
            p.setFont(cfont)
            for q in range(k):
                r = QRectF(lw + q * cs, y, cs - 1, cs - 1)
                c = lut[t, q]
                p.fillRect(r, QColor(int(c[0]), int(c[1]), int(c[2])))
                if show_counts:
                    p.setPen(QColor(0, 0, 0) if frac[t, q] > 0.6 else QColor(255, 255, 255))
                    p.drawText(r, Qt.AlignCenter, str(int(m[t, q])))
                    p.setPen(QColor(0, 0, 0))
                if self.selected == (t, q):
                    p.setPen(QPen(QColor(0, 200, 255), 3))
                    p.drawRect(r)
                    p.setPen(QColor(0, 0, 0))
        p.setFont(font)
        yb = top + k * cs + 4
        for q in range(k):         # class names under the columns, rotated to fit
            if not with_names:
                p.drawText(QRectF(lw + q * cs, yb, cs, fm.height()), Qt.AlignCenter, labels[q])
                continue
            name = fm.elidedText(labels[q], Qt.ElideRight, int(bottom - 8))
            p.save()
            p.translate(lw + q * cs + cs / 2 - fm.ascent() / 2, yb)
            p.rotate(90)
            p.drawText(0, 0, name)
            p.restore()
        p.end()

    def event(self, ev):
        if ev.type() == ev.Type.ToolTip and self.matrix is not None:
            cell = self.cell_at(ev.position() if hasattr(ev, "position") else ev.pos())
            if cell is not None:
                t, q = cell
                self.setToolTip(f"true {self.names[t]}, predicted {self.names[q]}: "
                                f"{int(self.matrix[t, q])}")
        return super().event(ev)

    def cell_at(self, pos):
        if self.matrix is None:
            return None
        k, lw, top, cs, _, _ = self._geometry()
        q = int((pos.x() - lw) // cs)
        t = int((pos.y() - top) // cs)
        if 0 <= t < k and 0 <= q < k and pos.x() >= lw and pos.y() >= top:
            return t, q
        return None

    def mousePressEvent(self, ev):
        cell = self.cell_at(ev.position())
        if cell is not None:
            self.selected = cell
            self.update()
            self.cellClicked.emit(*cell)


# ----------------------------------------------------------------------------- gradients
class GradientFlowView(pg.PlotWidget):
    """Per-layer gradient L2 norms over training steps (log y), one line per weight tensor."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.pi = style_plot(self, "Gradient flow: ‖∂loss/∂W‖ per layer")
        self.setLogMode(y=True)
        self.pi.getAxis("bottom").setLabel("step")
        self.pi.getAxis("left").setLabel("norm (log)")
        self.showGrid(x=True, y=True, alpha=0.25)
        self.legend = add_legend(self)
        self.curves = {}

    def set_series(self, steps, norms):
        steps = np.asarray(steps, float)
        if list(norms) != list(self.curves):
            self.clear_series()
            for i, name in enumerate(norms):
                self.curves[name] = self.plot([], [], pen=pg.mkPen(series_color(i), width=px(2)),
                                              name=f"layer {name.rsplit('.', 1)[0]}")
        for name, v in norms.items():
            v = np.maximum(np.asarray(v, float), 1e-12)
            m = min(len(steps), len(v))
            self.curves[name].setData(steps[:m], v[:m])

    def clear_series(self):
        for c in self.curves.values():
            self.removeItem(c)
        self.legend.clear()
        self.curves = {}

    def series_names(self):
        return list(self.curves)


# ----------------------------------------------------------------------------- drawing
class DrawingCanvas(QWidget):
    """Paint with the mouse (thick round white brush on black); `changed` after each stroke."""
    changed = Signal()

    def __init__(self, parent=None, size=280, brush=22):
        super().__init__(parent)
        self.size_px = size
        self.brush = brush
        self.image = QImage(size, size, QImage.Format_Grayscale8)
        self.image.fill(0)
        self._last = None
        self.setMinimumSize(180, 180)
        self.setSizePolicy(QSizePolicy.Expanding, QSizePolicy.Expanding)
        self.setCursor(Qt.CrossCursor)

    def sizeHint(self):
        return QSize(self.size_px, self.size_px)

    def _square(self):
        s = min(self.width(), self.height())
        return QRectF((self.width() - s) / 2, (self.height() - s) / 2, s, s)

    def _to_image(self, pos):
        r = self._square()
        f = self.size_px / r.width()
        return QPointF((pos.x() - r.x()) * f, (pos.y() - r.y()) * f)

    def clear(self, emit=True):
        self.image.fill(0)
        self.update()
        if emit:
            self.changed.emit()

    def stroke(self, points, emit=True):
        """Draw a polyline given in canvas-image coordinates (0..size)."""
        p = QPainter(self.image)
        p.setRenderHint(QPainter.Antialiasing)
        p.setPen(QPen(QColor(255, 255, 255), self.brush, Qt.SolidLine, Qt.RoundCap, Qt.RoundJoin))
        pts = [QPointF(*q) if not isinstance(q, QPointF) else q for q in points]
        if len(pts) == 1:
            p.drawPoint(pts[0])
        for a, b in zip(pts, pts[1:]):
            p.drawLine(a, b)
        p.end()
        self.update()
        if emit:
            self.changed.emit()

    def array(self):
        """The canvas as (size, size) uint8."""
        img = self.image
        ptr = img.constBits()
        a = np.frombuffer(ptr, np.uint8, count=img.sizeInBytes()).reshape(
            img.height(), img.bytesPerLine())
        return a[:, :img.width()].copy()

    def small(self, hw=(28, 28)):
        return downsample(self.array().astype(np.float32), hw)

    def mousePressEvent(self, ev):
        if ev.button() == Qt.LeftButton:
            self._last = self._to_image(ev.position())
            self.stroke([self._last], emit=False)

    def mouseMoveEvent(self, ev):
        if self._last is not None and ev.buttons() & Qt.LeftButton:
            q = self._to_image(ev.position())
            self.stroke([self._last, q], emit=False)
            self._last = q

    def mouseReleaseEvent(self, ev):
        if self._last is not None:
            self._last = None
            self.changed.emit()

    def paintEvent(self, ev):
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(40, 40, 40))
        r = self._square()
        p.drawImage(r, self.image)
        p.setPen(QPen(QColor(120, 120, 120), 1))
        p.drawRect(r)
        p.end()


class Gallery(QWidget):
    """Thumbnails of (C, H, W) inputs; click one -> picked(index into the list given)."""
    picked = Signal(int)

    def __init__(self, parent=None, tile_px=64, title="", fill_cols=None, max_px=96):
        super().__init__(parent)
        self.title = QLabel(title)
        self.title.setWordWrap(True)
        self.grid = TileGrid(tile_px=tile_px, fill_cols=fill_cols, max_px=max_px)
        self.grid.tileClicked.connect(self.picked)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addWidget(self.title)
        lay.addWidget(self.grid)
        lay.addStretch(1)

    def set_images(self, images, tips=None, title=None):
        """images: uint8 (H, W) or (H, W, 3) each."""
        self.grid.set_tiles(images, tips=tips)
        if title is not None:
            self.title.setText(title)

    def count(self):
        return self.grid.count()

    def select(self, i):
        self.grid.selected = i
        self.grid.update()


class ButtonRow(QWidget):
    def __init__(self, *buttons, parent=None):
        super().__init__(parent)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        for b in buttons:
            lay.addWidget(b)
        lay.addStretch(1)


__all__ = ["TileGrid", "ImageView", "FeatureMapView", "FilterView", "PredictionView",
           "ConfusionView", "GradientFlowView", "DrawingCanvas", "Gallery", "ButtonRow"]
