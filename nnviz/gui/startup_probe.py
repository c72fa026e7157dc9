"""`python -m nnviz.gui.startup_probe`: start the app as `nnviz` does, print "shown" when
the main window is shown, and quit. `nnviz bench --only window` times it."""
import os
import sys


def main():
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("NNVIZ_NO_RESTORE_PROMPT", "1")
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from . import app, mainwindow
    show = mainwindow.MainWindow.show

    def shown(self):
        show(self)
        print("shown", flush=True)
        QTimer.singleShot(0, QApplication.quit)
    mainwindow.MainWindow.show = shown
    return app.run_app("cpu", [])


if __name__ == "__main__":
    sys.exit(main())
