"""Lecture-hall style: large fonts, high-contrast colours, white plots."""
import pyqtgraph as pg
from PySide6.QtGui import QColor, QFont, QPalette
from PySide6.QtWidgets import QApplication

APP_POINT_SIZE = 11

PALETTE = {
    "orange": (245, 147, 34),     # class 0 (TF Playground orange)
    "blue": (8, 119, 189),        # class 1 (TF Playground blue)
    "train": (8, 90, 160),
    "test": (220, 100, 20),
    "positive": (8, 119, 189),
    "negative": (245, 147, 34),
    "banner_error": "#fde2e1",
    "banner_error_text": "#8a1c12",
    "accent": "#0877bd",
}

# distinct class colours for >2 classes (first two match TF Playground)
CLASS_COLORS = [(245, 147, 34), (8, 119, 189), (46, 160, 67), (200, 40, 120), (120, 80, 200),
                (30, 170, 170), (150, 110, 40), (90, 90, 90), (230, 60, 50), (100, 190, 60)]

# depth colours for "Compare depths"
DEPTH_COLORS = [(220, 80, 30), (30, 120, 200), (40, 160, 70)]

STYLESHEET = """
QWidget { font-size: %(pt)dpt; }
QGroupBox { font-weight: bold; border: 1px solid #c8ccd2; border-radius: 6px;
            margin-top: 12px; padding-top: 6px; background: #fafbfc; }
QGroupBox::title { subcontrol-origin: margin; left: 8px; padding: 0 4px; color: #1d3557; }
QPushButton { padding: 4px 10px; border-radius: 5px; border: 1px solid #9aa4ae;
              background: #f1f3f5; }
QPushButton:hover { background: #e3e8ee; }
QPushButton:checked { background: #0877bd; color: white; border-color: #06629c; }
QPushButton#play { background: #0877bd; color: white; font-weight: bold; font-size: %(big)dpt;
                   min-width: 110px; padding: 6px 14px; border: none; }
QPushButton#play:checked { background: #d9480f; }
QTabBar::tab { padding: 8px 18px; font-size: %(big)dpt; }
QTabBar::tab:selected { font-weight: bold; color: #0877bd; }
QLabel#metric { font-size: %(big)dpt; font-weight: bold; color: #1d3557; }
QFrame#banner { background: %(berr)s; border: 1px solid #e0a09a; border-radius: 5px; }
QLabel#bannerText { color: %(berrt)s; font-weight: bold; }
QStatusBar { font-size: %(pt)dpt; }
""" % {"pt": APP_POINT_SIZE, "big": APP_POINT_SIZE + 2, "berr": PALETTE["banner_error"],
       "berrt": PALETTE["banner_error_text"]}


def apply_style(app=None):
    app = app or QApplication.instance()
    if app is None:
        return
    f = QFont(app.font())
    f.setPointSize(APP_POINT_SIZE)
    app.setFont(f)
    app.setStyle("Fusion")
    pal = app.palette()
    pal.setColor(QPalette.Window, QColor(246, 247, 249))
    pal.setColor(QPalette.Base, QColor(255, 255, 255))
    pal.setColor(QPalette.Highlight, QColor(8, 119, 189))
    app.setPalette(pal)
    app.setStyleSheet(STYLESHEET)
    pg.setConfigOptions(antialias=True, background="w", foreground=(30, 30, 30))
