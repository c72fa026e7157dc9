"""The nnviz desktop app (PySide6 + pyqtgraph). Qt is imported only in this package."""
from . import _qtfix  # noqa: F401  (must run before any signal is emitted)
from .worker import TrainingController, TrainingWorker

__all__ = ["TrainingController", "TrainingWorker", "run_app"]


def run_app(backend="auto", argv=None):
    from .app import run_app as _run
    return _run(backend=backend, argv=argv)
