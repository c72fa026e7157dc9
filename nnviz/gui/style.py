"""Lecture-hall style, the one owner of fonts, colours, plot styling and array->image helpers.

Every size here is multiplied by the *presentation scale* (1.0 normally, up to 2.0 in
presentation mode, View menu): ``pt(11)`` is the point size to use for "11 pt" text,
``px(2)`` the width of a "2 px" line.  ``set_scale`` changes the scale and restyles
what is on screen (see ``rescale_widgets``).
"""
from __future__ import annotations

import weakref

import numpy as np
import pyqtgraph as pg
from PySide6.QtGui import QColor, QFont, QImage, QPalette
from PySide6.QtWidgets import QApplication, QWidget

APP_POINT_SIZE = 11
FONT_PT = APP_POINT_SIZE
MIN_TEXT_PX = 12            # no text on screen is smaller (a projector at 1024x768)
SCALES = (1.0, 1.25, 1.5, 1.75, 2.0)

_scale = 1.0


def scale() -> float:
    return _scale


def pt(points: float) -> int:
    """A point size scaled for presentation mode."""
    return max(1, int(round(points * _scale)))


def px(pixels: float) -> float:
    """A line width or marker size scaled for presentation mode."""
    return pixels * _scale


def ui_font(points: float = FONT_PT, bold: bool = False) -> QFont:
    f = QFont()
    f.setPointSize(pt(points))
    f.setBold(bold)
    return f


# ------------------------------------------------------------------------------ colours
# Colour-blind-safe: the TF Playground orange/blue pair, then Okabe-Ito colours that
# stay apart for deuteranopes and protanopes and are dark enough on white.
PALETTE = {
    "orange": (245, 147, 34),     # class 0 (TF Playground orange)
    "blue": (8, 119, 189),        # class 1 (TF Playground blue)
    "train": (0, 90, 170),
    "test": (213, 94, 0),
    "positive": (8, 119, 189),
    "negative": (245, 147, 34),
    "true": (0, 114, 178),
    "predicted": (213, 94, 0),
    "other": (150, 150, 150),
    "banner_error": "#fde2e1",
    "banner_error_text": "#8a1c12",
    "accent": "#0877bd",
}

CLASS_COLORS = [(245, 147, 34), (8, 119, 189), (0, 158, 115), (204, 121, 167), (60, 60, 60),
                (213, 94, 0), (86, 180, 233), (150, 110, 40), (120, 80, 200), (160, 160, 160)]

# series on white (gradient flow, ...): Okabe-Ito without the pale yellow
SERIES_COLORS = [(0, 114, 178), (213, 94, 0), (0, 158, 115), (204, 121, 167), (0, 0, 0),
                 (230, 159, 0), (86, 180, 233), (120, 80, 200)]

# depth colours for "Compare depths" (0, 1, 2 hidden layers)
DEPTH_COLORS = [(213, 94, 0), (0, 114, 178), (0, 0, 0)]


def series_color(i: int):
    return SERIES_COLORS[i % len(SERIES_COLORS)]


# ---------------------------------------------------------------------------- stylesheet
_STYLESHEET = """
QGroupBox { font-weight: bold; border: 1px solid #c8ccd2; border-radius: 6px;
            margin-top: 12px; padding-top: 6px; background: #fafbfc; }
QGroupBox::title { subcontrol-origin: margin; left: 8px; padding: 0 4px; color: #1d3557; }
QPushButton { padding: 4px 8px; border-radius: 5px; border: 1px solid #9aa4ae;
              background: #f1f3f5; }
QPushButton:hover { background: #e3e8ee; }
QPushButton:checked { background: #0877bd; color: white; border-color: #06629c; }
QPushButton#play { background: #0877bd; color: white; font-weight: bold; font-size: %(big)dpt;
                   padding: 6px 12px; border: none; }
QPushButton#play:checked { background: #d9480f; }
QTabBar::tab { padding: 6px 14px; font-size: %(big)dpt; }
QTabBar::tab:selected { font-weight: bold; color: #0877bd; }
QLabel#metric { font-size: %(big)dpt; font-weight: bold; color: #1d3557; }
QFrame#banner { background: %(berr)s; border: 1px solid #e0a09a; border-radius: 5px; }
QLabel#bannerText { color: %(berrt)s; font-weight: bold; }
QLineEdit[invalid="true"], QAbstractSpinBox[invalid="true"], QComboBox[invalid="true"] {
    background: #fde2e1; border: 2px solid #c0392b; }
"""


