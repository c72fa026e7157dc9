"""Atomic file replacement: write beside the target, flush to disk, then rename over it.

Temporaries are named ``.<target>.nnviz<pid>-<random>.tmp``. A process killed mid-save
(SIGKILL, power loss) cannot remove its own; the next save to that folder removes those of
processes that no longer run, so they do not pile up.
"""
from __future__ import annotations

import os
import re
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_OURS = re.compile(r"^\..+\.nnviz(\d+)-[a-z0-9_]{8}\.tmp$", re.IGNORECASE)
_OLD = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$", re.IGNORECASE)   # before the pid was in the name
OLD_AGE_S = 3600.0
_active: set[str] = set()     # temporaries this process is writing now
_lock = threading.Lock()   # a save in another thread must not take ours for a stale one


def _fsync_path(p, flags=os.O_RDONLY):
    fd = os.open(p, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _running(pid: int) -> bool:
    if sys.platform.startswith("win"):
        return True     # os.kill would end the process there; only the age rule applies
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:     # EPERM: running, someone else's
        return True
    return True


def clean_stale(folder: str | os.PathLike) -> list[str]:
    """Remove our temporaries in `folder` left by processes that died while saving.

    Returns the names removed. Only regular files named by atomic_path are touched.
    """
    removed: list[str] = []
    try:
        entries = list(os.scandir(os.fspath(folder)))
    except OSError:
        return removed
    now = time.time()
    for e in entries:
        m = _OURS.match(e.name)
        try:
            if not e.is_file(follow_symlinks=False) or os.path.abspath(e.path) in _active:
                continue
            if m:
                pid = int(m.group(1))
                stale = pid == os.getpid() or not _running(pid) or now - e.stat().st_mtime > 86400
            else:
                stale = bool(_OLD.match(e.name)) and now - e.stat().st_mtime > OLD_AGE_S
            if stale:
                os.unlink(e.path)
                removed.append(e.name)
        except OSError:
            continue
    return removed


@contextmanager
def atomic_path(path: str | os.PathLike, mode: int | None = None) -> Iterator[str]:
    """Yield a temporary path in the target's folder; on success it replaces `path`.

    A crash, an exception or a full disk leaves the old file untouched and no
    temporary file behind (a SIGKILL's leftover is removed by the next save there).
    """
    path = Path(path)
    folder = path.parent
    with _lock:
        clean_stale(folder)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.nnviz{os.getpid()}-", suffix=".tmp",
                                   dir=folder)
        os.close(fd)
        _active.add(os.path.abspath(tmp))
    try:
        yield tmp
        _fsync_path(tmp)
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    finally:
        _active.discard(os.path.abspath(tmp))
    try:   # make the rename itself durable
        _fsync_path(folder)
    except OSError:
        pass
