"""Background training: a worker object in its own QThread drives a nnviz Trainer.

The worker steps in bursts and talks to the UI only through signals (queued, so they
never block) and a thread-safe command queue that is drained between bursts.  A burst
runs until the next snapshot is due (``max_fps``); then the worker makes the snapshot
(copies only), emits it and waits, with the GIL released, until the UI has applied and
painted it (or ``HANDOFF_S`` passed).  Python glue holds the GIL, so two threads that
both run Python only take turns: handing the UI one clear turn per frame costs far less
than interleaving every step with it (measured: ``python -m nnviz.gui.appbench``).
"""
import collections
import logging
import os
import sys
import threading
import time

from PySide6.QtCore import QCoreApplication, QEvent, QObject, Qt, QThread, QTimer, Signal, Slot

from nnviz.train import TrainingDiverged

from .snapshots import Snapshot, Status

log = logging.getLogger("nnviz")

_PAINT_EVENTS = (QEvent.Type.MetaCall, QEvent.Type.LayoutRequest, QEvent.Type.UpdateRequest)


def _one_line(exc):
    text = str(exc).strip().splitlines()
    msg = text[0] if text else ""
    return f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__


def worker_threads():
    """Numba threads for the training thread. Numba's count is per calling thread: one
    kernel thread fewer than the cores keeps a core free for the UI (2-core lecture
    laptops); NNVIZ_WORKER_THREADS overrides."""
    import numba
    n = int(os.environ.get("NNVIZ_WORKER_THREADS", "0")) or max(1, numba.config.NUMBA_NUM_THREADS - 1)
    return min(n, numba.config.NUMBA_NUM_THREADS)


class TrainingWorker(QObject):
    """Lives in a QThread; ``loop()`` runs until ``request_stop()``."""

    snapshot = Signal(object)
    diverged = Signal(str)
    failed = Signal(str)
    state_changed = Signal(str)

    SLICE_S = 0.1         # longest burst when no snapshot is due (commands are checked per step)
    SWITCH_INTERVAL_S = 0.001
    YIELD_S = 0.002       # offer the GIL to the UI thread this often during a burst
    HANDOFF_S = 0.05      # longest wait for the UI to apply a snapshot before stepping on
    MAX_INFLIGHT = 1      # snapshots emitted but not yet consumed by the UI

    def __init__(self, trainer, snapshot_fn=None, max_fps=25, train_share=0.6, handoff=True):
        super().__init__()
        self.trainer = trainer
        self.snapshot_fn = snapshot_fn
        self.min_interval = 1.0 / max(1e-3, float(max_fps))
        # a burst lasts at least train_share / (1 - train_share) times what a frame costs
        # (making the snapshot, plus the UI's turn when handoff is on)
        self.burst_factor = float(train_share) / max(1e-3, 1.0 - float(train_share))
        self.handoff = bool(handoff)
        self._burst_start = 0.0
        self._frame_cost = 0.0
        self._cond = threading.Condition()
        self._queue = collections.deque()
        self._running = False
        self._stop = False
        self._pending_steps = 0
        self._want_snapshot = False
        self._inflight = 0
        self._inflight_lock = threading.Lock()
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
        with self._cond:
            self._cond.notify_all()

    def _wait_consumed(self):
        """Give the UI its turn: wait (GIL released) until it applied the last snapshot."""
        end = time.perf_counter() + self.HANDOFF_S
        with self._cond:
            while self._inflight > 0 and self._running and not self._stop and not self._queue:
                left = end - time.perf_counter()
                if left <= 0:
                    return
                self._cond.wait(left)

    def _snapshot_due(self):
        return self._inflight < self.MAX_INFLIGHT and time.perf_counter() - self._burst_start >= max(
            self.min_interval - self._frame_cost, self.burst_factor * self._frame_cost)

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
        if not force:
            if not self._snapshot_due():
                return
            with self._inflight_lock:
                if self._inflight >= self.MAX_INFLIGHT:
                    return
        snap = self.snapshot_fn(self.trainer) if self.snapshot_fn is not None else None
        if snap is None:
            snap = Snapshot()
        snap.status = Status(steps=self._steps(), epoch=int(getattr(self.trainer, "epoch", 0)),
                             steps_per_s=self.steps_per_s() if self._running else 0.0,
                             elapsed=self.elapsed(), running=self._running)
        with self._inflight_lock:
            self._inflight += 1
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

    def _burst(self):
        """Step until a snapshot is due (or SLICE_S passed, or a command waits). The GIL is
        offered to the UI every YIELD_S, not after every step (tiny steps: that was most of
        it). The checks per step are local look-ups: a Playground step is ~13 us, and the
        calls they replace cost ~1 us of it."""
        t0 = time.perf_counter()
        t_end, t_yield = t0 + self.SLICE_S, t0 + self.YIELD_S
        due = self._burst_start + max(self.min_interval - self._frame_cost,
                                      self.burst_factor * self._frame_cost)
        clock, step, queue, most = time.perf_counter, self._one_step, self._queue, self.MAX_INFLIGHT
        while self._running and not self._stop:
            step()
            now = clock()
            if queue or now >= t_end or (now >= due and self._inflight < most):
                break
            if now >= t_yield:
                time.sleep(0)
                t_yield = now + self.YIELD_S

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
        try:
            import numba
            numba.set_num_threads(worker_threads())
        except Exception:
            pass
        # A UI thread that wants the GIL waits at most the switch interval for a bursting
        # worker to let go of it (Python's default is 5 ms, for each Python call from Qt)
        sys.setswitchinterval(min(sys.getswitchinterval(), self.SWITCH_INTERVAL_S))
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
                    self._burst()
                    now = time.perf_counter()
                    self._rate.append((now, self._steps()))
                    before = self._inflight
                    self._emit_snapshot()
                    if self._inflight > before:
                        if self.handoff:
                            self._wait_consumed()
                        end = time.perf_counter()
                        self._frame_cost = 0.7 * self._frame_cost + 0.3 * (end - now)
                        self._burst_start = end
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