def stylesheet() -> str:
    return _STYLESHEET % {"big": pt(APP_POINT_SIZE + 2), "berr": PALETTE["banner_error"],
                          "berrt": PALETTE["banner_error_text"]}


def configure_pyqtgraph() -> None:
    """Process-wide pyqtgraph options; called once by the entry points (never on import)."""
    pg.setConfigOptions(antialias=True, background="w", foreground=(30, 30, 30))


def apply_style(app=None) -> None:
    app = app or QApplication.instance()
    if app is None:
        return
    f = QFont(app.font())
    f.setPointSize(pt(APP_POINT_SIZE))
    app.setFont(f)
    app.setStyle("Fusion")
    pal = app.palette()
    pal.setColor(QPalette.Window, QColor(246, 247, 249))
    pal.setColor(QPalette.Base, QColor(255, 255, 255))
    pal.setColor(QPalette.Highlight, QColor(8, 119, 189))
    app.setPalette(pal)
    app.setStyleSheet(stylesheet())
    configure_pyqtgraph()


# ------------------------------------------------------------------------- plot styling
_plots: weakref.WeakSet = weakref.WeakSet()      # PlotItems styled here, restyled on rescale
_PT_PROP = "nnviz_base_pt"


def _legend_style(legend):
    legend.setBrush(pg.mkBrush(255, 255, 255, 255))           # opaque: curves never show through
    legend.setPen(pg.mkPen(160, 160, 160))
    legend.setLabelTextSize(f"{pt(FONT_PT - 1)}pt")
    legend.setLabelTextColor((30, 30, 30))
    for _, label in getattr(legend, "items", []):
        label.setText(label.text, size=f"{pt(FONT_PT - 1)}pt", color=(30, 30, 30))


def add_legend(plot, offset=(-10, 10)):
    """A legend on an opaque white box, in the scaled font."""
    pi = plot.getPlotItem() if hasattr(plot, "getPlotItem") else plot
    legend = pi.addLegend(offset=offset, labelTextSize=f"{pt(FONT_PT - 1)}pt")
    _legend_style(legend)
    return legend


def style_plot(plot, title=None):
    """Readable fonts for a pyqtgraph PlotItem / PlotWidget (restyled on rescale)."""
    pi = plot.getPlotItem() if hasattr(plot, "getPlotItem") else plot
    if hasattr(plot, "setBackground"):
        plot.setBackground("w")
    if title is not None:
        pi._nnviz_title = title
    _style_plot_item(pi)
    _plots.add(pi)
    return pi


def _style_plot_item(pi):
    for name in ("left", "bottom"):
        ax = pi.getAxis(name)
        ax.setStyle(tickFont=ui_font(FONT_PT - 1))
        ax.label.setFont(ui_font(FONT_PT - 1))
        ax.setPen(pg.mkPen(60, 60, 60))
        ax.setTextPen(pg.mkPen(30, 30, 30))
        if ax.labelText:
            ax.setLabel(ax.labelText, units=ax.labelUnits, **{"font-size": f"{pt(FONT_PT - 1)}pt"})
    title = getattr(pi, "_nnviz_title", None)
    if title:
        pi.setTitle(title, size=f"{pt(FONT_PT)}pt", color="#1d3557")
    if pi.legend is not None:
        _legend_style(pi.legend)


