"""Work around a reference-count bug in some PySide6 builds (seen in 6.12.0 on Python 3.11).

There, every Python-side ``Signal.emit()`` (and queued delivery from another
thread) releases one reference to ``True`` / ``False`` / ``None`` that it never
took.  Python 3.12+ makes those singletons immortal, so nothing happens there;
on 3.11 the interpreter aborts ("deallocating True or False") after a few
thousand emits -- seconds into training, since pyqtgraph emits signals all the
time.  We detect the leak once at import and, only if it is present, give the
three singletons a huge reference count (what 3.12 does by design).
"""
import ctypes
import sys

_BIG = 1 << 50
applied = False


def _leaks():
    from PySide6.QtCore import QObject, Signal

    class _Probe(QObject):
        sig = Signal(int)

    p = _Probe()
    before = [sys.getrefcount(o) for o in (True, False, None)]
    for i in range(8):
        p.sig.emit(i)
    after = [sys.getrefcount(o) for o in (True, False, None)]
    return any(a < b - 4 for a, b in zip(after, before))


def apply():
    global applied
    if applied or sys.version_info >= (3, 12):
        return applied
    try:
        leak = _leaks()
    except Exception:
        leak = False
    # the cross-thread path leaks None too: pin all three whenever a leak shows
    if leak:
        for obj in (True, False, None):
            ctypes.c_ssize_t.from_address(id(obj)).value += _BIG
        applied = True
    return applied


apply()
