"""Decision-boundary plot: class-probability image, 0.5 contour, train/test points."""
import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF
from PySide6.QtGui import QPainter

from ..curves import cache_axes
from ..style import CLASS_COLORS


def _point_brushes(y, dark=0.85):
    cols = np.array(CLASS_COLORS, dtype=float)[np.asarray(y) % len(CLASS_COLORS)] * dark
    return [pg.mkBrush(int(r), int(g), int(b)) for r, g, b in cols]


class BoundaryPlot(pg.PlotWidget):
    """A square plot of the input plane. ``set_snapshot`` takes a RunSnapshot."""

    def __init__(self, parent=None, title=None, point_size=7):
        super().__init__(parent, background="w")
        self.point_size = point_size
        pi = self.getPlotItem()
        if title:
            pi.setTitle(title, size="13pt")
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
        self.iso = pg.PlotCurveItem(pen=pg.mkPen((40, 40, 40), width=2), connect="pairs",
                                    antialias=False)
        self.iso.setZValue(-5)
        self.addItem(self.iso)
        self.train_pts = pg.ScatterPlotItem(pen=pg.mkPen("w", width=1.2), size=point_size)
        self.test_pts = pg.ScatterPlotItem(pen=pg.mkPen("k", width=1.6), size=point_size + 1)
        self.addItem(self.train_pts)
        self.addItem(self.test_pts)
        self.overlay = pg.TextItem("", anchor=(0, 0), color=(20, 20, 20),
                                   fill=pg.mkBrush(255, 255, 255, 200))
        self.overlay.setParentItem(pi.getViewBox())
        self.overlay.setPos(6, 6)
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

    def set_snapshot(self, run_snap):
        """Show a RunSnapshot: boundary image, 0.5 contour, losses."""
        self._contour = run_snap.contour
        self.set_image(run_snap.rgb, run_snap.probs)
        text = (f"<span style='font-size:12pt'>Test loss <b>{run_snap.test_loss:.3f}</b> "
                f"&nbsp; accuracy <b>{run_snap.test_acc * 100:.1f}%</b><br>Training loss "
                f"<b>{run_snap.train_loss:.3f}</b></span>")
        if text != self._overlay_text:      # re-laying out rich text is not free
            self._overlay_text = text
            self.overlay.setHtml(text)

    _overlay_text = None

    def image_array(self):
        return None if self.last_rgb is None else np.array(self.last_rgb, copy=True)
