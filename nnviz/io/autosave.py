"""Autosave: periodic checkpoints of the model being trained, and crash detection.

An :class:`Autosaver` writes ``<folder>/<workspace>-checkpoint.h5`` with
:func:`nnviz.io.save_model` (atomic: a crash mid-write leaves the previous file
intact) every ``every_epochs`` epochs and on :meth:`Autosaver.save_now`.  When it
starts it leaves a marker, ``<folder>/session.json``, holding the process id, the
start time and ``clean_exit: false``; :meth:`Autosaver.mark_clean_exit` flips the
flag when the app closes normally.  On the next start
:func:`find_crash_checkpoint` tells whether the previous session died (the marker
still says ``clean_exit: false`` and its process is gone) and returns the
checkpoints it left, so the app can offer to restore them.

Saving is consistent with training running in another thread: the trainer's
loop holds :attr:`Autosaver.lock` around each step (``with saver.lock:
trainer.step()``) and every save takes the same lock, so a file never mixes the
weights of one step with the optimizer state of another.  No Qt here.
"""
from __future__ import annotations

import json
import os
import re
import sys
import threading
import time
from pathlib import Path
from typing import Any

from ..data import default_data_dir
from . import save_model
from .atomic import atomic_path

__all__ = ["Autosaver", "find_crash_checkpoint", "default_autosave_dir", "read_marker",
           "MARKER_NAME", "CHECKPOINT_SUFFIX"]

MARKER_NAME = "session.json"
CHECKPOINT_SUFFIX = "-checkpoint.h5"


def default_autosave_dir() -> Path:
    """``<user data dir>/autosave`` (``$NNVIZ_AUTOSAVE_DIR`` overrides it)."""
    env = os.environ.get("NNVIZ_AUTOSAVE_DIR")
    if env:
        return Path(env).expanduser()
    return Path(default_data_dir()) / "autosave"


def _safe_name(workspace) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", str(workspace or "model")).strip(".-")
    return name[:80] or "model"


