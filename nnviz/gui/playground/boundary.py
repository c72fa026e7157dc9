"""Decision-boundary plot: class-probability image, 0.5 contour, train/test points."""
import time

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF
from PySide6.QtGui import QPainter

from ..curves import cache_axes
from ..style import CLASS_COLORS, FONT_PT, pt, px, style_plot


def _point_brushes(y, dark=0.85):
    cols = np.array(CLASS_COLORS, dtype=float)[np.asarray(y) % len(CLASS_COLORS)] * dark
    return [pg.mkBrush(int(r), int(g), int(b)) for r, g, b in cols]


class BoundaryPlot(pg.PlotWidget):
    """A square plot of the input plane. ``set_snapshot`` takes a RunSnapshot."""

    def __init__(self, parent=None, title=None, point_size=7):
        super().__init__(parent, background="w")
        self.point_size = point_size
        pi = self.getPlotItem()
        self.title = title or ""
        self._style_title()
        style_plot(self)
        pi.setAspectLocked(True)
        pi.showGrid(x=False, y=False)
        pi.setMenuEnabled(False)
        pi.getViewBox().setMouseEnabled(False, False)
        self.image = pg.ImageItem()
        # a coarse probability image (Compare depths) is scaled up smoothly, not in blocks
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        self.image.setZValue(-10)
        self.addItem(self.image)
        # the 0.5 contour arrives as segments computed in the worker (pyqtgraph's
        # IsocurveItem runs marching squares in the UI thread: ~100 ms for 200x200)
        self.iso = pg.PlotCurveItem(pen=pg.mkPen((40, 40, 40), width=px(2)), connect="pairs",
                                    antialias=False)
        self.iso.setZValue(-5)
        self.addItem(self.iso)
        self.train_pts = pg.ScatterPlotItem(pen=pg.mkPen("w", width=1.2), size=px(point_size))
        self.test_pts = pg.ScatterPlotItem(pen=pg.mkPen("k", width=1.6), size=px(point_size + 1))
        self.addItem(self.train_pts)
        self.addItem(self.test_pts)
        cache_axes(pi)
        self.extent = (-1, 1, -1, 1)
        self.show_test = True
        self.last_rgb = None
        self.last_probs = None

    def set_points(self, raw, extent):
        self.extent = extent
        self.train_pts.setData(pos=raw.x_train, brush=_point_brushes(raw.y_train))
        self.test_pts.setData(pos=raw.x_test, brush=_point_brushes(raw.y_test))
        x0, x1, y0, y1 = extent
        self.image.setRect(QRectF(x0, y0, x1 - x0, y1 - y0))
        self.setRange(xRange=(x0, x1), yRange=(y0, y1), padding=0)

    def set_show_test(self, on):
        self.show_test = bool(on)
        self.test_pts.setVisible(self.show_test)

    def set_image(self, rgb, probs=None):
        self.last_rgb = rgb
        self.last_probs = probs
        self.image.setImage(np.ascontiguousarray(rgb.transpose(1, 0, 2)), levels=(0, 255))
        if self._image_extent != (self.extent, rgb.shape[:2]):   # a new rect: a full repaint
            self._image_extent = (self.extent, rgb.shape[:2])
            x0, x1, y0, y1 = self.extent
            self.image.setRect(QRectF(x0, y0, x1 - x0, y1 - y0))
        seg = self._contour
        if seg is not None and len(seg):
            self.iso.setData(seg[:, :, 0].ravel(), seg[:, :, 1].ravel())
            self.iso.setVisible(True)
        else:
            self.iso.setVisible(False)

    _contour = None
    _image_extent = None

    TITLE_EVERY_S = 0.25   # numbers that change 25 times a second cannot be read anyway
    _title_t = -1.0

    def set_snapshot(self, run_snap, final=True):
        """Show a RunSnapshot: boundary image, 0.5 contour, losses (in the title). While
        training (`final` False) the title's numbers are laid out again 4 times a second,
        not with every frame (a third of a Compare boundary's frame)."""
        self._contour = run_snap.contour
        self.set_image(run_snap.rgb, run_snap.probs)
        now = time.perf_counter()
        if not final and now - self._title_t < self.TITLE_EVERY_S:
            return
        self._title_t = now
        tl, ta, rl = run_snap.test_loss, run_snap.test_acc, run_snap.train_loss
        # above the plot, never over the data
        if self.title:       # two short lines: three plots share a 1024 px screen
            self._style_title("", f"test accuracy <b>{ta * 100:.1f}%</b>, loss {tl:.3f}")
        else:
            self._style_title(f"test loss <b>{tl:.3f}</b>, accuracy <b>{ta * 100:.1f}%</b>",
                              f"train loss <b>{rl:.3f}</b>")

    def _style_title(self, first="", second="", force=False):
        """Title: '<name>: first' (or just 'first') over 'second'."""
        if not force and getattr(self, "metrics", None) == (first, second):
            return                   # laying the title out again is not free
        self.metrics = (first, second)
        head = f"<b>{self.title}</b>" + (f": {first}" if first else "") if self.title else first
        text = f"{head}<br>{second}" if second else head
        self.getPlotItem().setTitle(text, size=f"{pt(FONT_PT - 1)}pt", color="#1d3557")

    extent = (-1, 1, -1, 1)

    def resizeEvent(self, ev):
        super().resizeEvent(ev)
        if "extent" not in self.__dict__:
            return                   # still in pyqtgraph's constructor
        x0, x1, y0, y1 = self.extent     # the whole plane stays in view at any shape
        self.setRange(xRange=(x0, x1), yRange=(y0, y1), padding=0)

    def apply_scale(self):
        self._style_title(*self.metrics, force=True)
        self.train_pts.setSize(px(self.point_size))
        self.test_pts.setSize(px(self.point_size + 1))
        self.iso.setPen(pg.mkPen((40, 40, 40), width=px(2)))

    def image_array(self):
        return None if self.last_rgb is None else np.array(self.last_rgb, copy=True)
