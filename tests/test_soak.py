"""Soak: a minute of start / pause / resume / step / reset / stop and model and tab switches
while training.  No exception, no leaked thread, flat memory.  NNVIZ_SOAK_S sets the length."""
import gc
import logging
import os
import sys
import threading
import time

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QThread

from nnviz.gui.mainwindow import MainWindow

SOAK_S = float(os.environ.get("NNVIZ_SOAK_S", "60"))


def rss_mb():
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def running_qthreads():
    return [o for o in gc.get_objects()
            if isinstance(o, QThread) and o is not QThread.currentThread() and o.isRunning()]


class _Errors(logging.Handler):
    def __init__(self):
        super().__init__(logging.ERROR)
        self.records = []

    def emit(self, record):
        self.records.append(self.format(record))


@pytest.mark.slow
def test_soak_start_pause_reset_switch(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("NNVIZ_AUTOSAVE_DIR", str(tmp_path / "autosave"))
    monkeypatch.setattr(MainWindow, "AUTOSAVE_MIN_S", 2.0)   # exercise autosave too
    errors = []
    monkeypatch.setattr(sys, "excepthook", lambda *exc: errors.append(exc))
    handler = _Errors()
    logging.getLogger("nnviz").addHandler(handler)
    gc.collect()
    threads_before = len(threading.enumerate())
    qthreads_before = len(running_qthreads())

    w = MainWindow()
    w.confirm_close = False
    qtbot.addWidget(w)
    w.show()
    pg = w.playground
    ins = w.workspace("CNN inspector")
    if ins is not None and getattr(ins, "dataset", None) is not None:
        try:   # a small subset keeps the CNN steps short
            ins.set_dataset(ins.dataset.subset(n_train=256, n_test=64))
        except Exception as exc:   # pragma: no cover - the inspector keeps its own set
            print(f"inspector subset not used: {exc}")

    def wait_steps(ws, n=5, timeout=5000):
        s0 = ws.trainer.steps if ws.trainer is not None else 0
        qtbot.waitUntil(lambda: ws.trainer is not None and ws.trainer.steps >= s0 + n,
                        timeout=timeout)

    datasets = ["spiral", "circle", "xor", "gauss", "moons"]
    rss = [rss_mb()]
    t0 = time.monotonic()
    quarter_rss = None
    cycles = 0
    while time.monotonic() - t0 < SOAK_S:
        w.tabs.setCurrentWidget(pg)
        pg.start()
        wait_steps(pg)
        pg.pause()
        qtbot.wait(20)
        pg.start()                               # resume
        wait_steps(pg)
        w.step()                                 # step (pauses first)
        qtbot.wait(20)
        w.reset()                                # rebuild while a worker exists
        pg.start()
        wait_steps(pg, 3)
        pg.controller.stop()                     # stop the thread outright ...
        pg.start()                               # ... and start a fresh one
        wait_steps(pg, 3)
        # model / workspace switches while training
        pg.dataset_combo.setCurrentText(datasets[cycles % len(datasets)])
        pg.set_hidden_layers(1 + cycles % 3)
        pg.start()
        wait_steps(pg, 3)
        if cycles % 3 == 1:
            pg.start_compare()
            pg.controller.start()
            qtbot.wait(150)
            pg.leave_compare()
        if ins is not None and ins.trainer is not None:
            w.tabs.setCurrentWidget(ins)         # the playground keeps training meanwhile
            if not ins.controller.running:
                ins.start_pause()
            wait_steps(ins, 2, timeout=10000)
            ins.start_pause()
            if cycles % 2:
                w.reset()
        pg.pause()
        qtbot.wait(10)
        cycles += 1
        gc.collect()
        rss.append(rss_mb())
        if quarter_rss is None and time.monotonic() - t0 >= SOAK_S / 4:
            quarter_rss = rss[-1]

    w.shutdown()
    w.close()
    qtbot.wait(200)
    gc.collect()
    logging.getLogger("nnviz").removeHandler(handler)
    threads_after = len(threading.enumerate())
    qthreads_after = len(running_qthreads())
    quarter_rss = quarter_rss if quarter_rss is not None else rss[0]
    print(f"\nsoak: {cycles} cycles in {time.monotonic() - t0:.0f} s; RSS {rss[0]:.0f} MB at "
          f"start, {quarter_rss:.0f} MB after the first quarter, {rss[-1]:.0f} MB at the end "
          f"(peak {max(rss):.0f} MB); python threads {threads_before} -> {threads_after}; "
          f"running QThreads {qthreads_before} -> {qthreads_after}")
    print("RSS per cycle (MB):", " ".join(f"{r:.0f}" for r in rss))
    assert not errors, errors
    assert not handler.records, handler.records
    assert cycles >= 3
    assert qthreads_after <= qthreads_before, running_qthreads()
    assert threads_after <= threads_before + 1, threading.enumerate()   # numba may keep one
    assert rss[-1] - quarter_rss <= 50, (quarter_rss, rss[-1])
