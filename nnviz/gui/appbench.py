"""`python -m nnviz.gui.appbench [--json] [--seconds S]`: the app's training speed against
the same Trainer stepping alone, measured in one process (offscreen).

For each workload the same trainer is stepped headless (a plain ``step()`` loop in this
thread, with the worker's number of Numba threads) and in the app (the workspace's worker
thread, every live view updating), in three alternations (S/2 seconds headless and S in the
app in all), so that other load on the machine hits both alike; the ratio app / headless is
what the targets are about. View refreshes are
counted by wrapping each view's update method; the event-loop gap is the largest interval
between the ticks of a 10 ms timer in the UI thread.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

# name -> (target app/headless ratio, target refreshes per second of each view)
TARGETS = {"inspector": (0.8, 10.0), "playground": (0.5, 20.0), "compare": (0.5, 20.0)}
MAX_GAP_MS = 50.0


def _app():
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("NNVIZ_NO_RESTORE_PROMPT", "1")
    from PySide6.QtWidgets import QApplication

    from . import _qtfix  # noqa: F401
    from .style import apply_style
    app = QApplication.instance() or QApplication([])
    apply_style(app)
    return app


def _spin(seconds):
    """Run the Qt event loop for `seconds`."""
    from PySide6.QtCore import QEventLoop, QTimer
    loop = QEventLoop()
    QTimer.singleShot(int(seconds * 1000), loop.quit)
    loop.exec()


class _Counters:
    """Counts calls of view update methods (wrapped on the instances)."""

    def __init__(self, views):
        self.n = {}
        for label, obj, meth in views:
            self.n[label] = 0
            orig = getattr(obj, meth)

            def wrapped(*a, _orig=orig, _label=label, **kw):
                self.n[_label] += 1
                return _orig(*a, **kw)
            setattr(obj, meth, wrapped)

    def reset(self):
        for k in self.n:
            self.n[k] = 0


class _GapTimer:
    def __init__(self):
        from PySide6.QtCore import Qt, QTimer
        self.ticks = []
        self.timer = QTimer()
        self.timer.setTimerType(Qt.PreciseTimer)
        self.timer.setInterval(10)
        self.timer.timeout.connect(lambda: self.ticks.append(time.perf_counter()))

    def start(self):
        self.ticks = [time.perf_counter()]
        self.timer.start()

    def stop(self):
        self.timer.stop()
        self.ticks.append(time.perf_counter())
        gaps = [b - a for a, b in zip(self.ticks, self.ticks[1:])]
        return 1000 * max(gaps) if gaps else float("nan")


def _headless(step, steps_of, seconds, threads=None):
    """Step in this thread with as many Numba threads as the app's worker uses (or
    `threads`)."""
    import numba

    from .worker import worker_threads
    before = numba.get_num_threads()
    numba.set_num_threads(threads or worker_threads())
    try:
        s0, t0 = steps_of(), time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            step()
        return steps_of() - s0, time.perf_counter() - t0
    finally:
        numba.set_num_threads(before)


def _quiesce(controller):
    """Pause the worker and wait until it is idle: the first call returns at a step
    boundary, before the snapshot a pause forces; the second after it."""
    controller.pause()
    controller.run_locked(lambda tr: None)
    controller.run_locked(lambda tr: None)


def _measure(name, controller, step, steps_of, views, seconds, note, rounds=3):
    """Headless and app in `rounds` alternations on the same trainer (S/2 headless and S in
    the app over all rounds, so that the machine's other load hits both alike)."""
    from PySide6.QtWidgets import QApplication
    counters = _Counters(views)
    _quiesce(controller)
    # warm-up: both paths once (first snapshots, kernel specialisations)
    for _ in range(3):
        step()
    controller.start()
    _spin(min(1.0, seconds / 4))
    _quiesce(controller)
    QApplication.processEvents()
    n_head = t_head = n_app = t_app = 0.0
    gap_ms = 0.0
    counters.reset()
    for _ in range(rounds):
        n, t = _headless(step, steps_of, seconds / 2 / rounds)
        n_head, t_head = n_head + n, t_head + t
        gaps = _GapTimer()
        s0 = steps_of()
        gaps.start()
        t0 = time.perf_counter()
        controller.start()
        _spin(seconds / rounds)
        controller.pause()
        t_app += time.perf_counter() - t0
        gap_ms = max(gap_ms, gaps.stop())
        n_app += controller.run_locked(lambda tr: steps_of()) - s0
        _quiesce(controller)
        QApplication.processEvents()
    refresh = {k: v / t_app for k, v in counters.n.items()}
    import numba
    n_all, t_all = _headless(step, steps_of, seconds / 4, numba.config.NUMBA_NUM_THREADS)
    headless = n_head / t_head
    app = n_app / t_app
    ratio_t, fps_t = TARGETS[name]
    return {"workload": name, "note": note, "app_steps_per_s": round(app, 1),
            "headless_steps_per_s": round(headless, 1), "ratio": round(app / headless, 3),
            # what `nnviz train` gets: every Numba thread (the worker leaves one to the UI)
            "headless_all_threads_steps_per_s": round(n_all / t_all, 1),
            "ratio_all_threads": round(app / (n_all / t_all), 3),
            "refresh_per_s": {k: round(v, 1) for k, v in refresh.items()},
            "min_refresh_per_s": round(min(refresh.values()), 1) if refresh else None,
            "max_gap_ms": round(gap_ms, 1),
            "target_ratio": ratio_t, "target_refresh_per_s": fps_t, "target_gap_ms": MAX_GAP_MS,
            "ok": bool(app / headless >= ratio_t and min(refresh.values()) >= fps_t
                       and gap_ms < MAX_GAP_MS)}


def _show(w):
    w.resize(1400, 900)
    w.show()
    from PySide6.QtWidgets import QApplication
    QApplication.processEvents()
    # as run_app does: what is built now lives on, out of the UI thread's periodic collections
    import gc
    gc.collect()
    gc.freeze()


def _inspector_dataset():
    from nnviz.data import load_dataset
    try:
        return load_dataset("mnist"), "real MNIST"
    except Exception:
        return load_dataset("shapes"), "bundled shapes (no MNIST in the data folder)"


def bench_inspector(seconds):
    from .inspector.workspace import InspectorWorkspace
    ds, note = _inspector_dataset()
    ws = InspectorWorkspace(dataset=ds)
    _show(ws)
    ws.select_model("lenet5")
    ws.batch_spin.setValue(64)
    ws.tabs.setCurrentIndex(1)
    _spin(0.3)
    tr = ws.trainer
    views = [("feature maps", ws.features, "set_maps"), ("filters", ws.filters, "set_filters"),
             ("prediction", ws.prediction, "set_probs"),
             ("curves", ws.curves, "update_history"),
             ("gradient flow", ws.gradflow, "set_series")]
    try:
        return _measure("inspector", ws.controller, lambda: _worker_step(tr),
                        lambda: tr.steps, views, seconds, f"LeNet-5, batch 64, {note}")
    finally:
        ws.shutdown()
        ws.close()
        ws.deleteLater()


def _worker_step(tr):
    """What the worker does per step: step, and record the epoch when one ends."""
    ep = tr.epoch
    tr.step()
    if tr.epoch != ep:
        tr.record_epoch()


def bench_playground(seconds, compare=False):
    from .playground.workspace import PlaygroundWorkspace
    ws = PlaygroundWorkspace()
    _show(ws)
    _spin(0.3)
    if compare:
        ws.start_compare()
        tr, controller = ws.group, ws.compare
        views = [(f"boundary {k}", bp, "set_snapshot") for k, bp in enumerate(ws.compare_plots)]
        views.append(("curves", ws, "_redraw_compare_curves"))
        note = "Compare depths: 0/1/2 hidden layers of 8, spiral, batch 16, round-robin"
        step = tr.step
    else:
        tr, controller = ws.run.trainer, ws.single
        views = [("boundary", ws.boundary, "set_snapshot"),
                 ("thumbnails", ws.network, "update_snapshot"), ("curves", ws, "_redraw_curves")]
        note = "spiral, 2 hidden layers of 8 (tanh), batch 16, Adam"
        step = lambda: _worker_step(tr)
    try:
        return _measure("compare" if compare else "playground", controller, step,
                        lambda: tr.steps, views, seconds, note)
    finally:
        ws.shutdown()
        ws.close()
        ws.deleteLater()


WORKLOADS = {"inspector": bench_inspector, "playground": bench_playground,
             "compare": lambda s: bench_playground(s, compare=True)}


def run(seconds=10.0, only=None):
    app = _app()
    from nnviz.engine import backend as B
    B.use("cpu")
    rows = []
    for name, fn in WORKLOADS.items():
        if only and name not in only:
            continue
        rows.append(fn(seconds))
        app.processEvents()
    return rows


def table(rows):
    head = (f"{'workload':<11} {'app st/s':>9} {'headless':>9} {'ratio':>6} {'target':>6} "
            f"{'views/s (min)':>13} {'gap ms':>7}  ok")
    out = [head]
    for r in rows:
        out.append(f"{r['workload']:<11} {r['app_steps_per_s']:>9.1f} "
                   f"{r['headless_steps_per_s']:>9.1f} {r['ratio']:>6.2f} "
                   f"{r['target_ratio']:>6.2f} {r['min_refresh_per_s']:>13.1f} "
                   f"{r['max_gap_ms']:>7.1f}  {'yes' if r['ok'] else 'NO'}")
    for r in rows:
        views = ", ".join(f"{k} {v:.1f}" for k, v in r["refresh_per_s"].items())
        out.append(f"  {r['workload']}: {r['note']}; refreshes/s: {views}; headless with all "
                   f"Numba threads {r['headless_all_threads_steps_per_s']:.1f} steps/s "
                   f"(app / that {r['ratio_all_threads']:.2f})")
    return "\n".join(out)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m nnviz.gui.appbench", description=__doc__.split("\n")[0])
    p.add_argument("--json", action="store_true", help="print the rows as JSON")
    p.add_argument("--seconds", type=float, default=10.0, help="app time per workload (default 10)")
    p.add_argument("--only", default="", help="comma-separated: inspector, playground, compare")
    a = p.parse_args(argv)
    only = {t.strip() for t in a.only.split(",") if t.strip()} or None
    rows = run(a.seconds, only)
    print(json.dumps(rows, indent=1) if a.json else table(rows), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
