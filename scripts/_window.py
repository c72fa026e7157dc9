"""What the screenshot scripts share: the app's main window, offscreen, at a given size."""
import os
import sys

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("NNVIZ_NO_RESTORE_PROMPT", "1")     # no "restore the last session?" dialog


def open_window(size, scale=None):
    """(app, window): the main window with the app's style, shown at `size` ("WxH")."""
    from PySide6.QtWidgets import QApplication

    from nnviz.gui.mainwindow import MainWindow
    from nnviz.gui.style import apply_style
    app = QApplication.instance() or QApplication(sys.argv[:1])
    apply_style(app)
    w = MainWindow()
    w.confirm_close = False
    if scale is not None:
        w.set_scale(scale, remember=False)
    w.resize(*(int(v) for v in size.lower().split("x")))
    w.show()
    return app, w


def spin(seconds):
    """Let the event loop run for `seconds` (views refresh, training runs)."""
    from PySide6.QtCore import QEventLoop, QTimer
    loop = QEventLoop()
    QTimer.singleShot(int(seconds * 1000), loop.quit)
    loop.exec()