def rescale_widgets(root: QWidget | None = None, old: float = 1.0) -> None:
    """Apply the current scale: explicit widget fonts, styled plots, ``apply_scale`` hooks."""
    app = QApplication.instance()
    if app is None:
        return
    widgets = app.allWidgets() if root is None else [root, *root.findChildren(QWidget)]
    for w in widgets:
        if w.testAttribute(_WA_SET_FONT):
            base = w.property(_PT_PROP)
            if base is None:
                base = w.font().pointSizeF() / old
                w.setProperty(_PT_PROP, base)
            f = QFont(w.font())
            f.setPointSizeF(max(1.0, float(base) * _scale))
            w.setFont(f)
    import shiboken6
    for pi in list(_plots):
        # a plot whose window was closed: its C++ side (and its legend's view box) is gone
        if not shiboken6.isValid(pi) or (pi.scene() is None):
            continue
        try:
            _style_plot_item(pi)
        except RuntimeError:     # deleted on the C++ side
            pass
    for w in widgets:
        hook = getattr(w, "apply_scale", None)
        if callable(hook):
            hook()
        w.update()


def set_scale(value: float) -> float:
    """Set the presentation scale (clamped to 1..2) and restyle the running app."""
    global _scale
    old = _scale
    _scale = float(min(max(value, SCALES[0]), SCALES[-1]))
    app = QApplication.instance()
    if app is not None and _scale != old:
        apply_style(app)
        rescale_widgets(old=old)
    return _scale


def _wa_set_font():
    from PySide6.QtCore import Qt
    return Qt.WA_SetFont


_WA_SET_FONT = _wa_set_font()


# ------------------------------------------------------------------- array -> image helpers
# viridis, inferno and a red/blue diverging map sampled at a few points and interpolated
_VIRIDIS = np.array([[68, 1, 84], [71, 44, 122], [59, 81, 139], [44, 113, 142], [33, 144, 141],
                     [39, 173, 129], [92, 200, 99], [170, 220, 50], [253, 231, 37]], float)
_GREY = np.array([[0, 0, 0], [255, 255, 255]], float)
# red for negative, blue for positive: the convention of the Playground and the lab
_DIVERGING = np.array([[178, 24, 43], [239, 138, 98], [253, 219, 199], [247, 247, 247],
                       [209, 229, 240], [103, 169, 207], [33, 102, 172]], float)
_INFERNO = np.array([[0, 0, 4], [40, 11, 84], [101, 21, 110], [159, 42, 99], [212, 72, 66],
                     [245, 125, 21], [250, 193, 39], [252, 255, 164]], float)


def _lut(stops):
    t = np.linspace(0, 1, len(stops))
    u = np.linspace(0, 1, 256)
    return np.stack([np.interp(u, t, stops[:, c]) for c in range(3)], 1).round().astype(np.uint8)


COLORMAPS = {"viridis": _lut(_VIRIDIS), "grey": _lut(_GREY), "inferno": _lut(_INFERNO),
             "diverging": _lut(_DIVERGING)}


def to_uint8(a, lo=None, hi=None):
    """Scale an array linearly to 0..255 (lo/hi default to its min/max)."""
    a = np.asarray(a, np.float32)
    if a.size == 0:
        return np.zeros(a.shape, np.uint8)
    finite = np.isfinite(a)
    if not finite.all():
        a = np.where(finite, a, 0.0)
    lo = float(a.min()) if lo is None else float(lo)
    hi = float(a.max()) if hi is None else float(hi)
    if hi - lo < 1e-12:
        return np.full(a.shape, 127 if hi != 0 else 0, np.uint8)
    return np.clip((a - lo) * (255.0 / (hi - lo)), 0, 255).astype(np.uint8)


def colormap_rgb(a, cmap="viridis", lo=None, hi=None):
    """(H, W) float -> (H, W, 3) uint8 through a named colour map (see COLORMAPS)."""
    return COLORMAPS[cmap][to_uint8(a, lo, hi)]


def np_to_qimage(a):
    """uint8 (H, W) or (H, W, 3) -> an owning QImage (row 0 at the top)."""
    a = np.ascontiguousarray(a)
    if a.dtype != np.uint8:
        a = np.clip(a, 0, 255).astype(np.uint8)
    h, w = a.shape[:2]
    fmt = QImage.Format_Grayscale8 if a.ndim == 2 else QImage.Format_RGB888
    return QImage(a.data, w, h, a.strides[0], fmt).copy()
