"""Application start: style, backend, main window; Numba kernels warm up behind it."""
import logging
import os
import sys

log = logging.getLogger("nnviz")


def _show_progress(win, warmer):
    """A status-bar label and progress bar while kernels compile; gone when they are ready."""
    from PySide6.QtWidgets import QLabel, QProgressBar
    label, bar = QLabel(""), QProgressBar()
    bar.setMaximumWidth(160)
    bar.setTextVisible(False)
    sb = win.statusBar()
    sb.addPermanentWidget(label)
    sb.addPermanentWidget(bar)

    def progress(text, done, total):
        if done >= total:
            label.hide()
            bar.hide()
            return
        # short: the status bar at 1024 px also holds the backend and the training counters
        label.setText(text.replace("Compiling kernels: ", "Compiling "))
        label.setToolTip("The engine's kernels compile once, on the first start; "
                         "later starts load them from the cache.")
        bar.setRange(0, total)
        bar.setValue(done)
    warmer.progress.connect(progress)
    return label, bar


def run_app(backend="auto", argv=None, lesson=None):
    from .platform_check import xcb_problem
    problem = xcb_problem()
    if problem:            # said before Qt aborts with a message naming one library at best
        print(problem, file=sys.stderr, flush=True)
    from PySide6.QtWidgets import QApplication, QMessageBox

    from nnviz.engine import backend as B
    from nnviz.engine.process import tune_process

    from . import (
        _qtfix,  # noqa: F401
        kernels,
    )
    from .style import apply_style
    tune_process()
    app = QApplication.instance() or QApplication(list(argv) if argv is not None else sys.argv)
    app.setApplicationName("nnviz")
    apply_style(app)
    try:
        B.use(backend)
    except B.BackendError as exc:
        QMessageBox.warning(None, "nnviz backend", f"{exc}\n\nFalling back to the CPU.")
        B.use("cpu")
    # No splash: the window shows at once and the kernels compile in a background thread,
    # the Playground's first; a workspace waits for its group (kernels.when_ready).
    warmer = kernels.KernelWarmer()
    kernels.install(warmer)
    from .mainwindow import MainWindow
    win = MainWindow()
    win._kernel_progress = _show_progress(win, warmer)
    if os.environ.get("NNVIZ_MAXIMIZED"):
        win.showMaximized()
    else:
        win.show()
    warmer.start()
    if lesson is not None:
        from PySide6.QtCore import QTimer

        from .lessons import open_lesson_file
        QTimer.singleShot(0, lambda: open_lesson_file(win, lesson))
    # Everything built so far lives as long as the app: keep it out of the UI thread's
    # periodic garbage collections so they stay short.
    import gc
    gc.collect()
    gc.freeze()
    return app.exec()
