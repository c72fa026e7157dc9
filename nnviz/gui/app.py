"""Application start: style, backend, kernel warm-up (with a splash), main window."""
import logging
import os
import sys

log = logging.getLogger("nnviz")


WARM_CACHE_S = 0.5   # the first warm-up model took less: kernels came from the disk cache


def warm_up(progress=None):
    """Compile the Numba kernels once: a tiny forward/backward of an MLP and a CNN."""
    import numpy as np

    from nnviz.engine import get_loss, model_from_spec
    steps = [
        {"name": "warm-mlp", "input_shape": [2],
         "layers": [{"type": "Dense", "out_features": 4}, {"type": "Tanh"},
                    {"type": "Dense", "out_features": 4}, {"type": "ReLU"},
                    {"type": "Dense", "out_features": 2}]},
        {"name": "warm-cnn", "input_shape": [1, 8, 8],
         "layers": [{"type": "Conv2D", "out_channels": 2, "kernel_size": 3, "padding": 1},
                    {"type": "ReLU"}, {"type": "MaxPool2D", "kernel_size": 2},
                    {"type": "Flatten"}, {"type": "Dense", "out_features": 2}]},
    ]
    import time
    loss = get_loss("softmax_xent")
    for i, spec in enumerate(steps):
        if progress:
            progress(f"Compiling kernels (first start only)… {spec['name']}", i, len(steps))
        t0 = time.perf_counter()
        try:
            m = model_from_spec(spec)
            x = np.random.default_rng(0).normal(size=(4, *spec["input_shape"])).astype(np.float32)
            out = m.forward(x, train=True)
            loss.forward(out, np.array([0, 1, 0, 1]))
            m.backward(loss.backward(), need_input_grad=True)
        except Exception as exc:   # warming up is an optimisation, never fatal
            log.warning("kernel warm-up of %s failed: %s", spec["name"], exc)
        if i == 0 and time.perf_counter() - t0 < WARM_CACHE_S:
            break   # the kernel cache is warm: the rest load on first use, in milliseconds
    if progress:
        progress("Ready", len(steps), len(steps))


def run_app(backend="auto", argv=None, lesson=None):
    from .platform_check import xcb_problem
    problem = xcb_problem()
    if problem:            # said before Qt aborts with a message naming one library at best
        print(problem, file=sys.stderr, flush=True)
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QFont
    from PySide6.QtWidgets import QApplication, QLabel, QMessageBox

    from nnviz.engine import backend as B
    from nnviz.engine.process import tune_process

    from . import _qtfix  # noqa: F401
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
    # A plain frameless label, not QSplashScreen: Qt 6's QSplashScreen.show() waited a full
    # second for an expose event (measured under Xvfb and offscreen) before returning.
    splash = QLabel()
    splash.setWindowFlags(Qt.SplashScreen | Qt.FramelessWindowHint | Qt.WindowStaysOnTopHint)
    splash.setFixedSize(560, 180)
    splash.setAlignment(Qt.AlignCenter)
    splash.setStyleSheet("QLabel { background: rgb(8, 119, 189); color: white; }")
    f = QFont(app.font())
    f.setPointSize(14)
    splash.setFont(f)

    def progress(msg, i, n):
        splash.setText(f"nnviz\n\n{msg}")
        app.processEvents()
    progress("Starting…", 0, 1)
    shown = app.platformName() != "offscreen"   # no screen: nothing to show
    if shown:
        splash.show()
        app.processEvents()
    warm_up(progress)
    from .mainwindow import MainWindow
    win = MainWindow()
    if os.environ.get("NNVIZ_MAXIMIZED"):
        win.showMaximized()
    else:
        win.show()
    splash.close()
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
