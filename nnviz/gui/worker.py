"""Background training: a worker object in its own QThread drives a nnviz Trainer.

The worker runs steps in a tight loop and talks to the UI only through
signals (queued, so they never block) and a thread-safe command queue that is
drained between steps.  Snapshots are throttled by time (``max_fps``) and the
worker skips a snapshot while the UI has not yet consumed the previous ones, so
a slow UI never builds up a backlog.  Between steps the worker calls
``time.sleep(0)`` so the UI thread gets the GIL promptly (Numba kernels and big
numpy ops release it; the per-step Python glue does not).
"""
import collections
import logging
import os
import threading
import time

from PySide6.QtCore import QCoreApplication, QObject, QThread, Signal, Slot

from nnviz.train import TrainingDiverged

log = logging.getLogger("nnviz")


def _one_line(exc):
    text = str(exc).strip().splitlines()
    msg = text[0] if text else ""
    return f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__


class TrainingWorker(QObject):
    """Lives in a QThread; ``loop()`` runs until ``request_stop()``."""

    snapshot = Signal(object)
    diverged = Signal(str)
    failed = Signal(str)
    state_changed = Signal(str)

    SLICE_S = 0.004       # most time spent stepping before the queue is checked again
    MAX_INFLIGHT = 2      # snapshots emitted but not yet consumed by the UI

    def __init__(self, trainer, snapshot_fn=None, max_fps=25):
        super().__init__()
        self.trainer = trainer
        self.snapshot_fn = snapshot_fn
        self.min_interval = 1.0 / max(1e-3, float(max_fps))
        self._cond = threading.Condition()
        self._queue = collections.deque()
        self._running = False
        self._stop = False
        self._pending_steps = 0
        self._want_snapshot = False
        self._inflight = 0
        self._inflight_lock = threading.Lock()
        self._last_emit = 0.0
        self._snap_cost = 0.0
        self._rate = collections.deque(maxlen=64)   # (time, steps) samples for steps/s
        self._started_at = None
        self._elapsed = 0.0
        self._last_epoch = getattr(trainer, "epoch", 0)

    # ---- called from any thread ------------------------------------------------
    def post(self, fn):
        with self._cond:
            self._queue.append(fn)
            self._cond.notify_all()

    def set_running(self, on):
        with self._cond:
            self._running = bool(on)
            self._cond.notify_all()

    def request_step(self, n=1):
        with self._cond:
            self._pending_steps += int(n)
            self._cond.notify_all()

    def request_snapshot(self):
        with self._cond:
            self._want_snapshot = True
            self._cond.notify_all()

    def request_stop(self):
        with self._cond:
            self._stop = True
            self._running = False
            self._cond.notify_all()

    def consumed(self):
        with self._inflight_lock:
            self._inflight = max(0, self._inflight - 1)

    @property
    def is_running(self):
        return self._running

    # ---- the loop (worker thread) -------------------------------------------------
    def _steps(self):
        return int(getattr(self.trainer, "steps", 0))

    def steps_per_s(self):
        if len(self._rate) < 2:
            return 0.0
        (t0, s0), (t1, s1) = self._rate[0], self._rate[-1]
        return (s1 - s0) / (t1 - t0) if t1 > t0 else 0.0

    def elapsed(self):
        if self._started_at is None:
            return self._elapsed
        return self._elapsed + (time.perf_counter() - self._started_at)

    def _emit_snapshot(self, force=False):
        now = time.perf_counter()
        if not force:
            # adaptive: snapshots may take at most about a third of the worker's time
            if now - self._last_emit < max(self.min_interval, 2.0 * self._snap_cost):
                return
            with self._inflight_lock:
                if self._inflight >= self.MAX_INFLIGHT:
                    return
        self._last_emit = now
        snap = {}
        if self.snapshot_fn is not None:
            snap = self.snapshot_fn(self.trainer)
            snap = dict(snap) if snap is not None else {}
        tr = self.trainer
        snap.setdefault("steps", self._steps())
        snap.setdefault("step", self._steps())
        snap.setdefault("epoch", int(getattr(tr, "epoch", 0)))
        snap.setdefault("steps_per_s", self.steps_per_s() if self._running else 0.0)
        snap.setdefault("elapsed", self.elapsed())
        snap.setdefault("running", self._running)
        with self._inflight_lock:
            self._inflight += 1
        self._snap_cost = 0.7 * self._snap_cost + 0.3 * (time.perf_counter() - now)
        self.snapshot.emit(snap)

    def _set_state(self, running):
        if running and self._started_at is None:
            self._started_at = time.perf_counter()
            self._rate.clear()
        elif not running and self._started_at is not None:
            self._elapsed += time.perf_counter() - self._started_at
            self._started_at = None
        self.state_changed.emit("running" if running else "paused")

    def _run_commands(self):
        while True:
            with self._cond:
                if not self._queue:
                    return
                fn = self._queue.popleft()
            fn(self.trainer)

    def _one_step(self):
        tr = self.trainer
        tr.step()
        ep = getattr(tr, "epoch", None)
        if ep is not None and ep != self._last_epoch:
            self._last_epoch = ep
            rec = getattr(tr, "record_epoch", None)
            if rec is not None:
                rec()

    def _pause_after_error(self, signal, msg):
        with self._cond:
            self._running = False
            self._pending_steps = 0
        self._set_state(False)
        signal.emit(msg)
        try:
            self._emit_snapshot(force=True)
        except Exception as exc:  # the snapshot itself failed: report once, keep the thread
            log.exception("snapshot failed")
            self.failed.emit(_one_line(exc))

    @Slot()
    def loop(self):
        # Numba's thread count is per calling thread: one kernel thread for training keeps a
        # core free for the UI (2-core lecture laptops); NNVIZ_WORKER_THREADS overrides.
        try:
            import numba
            n = int(os.environ.get("NNVIZ_WORKER_THREADS", "0")) or max(1, numba.config.NUMBA_NUM_THREADS - 1)
            numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
        except Exception:
            pass
        was_running = False
        while True:
            with self._cond:
                while (not self._stop and not self._running and not self._pending_steps
                       and not self._queue and not was_running and not self._want_snapshot):
                    self._cond.wait(0.1)
                if self._stop:
                    break
                running, single = self._running, self._pending_steps > 0
                want_snap, self._want_snapshot = self._want_snapshot, False
                if single and not running:
                    self._pending_steps -= 1
            try:
                self._run_commands()
            except Exception as exc:
                log.exception("command failed in the training thread")
                self._pause_after_error(self.failed, _one_line(exc))
                was_running = False
                continue
            if running != was_running:
                self._set_state(running)
                was_running = running
                if not running:
                    self._emit_snapshot(force=True)
            if not running and not single:
                if want_snap:
                    try:
                        self._emit_snapshot(force=True)
                    except Exception as exc:
                        log.exception("snapshot failed")
                        self.failed.emit(_one_line(exc))
                continue
            try:
                if running:
                    t_end = time.perf_counter() + self.SLICE_S
                    while self._running and not self._stop:
                        self._one_step()
                        time.sleep(0)     # hand the GIL to the UI thread between steps
                        if time.perf_counter() >= t_end or self._queue:
                            break
                    now = time.perf_counter()
                    self._rate.append((now, self._steps()))
                    self._emit_snapshot()
                else:
                    self._one_step()
                    self._emit_snapshot(force=True)
            except TrainingDiverged as exc:
                restore = getattr(self.trainer, "restore_last_good", None)
                if restore is not None:
                    try:
                        restore()
                    except Exception:
                        log.exception("could not restore the last good weights")
                self._pause_after_error(self.diverged, str(exc))
                was_running = False
            except Exception as exc:
                log.exception("training step failed")
                self._pause_after_error(self.failed, _one_line(exc))
                was_running = False
        if was_running:
            self._set_state(False)
        self.state_changed.emit("stopped")