def _proc_start(pid: int):
    """The process's start time in clock ticks since boot (Linux), else None."""
    try:
        with open(f"/proc/{int(pid)}/stat", "rb") as fh:
            data = fh.read().decode("ascii", "replace")
        return int(data[data.rindex(")") + 2:].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def _pid_alive(pid) -> bool:
    try:
        pid = int(pid)
    except (TypeError, ValueError):
        return False
    if pid <= 0:
        return False
    if sys.platform == "win32":   # pragma: no cover - Windows
        import ctypes
        kernel32 = ctypes.windll.kernel32
        handle = kernel32.OpenProcess(0x1000, False, pid)
        if not handle:
            return False
        code = ctypes.c_ulong()
        kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
        kernel32.CloseHandle(handle)
        return code.value == 259   # STILL_ACTIVE
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True    # exists, owned by someone else
    except OSError:
        return False
    return True


def _write_json_atomic(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(obj, indent=1), encoding="utf-8")


def read_marker(folder) -> dict | None:
    """The session marker in `folder`, or None when absent or unreadable."""
    try:
        with open(Path(folder) / MARKER_NAME, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _marker_alive(marker: dict[str, Any]) -> bool:
    """True when the process that wrote `marker` is still running."""
    pid = marker.get("pid")
    if pid is None or not _pid_alive(pid):
        return False
    started = marker.get("proc_start")
    now = _proc_start(pid)
    # a different start time: the pid was reused by another process
    return started is None or now is None or int(started) == now


def _checkpoints(folder: Path) -> list[Path]:
    try:
        found = [p for p in folder.glob("*" + CHECKPOINT_SUFFIX) if p.is_file()]
    except OSError:
        return []
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)


def find_crash_checkpoint(folder=None) -> list[Path]:
    """Checkpoints left by a previous session that did not exit cleanly (newest first).

    Empty when there is no marker, the last session closed cleanly, the marker is
    this process's own, or the session that wrote it is still running.
    """
    folder = Path(folder) if folder is not None else default_autosave_dir()
    marker = read_marker(folder)
    if marker is None:
        # a marker that cannot be read but checkpoints exist: treat as a crash
        if not (folder / MARKER_NAME).exists():
            return []
        return _checkpoints(folder)
    if marker.get("clean_exit") is True:
        return []
    if marker.get("pid") == os.getpid() and marker.get("proc_start") == _proc_start(os.getpid()):
        return []
    if _marker_alive(marker):
        return []
    return _checkpoints(folder)


class Autosaver:
    """Writes ``<folder>/<workspace>-checkpoint.h5`` every `every_epochs` epochs.

    Errors while saving (full disk, folder removed) never propagate out of
    :meth:`on_epoch_end`; they are kept in :attr:`last_error` so the app can show
    them.  Weights that are not finite are never written over a good checkpoint.
    """

    def __init__(self, every_epochs: int = 1, folder: str | os.PathLike | None = None, workspace: str = "model",
                 enabled: bool = True, start: bool = True, min_interval_s: float = 0.0) -> None:
        if isinstance(every_epochs, bool) or int(every_epochs) != every_epochs or every_epochs < 1:
            raise ValueError(f"every_epochs must be a positive integer, got {every_epochs!r}")
        self.every_epochs = int(every_epochs)
        self.folder = Path(folder).expanduser() if folder is not None else default_autosave_dir()
        self.workspace = str(workspace)
        self.enabled = bool(enabled)
        # tiny epochs (toy data: a few ms) must not turn autosave into constant disk writes
        self.min_interval_s = float(min_interval_s)
        self.last_saved_at: float | None = None
        self.lock = threading.RLock()
        self.last_error: Exception | None = None
        self.last_path: Path | None = None
        self.last_saved_epoch: int | None = None
        self.saves = 0
        self.started_at: float | None = None
        if start:
            self.start_session()

    # --- session marker -----------------------------------------------------------
    @property
    def marker_path(self) -> Path:
        return self.folder / MARKER_NAME

    def start_session(self) -> None:
        self.started_at = time.time()
        self._write_marker(clean_exit=False)

    def _write_marker(self, clean_exit: bool) -> None:
        pid = os.getpid()
        marker = {"pid": pid, "proc_start": _proc_start(pid), "started": self.started_at,
                  "started_iso": time.strftime("%Y-%m-%dT%H:%M:%S",
                                               time.localtime(self.started_at or time.time())),
                  "clean_exit": bool(clean_exit)}
        try:
            _write_json_atomic(self.marker_path, marker)
        except OSError as e:
            self.last_error = e

    def mark_clean_exit(self) -> None:
        """Record that this session closed normally (its checkpoints are not offered again)."""
        with self.lock:
            self._write_marker(clean_exit=True)

    # --- checkpoints --------------------------------------------------------------
    def checkpoint_path(self, workspace=None) -> Path:
        return self.folder / (_safe_name(workspace if workspace is not None else self.workspace)
                              + CHECKPOINT_SUFFIX)

    def on_epoch_end(self, trainer: Any, dataset: Any = None, workspace: str | None = None) -> Path | None:
        """Call after each epoch; saves when the epoch count is a multiple of every_epochs.

        Returns the path written, or None (not due, disabled, or failed: see last_error).
        """
        if not self.enabled:
            return None
        epoch = int(getattr(trainer, "epoch", 0))
        if epoch < 1 or epoch % self.every_epochs or epoch == self.last_saved_epoch:
            return None
        if not self.due():
            return None
        return self.save_now(trainer, dataset=dataset, workspace=workspace)

    def due(self) -> bool:
        """False while less than min_interval_s has passed since the last save."""
        return (self.last_saved_at is None or
                time.monotonic() - self.last_saved_at >= self.min_interval_s)

    def save_now(self, trainer: Any, dataset: Any = None, workspace: str | None = None,
                 raise_errors: bool = False) -> Path | None:
        """Save the trainer's model and state now (e.g. on Stop). Thread-safe.

        Returns the path, or None when the weights are not finite or the write failed
        (then :attr:`last_error` says why; ``raise_errors=True`` raises instead).
        """
        path = self.checkpoint_path(workspace)
        with self.lock:
            try:
                model = trainer.model
                if not model.B.all_finite(model.parameters()):
                    raise ArithmeticError("weights are not finite; kept the previous checkpoint")
                self.folder.mkdir(parents=True, exist_ok=True)
                extra = {"autosave": {"workspace": str(workspace or self.workspace),
                                      "epoch": int(trainer.epoch), "step": int(trainer.steps),
                                      "saved": time.time(), "pid": os.getpid()}}
                save_model(path, model, trainer=trainer, dataset=dataset, extra=extra)
            except (OSError, ValueError, ArithmeticError, TypeError, RuntimeError) as e:
                self.last_error = e
                if raise_errors:
                    raise
                return None
            self.last_error = None
            self.last_path = path
            self.last_saved_epoch = int(trainer.epoch)
            self.last_saved_at = time.monotonic()
            self.saves += 1
        return path

    def remove_checkpoint(self, workspace=None) -> None:
        try:
            self.checkpoint_path(workspace).unlink()
        except OSError:
            pass
