import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# Keras 3 is an oracle only; without this it looks for TensorFlow, which nnviz never installs.
os.environ.setdefault("KERAS_BACKEND", "torch")

# Reliability: never block on the "restore the crashed session?" prompt, and keep the
# tests' autosave checkpoints and session marker out of the user's data folder.
os.environ.setdefault("NNVIZ_NO_RESTORE_PROMPT", "1")
if "NNVIZ_AUTOSAVE_DIR" not in os.environ:
    import tempfile as _tempfile
    os.environ["NNVIZ_AUTOSAVE_DIR"] = _tempfile.mkdtemp(prefix="nnviz-test-autosave-")
if "NNVIZ_TEST_KEEP_CONFIG" not in os.environ:
    # QSettings (the presentation scale) of the tests stay out of the user's config
    import tempfile as _tempfile
    os.environ["XDG_CONFIG_HOME"] = _tempfile.mkdtemp(prefix="nnviz-test-config-")

# The tests run in a process set up as `nnviz` sets up its own (the allocator keeps freed
# memory for reuse): the app's windows and workers are tested as users run them. Importing
# the engine does not do this (tests/test_engine_backend.py checks that in a fresh process).
from nnviz.engine.process import tune_process

tune_process()


@pytest.fixture
def window(qtbot):
    """The main window, shown offscreen; its workers are stopped afterwards."""
    from nnviz.gui.mainwindow import MainWindow
    w = MainWindow()
    w.confirm_close = False
    qtbot.addWidget(w)
    w.show()
    yield w
    w.shutdown()
    w.close()
    w.deleteLater()
    qtbot.wait(50)


@pytest.fixture(autouse=True)
def _quiet_garbage_collector(request):
    """GUI tests: collect what earlier tests left, then freeze it.

    The app collects garbage in the UI thread (never in a worker thread, where destroying
    Qt objects can deadlock PySide); a collection over everything hundreds of earlier
    tests left behind would stall the event loop that the tests measure.
    """
    if "qtbot" not in request.fixturenames:
        yield
        return
    import gc
    gc.collect()
    gc.freeze()
    yield
    gc.unfreeze()