_gc_guard = None


def collect_garbage_in_ui_thread():
    """Run Python's cyclic GC only in the UI thread, on a timer (pyqtgraph's GarbageCollector).

    A collection that happens to run in the worker thread can destroy Qt objects there;
    PySide then waits for the GIL while holding Qt's connection lock, and a UI thread that
    creates or deletes widgets waits for that lock: a deadlock (seen in the test-suite).
    """
    global _gc_guard
    if _gc_guard is None and QCoreApplication.instance() is not None:
        from pyqtgraph.util.garbage_collector import GarbageCollector
        _gc_guard = GarbageCollector(interval=0.5)
    return _gc_guard


class _WorkerThread(QThread):
    """A QThread whose run() is the worker's loop (no event loop needed)."""

    def __init__(self, worker, parent=None):
        super().__init__(parent)
        self._worker = worker

    def run(self):
        try:
            self._worker.loop()
        finally:
            # Hand the worker back to the UI thread before this one ends. Qt destroys what
            # is left in a finishing thread from that thread, and PySide then wants the GIL
            # while holding Qt's connection lock: a deadlock with a UI thread that is busy
            # connecting signals (seen when a test built a window as an old thread ended).
            app = QCoreApplication.instance()
            if app is not None:
                self._worker.moveToThread(app.thread())


