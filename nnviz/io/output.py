"""Where a training run's model goes, so that a finished run is never lost (issue 20).

Before training: the output path is checked (a probe file is created and removed in its
folder) and everything that will be saved goes through the writer once. After: a failed save
(full or read-only disk, immutable file) falls back to a file in the home or temporary folder.
During: SIGINT/SIGTERM ask the loop to stop after the current step, so there is a whole
state to save.
"""
from __future__ import annotations

import os
import signal
import tempfile
import threading
import time
from pathlib import Path


class OutputError(ValueError):
    """The output path cannot take the model; the message names it and what is wrong."""


def check_output(path: str, option: str = "--out") -> Path:
    """The path to write, or OutputError (before any training is spent)."""
    if not path.strip():
        raise OutputError(f"{option}: the file name is empty; give a file such as model.h5")
    p = Path(path).expanduser()
    if p.is_dir():
        raise OutputError(f"{option} {path}: is a folder; give a file name such as {p / 'model.h5'}")
    if path.endswith(("/", os.sep)):
        raise OutputError(f"{option} {path}: ends with a separator, so it names a folder; give a "
                          f"file name such as {p / 'model.h5'}")
    folder = p.parent if str(p.parent) else Path(".")
    if not folder.is_dir():
        raise OutputError(f"{option} {path}: folder {folder} does not exist")
    try:    # a read-only or full folder is found now, not after the training
        fd, probe = tempfile.mkstemp(prefix=".nnviz-probe-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise OutputError(f"{option} {path}: cannot write in folder {folder} "
                          f"({e.strerror or e})") from None
    if p.exists() and not p.is_file():
        raise OutputError(f"{option} {path}: exists and is not a regular file")
    return p


def check_saveable(trainer, dataset, option: str = "--out") -> None:
    """Every saved setting (seed, optimizer state, class names ...) is written once, to memory."""
    from .h5model import model_bytes
    try:
        model_bytes(trainer.model, trainer=trainer, dataset=dataset)
    except Exception as e:   # any failure here would lose the run at the end
        raise OutputError(f"{option}: these settings cannot be saved "
                          f"({type(e).__name__}: {e})") from None


def fallback_paths(path) -> list[Path]:
    stem = Path(path).stem or "model"
    name = f"nnviz-rescued-{stem}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.h5"
    return [Path.home() / name, Path(tempfile.gettempdir()) / name]


def save_with_fallback(path, trainer, dataset) -> tuple[Path | None, str | None]:
    """(where the model went, why `path` failed or None). (None, reason): nowhere."""
    from . import save_model
    try:
        return save_model(path, trainer.model, trainer=trainer, dataset=dataset), None
    except Exception as e:   # the trained model must not be lost to any of them
        reason = e.strerror if isinstance(e, OSError) and e.strerror else f"{type(e).__name__}: {e}"
    for alt in fallback_paths(path):
        try:
            return save_model(alt, trainer.model, trainer=trainer, dataset=dataset), reason
        except Exception:    # try the next place
            continue
    return None, reason


class StopOnSignal:
    """SIGINT and SIGTERM during training: `stop()` turns true, the loop ends after the step.

    A second signal interrupts at once (KeyboardInterrupt). Only the main thread can
    install handlers; elsewhere this does nothing."""

    def __init__(self):
        self.signum = None
        self._old = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.signum is not None:
            raise KeyboardInterrupt
        self.signum = signum

    def __call__(self) -> bool:
        return self.signum is not None

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum is not None else ""

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)
        return False