def _paint_now():
    """Paint what the views changed now, while the worker waits: painting later, during a
    burst, would wait for the GIL at every Python paint method (pyqtgraph has dozens). Two
    rounds: a graphics scene posts its update (a queued call), which posts the repaint.
    Only these types: never deferred deletes, which event type 0 would run here when no
    event loop is running (tests)."""
    for _ in range(2):
        for kind in _PAINT_EVENTS:
            QCoreApplication.sendPostedEvents(None, kind)


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

    _relay = Signal(object, object)

    def __init__(self, parent=None, max_fps=25, train_share=0.6, handoff=True):
        super().__init__(parent)
        self._relay.connect(self._deliver, Qt.QueuedConnection)
        self._delivering = False
        self._parts = []           # deferred parts of the refresh being delivered
        self._batches = collections.deque()     # (worker, parts) whose parts are to run
        # A zero-interval timer, not a posted call, runs the next part: Qt runs posted calls
        # back to back, before the timers and input that the parts are spread out for.
        self._part_timer = QTimer(self)
        self._part_timer.setSingleShot(True)
        self._part_timer.setInterval(0)
        self._part_timer.timeout.connect(self._next_part)
        collect_garbage_in_ui_thread()
        self.max_fps = max_fps
        self.train_share = train_share
        self.handoff = handoff
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
        w = TrainingWorker(trainer, snapshot_fn, self.max_fps, self.train_share, self.handoff)
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
        # runs in the worker thread (the lambda connection has no receiver there): hop over
        self._relay.emit(w, snap)

    def _deliver(self, w, snap):
        if w is not self._worker:
            w.consumed()
            return
        if self._delivering:        # re-entered from the flush below: after this one
            QTimer.singleShot(0, lambda: self._deliver(w, snap))
            return
        self._delivering = True
        self.last_snapshot = snap
        parts = self._parts = []
        try:
            self.snapshot.emit(snap)
            _paint_now()
        finally:
            self._delivering = False
            if parts:
                self._batches.append((w, parts))
                if not self._part_timer.isActive():
                    self._part_timer.start()
            else:
                w.consumed()

    def defer(self, fn):
        """For a snapshot slot: run fn (a view's update) in a later turn of the event loop
        and paint it there, so that one refresh is spread over several short turns (the
        UI answers between them); the worker waits for the last part. Outside a delivery
        fn runs at once."""
        if self._delivering:
            self._parts.append(fn)
        else:
            fn()

    def _next_part(self):
        if not self._batches:
            return
        w, parts = self._batches[0]
        try:
            if w is self._worker and parts:
                parts.pop(0)()
                _paint_now()
        except Exception:
            log.exception("a view's update failed")
            parts.clear()
        finally:
            if not (w is self._worker and parts):
                parts.clear()
                self._batches.popleft()
                w.consumed()
            if self._batches:
                self._part_timer.start()

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