class TrainingController(QObject):
    """UI-thread owner of one TrainingWorker and its thread."""

    snapshot = Signal(object)
    diverged = Signal(str)
    failed = Signal(str)
    state_changed = Signal(str)

    def __init__(self, parent=None, max_fps=25):
        super().__init__(parent)
        collect_garbage_in_ui_thread()
        self.max_fps = max_fps
        self._worker = None
        self._thread = None
        self._trainer = None
        self._snapshot_fn = None
        self._running = False
        self.last_snapshot = None

    # ---- plumbing -------------------------------------------------------------------
    @property
    def thread(self):
        return self._thread

    @property
    def worker(self):
        return self._worker

    @property
    def trainer(self):
        return self._trainer

    @property
    def running(self):
        return self._running

    @property
    def steps(self):
        return int(getattr(self._trainer, "steps", 0)) if self._trainer is not None else 0

    def _alive(self):
        return self._thread is not None and self._thread.isRunning()

    def set_trainer(self, trainer, snapshot_fn=None):
        self.stop()
        self._trainer = trainer
        self._snapshot_fn = snapshot_fn
        self._running = False
        if trainer is None:
            return
        w = TrainingWorker(trainer, snapshot_fn, self.max_fps)
        t = _WorkerThread(w)
        w.moveToThread(t)
        # bind the worker into each slot (no QObject.sender(): the worker may be gone)
        w.snapshot.connect(lambda snap, w=w: self._on_snapshot(w, snap))
        w.diverged.connect(lambda msg, w=w: self._on_diverged(w, msg))
        w.failed.connect(lambda msg, w=w: self._on_failed(w, msg))
        w.state_changed.connect(lambda state, w=w: self._on_state(w, state))
        self._worker, self._thread = w, t
        t.start()

    def _on_snapshot(self, w, snap):
        w.consumed()
        if w is not self._worker:
            return
        self.last_snapshot = snap
        self.snapshot.emit(snap)

    def _on_diverged(self, w, msg):
        if w is not self._worker:
            return
        self._running = False
        self.diverged.emit(msg)

    def _on_failed(self, w, msg):
        if w is not self._worker:
            return
        self._running = False
        self.failed.emit(msg)

    def _on_state(self, w, state):
        if w is not self._worker:
            return
        self._running = state == "running"
        self.state_changed.emit(state)

    # ---- commands ---------------------------------------------------------------------
    def start(self):
        if self._worker is None or not self._alive():
            if self._trainer is None:
                return
            self.set_trainer(self._trainer, self._snapshot_fn)
        self._running = True
        self._worker.set_running(True)

    resume = start

    def pause(self):
        self._running = False
        if self._worker is not None:
            self._worker.set_running(False)

    def toggle(self):
        if self._running:
            self.pause()
        else:
            self.start()

    def step(self):
        """One batch; pauses first when running."""
        if self._trainer is None:
            return
        if self._worker is None or not self._alive():
            self.set_trainer(self._trainer, self._snapshot_fn)
        if self._running:
            self.pause()
        self._worker.request_step(1)

    def stop(self, timeout_ms=1000):
        """End the worker thread; True when it has finished (or none was running)."""
        w, t = self._worker, self._thread
        self._running = False
        if w is None or t is None:
            return True
        w.request_stop()
        ok = t.wait(int(timeout_ms)) if t.isRunning() else True
        if ok:
            self._worker = None
            self._thread = None
            # Drop the connections (their lambdas hold the worker) and the trainer at once,
            # rather than waiting for deleteLater: otherwise every Reset would keep a whole
            # model + dataset snapshot alive until the event loop next runs.
            for sig in (w.snapshot, w.diverged, w.failed, w.state_changed):
                try:
                    sig.disconnect()
                except (RuntimeError, TypeError):
                    pass
            w.trainer = None
            w.snapshot_fn = None
            t.deleteLater()
            w.deleteLater()
        else:
            log.warning("training thread did not stop within %d ms", timeout_ms)
        return bool(ok)

    def refresh(self):
        """Ask for one snapshot now (computed in the worker thread)."""
        if self._trainer is None:
            return
        if self._worker is None or not self._alive():
            self.set_trainer(self._trainer, self._snapshot_fn)
        self._worker.request_snapshot()

    def apply(self, fn):
        """Run fn(trainer) in the worker thread at the next step boundary."""
        if self._trainer is None:
            return
        if self._worker is None or not self._alive():
            fn(self._trainer)
            return
        self._worker.post(fn)

    def run_locked(self, fn, timeout_s=30.0):
        """Run fn(trainer) between two steps and return its result (blocks the caller)."""
        if self._trainer is None:
            return fn(None)
        if self._worker is None or not self._alive():
            return fn(self._trainer)
        box = {}
        done = threading.Event()

        def call(tr):
            try:
                box["result"] = fn(tr)
            except BaseException as exc:  # re-raised in the caller's thread
                box["error"] = exc
            finally:
                done.set()

        self._worker.post(call)
        if not done.wait(timeout_s):
            raise TimeoutError("the training thread did not reach a step boundary in time")
        if "error" in box:
            raise box["error"]
        return box.get("result")

    def shutdown(self):
        return self.stop()
