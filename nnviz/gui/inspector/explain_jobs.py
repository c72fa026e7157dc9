"""Background work for the explanation views.

The training model is only read in the training thread, between two steps (the
workspace's controller.apply): a host copy of its weights goes into a `ModelMirror`.
Each `JobThread` computes on its own clone loaded from the latest copy, so explanations
never block training or the UI.  A job replaces a still-waiting job of the same kind
(only the newest request matters); a running job can be cancelled.
"""
from __future__ import annotations

import json
import logging
import threading

from PySide6.QtCore import QThread, Signal

from nnviz.engine import model_from_spec

log = logging.getLogger("nnviz")


class ModelMirror:
    """The latest weights of the training model, copied in the training thread."""

    def __init__(self):
        self._lock = threading.Lock()
        self.spec_key = None
        self.spec = None
        self.state = None
        self.version = 0
        self.step = -1
        self.source = None          # id of the trainer the weights came from

    def update(self, trainer) -> bool:
        """Copy the trainer's weights if they changed; True when they did."""
        model = trainer.model
        key = (id(trainer), int(trainer.steps))
        if key == (self.source, self.step):
            return False
        spec = model.to_spec()
        spec_key = json.dumps(spec, sort_keys=True)
        state = model.state()
        with self._lock:
            self.spec, self.spec_key, self.state = spec, spec_key, state
            self.source, self.step = key
            self.version += 1
        return True

    def clear(self):
        with self._lock:
            self.spec = self.spec_key = self.state = None
            self.source, self.step = None, -1
            self.version += 1

    def model(self, cache: dict):
        """A clone with the latest weights; `cache` is the calling thread's own."""
        with self._lock:
            spec, key, state, version = self.spec, self.spec_key, self.state, self.version
        if spec is None:
            return None
        if cache.get("key") != key:
            cache.clear()
            cache["model"] = model_from_spec(spec, seed=0)
            cache["key"] = key
        if cache.get("version") != version:
            cache["model"].load_state(state)
            cache["version"] = version
        return cache["model"]


class JobThread(QThread):
    """Runs fn(job) for submitted jobs, newest per kind, in submission order."""

    done = Signal(str, object)               # kind, result
    progress = Signal(str, int, int, object)  # kind, step, total, preview
    failed = Signal(str, str)                # kind, message

    def __init__(self, mirror: ModelMirror, parent=None):
        super().__init__(parent)
        self.mirror = mirror
        self._cond = threading.Condition()
        self._jobs: dict = {}                # kind -> fn, in submission order
        self._stop = False
        self._cancel_kind = None
        self._running_kind = None
        self.cache: dict = {}

    def submit(self, kind: str, fn) -> None:
        """fn(job) -> result; job.model() is this thread's clone, job.cancelled() and
        job.progress(step, total, preview) talk to the UI."""
        with self._cond:
            self._jobs.pop(kind, None)
            self._jobs[kind] = fn
            self._cond.notify_all()

    def cancel(self, kind: str) -> None:
        with self._cond:
            self._jobs.pop(kind, None)
            if self._running_kind == kind:
                self._cancel_kind = kind

    def busy(self, kind: str) -> bool:
        with self._cond:
            return self._running_kind == kind or kind in self._jobs

    def stop(self, timeout_ms: int = 3000) -> bool:
        with self._cond:
            self._stop = True
            self._jobs.clear()
            self._cancel_kind = self._running_kind
            self._cond.notify_all()
        return self.wait(timeout_ms)

    def run(self):
        try:   # one kernel thread: the training thread keeps the other cores
            import numba
            numba.set_num_threads(1)
        except Exception:
            pass
        while True:
            with self._cond:
                while not self._jobs and not self._stop:
                    self._cond.wait(0.2)
                if self._stop:
                    return
                kind = next(iter(self._jobs))
                fn = self._jobs.pop(kind)
                self._running_kind, self._cancel_kind = kind, None
            try:
                result = fn(_Job(self, kind))
                if result is not None and not self._stop:
                    self.done.emit(kind, result)
            except Exception as exc:
                log.exception("explanation %s failed", kind)
                if not self._stop:
                    self.failed.emit(kind, f"{type(exc).__name__}: {exc}")
            finally:
                with self._cond:
                    self._running_kind = None


class _Job:
    def __init__(self, thread: JobThread, kind: str):
        self._t, self.kind = thread, kind

    def model(self):
        return self._t.mirror.model(self._t.cache)

    def cancelled(self) -> bool:
        return self._t._stop or self._t._cancel_kind == self.kind

    def progress(self, step: int, total: int, preview=None) -> None:
        self._t.progress.emit(self.kind, int(step), int(total), preview)
